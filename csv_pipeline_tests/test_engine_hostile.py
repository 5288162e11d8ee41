"""Hostile input, one regression case per problem found: hex and signed numbers, huge songs,
rows longer than a block, year 0000, bare CR line ends, a file changing under a run, text
after a closing quote, and a long row read with tiny blocks."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileSystem

from csv_pipeline.engine import InputChangedError, aggregate, inspect_file
from csv_pipeline.engine.blocks import nominal_offsets, read_block
from csv_pipeline.engine.storage import file_version
from csv_pipeline_tests.engine_fixtures import error_of, write
from csv_pipeline_tests.shard_reading import totals_of

pytest_plugins = ["csv_pipeline_tests.engine_fixtures"]

CSV_PIPELINE = Path(sys.executable).parent / "csv-pipeline"
HEADER = b"Song,Date,Number of Plays\n"


@pytest.mark.parametrize("plays", [b"0x10", b"+5", b"-5", b" 5", b"5 ", b"1_000", b"1.0", b"1e3", b"\xd9\xa3"])
def test_number_of_plays_is_digits_only(run_engine, tmp_path, plays):
    path = write(tmp_path, HEADER + b"A,2020-01-01,1\nA,2020-01-01,2\nA,2020-01-01," + plays + b"\n")
    shown = plays.decode()
    assert error_of(run_engine, path) == f"plays.csv: line 4: Number of Plays {shown!r} is not a non-negative integer"


def test_leading_zeros_past_19_digits_are_digits(run_engine, tmp_path):
    path = write(tmp_path, HEADER + b"A,2020-01-01,00000000000000000000007\n")
    assert totals_of(run_engine(path)) == {("A", "2020-01-01"): 7}


@pytest.mark.parametrize("block_bytes", [4096, 1 << 20])
def test_a_song_longer_than_128_kib_is_a_song(run_engine, tmp_path, block_bytes):
    song = "x" * 200_000
    path = write(tmp_path, f'{song},2020-01-01,5\n"{song}",2020-01-01,6\nB,2020-01-02,1\n'.encode())
    assert totals_of_big(run_engine(path, block_bytes=block_bytes)) == {
        (song, "2020-01-01"): 11,
        ("B", "2020-01-02"): 1,
    }


def totals_of_big(manifest) -> dict:
    import csv

    limit = csv.field_size_limit(sys.maxsize)
    try:
        return totals_of(manifest)
    finally:
        csv.field_size_limit(limit)


@pytest.mark.parametrize("block_bytes", [1, 3, 8, 16, 25, 26, 27, 1 << 20])
def test_a_row_longer_than_a_block_is_read_once(run_engine, tmp_path, block_bytes):
    path = write(tmp_path, b"In The End,2020-01-01,500\n" * 4)
    manifest = run_engine(path, block_bytes=block_bytes)
    assert totals_of(manifest) == {("In The End", "2020-01-01"): 2000}
    assert manifest.rows_in == 4


@pytest.mark.parametrize("date", [b"0000-01-01", b"0000-02-29", b"10000-01-01", b"2020-1-01", b" 2020-01-01"])
def test_dates_are_real_calendar_dates_from_year_1(run_engine, tmp_path, date):
    path = write(tmp_path, HEADER + b"A,2020-01-01,1\nA," + date + b",1\n")
    assert error_of(run_engine, path) == (
        f"plays.csv: line 3: Date {date.decode()!r} is not a real calendar date written YYYY-MM-DD"
    )


def test_year_1_and_9999_are_dates(run_engine, tmp_path):
    path = write(tmp_path, b'A,0001-01-01,1\n"A",9999-12-31,2\n')
    assert totals_of(run_engine(path)) == {("A", "0001-01-01"): 1, ("A", "9999-12-31"): 2}


CR_ONLY = b"Song,Date,Number of Plays\rA,2020-01-01,1\rA,2020-01-01,2\r"


def test_bare_cr_line_ends_are_rejected(run_engine, tmp_path):
    message = error_of(run_engine, write(tmp_path, CR_ONLY))
    assert message.startswith("plays.csv: line 1: invalid header: ")
    assert (
        "Number of Plays 'Number of Plays\\rA' holds a carriage return that is not followed by a line feed" in message
    )


@pytest.mark.parametrize("block_bytes", [4, 1 << 20])
def test_a_bare_cr_inside_the_data_names_its_line_column_and_value(run_engine, tmp_path, block_bytes):
    path = write(tmp_path, HEADER + b"A,2020-01-01,1\r\nA,2020-01-01,2\rB,2020-01-01,3\n")
    assert error_of(run_engine, path, block_bytes=block_bytes) == (
        "plays.csv: line 3: Number of Plays '2\\rB' holds a carriage return that is not followed by a line feed "
        "(line ends must be LF or CRLF)"
    )


def test_a_quoted_cr_is_part_of_the_song(run_engine, tmp_path):
    path = write(tmp_path, b'"A\rB",2020-01-01,1\r\n')
    (shard,) = run_engine(path).shards
    assert Path(shard.uri).read_bytes() == b'Song,Date,Total Number of Plays for Date\n"A\rB",2020-01-01,1\n'


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (b'"q"z,2020-01-01,1', "Song '\"q\"z' has text after its closing quote"),
        (
            b'q"z,2020-01-01,1',
            "Song 'q\"z' has a quote inside an unquoted field (a quoted field must be quoted from its first character)",
        ),
        (b'A,"2020-01-01" ,1', "Date '\"2020-01-01\" ' has text after its closing quote"),
        (b'A,2020-01-01,"1', "Number of Plays '\"1\\nB,2020-01-01,1\\n' opens a quote that is never closed"),
    ],
)
def test_quotes_follow_rfc_4180(run_engine, tmp_path, row, expected):
    path = write(tmp_path, b"A,2020-01-01,1\n" + row + b"\nB,2020-01-01,1\n")
    assert error_of(run_engine, path) == f"plays.csv: line 2: {expected}"


def test_an_error_after_an_overflowing_total_names_the_file(run_engine, tmp_path):
    path = write(tmp_path, b'A,2020-01-01,9223372036854775807\nA,2020-01-01,1\n"q"z,2020-01-01,1\n')
    assert (
        error_of(run_engine, path, block_bytes=8) == "plays.csv: line 3: Song '\"q\"z' has text after its closing quote"
    )


@pytest.mark.parametrize("block_bytes", [5, 1 << 20])
def test_an_overflow_in_quoted_rows_across_merged_blocks_names_its_line(run_engine, tmp_path, block_bytes):
    path = write(tmp_path, b'"A\nA",2020-01-01,9223372036854775807\nB,2020-01-01,1\n"A\nA",2020-01-01,1\n')
    assert error_of(run_engine, path, block_bytes=block_bytes) == (
        "plays.csv: line 4: Number of Plays '1' makes the total of Song 'A\\nA' on 2020-01-01 larger than 64 bits"
    )


def test_a_200_kb_row_with_tiny_blocks_is_read_once(run_engine, tmp_path):
    song = "y" * 200_000
    data = f"A,2020-01-01,1\n{song},2020-01-01,2\nA,2020-01-01,3\n".encode()
    path = write(tmp_path, data)
    manifest = run_engine(path, block_bytes=1024)
    assert totals_of_big(manifest) == {("A", "2020-01-01"): 4, (song, "2020-01-01"): 2}

    # What the ~200 blocks read, all told: a few times the file, not a rescan of the long row
    # by every block inside it (about 200 x 100 KB = 20 MB).
    fs = ByteCountingFileSystem(skip_instance_cache=True)
    version = file_version(fs, str(path))
    blocks = [
        read_block(fs, str(path), start, start + 1024, 0, len(data), file_name=path.name, version=version)
        for start in nominal_offsets(0, len(data), 1024)
    ]
    assert b"".join(bytes(rows) for _, rows in blocks) == data
    assert fs.bytes_read < 4 * len(data), (
        fs.bytes_read
    )  # 3x here: blocks read up to twice themselves, the first block the whole row


class ByteCountingFileSystem(LocalFileSystem):
    """The local filesystem, counting the bytes that ranged reads return."""

    bytes_read = 0

    def cat_file(self, path, start=None, end=None, **kwargs):
        data = super().cat_file(path, start=start, end=end, **kwargs)
        self.bytes_read += len(data)
        return data


def test_a_file_that_changed_after_planning_is_not_read(dask_client, tmp_path):
    path = write(tmp_path, b"A,2020-01-01,1\n" * 100)
    plan = inspect_file(str(path), path.name, block_bytes=64)
    path.write_bytes(b"A,2020-01-01,1\n" * 50)
    with pytest.raises(InputChangedError) as caught:
        aggregate(dask_client, plan, str(tmp_path / "scratch"))
    assert caught.value.message.startswith("plays.csv: the file changed while it was being read")


def test_a_file_that_vanished_after_planning_is_not_read(dask_client, tmp_path):
    path = write(tmp_path, b"A,2020-01-01,1\n" * 100)
    plan = inspect_file(str(path), path.name, block_bytes=64)
    path.unlink()
    with pytest.raises(InputChangedError, match="^plays.csv: the file disappeared while it was being read"):
        aggregate(dask_client, plan, str(tmp_path / "scratch"))


def process(tmp_path: Path, source: Path, **environ: str) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), **environ}
    return subprocess.Popen(
        [str(CSV_PIPELINE), "process", str(source), "--output", str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def assert_failed_leaving_nothing(
    tmp_path: Path, done: subprocess.Popen, stdout: str, stderr: str, sentence: str
) -> None:
    assert done.returncode == 1, stderr
    result = json.loads(stdout)
    assert result["status"] == "FAILURE" and result["output_files"] == []
    assert result["error"].startswith(sentence)
    assert result["error"] in stderr
    left = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] if (tmp_path / "out").exists() else []
    assert left == []


def test_process_rejects_a_cr_only_file(tmp_path):
    source = write(tmp_path, CR_ONLY)
    done = process(tmp_path, source)
    stdout, stderr = done.communicate(timeout=300)
    assert_failed_leaving_nothing(tmp_path, done, stdout, stderr, "plays.csv: line 1: invalid header: ")


def test_process_fails_cleanly_when_the_input_is_truncated_mid_run(tmp_path):
    """The blocks are read while another process truncates the file: a sentence, not a crash."""
    source = write(tmp_path, b"In The End,2020-01-01,500\n" * 2_000_000)  # 52 MB in 64 KiB blocks
    done = process(tmp_path, source, CSV_PIPELINE_BLOCK_BYTES="65536")

    def truncate_once_blocks_are_read() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and done.poll() is None:
            if any((tmp_path / "out").rglob("maps")):  # the map tasks' scratch files
                with open(source, "r+b") as file:
                    file.truncate(1000)
                return
            time.sleep(0.01)

    truncator = threading.Thread(target=truncate_once_blocks_are_read)
    truncator.start()
    stdout, stderr = done.communicate(timeout=300)
    truncator.join()
    assert source.stat().st_size == 1000, "the run ended before the file was truncated"
    assert_failed_leaving_nothing(tmp_path, done, stdout, stderr, "plays.csv: the file ")
