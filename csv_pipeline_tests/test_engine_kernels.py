"""The compiled loops against slow, obvious references: Arrow's CSV reader for parsing plain
blocks, Python's sort, sum and csv module for the totals."""

import csv
import datetime
import random

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from csv_pipeline.engine.kernels import SCHEMA
from csv_pipeline.engine.parse import parse_plain, parse_rows
from csv_pipeline.engine.rules import MAX_INT64
from csv_pipeline.engine.shuffle import combine, song_hashes, split_by_bucket
from csv_pipeline.engine.totals import TotalOverflow, sum_sort_render

# Songs that stress byte order: shared 8-byte prefixes, lengths around 8, NUL bytes,
# multi-byte UTF-8, and characters that need quoting on output.
TRICKY_SONGS = [
    "a",
    "ab",
    "ab\x00",
    "abcdefg",
    "abcdefgh",
    "abcdefghi",
    "abcdefghij",
    "abcdefgh\x00",
    "abcdefgi",
    "Zebra",
    "zebra",
    "é",
    "e\u0301",
    "日本語の歌",
    "😀 emoji",
    "Hello, Goodbye",
    'Say "hi"',
    "two\nlines",
    "cr\rhere",
    "The Beatles - Help!",
    "The Beatles - Hey Jude",
]
DAYS = [
    datetime.date(1, 1, 1),
    datetime.date(1970, 1, 1),
    datetime.date(2000, 2, 29),
    datetime.date(2024, 12, 31),
    datetime.date(9999, 12, 31),
]


def plain_rows(rng: random.Random, count: int) -> list[tuple[str, str, str]]:
    songs = [song for song in TRICKY_SONGS if not any(char in song for char in ',"\r\n')]
    rows = []
    for _ in range(count):
        if rng.random() < 0.5:
            day = rng.choice(DAYS)
        else:
            day = datetime.date(1994, 8, 8) + datetime.timedelta(days=rng.randrange(12000))
        plays = rng.choice([0, 1, 7, 100_000, MAX_INT64, rng.randrange(MAX_INT64)])
        text = str(plays).zfill(rng.choice([1, 1, 5, 21]))  # leading zeros, even past 19 digits
        rows.append((rng.choice(songs), day.isoformat(), text))
    return rows


def arrow_table(block: bytes) -> pa.Table:
    return pacsv.read_csv(
        pa.py_buffer(block),
        read_options=pacsv.ReadOptions(column_names=SCHEMA.names),
        convert_options=pacsv.ConvertOptions(column_types=SCHEMA, strings_can_be_null=False),
    )


def test_plain_blocks_parse_exactly_like_arrow_and_the_general_parser():
    rng = random.Random(7)
    rows = plain_rows(rng, 5000)
    data = "".join(f"{song},{day},{plays}\n" + ("\n" if rng.random() < 0.01 else "") for song, day, plays in rows)
    for block in (data.encode(), data.encode().rstrip(b"\n")):  # with and without a last newline
        plain = parse_plain(block)
        assert plain is not None
        table, newlines = plain
        assert table.equals(arrow_table(block))
        assert table.equals(parse_rows(block, "plays.csv")[1])
        assert (table.num_rows, newlines) == (len(rows), block.count(b"\n"))


@pytest.mark.parametrize(
    "block",
    [
        b'"quoted",2020-01-01,5\n',
        b"crlf,2020-01-01,5\r\n",
        b"padded, 2020-01-01,5\n",
        b"padded,2020-01-01, 5\n",
        b"plus,2020-01-01,+5\n",
        b"negative,2020-01-01,-5\n",
        b"too big,2020-01-01,9223372036854775808\n",
        b",2020-01-01,5\n",
        b"not a date,2021-02-29,5\n",
        b"year zero,0000-01-01,5\n",
        b"slashes,2020/01/01,5\n",
        b"bad utf-8 \xff,2020-01-01,5\n",
        b"surrogate \xed\xa0\x80,2020-01-01,5\n",
        b"four,2020-01-01,5,extra\n",
        b"two,2020-01-01\n",
        b"no plays,2020-01-01,\n",
        b"good,2020-01-01,5\nbad,2020-13-01,5\n",
    ],
)
def test_anything_but_valid_plain_rows_goes_to_the_general_parser(block):
    assert parse_plain(block) is None


def reference_body(rows: list[tuple[str, datetime.date, int]]) -> bytes:
    totals: dict[tuple[bytes, datetime.date], int] = {}
    for song, day, plays in rows:
        key = (song.encode(), day)
        totals[key] = totals.get(key, 0) + plays
    lines = []
    for (song, day), total in sorted(totals.items()):
        if any(char in song for char in (b",", b'"', b"\r", b"\n")):  # RFC 4180; a bare CR too
            song = b'"' + song.replace(b'"', b'""') + b'"'
        lines.append(b"%s,%s,%d\n" % (song, day.isoformat().encode(), total))
    return b"".join(lines)


def table_of(rows: list[tuple[str, datetime.date, int]]) -> pa.Table:
    songs, days, plays = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.table(
        [pa.array(songs, pa.string()), pa.array(days, pa.date32()), pa.array(plays, pa.int64())], schema=SCHEMA
    )


