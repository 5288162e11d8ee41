"""The engine against an independent reference, on random valid files and hostile mutations.

The reference below follows the input rules literally, in plain Python, one byte at a time:
UTF-8 with an optional BOM; RFC 4180 quoting; LF or CRLF line ends (a CR anywhere else
outside quotes is an error); blank lines ignored; exactly three columns; an optional
header ``Song,Date,Number of Plays``, else the first row must be a valid data row; Song
non-empty; Date a real ``YYYY-MM-DD`` date; Number of Plays digits only, fitting in 64
bits; a total per (Song, Date) fitting in 64 bits (checked once every row is valid: a bad
row anywhere is reported before an overflowing total). Every file is run at several block
sizes, down to a few bytes: the outcome must be the reference's totals, with the same
bytes at every block size, or a rejection naming the reference's first bad line.

CI runs 25 fixed examples per property; ``CSV_PIPELINE_FUZZ_EXAMPLES=N`` runs N random ones
instead, for a longer fuzz session.
"""

import datetime
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from csv_pipeline.engine import InvalidFileError, aggregate, inspect_file, write_shards
from csv_pipeline.engine.sizes import MAX_SHUFFLE_PIECES

pytest_plugins = ["csv_pipeline_tests.engine_fixtures"]

MAX_INT64 = 2**63 - 1
HEADER = [b"Song", b"Date", b"Number of Plays"]
BOM = b"\xef\xbb\xbf"
BLOCK_SIZES = (3, 17, 1 << 20)  # for small files; a file with a huge field: (4093, 1 << 20)
BUCKET_BYTES = 256
GROUPED_BLOCK_BYTES = 17  # also run with map tasks of several such blocks: at most three map tasks
EXAMPLES = int(os.environ.get("CSV_PIPELINE_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="CSV_PIPELINE_FUZZ_EXAMPLES" not in os.environ,  # CI: the same examples every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


# ---------------------------------------------------------------- the reference


def read_record(data: bytes, pos: int) -> tuple[list[bytes], int, int] | None:
    """(fields, position after the record, newlines inside it) or None if it is malformed."""
    fields, newlines = [], 0
    while True:
        field = bytearray()
        if data[pos : pos + 1] == b'"':
            pos += 1
            while True:
                if pos >= len(data):
                    return None  # never closed
                if data[pos : pos + 1] == b'"':
                    if data[pos + 1 : pos + 2] == b'"':
                        field += b'"'
                        pos += 2
                        continue
                    pos += 1
                    break
                newlines += data[pos : pos + 1] == b"\n"
                field += data[pos : pos + 1]
                pos += 1
        else:
            while pos < len(data) and data[pos : pos + 1] not in (b",", b"\n", b"\r", b'"'):
                field += data[pos : pos + 1]
                pos += 1
            if data[pos : pos + 1] == b'"':
                return None  # a quote inside an unquoted field
        fields.append(bytes(field))
        if pos >= len(data):
            return fields, pos, newlines
        if data[pos : pos + 1] == b",":
            pos += 1
        elif data[pos : pos + 1] == b"\n":
            return fields, pos + 1, newlines + 1
        elif data[pos : pos + 2] == b"\r\n":
            return fields, pos + 2, newlines + 1
        else:
            return None  # text after a closing quote, or a bare CR


def valid_row(fields: list[bytes]) -> tuple[str, str, int] | None:
    if len(fields) != 3:
        return None
    try:
        song, date, plays = (field.decode("utf-8") for field in fields)
    except UnicodeDecodeError:
        return None
    if not song or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", date, re.ASCII):
        return None
    try:
        datetime.date(int(date[:4]), int(date[5:7]), int(date[8:]))
    except ValueError:
        return None
    if not re.fullmatch(r"[0-9]+", plays, re.ASCII) or int(plays) > MAX_INT64:
        return None
    return song, date, int(plays)


def reference(data: bytes) -> dict[tuple[str, str], int] | int | None:
    """The totals, or the 1-based line of the first bad line, or None for a zero-byte file."""
    if not data:
        return None
    pos = len(BOM) if data.startswith(BOM) else 0
    line, first, rows = 1, True, []
    while pos < len(data):
        if data[pos : pos + 1] == b"\n" or data[pos : pos + 2] == b"\r\n":
            pos += 1 if data[pos : pos + 1] == b"\n" else 2
            line += 1
            continue
        record = read_record(data, pos)
        if record is None:
            return line
        fields, pos, newlines = record
        if first and fields == HEADER:
            first = False
            line += newlines
            continue
        first = False
        row = valid_row(fields)
        if row is None:
            return line
        rows.append((line, row))
        line += newlines
    totals: dict[tuple[str, str], int] = {}
    for line, (song, date, plays) in rows:
        totals[song, date] = totals.get((song, date), 0) + plays
        if totals[song, date] > MAX_INT64:
            return line
    return totals


# ---------------------------------------------------------------- running the engine


def engine_outcome(client, data: bytes, block_bytes: int, workdir: Path, max_shuffle_pieces: int = MAX_SHUFFLE_PIECES):
    """(totals, shard bytes) or the InvalidFileError."""
    source = workdir / "plays.csv"
    source.write_bytes(data)
    run = f"{block_bytes}-{max_shuffle_pieces}"
    out = workdir / f"out-{run}"
    try:
        plan = inspect_file(
            str(source),
            source.name,
            block_bytes=block_bytes,
            bucket_bytes=BUCKET_BYTES,
            max_shuffle_pieces=max_shuffle_pieces,
        )
        manifest = write_shards(client, aggregate(client, plan, str(workdir / f"scratch-{run}")), str(out))
    except InvalidFileError as error:
        return error
    shards = b"".join(Path(shard.uri).read_bytes() for shard in manifest.shards)
    totals = {}
    for shard in manifest.shards:
        body = Path(shard.uri).read_bytes()
        pos = 0
        header, pos, _ = read_record(body, pos)
        assert header == [b"Song", b"Date", b"Total Number of Plays for Date"]
        while pos < len(body):
            (song, date, total), pos, _ = read_record(body, pos)
            totals[song.decode(), date.decode()] = int(total)
    assert manifest.rows_out == len(totals)
    assert manifest.top_songs == most_played(totals)
    return totals, shards


def most_played(totals: dict[tuple[str, str], int]) -> tuple[tuple[str, int], ...]:
    """The ten most played songs over all dates, ties by name; a song's sum is capped at 2**63 - 1."""
    by_song: dict[str, int] = {}
    for (song, _), total in totals.items():
        by_song[song] = min(by_song.get(song, 0) + total, 2**63 - 1)
    return tuple(sorted(by_song.items(), key=lambda item: (-item[1], item[0]))[:10])


def check(client, data: bytes) -> None:
    expected = reference(data)
    workdir = Path(tempfile.mkdtemp(prefix="csv_pipeline_fuzz_"))
    try:
        outputs = set()
        if len(data) < 4096:
            buckets = max(1, math.ceil(len(data) / BUCKET_BYTES))
            runs = [(size, MAX_SHUFFLE_PIECES) for size in BLOCK_SIZES] + [(GROUPED_BLOCK_BYTES, 3 * buckets)]
        else:
            runs = [(4093, MAX_SHUFFLE_PIECES), (1 << 20, MAX_SHUFFLE_PIECES)]
        for block_bytes, max_shuffle_pieces in runs:
            outcome = engine_outcome(client, data, block_bytes, workdir, max_shuffle_pieces)
            if isinstance(outcome, InvalidFileError):
                message = outcome.message
                assert "\n" not in message and "<text>" not in message, message
                if expected is None:
                    assert message.startswith("plays.csv: is empty (0 bytes)"), message
                    continue
                assert isinstance(expected, int), f"rejected a file the reference accepts: {message}"
                assert outcome.line == expected, (message, expected)
                assert message.startswith(f"plays.csv: line {expected}: "), message
                assert "'" in message, message  # the value (or row) it names
            else:
                totals, shards = outcome
                assert totals == expected, f"block size {block_bytes}, at most {max_shuffle_pieces} shuffle pieces"
                outputs.add(shards)
        assert len(outputs) <= 1, "the output depends on the block size"
    finally:
        shutil.rmtree(workdir)


# ---------------------------------------------------------------- generated files

SONG_CHARS = st.sampled_from(list("ab ,\"\r\n\x00é日😀-'\t") + ["\ufeff"])
songs = st.one_of(
    st.sampled_from(["In The End", "Umbrella", "Hello, Goodbye", 'Say "Hi"', "a\nb"]),
    st.text(SONG_CHARS, min_size=1, max_size=8),
)
dates = st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 31)).map(datetime.date.isoformat)
plays = st.one_of(st.integers(0, 1000), st.integers(0, MAX_INT64), st.just(MAX_INT64))


