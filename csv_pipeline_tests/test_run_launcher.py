"""The run launcher's health check and the leftover cleanup, on real processes and folders."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import psutil
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import create_run_for_test

from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.defs.run_launcher import ForkingRunLauncher, ProcessIdentity, record_run_worker
from csv_pipeline.defs.sensors.run_recovery_sensor import remove_leftovers
from csv_pipeline.labels import RUN_WORKER_TAG


def health(instance: DagsterInstance, run_id: str) -> WorkerStatus:
    return ForkingRunLauncher().check_run_worker_health(instance.get_run_by_id(run_id)).status


def test_a_run_whose_worker_process_is_gone_is_reported_failed(instance: DagsterInstance):
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    run = create_run_for_test(instance, job_name="process_inbox_file", status=DagsterRunStatus.STARTED)
    identity = replace(
        ProcessIdentity.of_this_process(run.run_id), pid=worker.pid, started=psutil.Process(worker.pid).create_time()
    )
    instance.add_run_tags(run.run_id, {RUN_WORKER_TAG: identity.as_tag()})
    try:
        assert health(instance, run.run_id) == WorkerStatus.RUNNING
    finally:
        worker.kill()
        worker.wait()
    assert health(instance, run.run_id) == WorkerStatus.FAILED


def test_a_reused_pid_another_host_or_a_parents_tag_are_told_apart(instance: DagsterInstance):
    run = create_run_for_test(instance, job_name="process_inbox_file", status=DagsterRunStatus.STARTED)
    assert health(instance, run.run_id) == WorkerStatus.RUNNING  # not recorded yet: cannot tell
    record_run_worker(instance, run.run_id)
    assert health(instance, run.run_id) == WorkerStatus.RUNNING  # this process
    this_process = ProcessIdentity.from_tags(instance.get_run_by_id(run.run_id), RUN_WORKER_TAG)

    instance.add_run_tags(
        run.run_id, {RUN_WORKER_TAG: replace(this_process, started=this_process.started - 3600).as_tag()}
    )
    assert health(instance, run.run_id) == WorkerStatus.FAILED  # the pid now belongs to a later process

    instance.add_run_tags(run.run_id, {RUN_WORKER_TAG: replace(this_process, host="elsewhere", pid=1 << 22).as_tag()})
    assert health(instance, run.run_id) == WorkerStatus.RUNNING  # another host: cannot tell

    instance.add_run_tags(run.run_id, {RUN_WORKER_TAG: replace(this_process, run_id="parent", pid=1 << 22).as_tag()})
    assert health(instance, run.run_id) == WorkerStatus.RUNNING  # copied from the parent by a retry


def test_leftovers_of_failed_runs_are_removed_and_those_of_other_runs_kept(
    instance: DagsterInstance, play_files: PlayFiles
):
    runs = {
        status: create_run_for_test(
            instance,
            job_name="process_inbox_file",
            status=status,
            run_config=play_files.run_config(),
            tags={"dagster/partition": "2026/plays.csv"},
        ).run_id
        for status in (DagsterRunStatus.FAILURE, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELED)
    }
    for run_id in runs.values():
        (Path(play_files.scratch) / run_id / "blocks").mkdir(parents=True)
        (Path(play_files.scratch) / run_id / "blocks" / "0.arrows").write_bytes(b"x")
        Path(play_files.output_url("2026/plays.csv", run_id)).mkdir(parents=True)
        Path(play_files.output_url("2026/plays.csv", run_id), "part-00000.csv").write_bytes(b"x")
    Path(play_files.output_url("2026/plays.csv", runs[DagsterRunStatus.CANCELED]), "_SUCCESS").write_bytes(b"{}")

    cleaned, since = remove_leftovers(instance, play_files, 0.0)

    assert cleaned == 2 and since > 0
    assert sorted(path.name for path in Path(play_files.scratch).iterdir()) == [runs[DagsterRunStatus.STARTED]]
    remaining = sorted(path.name for path in Path(play_files.outbox, "2026", "plays").iterdir())
    assert remaining == sorted([runs[DagsterRunStatus.STARTED], runs[DagsterRunStatus.CANCELED]])
    assert remove_leftovers(instance, play_files, since)[0] == 0, "a run is cleaned up once"
