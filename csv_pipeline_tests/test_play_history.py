"""The play history: each file's latest successful result in one Delta Lake table, summed by
``csv-pipeline history``, through ``csv-pipeline process`` and through the job, on a local
folder and on S3 (moto's server), read back by polars as a second, independent reader."""

import csv
import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from dagster import AssetKey, DagsterInstance, execute_job

from csv_pipeline.defs.jobs import PROCESS_INBOX_FILE
from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.engine import history
from csv_pipeline.inbox import file_version
from csv_pipeline.labels import FILE_TAG, VERSION_TAG
from csv_pipeline_tests.service_fixtures import FAKE_AWS

pytest_plugins = ["csv_pipeline_tests.service_fixtures"]

CSV_PIPELINE = Path(sys.executable).parent / "csv-pipeline"
HEADER = ["Song", "Date", "Total Number of Plays for Date"]

FIRST = (
    b"Song,Date,Number of Plays\nIn The End,2020-01-01,1000\nIn The End,2020-01-01,500\n"
    b'Umbrella,2020-01-02,250\n"Say ""hi"", now",2020-01-03,7\n'
)
SECOND = b"Song,Date,Number of Plays\nIn The End,2020-01-01,3\nUmbrella,2020-01-02,1\nZebra,2020-02-01,9\n"
FIRST_REWRITTEN = b"Song,Date,Number of Plays\nIn The End,2020-01-01,10\nYesterday,2020-03-01,4\n"
SECOND_BROKEN = b"Song,Date,Number of Plays\nIn The End,2020-01-01,3\nUmbrella,2020-01-02,patata\n"

BOTH = [
    ["In The End", "2020-01-01", "1503"],
    ['Say "hi", now', "2020-01-03", "7"],
    ["Umbrella", "2020-01-02", "251"],
    ["Zebra", "2020-02-01", "9"],
]
AFTER_REWRITE = [
    ["In The End", "2020-01-01", "13"],
    ["Umbrella", "2020-01-02", "1"],
    ["Yesterday", "2020-03-01", "4"],
    ["Zebra", "2020-02-01", "9"],
]


def csv_pipeline(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CSV_PIPELINE), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def printed_history(env: dict[str, str], cwd: Path, *args: str) -> list[list[str]]:
    done = csv_pipeline("history", *args, env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout, newline="")))
    assert rows[0] == HEADER
    return rows[1:]


def polars_totals(table_url: str) -> list[list[str]]:
    """The same sums, computed by polars from the Delta table's files."""
    options = history.storage_options(table_url)
    frame = (
        pl.scan_delta(table_url, storage_options=options or None)
        .group_by("song", "date")
        .agg(pl.col("plays").sum())
        .sort("song", "date")
        .collect()
    )
    return [[song, str(date), str(plays)] for song, date, plays in frame.iter_rows()]


def check_history_contract(
    process: Callable[[str, bytes], bool], env: dict[str, str], cwd: Path, table_url: str
) -> None:
    """Two overlapping files, the first rewritten, then a bad rewrite of the second: the sums
    printed by ``csv-pipeline history`` and computed by polars after each step."""
    assert printed_history(env, cwd) == []
    assert process("first.csv", FIRST) and process("second.csv", SECOND)
    assert printed_history(env, cwd) == BOTH == polars_totals(table_url)

    assert process("first.csv", FIRST_REWRITTEN)
    assert printed_history(env, cwd) == AFTER_REWRITE == polars_totals(table_url)

    version = _version(table_url)
    assert not process("second.csv", SECOND_BROKEN)
    assert printed_history(env, cwd) == AFTER_REWRITE == polars_totals(table_url)
    assert _version(table_url) == version, "a failed run commits nothing"

    assert printed_history(env, cwd, "--song", "In The End") == [AFTER_REWRITE[0]]
    assert printed_history(env, cwd, "--song", "In The") == []
    assert (
        printed_history(env, cwd, "--from", "2020-01-02", "--until", "2020-02-01")
        == AFTER_REWRITE[1:2] + AFTER_REWRITE[3:]
    )