@st.composite
def valid_files(draw) -> bytes:
    rows = draw(st.lists(st.tuples(songs, dates, plays, st.booleans(), st.integers(0, 2)), max_size=12))
    crlf = draw(st.booleans())
    out = []
    if draw(st.booleans()):
        out.append(BOM)
    if draw(st.booleans()) or not rows:
        out.append(b"Song,Date,Number of Plays" + (b"\r\n" if crlf else b"\n"))
    for song, date, count, quote_all, zeros in rows:
        text = song.encode()
        if quote_all or any(char in song for char in ',"\r\n') or not song:
            text = b'"' + text.replace(b'"', b'""') + b'"'
        out.append(b"%s,%s,%s%s" % (text, date.encode(), b"0" * zeros, str(count).encode()))
        out.append(b"\r\n" if crlf else b"\n")
        if draw(st.integers(0, 9)) == 0:
            out.append(b"\n")
    data = b"".join(out)
    return data[:-1] if rows and draw(st.booleans()) and data.endswith(b"\n") and not crlf else data


TOKENS = [
    b'"',
    b",",
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    BOM,
    b"0x10",
    b"+5",
    b"-5",
    b"1_000",
    b"1.5",
    b" ",
    b"99999999999999999999",
    b"9223372036854775807",
    b"2021-02-29",
    b"0000-01-01",
    b"\xff",
    b"\xed\xa0\x80",
    b"x" * 70_000,
    b'"' + b"y" * 140_000 + b'"',
]


