"""Awkward file names, symbolic links and re-puts, through the inbox sensor and the job's resource.

The sensor is evaluated against a real inbox folder (or moto's S3 server) and a real temporary
Dagster instance, tick after tick as the daemon does; runs that ended are real run records.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import s3fs
from dagster import DagsterRunStatus, SensorResult, execute_job
from dagster._core.definitions.partitions.utils.base import INVALID_PARTITION_SUBSTRINGS

from csv_pipeline.definitions import defs
from csv_pipeline.defs.jobs import PROCESS_INBOX_FILE
from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.engine import InvalidFileError
from csv_pipeline.inbox import SYMLINK, file_key_problem
from csv_pipeline.labels import ERROR_TAG, FILE_TAG, VERSION_TAG
from csv_pipeline_tests.test_inbox_sensor import ROWS, Daemon, put

pytest_plugins = ["csv_pipeline_tests.service_fixtures"]

CSV_PIPELINE = Path(sys.executable).parent / "csv-pipeline"
OUTSIDE = "could lead outside the inbox or the outbox"
SECRET = b"TOPSECRET user=admin password=hunter2\n"
PROCESSED = [
    "with spaces in it.csv",
    "canción ünïcødé 歌.csv",
    "UPPER.CSV",
    "odd [chars] & 'quotes', #1 @2 %3.csv",
    "2026/11/" + "long" * 60 + ".csv",  # 240 characters in the file name
]
SKIPPED = {
    "tab\there.csv": "control character",
    "line\nbreak.csv": "control character",
    "escape\x1b[31mred.csv": "control character",
    "dots...range.csv": "'...'",
    ".partial.csv": "starts with '.'",
    ".upload/plays.csv": "starts with '.'",
}


class LoggedDaemon(Daemon):
    """The sensor's ticks with what each one logged (the sensor logs to the console)."""

    def __init__(self, instance, play_files, capsys) -> None:
        super().__init__(instance, play_files)
        self.capsys = capsys

    def tick(self) -> tuple[SensorResult, str]:
        self.capsys.readouterr()
        result = super().tick()
        return result, self.capsys.readouterr().err


def record_run(instance, request, status: DagsterRunStatus) -> None:
    """A run of ``request`` in the instance that ended (or stands) at ``status``."""
    instance.create_run_for_job(
        job_def=defs.resolve_job_def("process_inbox_file"),
        run_config=request.run_config,
        tags={**request.tags, "dagster/partition": request.partition_key},
        status=status,
    )


