"""The input rules and their errors: every rule, each with its own small file."""

from pathlib import Path

import pytest

from csv_pipeline.engine import InvalidFileError, aggregate, inspect_file, process_file
from csv_pipeline_tests.engine_fixtures import error_of, write
from csv_pipeline_tests.shard_reading import totals_of

pytest_plugins = ["csv_pipeline_tests.engine_fixtures"]

SEEDS = Path(__file__).resolve().parent / "fixtures"
SEED_TOTALS = {
    ("In The End", "2020-01-01"): 1500,
    ("In The End", "2020-01-02"): 500,
    ("Umbrella", "2020-01-01"): 150,
    ("Umbrella", "2020-01-02"): 250,
}


@pytest.mark.parametrize("name", ["initial_test.csv", "initial_test_without_headers.csv"])
def test_seed_files_give_the_replaced_systems_totals(run_engine, name):
    assert totals_of(run_engine(SEEDS / name)) == SEED_TOTALS


def test_seed_invalid_value_names_line_column_and_value(run_engine):
    assert error_of(run_engine, SEEDS / "initial_test_with_invalid_value.csv") == (
        "initial_test_with_invalid_value.csv: line 4: Number of Plays 'patata' is not a non-negative integer"
    )


def test_seed_invalid_header(run_engine):
    message = error_of(run_engine, SEEDS / "initial_test_with_not_valid_headers.csv")
    assert message.startswith("initial_test_with_not_valid_headers.csv: line 1: invalid header")
    assert "'patata'" in message


def test_rfc4180_quoting_keeps_commas_and_quotes_in_songs(run_engine, tmp_path):
    path = write(
        tmp_path,
        b'Song,Date,Number of Plays\n"Hello, Goodbye",2020-01-01,5\n'
        b'"Say ""Hi""",2020-01-01,2\n"Hello, Goodbye",2020-01-01,1\n',
    )
    manifest = run_engine(path)
    assert totals_of(manifest) == {("Hello, Goodbye", "2020-01-01"): 6, ('Say "Hi"', "2020-01-01"): 2}
    body = Path(manifest.shards[0].uri).read_text()
    assert '"Hello, Goodbye",2020-01-01,6\n' in body and '"Say ""Hi""",2020-01-01,2\n' in body


def test_quoted_newline_in_a_song_across_a_block_boundary(run_engine, tmp_path):
    rows = [f"song{i},2020-01-01,1\n" for i in range(200)]
    rows[100] = '"two\nlines",2020-01-01,7\n'
    path = write(tmp_path, ("Song,Date,Number of Plays\n" + "".join(rows)).encode())
    cut = path.read_bytes().index(b"two\nlines") + 4  # a block starts right after the quoted newline
    manifest = run_engine(path, block_bytes=cut - 26)
    assert totals_of(manifest)[("two\nlines", "2020-01-01")] == 7
    assert manifest.rows_in == 200


def test_crlf_line_ends(run_engine, tmp_path):
    path = write(tmp_path, b"Song,Date,Number of Plays\r\nA,2020-01-01,1\r\nA,2020-01-01,2\r\n")
    assert totals_of(run_engine(path)) == {("A", "2020-01-01"): 3}


def test_leading_bom_is_accepted(run_engine, tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfSong,Date,Number of Plays\nA,2020-01-01,1\n")
    assert totals_of(run_engine(path)) == {("A", "2020-01-01"): 1}


def test_bom_on_a_headerless_file(run_engine, tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfA,2020-01-01,1\n")
    assert totals_of(run_engine(path)) == {("A", "2020-01-01"): 1}


def test_blank_lines_are_ignored_and_do_not_shift_line_numbers(run_engine, tmp_path):
    path = write(tmp_path, b"\nSong,Date,Number of Plays\n\nA,2020-01-01,1\n\n\nA,2020-01-01,x\n")
    assert error_of(run_engine, path) == "plays.csv: line 7: Number of Plays 'x' is not a non-negative integer"
    path = write(tmp_path, b"\nSong,Date,Number of Plays\n\nA,2020-01-01,1\n\n\nA,2020-01-01,2\n\n")
    assert totals_of(run_engine(path)) == {("A", "2020-01-01"): 3}


def test_header_only_is_valid_and_empty(run_engine, tmp_path):
    manifest = run_engine(write(tmp_path, b"Song,Date,Number of Plays\n"))
    assert (manifest.rows_in, manifest.rows_out) == (0, 0)
    assert [Path(shard.uri).read_text() for shard in manifest.shards] == ["Song,Date,Total Number of Plays for Date\n"]


def test_zero_byte_file_is_rejected(run_engine, tmp_path):
    assert error_of(run_engine, write(tmp_path, b"")).startswith("plays.csv: is empty (0 bytes)")


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (b"A,2020-01-01,1,9", "plays.csv: line 3: row 'A,2020-01-01,1,9' has 4 columns, expected 3"),
        (b"A,2020-01-01", "plays.csv: line 3: row 'A,2020-01-01' has 2 columns, expected 3"),
        (b"A,2021-02-29,1", "plays.csv: line 3: Date '2021-02-29' is not a real calendar date written YYYY-MM-DD"),
        (b"A,2021-13-01,1", "plays.csv: line 3: Date '2021-13-01' is not a real calendar date written YYYY-MM-DD"),
        (b"A,01/02/2021,1", "plays.csv: line 3: Date '01/02/2021' is not a real calendar date written YYYY-MM-DD"),
        (b"A,2020-01-01,-3", "plays.csv: line 3: Number of Plays '-3' is not a non-negative integer"),
        (b"A,2020-01-01,1.5", "plays.csv: line 3: Number of Plays '1.5' is not a non-negative integer"),
        (b"A,2020-01-01,", "plays.csv: line 3: Number of Plays '' is not a non-negative integer"),
        (
            b"A,2020-01-01,9223372036854775808",
            "plays.csv: line 3: Number of Plays '9223372036854775808' does not fit in 64 bits",
        ),
        (b",2020-01-01,1", "plays.csv: line 3: Song '' is empty"),
        (b'"",2020-01-01,1', "plays.csv: line 3: Song '' is empty"),
        (b"Caf\xe9,2020-01-01,1", "plays.csv: line 3: Song 'Caf\xe9' is not valid UTF-8"),
    ],
)
def test_bad_rows_name_file_line_column_and_value(run_engine, tmp_path, row, expected):
    path = write(tmp_path, b"Song,Date,Number of Plays\nOK,2020-01-01,1\n" + row + b"\nOK,2020-01-02,1\n")
    assert error_of(run_engine, path).startswith(expected)