@st.composite
def mutated_files(draw) -> bytes:
    data = draw(valid_files())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["truncate", "duplicate", "drop", "insert", "swap"]))
        if kind == "truncate":
            data = data[:at]
        elif kind == "duplicate":
            data = data[:at] + data[at : at + draw(st.integers(1, 40))] + data[at:]
        elif kind == "drop":
            data = data[:at] + data[at + draw(st.integers(1, 3)) :]
        elif kind == "insert":
            data = data[:at] + draw(st.sampled_from(TOKENS)) + data[at:]
        else:  # swap two columns of the line holding ``at``
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            end = len(data) if end < 0 else end
            fields = data[start:end].split(b",")
            if len(fields) >= 2:
                i, j = draw(st.integers(0, len(fields) - 1)), draw(st.integers(0, len(fields) - 1))
                fields[i], fields[j] = fields[j], fields[i]
                data = data[:start] + b",".join(fields) + data[end:]
    return data


# Failing examples found while fuzzing, kept as regression cases.
FOUND = [
    b"In The End,2020-01-01,500\n" * 4,
    b"Song,Date,Number of Plays\rA,2020-01-01,1\rA,2020-01-01,2\r",
    b'A,2020-01-01,9223372036854775807\nA,2020-01-01,1\n"q"z,2020-01-01,1',
    b"A,0000-01-01,1\n",
    b"A,2020-01-01,0x10\n",
    b'"a\nb",2020-01-01,1\n"a\nb",2020-01-01,2\n',
]


@FUZZ
@given(valid_files())
def test_valid_files_give_the_reference_totals(dask_client, data):
    check(dask_client, data)


def add_found(test):
    for data in FOUND:
        test = example(data)(test)
    return test


@FUZZ
@given(mutated_files())
@add_found
def test_mutated_files_give_the_reference_totals_or_its_first_bad_line(dask_client, data):
    check(dask_client, data)


def test_the_reference_takes_the_first_bad_line_in_file_order():
    assert reference(b"A,2020-01-01,1\nA,2020-01-01,x\n\nA,2020-13-01,1\n") == 2
    assert reference(b'A,2020-01-01,9223372036854775807\nA,2020-01-01,1\n"q"z,2020-01-01,1\n') == 3
    assert reference(b'Song,Date,Number of Plays\r\n\r\n"a\nb",2020-01-01,1\nb,2020-01-01,-1\n') == 5
