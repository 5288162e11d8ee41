"""The inbox sensor against a real inbox folder and a real (temporary, SQLite) Dagster instance."""

import os
from pathlib import Path

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    SensorResult,
    build_sensor_context,
)

from csv_pipeline.definitions import defs
from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.defs.sensors.inbox_cursor import InboxCursor
from csv_pipeline.defs.sensors.inbox_sensor import inbox_sensor
from csv_pipeline.inbox import file_version
from csv_pipeline.labels import FILE_TAG, LARGE, SIZE_TAG, SMALL, VERSION_TAG

ROWS = b"Song,Date,Number of Plays\nUmbrella,2020-01-01,100\n"


class Daemon:
    """Evaluates the sensor tick after tick as the daemon does: cursor and partitions carried over."""

    def __init__(self, instance: DagsterInstance, play_files: PlayFiles) -> None:
        self.instance = instance
        self.play_files = play_files
        self.cursor: str | None = None

    def tick(self) -> SensorResult:
        context = build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"play_files": self.play_files}
        )
        result = inbox_sensor(context)
        for request in result.dynamic_partitions_requests:
            self.instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        self.cursor = result.cursor
        return result


def put(play_files: PlayFiles, file_key: str, content: bytes) -> Path:
    path = Path(play_files.inbox) / file_key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def requested(result: SensorResult) -> dict[str, str]:
    return {request.partition_key: request.tags[VERSION_TAG] for request in result.run_requests}


def test_each_new_csv_file_gets_a_partition_and_one_run(instance, play_files):
    daemon = Daemon(instance, play_files)
    put(play_files, "2026/11/plays.csv", ROWS)
    put(play_files, "first.csv", ROWS + b"In The End,2020-01-01,5\n")
    put(play_files, "notes.txt", ROWS)
    put(play_files, "2026/11/plays.csv.part", ROWS)

    result = daemon.tick()

    keys = ["2026/11/plays.csv", "first.csv"]
    assert requested(result) == {key: file_version(f"{play_files.inbox}/{key}") for key in keys}
    for request in result.run_requests:
        assert request.job_name in (None, "process_inbox_file")
        assert request.tags[FILE_TAG] == request.partition_key
        assert request.run_key == f"{request.partition_key}@{request.tags[VERSION_TAG]}"
        assert request.run_config == play_files.run_config()
    assert sorted(instance.get_dynamic_partitions(inbox_files.name)) == keys
    assert set(InboxCursor.read(result.cursor).recent) == set(keys)


def test_files_seen_again_start_nothing(instance, play_files):
    daemon = Daemon(instance, play_files)
    put(play_files, "a.csv", ROWS)
    put(play_files, "b.csv", ROWS)
    assert len(daemon.tick().run_requests) == 2

    again = daemon.tick()

    assert again.run_requests == []
    assert again.dynamic_partitions_requests == []
    assert sorted(instance.get_dynamic_partitions(inbox_files.name)) == ["a.csv", "b.csv"]


def test_a_rewritten_file_starts_one_new_run_of_its_partition(instance, play_files):
    daemon = Daemon(instance, play_files)
    put(play_files, "a.csv", ROWS)
    put(play_files, "b.csv", ROWS)
    first = requested(daemon.tick())

    put(play_files, "b.csv", ROWS + b"Umbrella,2020-01-02,7\n")
    result = daemon.tick()

    assert list(requested(result)) == ["b.csv"]
    assert requested(result)["b.csv"] != first["b.csv"]
    assert result.dynamic_partitions_requests == []
    assert daemon.tick().run_requests == []


def test_only_csv_files_count(instance, play_files):
    daemon = Daemon(instance, play_files)
    put(play_files, "readme.md", b"# not plays\n")
    put(play_files, "upload.csv.tmp", ROWS)

    result = daemon.tick()

    assert result.run_requests == []
    assert instance.get_dynamic_partitions(inbox_files.name) == []


def test_an_inbox_that_does_not_exist_yet_is_empty(instance, play_files):
    assert Daemon(instance, play_files).tick().run_requests == []


def test_a_file_of_one_engine_block_runs_as_small_and_a_larger_one_as_large(instance, play_files):
    # The run queue starts at most two large runs at once (deploy/dagster.yaml), and more small ones.
    put(play_files, "small.csv", ROWS)
    put(play_files, "block.csv", b"")
    put(play_files, "large.csv", b"")
    os.truncate(Path(play_files.inbox) / "block.csv", play_files.block_bytes)  # sparse: listed, never read
    os.truncate(Path(play_files.inbox) / "large.csv", play_files.block_bytes + 1)

    result = Daemon(instance, play_files).tick()

    sizes = {request.partition_key: request.tags[SIZE_TAG] for request in result.run_requests}
    assert sizes == {"small.csv": SMALL, "block.csv": SMALL, "large.csv": LARGE}


def test_the_sensor_is_on_by_default_and_targets_the_job():
    sensor = defs.resolve_sensor_def("inbox_sensor")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.job_name == "process_inbox_file"