def test_a_total_that_overflows_64_bits_names_the_row_that_overflows(run_engine, tmp_path):
    path = write(
        tmp_path,
        b"Song,Date,Number of Plays\nA,2020-01-01,9223372036854775807\n"
        b"B,2020-01-01,5\nA,2020-01-02,1\nA,2020-01-01,1\n",
    )
    assert error_of(run_engine, path) == (
        "plays.csv: line 5: Number of Plays '1' makes the total of Song 'A' on 2020-01-01 larger than 64 bits"
    )


def test_a_total_at_the_64_bit_limit_is_exact(run_engine, tmp_path):
    path = write(tmp_path, b"A,2020-01-01,9223372036854775806\nA,2020-01-01,1\nB,2020-01-01,3\n")
    assert totals_of(run_engine(path)) == {("A", "2020-01-01"): 2**63 - 1, ("B", "2020-01-01"): 3}


def test_line_numbers_are_right_deep_inside_a_file_read_in_many_blocks(run_engine, tmp_path):
    rows = [f"song{i % 97},2020-01-{1 + i % 28:02d},{i}\n" for i in range(50_000)]
    rows[43_210] = "song1,2020-01-01,oops\n"
    path = write(tmp_path, ("Song,Date,Number of Plays\n" + "".join(rows)).encode())
    assert error_of(run_engine, path, block_bytes=4096) == (
        "plays.csv: line 43212: Number of Plays 'oops' is not a non-negative integer"
    )


def test_the_first_bad_line_in_file_order_wins_across_blocks(run_engine, tmp_path):
    rows = [f"s{i},2020-01-01,1\n" for i in range(20_000)]
    rows[15_000] = "s,2020-01-01,late\n"
    rows[9_000] = "s,2020-02-30,1\n"
    path = write(tmp_path, "".join(rows).encode())
    assert error_of(run_engine, path, block_bytes=2048).startswith("plays.csv: line 9001: Date '2020-02-30'")


def test_a_bad_file_leaves_no_shard_and_no_scratch(dask_client, tmp_path):
    path = write(tmp_path, b"Song,Date,Number of Plays\nA,2020-01-01,1\nA,2020-01-01,-1\n")
    with pytest.raises(InvalidFileError):
        process_file(dask_client, str(path), str(tmp_path / "out"), str(tmp_path / "scratch"), file_name=path.name)
    assert not (tmp_path / "out").exists() and not (tmp_path / "scratch").exists()


def test_inspect_file_checks_only_the_head(tmp_path):
    plan = inspect_file(str(write(tmp_path, b"Song,Date,Number of Plays\nA,2020-01-01,x\n")), "plays.csv")
    assert plan.has_header and plan.data_start == len(b"Song,Date,Number of Plays\n")


def test_aggregate_refuses_a_shard_limit_below_the_header(dask_client, tmp_path):
    plan = inspect_file(str(write(tmp_path, b"A,2020-01-01,1\n")), "plays.csv")
    with pytest.raises(ValueError, match="maximum shard size"):
        aggregate(dask_client, plan, str(tmp_path / "scratch"), 10)


def test_songs_that_other_readers_take_for_missing_values_are_kept(run_engine, tmp_path):
    path = write(
        tmp_path, b"null,2020-01-01,1\nNaN,2020-01-01,2\nNone,2020-01-01,3\nNA,2020-01-01,4\nN/A,2020-01-01,5\n"
    )
    assert totals_of(run_engine(path)) == {
        (song, "2020-01-01"): plays for plays, song in enumerate(["null", "NaN", "None", "NA", "N/A"], start=1)
    }
