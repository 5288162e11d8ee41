"""``write_demo_file`` and ``parse_size``: the demo data's shape, size, cardinality and
determinism (the speed is measured by hand, see BENCHMARKS.md)."""

import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from csv_pipeline.demo_data import HEADER, parse_size, write_demo_file

LONGEST_ROW = len("abcd,2026-11-27,100000\n")


def read_demo_file(path) -> pa.Table:
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={"Song": pa.string(), "Date": pa.string(), "Number of Plays": pa.int64()}
        ),
    )


def write(path, size: int, **options) -> int:
    return write_demo_file(str(path), size, progress=False, **options)


def test_default_shape_is_the_replaced_systems_demo_data(tmp_path):
    path = tmp_path / "plays.csv"
    written = write(path, 2_000_000, seed=7)

    data = path.read_bytes()
    assert data.startswith(HEADER)
    assert data.endswith(b"\n")
    assert written == len(data)
    assert 2_000_000 - LONGEST_ROW < written <= 2_000_000

    table = read_demo_file(path)
    assert table.column_names == ["Song", "Date", "Number of Plays"]
    assert pc.all(pc.match_substring_regex(table["Song"], r"^[a-z]{4}$")).as_py()
    assert pc.all(pc.match_substring_regex(table["Date"], r"^\d{4}-\d{2}-\d{2}$")).as_py()
    dates = pc.strptime(table["Date"], format="%Y-%m-%d", unit="s").cast(pa.date32())
    first_day, today = datetime.date(1994, 8, 8), datetime.date.today()
    assert first_day <= pc.min(dates).as_py() < first_day + datetime.timedelta(days=30)
    assert today - datetime.timedelta(days=30) < pc.max(dates).as_py() <= today
    plays = table["Number of Plays"]
    assert 1 <= pc.min(plays).as_py() < 100
    assert 99_900 < pc.max(plays).as_py() <= 100_000
    assert pc.count_distinct(table["Song"]).as_py() > 0.9 * table.num_rows


def test_size_is_met_to_within_one_row_across_many_chunks(tmp_path):
    path = tmp_path / "plays.csv"
    size = 30_000_123
    written = write(path, size, seed=1)

    data = path.read_bytes()
    assert written == len(data)
    assert size - LONGEST_ROW < written <= size
    assert data.endswith(b"\n")
    assert data.count(HEADER) == 1
    assert read_demo_file(path).num_rows == data.count(b"\n") - 1


def test_a_size_that_holds_only_the_header_writes_only_the_header(tmp_path):
    path = tmp_path / "plays.csv"
    assert write(path, len(HEADER) + 5) == len(HEADER)
    assert path.read_bytes() == HEADER


def test_low_cardinality_has_exactly_the_requested_songs_and_consecutive_days(tmp_path):
    path = tmp_path / "plays.csv"
    write(path, 1_000_000, songs=10_000, days=30, seed=3)

    table = read_demo_file(path)
    assert table.num_rows > 10_000
    assert pc.count_distinct(table["Song"]).as_py() == 10_000
    assert pc.all(pc.match_substring_regex(table["Song"], r"^[a-z]{4}$")).as_py()
    days = sorted(datetime.date.fromisoformat(day) for day in pc.unique(table["Date"]).to_pylist())
    assert len(days) == 30
    assert days[-1] - days[0] == datetime.timedelta(days=29)
    assert datetime.date(1994, 8, 8) <= days[0] and days[-1] <= datetime.date.today()


def test_songs_alone_limits_songs_and_keeps_the_full_date_range(tmp_path):
    path = tmp_path / "plays.csv"
    write(path, 500_000, songs=3, seed=4)

    table = read_demo_file(path)
    assert pc.count_distinct(table["Song"]).as_py() == 3
    assert pc.count_distinct(table["Date"]).as_py() > 5_000


def test_the_same_seed_gives_the_same_file_and_another_seed_another(tmp_path):
    first, second, other = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    for path, seed in ((first, 11), (second, 11), (other, 12)):
        write(path, 15_000_000, songs=500, days=10, seed=seed)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_progress_bar_goes_to_stderr_only_when_asked(tmp_path, capfd):
    write_demo_file(str(tmp_path / "quiet.csv"), 100_000, progress=False)
    assert capfd.readouterr() == ("", "")

    write_demo_file(str(tmp_path / "loud.csv"), 100_000, progress=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert "loud.csv" in err and "100%" in err


@pytest.mark.parametrize(
    "options, message",
    [
        ({"songs": 0}, "songs 0 is not between 1 and 456976"),
        ({"songs": 26**4 + 1}, "songs 456977 is not between 1 and 456976"),
        ({"days": 0}, "days 0 is not between 1 and"),
    ],
)
def test_impossible_cardinalities_are_refused_before_anything_is_written(tmp_path, options, message):
    path = tmp_path / "plays.csv"
    with pytest.raises(ValueError, match=message):
        write(path, 1_000_000, **options)
    assert not path.exists()


def test_a_size_too_small_for_the_header_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot hold even the header"):
        write(tmp_path / "plays.csv", 10)


@pytest.mark.parametrize(
    "text, size",
    [
        ("500", 500),
        ("100MB", 100_000_000),
        ("1GB", 1_000_000_000),
        ("10gb", 10_000_000_000),
        ("1.5GiB", 3 * 2**29),
        ("2 KiB", 2048),
        ("64M", 64_000_000),
        ("1TB", 10**12),
    ],
)
def test_parse_size_reads_decimal_and_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GB", "1XB", "-1GB", "1.2.3MB", "one GB"])
def test_parse_size_refuses_what_is_not_a_size(text):
    with pytest.raises(ValueError, match="is not a size like 500, 100MB, 1GB or 1.5GiB"):
        parse_size(text)


def test_parse_size_refuses_zero():
    with pytest.raises(ValueError, match="'0MB' is not larger than zero"):
        parse_size("0MB")