def files_outside(root: Path, *inside: Path) -> list[str]:
    """Every file under ``root`` that is not under one of ``inside``."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not any(path.is_relative_to(folder) for folder in inside)
    )


def test_dagsters_refused_partition_key_substrings_are_all_skipped():
    for substring in INVALID_PARTITION_SUBSTRINGS:
        assert file_key_problem(f"a{substring}b.csv") is not None, repr(substring)


def test_awkward_but_safe_names_are_processed_under_their_own_key(instance, play_files, capsys, tmp_path):
    daemon = LoggedDaemon(instance, play_files, capsys)
    for key in PROCESSED:
        put(play_files, key, ROWS)

    result, log = daemon.tick()

    assert sorted(request.partition_key for request in result.run_requests) == sorted(PROCESSED)
    assert sorted(instance.get_dynamic_partitions(inbox_files.name)) == sorted(PROCESSED)
    assert "Skipped" not in log
    assert daemon.tick()[0].run_requests == []
    for request in result.run_requests:  # launched as the daemon does
        assert request.tags[FILE_TAG] == request.partition_key
        run = execute_job(
            PROCESS_INBOX_FILE,
            instance,
            run_config=request.run_config,
            tags={**request.tags, "dagster/partition": request.partition_key},
        )
        assert run.success
        stem = request.partition_key[: -len(".csv")]
        assert (Path(play_files.outbox) / stem / run.run_id / "_SUCCESS").is_file()
    assert files_outside(tmp_path, Path(play_files.inbox), Path(play_files.outbox), Path(play_files.scratch)) == []


def test_unsafe_names_are_skipped_once_with_the_reason(instance, play_files, capsys, tmp_path):
    daemon = LoggedDaemon(instance, play_files, capsys)
    for key in SKIPPED:
        put(play_files, key, ROWS)
    undecodable = os.path.join(os.fsencode(play_files.inbox), b"latin1 caf\xe9.csv")
    Path(os.fsdecode(undecodable)).write_bytes(ROWS)
    os.mkfifo(Path(play_files.inbox) / "pipe.csv")

    result, log = daemon.tick()

    assert result.run_requests == []
    assert instance.get_dynamic_partitions(inbox_files.name) == []
    said = {
        **{repr(key): reason for key, reason in SKIPPED.items() if not key.isprintable()},
        **{key: reason for key, reason in SKIPPED.items() if key.isprintable()},
        repr("latin1 caf\udce9.csv"): "not valid UTF-8",
        "pipe.csv": "not a regular file",
    }
    for shown, reason in said.items():
        assert f"Skipped {shown}: " in log and reason in log.split(f"Skipped {shown}: ")[1].splitlines()[0]
    message = result.skip_reason.skip_message
    assert "Skipped " in message and "and 3 more" in message
    assert "\n" not in message and "\x1b" not in log
    again, log = daemon.tick()
    assert again.run_requests == [] and "Skipped" not in log + again.skip_reason.skip_message
    assert files_outside(tmp_path, Path(play_files.inbox)) == []


@pytest.mark.parametrize(
    "file_key", ["../escape.csv", "sub/../../escape.csv", "/etc/escape.csv", "a//b.csv", "./a.csv", ".."]
)
def test_the_outbox_path_of_an_unsafe_partition_key_is_refused(play_files, file_key):
    """A partition key typed into the UI reaches the resource without the sensor's checks."""
    with pytest.raises(InvalidFileError, match=f"not written: .*{OUTSIDE}"):
        play_files.output_url(file_key, "run-id")
    with pytest.raises(InvalidFileError, match=f"not read: .*{OUTSIDE}"):
        play_files.input_url(file_key)


def make_links(tmp_path: Path, play_files: PlayFiles) -> None:
    """leak.csv and data/ point outside the inbox; inside.csv points to a file in it."""
    outside = tmp_path / "outside"
    (outside / "data").mkdir(parents=True)
    (outside / "secret.csv").write_bytes(SECRET)
    (outside / "data" / "more.csv").write_bytes(SECRET)
    put(play_files, "real.csv", ROWS)
    inbox = Path(play_files.inbox)
    (inbox / "leak.csv").symlink_to(outside / "secret.csv")
    (inbox / "data").symlink_to(outside / "data")
    (inbox / "inside.csv").symlink_to(inbox / "real.csv")
    (inbox / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")


def test_symbolic_links_are_never_followed_by_the_sensor(instance, play_files, capsys, tmp_path):
    make_links(tmp_path, play_files)
    daemon = LoggedDaemon(instance, play_files, capsys)

    result, log = daemon.tick()

    assert [request.partition_key for request in result.run_requests] == ["real.csv"]
    for key in ["leak.csv", "data", "inside.csv", "dangling.csv"]:
        assert f"Skipped {key}: {SYMLINK}." in log
    assert "TOPSECRET" not in log + result.cursor
    assert daemon.tick()[0].run_requests == []


def test_a_run_launched_by_hand_on_a_link_or_an_escaping_key_reads_and_writes_nothing(instance, play_files, tmp_path):
    """As from the UI's launchpad, whatever partition key is typed: the run fails before reading."""
    make_links(tmp_path, play_files)
    for file_key, said in [("leak.csv", SYMLINK), ("../outside/secret.csv", OUTSIDE)]:
        instance.add_dynamic_partitions(inbox_files.name, [file_key])
        result = execute_job(
            PROCESS_INBOX_FILE,
            instance,
            run_config=play_files.run_config(),
            tags={"dagster/partition": file_key, FILE_TAG: file_key},
            raise_on_error=False,
        )
        assert not result.success
        error = instance.get_run_by_id(result.run_id).tags[ERROR_TAG]
        assert error.startswith(f"{file_key}: not read: ") and said in error
        logged = json.dumps([str(event) for event in instance.all_logs(result.run_id)])
        assert "TOPSECRET" not in logged
    assert files_outside(tmp_path, Path(play_files.inbox), tmp_path / "outside") == []


def test_a_failed_file_put_again_runs_again_and_a_restart_runs_nothing_twice(instance, play_files):
    daemon = Daemon(instance, play_files)
    path = put(play_files, "plays.csv", ROWS)
    (first,) = daemon.tick().run_requests
    record_run(instance, first, DagsterRunStatus.FAILURE)
    assert daemon.tick().run_requests == []  # seen again: nothing, even though its run failed

    before = daemon.cursor
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))  # put again
    (again,) = daemon.tick().run_requests

    assert again.partition_key == "plays.csv" and again.run_key != first.run_key
    assert again.tags[VERSION_TAG] != first.tags[VERSION_TAG]  # locally the mtime is part of the version
    # The daemon died before committing the tick: the same tick asks for the same run key,
    # which Dagster drops once the run was launched.
    daemon.cursor = before
    assert [request.run_key for request in daemon.tick().run_requests] == [again.run_key]