def test_totals_are_summed_sorted_by_song_bytes_then_date_and_quoted():
    rng = random.Random(11)
    rows = [(rng.choice(TRICKY_SONGS), rng.choice(DAYS), rng.choice([0, 1, 2, 10**12, 2**40])) for _ in range(20_000)]
    rendered = sum_sort_render(table_of(rows))
    assert rendered.body == reference_body(rows)
    starts = rendered.line_offsets
    assert starts[0] == 0 and starts[-1] == len(rendered.body) and rendered.rows == len(set((s, d) for s, d, _ in rows))
    first_lines = [next(csv.reader([rendered.body[starts[i] : starts[i + 1]].decode()])) for i in rendered.song_starts]
    assert [song for song, _, _ in first_lines] == sorted({song for song, _, _ in rows}, key=str.encode)


def test_many_songs_and_days_sort_like_python():
    rng = random.Random(3)
    words = ["".join(rng.choice("ab\u00e9") for _ in range(rng.randrange(1, 12))) for _ in range(3000)]
    start = datetime.date(1994, 8, 8)
    rows = [
        (rng.choice(words), start + datetime.timedelta(days=rng.randrange(12000)), rng.randrange(100))
        for _ in range(50_000)
    ]
    assert sum_sort_render(table_of(rows)).body == reference_body(rows)


def test_a_total_past_64_bits_names_its_song_and_day():
    day = datetime.date(2020, 1, 1)
    rows = [
        ("fine", day, MAX_INT64),
        ("big", day, MAX_INT64 - 1),
        ("big", day, 2),
        ("fine", datetime.date(2020, 1, 2), 1),
    ]
    with pytest.raises(TotalOverflow) as caught:
        sum_sort_render(table_of(rows))
    assert (caught.value.song, caught.value.day) == ("big", (day - datetime.date(1970, 1, 1)).days)
    exact = sum_sort_render(table_of(rows[:1] + [("big", day, MAX_INT64 - 2), ("big", day, 2)]))
    assert exact.body == f"big,2020-01-01,{MAX_INT64}\nfine,2020-01-01,{MAX_INT64}\n".encode()


def test_an_empty_bucket_renders_nothing():
    rendered = sum_sort_render(SCHEMA.empty_table())
    assert (rendered.body, list(rendered.line_offsets), list(rendered.song_starts)) == (b"", [0], [])


def test_partitioning_keeps_every_row_and_each_song_in_one_bucket():
    rng = random.Random(5)
    rows = [(rng.choice(TRICKY_SONGS), rng.choice(DAYS), rng.randrange(10)) for _ in range(3000)]
    table = table_of(rows)
    hashes = song_hashes(table["song"])
    grouped, offsets = split_by_bucket(table, hashes, 7)
    assert offsets[0] == 0 and offsets[-1] == len(rows)
    buckets = [grouped.slice(offsets[b], offsets[b + 1] - offsets[b]).to_pylist() for b in range(7)]
    assert sorted((r["song"], r["date"], r["plays"]) for bucket in buckets for r in bucket) == sorted(rows)
    home = {}
    for bucket, bucket_rows in enumerate(buckets):
        for row in bucket_rows:
            assert home.setdefault(row["song"], bucket) == bucket
    in_order = [r for r in table.to_pylist() if home[r["song"]] == 3]
    assert buckets[3] == in_order  # input order kept within a bucket


def test_song_hashes_are_the_same_on_every_machine():
    """The bucket of a song is part of the output layout: pin the hash of a few songs."""
    hashes = song_hashes(pa.array(["a", "In The End", "é"]))
    assert [int(h) % 1000 for h in hashes] == [188, 221, 622]


def test_each_call_sees_only_its_own_rows():
    """The loops reuse their large arrays from call to call within a thread."""
    day = datetime.date(2020, 1, 1)
    big = [(f"song {n}", day, n) for n in range(5000)]
    small = [("only", day, 1)]
    for rows in (big, small, [], big[:10], small):
        assert sum_sort_render(table_of(rows)).body == reference_body(rows)
        combined = combine(table_of(rows))
        assert sorted(combined[0].to_pylist(), key=lambda r: r["song"]) == sorted(
            ({"song": s, "date": d, "plays": p} for s, d, p in rows), key=lambda r: r["song"]
        )


@pytest.mark.parametrize("song_count, day_count", [(21, 5), (5000, 400)])  # a dense grid of totals; sorted rows
def test_combine_sums_per_song_and_day_with_the_partition_hash(song_count, day_count):
    rng = random.Random(13)
    songs = TRICKY_SONGS + [f"song {n}" for n in range(song_count - len(TRICKY_SONGS))]
    days = [datetime.date(1994, 8, 8) + datetime.timedelta(days=d) for d in range(day_count)]
    rows = [(rng.choice(songs), rng.choice(days), rng.randrange(1000)) for _ in range(20_000)]
    combined, hashes = combine(table_of(rows))
    expected: dict[tuple[str, datetime.date], int] = {}
    for song, day, plays in rows:
        expected[song, day] = expected.get((song, day), 0) + plays
    assert {(r["song"], r["date"]): r["plays"] for r in combined.to_pylist()} == expected
    assert combined.num_rows == len(expected)
    assert list(hashes) == list(song_hashes(combined["song"]))


def test_combine_leaves_a_block_whose_total_passes_64_bits_to_the_reduce():
    day = datetime.date(2020, 1, 1)
    assert combine(table_of([("big", day, MAX_INT64), ("big", day, 1)])) is None  # dense grid
    spread = [(f"song {n}", day + datetime.timedelta(days=n), 1) for n in range(100)]
    assert combine(table_of(spread + [("big", day, MAX_INT64), ("big", day, 1)])) is None  # sorted rows