def check_concurrent_files(
    start: Callable[[str, bytes], Callable[[], bool]], env: dict[str, str], cwd: Path, table_url: str
) -> None:
    """Two files processed at once (both started before either ends): both contributions land."""
    waits = [
        start("third.csv", b"Song,Date,Number of Plays\nAlpha,2021-05-01,2\n"),
        start("fourth.csv", b"Song,Date,Number of Plays\nAlpha,2021-05-01,5\nBeta,2021-05-02,1\n"),
    ]
    assert all(wait() for wait in waits)
    expected = [["Alpha", "2021-05-01", "7"], ["Beta", "2021-05-02", "1"]]
    assert printed_history(env, cwd, "--from", "2021-01-01") == expected
    assert [row for row in polars_totals(table_url) if row[1] >= "2021"] == expected


def _version(table_url: str) -> int:
    from deltalake import DeltaTable

    return DeltaTable(table_url, storage_options=history.storage_options(table_url)).version()


def process_command(tmp_path: Path, env: dict[str, str]) -> Callable[[str, bytes], Callable[[], bool]]:
    """Start ``csv-pipeline process`` on a file written into the test's inbox; returns a wait."""

    def start(file_key: str, content: bytes) -> Callable[[], bool]:
        path = tmp_path / "inbox" / file_key
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        # One instance per file: the concurrent runs share the history, not a SQLite database.
        home = tmp_path / f"dagster_home_{file_key}"
        running = subprocess.Popen(
            [str(CSV_PIPELINE), "process", str(path), "--output", str(tmp_path / "outbox")],
            env={**env, "DAGSTER_HOME": str(home)},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def wait() -> bool:
            out, err = running.communicate(timeout=300)
            assert running.returncode in (0, 1), err
            return running.returncode == 0

        return wait

    return start


def s3_bucket(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the session's moto S3 server, and the environment that reaches it."""
    endpoint = request.getfixturevalue("s3_endpoint")
    for name, value in {**FAKE_AWS, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)  # for the commands and the runs, and for polars and deltalake here
    bucket = f"history-{os.getpid()}-{request.node.name.rsplit('[', 1)[-1].rstrip(']').replace(' ', '-').lower()}"
    _make_bucket(endpoint, bucket)
    return bucket


@pytest.mark.parametrize("on_s3", [False, True], ids=["local history", "S3 history"])
def test_history_through_the_process_command(tmp_path, on_s3, request, monkeypatch):
    table_url = f"s3://{s3_bucket(request, monkeypatch)}/plays/_history" if on_s3 else str(tmp_path / "history")
    env = {**os.environ, "CSV_PIPELINE_HISTORY": table_url}
    start = process_command(tmp_path, env)

    check_history_contract(lambda key, content: start(key, content)(), env, tmp_path, table_url)
    check_concurrent_files(start, env, tmp_path, table_url)


@pytest.mark.parametrize("on_s3", [False, True], ids=["local outbox", "S3 outbox"])
def test_history_through_the_job_follows_the_outbox_by_default(
    tmp_path, instance: DagsterInstance, play_files: PlayFiles, on_s3, request, monkeypatch
):
    """``process_inbox_file`` materializes ``play_history`` in the same run, in ``<outbox>/_history``."""
    if on_s3:
        play_files = play_files.model_copy(update={"outbox": f"s3://{s3_bucket(request, monkeypatch)}/outbox"})
    table_url = f"{play_files.outbox}/_history"
    env = {**os.environ, "CSV_PIPELINE_OUTBOX": play_files.outbox}
    env.pop("CSV_PIPELINE_HISTORY", None)
    materializations = []

    def run(file_key: str, content: bytes) -> bool:
        path = Path(play_files.inbox) / file_key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        instance.add_dynamic_partitions(inbox_files.name, [file_key])
        result = execute_job(
            PROCESS_INBOX_FILE,
            instance,
            run_config=play_files.run_config(),
            tags={"dagster/partition": file_key, FILE_TAG: file_key, VERSION_TAG: file_version(str(path))},
        )
        materializations.extend(
            event.step_materialization_data.materialization
            for event in result.get_asset_materialization_events()
            if event.asset_key == AssetKey("play_history")
        )
        return result.success

    check_history_contract(run, env, tmp_path, table_url)

    latest = {key: value.value for key, value in materializations[-1].metadata.items()}
    assert materializations[-1].partition == "first.csv"
    assert (latest["files"], latest["rows"]) == (2, 5)
    assert (latest["first_date"], latest["last_date"]) == ("2020-01-01", "2020-03-01")
    assert latest["table_version"] == _version(table_url)
    assert (latest["file_rows"], latest["file_songs"], latest["file_plays"]) == (2, 2, 14)
    per_month = [(record.data["month"], record.data["plays"]) for record in latest["file_plays_per_month"].records]
    assert per_month == [("2020-01", 10), ("2020-03", 4)]


def test_concurrent_commits_of_different_files_are_all_kept(tmp_path):
    """Eight threads replacing eight files' rows at the same moment: no commit is lost."""
    table_url = str(tmp_path / "history")
    shards = []
    for index in range(8):
        shard = tmp_path / f"part-{index}.csv"
        shard.write_text(
            f"Song,Date,Total Number of Plays for Date\nSong {index},2020-01-01,{index + 1}\nShared,2020-01-01,1\n"
        )
        shards.append(str(shard))
    barrier = threading.Barrier(len(shards))
    errors = []

    def load(index: int) -> None:
        barrier.wait()
        try:
            history.replace_file(table_url, f"file {index}.csv", f"run-{index}", [shards[index]])
        except Exception as error:  # reported below, with the thread's file
            errors.append((index, error))

    threads = [threading.Thread(target=load, args=(index,)) for index in range(len(shards))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    out = io.BytesIO()
    history.write_totals(table_url, out)
    rows = list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))[1:]
    assert rows == [["Shared", "2020-01-01", "8"]] + [[f"Song {i}", "2020-01-01", str(i + 1)] for i in range(8)]
    assert rows == polars_totals(table_url)


def test_maintenance_compacts_a_file_loaded_in_pieces_and_keeps_the_sums(tmp_path):
    """A file whose rows were written as many small Parquet files is compacted to one; the
    history's sums do not change."""
    from deltalake import DeltaTable

    table_url = str(tmp_path / "history")
    shard = tmp_path / "part-00000.csv"
    shard.write_text(
        "Song,Date,Total Number of Plays for Date\n" + "".join(f"S{i:04d},2020-01-01,{i}\n" for i in range(3000))
    )
    history.replace_file(table_url, "big.csv", "run-1", [str(shard)])
    rows = DeltaTable(table_url).to_pyarrow_table()
    from deltalake import write_deltalake

    for start in range(0, rows.num_rows, 500):  # the same rows again, as six small files of another key
        piece = rows.slice(start, 500)
        for index, value in [(3, "pieces.csv"), (5, history.file_id("pieces.csv"))]:
            piece = piece.set_column(index, rows.schema.field(index).name, pa.array([value] * piece.num_rows))
        write_deltalake(table_url, piece, mode="append")
    before = polars_totals(table_url)
    assert len(DeltaTable(table_url).file_uris()) == 7

    metrics = history.maintain(table_url)

    assert metrics["files_removed"] == 6 and metrics["files_added"] == 1
    assert len(DeltaTable(table_url).file_uris()) == 2
    assert polars_totals(table_url) == before
    out = io.BytesIO()
    history.write_totals(table_url, out, song="S0002")
    assert out.getvalue().decode().splitlines()[1:] == ["S0002,2020-01-01,4"]


def test_a_bad_date_argument_exits_2(tmp_path):
    done = csv_pipeline(
        "history", "--from", "2020-02-30", env={**os.environ, "CSV_PIPELINE_HISTORY": str(tmp_path)}, cwd=tmp_path
    )

    assert done.returncode == 2
    assert "'2020-02-30' is not a date as YYYY-MM-DD" in done.stderr
    assert done.stdout == ""


def _make_bucket(endpoint: str, bucket: str) -> None:
    import s3fs

    s3fs.S3FileSystem(
        endpoint_url=endpoint,
        key=FAKE_AWS["AWS_ACCESS_KEY_ID"],
        secret=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        skip_instance_cache=True,
    ).mkdir(bucket)


def test_the_maintenance_job_compacts_and_observes_the_whole_history(tmp_path, play_files: PlayFiles):
    from csv_pipeline.definitions import defs
    from csv_pipeline.defs.assets.play_history import PlayHistory, maintain_play_history

    table_url = str(tmp_path / "elsewhere")
    for name, content in {
        "a.csv": "A,2020-01-01,1\nB,2020-02-01,2\n",
        "b.csv": "A,2020-01-01,4\nC,2020-02-09,8\n",
    }.items():
        shard = tmp_path / f"{name}-part-00000.csv"
        shard.write_text("Song,Date,Total Number of Plays for Date\n" + content)
        history.replace_file(table_url, name, "run-1", [str(shard)])
        history.replace_file(table_url, name, "run-2", [str(shard)])

    result = maintain_play_history.execute_in_process(
        resources={"play_files": play_files, "history_table": PlayHistory(location=table_url)}
    )

    assert result.success
    assert any(path.name.endswith(".checkpoint.parquet") for path in (tmp_path / "elsewhere" / "_delta_log").iterdir())
    (observation,) = [
        event.asset_observation_data.asset_observation
        for event in result.all_events
        if event.event_type_value == "ASSET_OBSERVATION"
    ]
    assert observation.asset_key == AssetKey("play_history")
    metadata = {key: value.value for key, value in observation.metadata.items()}
    assert (metadata["files"], metadata["rows"], metadata["distinct_songs"], metadata["total_plays"]) == (2, 4, 3, 15)
    assert [(r.data["month"], r.data["plays"]) for r in metadata["plays_per_month"].records] == [
        ("2020-01", 5),
        ("2020-02", 10),
    ]
    assert (metadata["plays 2020-01"], metadata["plays 2020-02"]) == (5, 10)
    assert metadata["table_version"] == _version(table_url)
    assert defs.get_schedule_def("maintain_play_history_daily").job.name == "maintain_play_history"


def test_the_history_location_follows_the_outbox_unless_set():
    from csv_pipeline.settings import Settings

    assert Settings.from_env({"CSV_PIPELINE_OUTBOX": "s3://plays/outbox"}).history_url == "s3://plays/outbox/_history"
    assert Settings.from_env({"CSV_PIPELINE_HISTORY": "s3://plays/history/"}).history_url == "s3://plays/history"


@pytest.mark.parametrize(("operator_value", "writers"), [(None, "1"), ("4", "4")])
def test_a_load_uses_one_parquet_writer_unless_the_operator_says_otherwise(operator_value, writers):
    # delta-rs reads DELTARS_MAX_CONCURRENT_WRITERS once, at a process's first write: the engine
    # sets it on import. With a writer per core, a 2 GB demo file's load peaked at 2.68 GB.
    environ = {key: value for key, value in os.environ.items() if key != "DELTARS_MAX_CONCURRENT_WRITERS"}
    if operator_value is not None:
        environ["DELTARS_MAX_CONCURRENT_WRITERS"] = operator_value
    probe = "import os, csv_pipeline.engine.history; print(os.environ['DELTARS_MAX_CONCURRENT_WRITERS'])"
    seen = subprocess.run([sys.executable, "-c", probe], env=environ, capture_output=True, text=True, check=True)
    assert seen.stdout.strip() == writers


def test_opening_the_history_replays_at_most_nine_commits(tmp_path):
    # Every run opens the table: a checkpoint every 10 commits bounds what it reads.
    table_url = str(tmp_path / "history")
    shard = tmp_path / "part-00000.csv"
    shard.write_text("Song,Date,Total Number of Plays for Date\nA,2020-01-01,1\n")
    for load in range(12):
        history.replace_file(table_url, f"{load}.csv", f"run-{load}", [str(shard)])
    log = tmp_path / "history" / "_delta_log"
    checkpoints = [int(path.name.split(".")[0]) for path in log.glob("*.checkpoint.parquet")]
    newest_commit = max(int(path.name.removesuffix(".json")) for path in log.glob("*.json"))
    assert newest_commit == 12 and checkpoints == [9]  # the table's creation, then twelve loads
    assert newest_commit - max(checkpoints) <= 9


def test_maintenance_gives_a_table_made_with_earlier_settings_the_current_ones(tmp_path):
    from deltalake import DeltaTable

    table_url = str(tmp_path / "history")
    DeltaTable.create(
        table_url, history.SCHEMA, partition_by=history.PARTITION_BY, configuration={"delta.checkpointInterval": "50"}
    )
    history.maintain(table_url)
    assert DeltaTable(table_url).metadata().configuration == history.TABLE_CONFIGURATION