@pytest.fixture
def s3_play_files(s3_endpoint, monkeypatch, tmp_path) -> PlayFiles:
    """Inbox and outbox in a bucket of their own on moto's S3 server, found through AWS_ENDPOINT_URL."""
    from csv_pipeline_tests.service_fixtures import FAKE_AWS  # once pytest_plugins loaded it

    for name, value in {**FAKE_AWS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    bucket = f"file-keys-{os.urandom(4).hex()}"
    s3fs.S3FileSystem().mkdir(bucket)
    return PlayFiles(
        inbox=f"s3://{bucket}/inbox",
        outbox=f"s3://{bucket}/outbox",
        scratch=str(tmp_path / "scratch"),
        max_shard_bytes=1_000_000,
    )


def s3_put(play_files: PlayFiles, file_key: str, content: bytes) -> None:
    s3fs.S3FileSystem(skip_instance_cache=True).pipe_file(f"{play_files.inbox}/{file_key}", content)


def test_on_s3_the_same_bytes_put_again_run_again_only_after_a_failure(instance, s3_play_files):
    daemon = Daemon(instance, s3_play_files)
    s3_put(s3_play_files, "failed.csv", ROWS)
    s3_put(s3_play_files, "succeeded.csv", ROWS)
    s3_put(s3_play_files, "running.csv", ROWS)
    first = {request.partition_key: request for request in daemon.tick().run_requests}
    assert sorted(first) == ["failed.csv", "running.csv", "succeeded.csv"]
    for key, status in [
        ("failed.csv", DagsterRunStatus.FAILURE),
        ("succeeded.csv", DagsterRunStatus.SUCCESS),
        ("running.csv", DagsterRunStatus.STARTED),
    ]:
        record_run(instance, first[key], status)
    assert daemon.tick().run_requests == []
    # A cursor of the earlier format (file key: ETag) meets the same objects: nothing either.
    daemon.cursor = json.dumps({key: request.tags[VERSION_TAG] for key, request in first.items()})
    assert daemon.tick().run_requests == []

    before = daemon.cursor
    time.sleep(1.1)  # S3 stamps LastModified to the second: a re-put within the same second looks like no put
    for key in first:
        s3_put(s3_play_files, key, ROWS)  # the same bytes: same ETag, new LastModified
    (again,) = daemon.tick().run_requests

    assert again.partition_key == "failed.csv"
    assert again.tags[VERSION_TAG] == first["failed.csv"].tags[VERSION_TAG]  # the same content
    assert again.run_key != first["failed.csv"].run_key
    daemon.cursor = before  # a restart before the tick was committed: the same run key again
    assert [request.run_key for request in daemon.tick().run_requests] == [again.run_key]
    record_run(instance, again, DagsterRunStatus.STARTED)
    daemon.cursor = before  # and once that run is launched, nothing at all
    assert daemon.tick().run_requests == []

    s3_put(s3_play_files, "succeeded.csv", ROWS + b"Umbrella,2020-01-02,7\n")  # new content
    assert [request.partition_key for request in daemon.tick().run_requests] == ["succeeded.csv"]


def test_on_s3_keys_with_dot_segments_or_overlong_names_are_skipped(instance, s3_play_files, capsys):
    daemon = LoggedDaemon(instance, s3_play_files, capsys)
    keys = {"a/../../escape.csv": OUTSIDE, "é" * 130 + ".csv": "longer than 255 bytes"}
    for key in keys:
        s3_put(s3_play_files, key, ROWS)
    s3_put(s3_play_files, "fine.csv", ROWS)

    result, log = daemon.tick()

    assert [request.partition_key for request in result.run_requests] == ["fine.csv"]
    for key, reason in keys.items():
        assert f"Skipped {key}: " in log and reason in log.split(f"Skipped {key}: ")[1].splitlines()[0]


def csv_pipeline_process(tmp_path: Path, input_path: bytes | str) -> subprocess.CompletedProcess:
    """``csv-pipeline process INPUT --output out``, as a user runs it."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    return subprocess.run(
        [str(CSV_PIPELINE), "process", input_path, "--output", "out"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )


def test_process_takes_an_awkward_but_safe_name_as_the_sensor_does(tmp_path):
    key = "canción ünï 歌, with spaces " + "x" * 200 + ".CSV"
    assert len(key) > 200 and file_key_problem(key) is None
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / key).write_bytes(ROWS)

    done = csv_pipeline_process(tmp_path, f"in/{key}")

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["file"] == key
    assert result["output_files"] == [str(tmp_path / "out" / key[: -len(".CSV")] / result["run_id"] / "part-00000.csv")]
    assert files_outside(tmp_path, tmp_path / "in", tmp_path / "out", tmp_path / "dagster_home") == []


@pytest.mark.parametrize(
    ("name", "said"),
    [
        (b"tab\there.csv", "'tab\\there.csv': not read: its name holds a control character"),
        (b"dots...range.csv", "dots...range.csv: not read: its name holds '...'"),
        (b".partial.csv", ".partial.csv: not read: its name or a folder's starts with '.'"),
        (b"latin1 caf\xe9.csv", "'latin1 caf\\udce9.csv': not read: its name is not valid UTF-8"),
        (b"leak.csv", f"leak.csv: not read: {SYMLINK}."),
        (b"inside.csv", f"inside.csv: not read: {SYMLINK}."),
    ],
    ids=["control character", "dots", "hidden", "not UTF-8", "link outside", "link inside"],
)
def test_process_refuses_what_the_sensor_skips_without_reading_it(tmp_path, name, said):
    play_files = PlayFiles(inbox=str(tmp_path / "in"), outbox="", scratch="", max_shard_bytes=1)
    make_links(tmp_path, play_files)
    path = os.path.join(os.fsencode(play_files.inbox), name)
    if not os.path.lexists(path):
        Path(os.fsdecode(path)).write_bytes(SECRET)

    done = csv_pipeline_process(tmp_path, path)

    assert (done.returncode, done.stdout) == (2, "")
    assert said in done.stderr
    assert "TOPSECRET" not in done.stdout + done.stderr
    assert not (tmp_path / "out").exists()


def test_submit_refuses_a_key_the_sensor_would_skip(tmp_path):
    (tmp_path / "plays.csv").write_bytes(ROWS)
    env = {**os.environ, "CSV_PIPELINE_INBOX": str(tmp_path / "inbox")}

    done = subprocess.run(
        [str(CSV_PIPELINE), "submit", "plays.csv", "--key", "2026/../../plays.csv"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )

    assert (done.returncode, done.stdout) == (2, "")
    assert (
        "2026/../../plays.csv: the inbox sensor would skip it: its path has an empty, '.' or '..' part" in done.stderr
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plays.csv"]
