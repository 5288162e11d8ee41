"""Killed runs and dead processes recover, with nothing lost, nothing run twice, nothing left behind.

A stack of its own (its own PostgreSQL database, bucket, webserver and daemon on
``deploy/dagster.yaml``) with small blocks, buckets and shards, so that a file of a few MB
keeps each step busy long enough for a kill to land in the middle of it. Faults are real
signals to real processes: SIGKILL of a run worker, of the daemon, of the daemon's whole
process group. Recovery times are printed (``pytest -s``) for the fault table in
deploy/README.md; they are measured, not asserted.
"""

import json
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from csv_pipeline.demo_data import write_demo_file
from csv_pipeline.labels import LAUNCHED_BY_TAG
from csv_pipeline_tests.service_fixtures import (
    DagsterService,
    fresh_database,
    graphql_data,
    running_service,
    wait_until,
)
from csv_pipeline_tests.test_service_e2e import plays_file

pytest_plugins = ["csv_pipeline_tests.service_fixtures"]

SMALL_TASKS = {
    "CSV_PIPELINE_BLOCK_BYTES": str(128 << 10),
    "CSV_PIPELINE_BUCKET_BYTES": str(256 << 10),
    "CSV_PIPELINE_MAX_SHARD_BYTES": "4000",
}
FILE_BYTES = 4_000_000
BURST_FILES = 20
CLEANUP_TIMEOUT_SECONDS = 120
RUN_TIMEOUT_SECONDS = 600


@pytest.fixture(scope="module")
def service(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterService]:
    """A stack of this module's own: the tests here kill its daemon."""
    with (
        fresh_database() as dsn,
        running_service(dsn, s3_endpoint, tmp_path_factory.mktemp("recovery"), "recovery", SMALL_TASKS) as stack,
    ):
        yield stack


@pytest.fixture(scope="module")
def plays(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file of a few MB: dozens of blocks and buckets, about a hundred shards."""
    path = tmp_path_factory.mktemp("plays") / "plays.csv"
    write_demo_file(str(path), FILE_BYTES, songs=400, days=60, seed=11, progress=False)
    return path


@pytest.fixture(scope="module")
def reference_shards(service: DagsterService, plays: Path) -> dict[str, bytes]:
    """The shards of an undisturbed run of ``plays``."""
    service.put_large(plays, "recovery/reference.csv")
    run = service.wait_for_run("recovery/reference.csv", timeout=RUN_TIMEOUT_SECONDS)
    assert run.status == "SUCCESS"
    return shards(service, f"{service.outbox}/recovery/reference/{run.run_id}")


@dataclass(frozen=True)
class Kill:
    """A run whose worker was SIGKILLed in the middle of a step, as it was right after the kill."""

    file_key: str
    run_id: str
    at: float  # time.monotonic() of the kill
    scratch: str
    output: str
    scratch_files: list[str]
    success_written: bool


@pytest.fixture(scope="module")
def kills(service: DagsterService, plays: Path) -> Callable[[str], Kill]:
    """The kill in the middle of a step, done once per step for the tests that need it."""
    done: dict[str, Kill] = {}

    def kill(step: str) -> Kill:
        if step not in done:
            file_key = f"recovery/killed-in-{step}.csv"
            service.put_large(plays, file_key)
            run_id = kill_run_worker_mid_step(service, file_key, step)
            at = time.monotonic()
            scratch, output = leftovers_of(service, file_key, run_id)
            done[step] = Kill(
                file_key, run_id, at, scratch, output, service.s3.find(scratch), service.s3.exists(f"{output}/_SUCCESS")
            )
        return done[step]

    return kill


@pytest.mark.parametrize("step", ["aggregate_plays", "write_shards"])
def test_a_run_worker_killed_mid_step_is_retried_and_what_it_left_is_removed(
    service: DagsterService, kills: Callable[[str], Kill], reference_shards: dict[str, bytes], step: str
):
    killed = kills(step)
    assert killed.scratch_files, "the kill landed before the step wrote any scratch"
    assert not killed.success_written

    retry = service.wait_for_run(
        killed.file_key, until=lambda run: run.run_id != killed.run_id and run.finished, timeout=RUN_TIMEOUT_SECONDS
    )
    recovered = time.monotonic() - killed.at

    assert (service.graphql.run(killed.run_id).status, retry.status) == ("FAILURE", "SUCCESS")
    assert service.parent_run_id(retry.run_id) == killed.run_id
    assert shards(service, leftovers_of(service, killed.file_key, retry.run_id)[1]) == reference_shards
    wait_until(
        lambda: True if not service.s3.find(killed.scratch) and not service.s3.find(killed.output) else None,
        CLEANUP_TIMEOUT_SECONDS,
        f"the scratch and partial output of the killed run {killed.run_id} to be removed",
        service.logs,
    )
    cleaned = time.monotonic() - killed.at
    assert successes(service, killed.file_key) == [retry.run_id]
    print(
        f"\nrun worker SIGKILLed in {step}: retry ended SUCCESS {recovered:.1f} s after the kill, "
        f"leftovers gone {cleaned:.1f} s after it"
    )


@pytest.mark.parametrize(
    ("step", "selected"),
    [
        ("aggregate_plays", ["play_totals.aggregate_plays", "play_totals.write_shards"]),
        ("write_shards", ["play_totals.write_shards"]),
    ],
)
def test_reexecutions_from_failure_and_from_a_selected_step_write_the_same_shards(
    service: DagsterService,
    kills: Callable[[str], Kill],
    reference_shards: dict[str, bytes],
    step: str,
    selected: list[str],
):
    """As the UI's "Re-execute from failure" and "Re-execute from selected": the GraphQL mutation
    it sends, from the run killed in the middle of ``step`` and from its successful retry."""
    killed = kills(step)
    file_key = killed.file_key
    retry = service.wait_for_run(
        file_key, until=lambda run: run.run_id != killed.run_id and run.finished, timeout=RUN_TIMEOUT_SECONDS
    ).run_id
    from_failure = launch_reexecution(
        service, {"reexecutionParams": {"parentRunId": killed.run_id, "strategy": "FROM_FAILURE"}}
    )
    from_step = launch_reexecution(service, selected_steps_params(service, retry, selected))

    for run_id, executed in (
        (from_failure, {f"play_totals.{step}", "play_totals.write_shards"}),
        (from_step, set(selected)),
    ):
        wait_until(
            lambda run_id=run_id: True if service.graphql.run(run_id).finished else None,
            RUN_TIMEOUT_SECONDS,
            f"run {run_id}",
            service.logs,
        )
        assert service.graphql.run(run_id).status == "SUCCESS"
        # Whether the steps after play_totals (its checks, the play history load) run again depends
        # on what the parent run had done of them; the ops of play_totals are what is asserted.
        assert {key for key in steps_done(service, run_id) if key.startswith("play_totals.")} == executed
        assert shards(service, leftovers_of(service, file_key, run_id)[1]) == reference_shards
        assert not service.s3.find(leftovers_of(service, file_key, run_id)[0])


def test_a_run_whose_whole_daemon_process_group_dies_is_failed_and_retried(service: DagsterService, plays: Path):
    file_key = "recovery/group-killed.csv"
    service.put_large(plays, file_key)
    dead = service.wait_for_run(
        file_key, until=lambda run: run.status == "STARTED" and service.worker_recorded(run.run_id)
    )

    service.kill_daemon(whole_group=True)
    assert service.graphql.run(dead.run_id).status == "STARTED"
    restarted = time.monotonic()
    service.start_daemon()

    failed = wait_until(
        lambda: service.graphql.run(dead.run_id) if service.graphql.run(dead.run_id).finished else None,
        RUN_TIMEOUT_SECONDS,
        f"run {dead.run_id} to be found dead",
        service.logs,
    )
    detected = time.monotonic() - restarted
    retry = service.wait_for_run(
        file_key, until=lambda run: run.run_id != dead.run_id and run.finished, timeout=RUN_TIMEOUT_SECONDS
    )
    recovered = time.monotonic() - restarted

    assert failed.status == "FAILURE" and "is gone" in failed.error
    assert retry.status == "SUCCESS" and service.parent_run_id(retry.run_id) == dead.run_id
    assert successes(service, file_key) == [retry.run_id]
    print(
        f"\nwhole daemon process group SIGKILLed: dead run failed {detected:.1f} s after the daemon restart, "
        f"its retry ended SUCCESS {recovered:.1f} s after it"
    )


def test_a_daemon_killed_mid_burst_loses_no_file_and_runs_none_twice(service: DagsterService):
    """Files keep arriving while the daemon dies launching a run (its fork server hung, then
    both SIGKILLed): that run never gets a worker, and is failed and retried long before the
    start timeout of run monitoring."""
    keys = [f"recovery/burst/{number:02d}.csv" for number in range(BURST_FILES)]
    for number, key in enumerate(keys):
        service.put(key, plays_file(rows=50, seed=number)[0])
    wait_until(
        lambda: True if len(done(service, keys)) >= 2 else None, RUN_TIMEOUT_SECONDS, "the burst to start", service.logs
    )
    fork_server, orphan = hang_a_launch(service)

    service.kill_daemon(whole_group=False)
    fork_server.send_signal(signal.SIGKILL)
    restarted = time.monotonic()
    service.start_daemon()

    wait_until(
        lambda: True if service.graphql.run(orphan).finished else None,
        RUN_TIMEOUT_SECONDS,
        f"run {orphan} to fail",
        service.logs,
    )
    orphan_failed = time.monotonic() - restarted
    wait_until(
        lambda: True if len(done(service, keys)) == len(keys) else None, RUN_TIMEOUT_SECONDS, "the burst", service.logs
    )
    drained = time.monotonic() - restarted

    failed = service.graphql.run(orphan)
    assert failed.status == "FAILURE" and not service.worker_recorded(orphan)
    # Failed by the recovery sensor for its dead launcher, not by the start timeout minutes later.
    assert "is gone and the run worker did not start within" in failed.error, failed.error
    assert {key: len(successes(service, key)) for key in keys} == {key: 1 for key in keys}
    assert run_in_status(service, "QUEUED") is None
    print(
        f"\ndaemon SIGKILLed mid-burst of {BURST_FILES} files while launching a run: the run without a worker "
        f"failed {orphan_failed:.1f} s after the restart; queue drained {drained:.1f} s after it"
    )


def kill_run_worker_mid_step(service: DagsterService, file_key: str, step: str) -> str:
    """SIGKILL the worker of ``file_key``'s run once ``step`` is under way and has written something."""
    run = service.wait_for_run(file_key, until=lambda run: run.status == "STARTED", timeout=RUN_TIMEOUT_SECONDS)
    scratch, output = leftovers_of(service, file_key, run.run_id)

    def under_way() -> bool | None:
        if step_statuses(service, run.run_id).get(f"play_totals.{step}") != "IN_PROGRESS":
            if service.graphql.run(run.run_id).finished:
                pytest.fail(f"run {run.run_id} ended before its {step} step was seen under way")
            return None
        written = scratch if step == "aggregate_plays" else output
        return True if any("/part-" in name or "/maps/" in name for name in service.s3.find(written)) else None

    wait_until(under_way, RUN_TIMEOUT_SECONDS, f"{step} of run {run.run_id} to be under way", service.logs)
    service.kill_run_worker(run.run_id)
    return run.run_id


def leftovers_of(service: DagsterService, file_key: str, run_id: str) -> tuple[str, str]:
    """The scratch and output directories of a run."""
    return f"{service.outbox}/.scratch/{run_id}", f"{service.outbox}/{file_key.removesuffix('.csv')}/{run_id}"


def shards(service: DagsterService, output: str) -> dict[str, bytes]:
    """The shard files of an output directory, by name (``_SUCCESS`` names the run: left out)."""
    assert service.s3.exists(f"{output}/_SUCCESS")
    return {path.rsplit("/", 1)[1]: service.s3.cat_file(path) for path in service.s3.find(output) if "/part-" in path}


def successes(service: DagsterService, file_key: str) -> list[str]:
    return [run_id for run_id in service.run_ids(file_key) if service.graphql.run(run_id).status == "SUCCESS"]


def done(service: DagsterService, file_keys: list[str]) -> list[str]:
    """The files with a successful run."""
    return [key for key in file_keys if successes(service, key)]


def run_in_status(service: DagsterService, status: str) -> str | None:
    runs = graphql_data(service.url, _RUNS_IN_STATUS, {"statuses": [status]})["runsOrError"]["results"]
    return runs[0]["runId"] if runs else None


def hang_a_launch(service: DagsterService) -> tuple[psutil.Process, str]:
    """Stop the daemon's fork server until a launch begins that it can never answer; return it
    and that run. A launch that began after the stop is such a launch (a run STARTING for a while
    is no proof: its worker may have been forked and be slow to start). A launch already under
    way at the stop hangs too, and the launcher kills that fork server 30 s later and starts
    another for its next launch: then the new one is stopped in turn."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        fork_server = wait_until(service.daemon_fork_server, 60, "the daemon's fork server", service.logs)
        fork_server.send_signal(signal.SIGSTOP)
        stopped = time.time()
        while fork_server.is_running() and time.monotonic() < deadline:
            orphan = launched_after(service, stopped)
            if orphan is not None and fork_server.is_running():
                return fork_server, orphan
            time.sleep(0.25)
    pytest.fail(f"no launch hung on a stopped fork server within 180 s; process logs in {service.logs}")


def launched_after(service: DagsterService, since: float) -> str | None:
    """A STARTING run whose launcher began launching it after ``since`` (a ``time.time()``)."""
    runs = graphql_data(service.url, _RUNS_IN_STATUS, {"statuses": ["STARTING"]})["runsOrError"]["results"]
    for run in runs:
        launched_by = [json.loads(tag["value"]) for tag in run["tags"] if tag["key"] == LAUNCHED_BY_TAG]
        if launched_by and launched_by[0]["run_id"] == run["runId"] and launched_by[0]["recorded"] > since:
            return run["runId"]
    return None


def step_statuses(service: DagsterService, run_id: str) -> dict[str, str]:
    run = graphql_data(service.url, _RUN_STEPS, {"runId": run_id})["runOrError"]
    return {stats["stepKey"]: stats["status"] for stats in run["stepStats"]}


def steps_done(service: DagsterService, run_id: str) -> set[str]:
    return {key for key, status in step_statuses(service, run_id).items() if status == "SUCCESS"}


def selected_steps_params(service: DagsterService, parent: str, step_keys: list[str]) -> dict:
    """``launchPipelineReexecution`` arguments as the UI sends them for "Re-execute selected"."""
    run = graphql_data(service.url, _RUN_STEPS, {"runId": parent})["runOrError"]
    tags = [tag for tag in run["tags"] if not tag["key"].startswith("dagster/") or tag["key"] == "dagster/partition"]
    return {
        "executionParams": {
            "selector": {
                "repositoryLocationName": service.location,
                "repositoryName": "__repository__",
                "pipelineName": run["pipelineName"],
            },
            "runConfigData": run["runConfigYaml"],
            "mode": "default",
            "executionMetadata": {"parentRunId": parent, "rootRunId": run["rootRunId"] or parent, "tags": tags},
            "stepKeys": step_keys,
        }
    }


def launch_reexecution(service: DagsterService, variables: dict) -> str:
    launched = graphql_data(service.url, _REEXECUTE, variables)["launchPipelineReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


_RUN_STEPS = """
query RunSteps($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run { pipelineName rootRunId runConfigYaml tags { key value } stepStats { stepKey status } }
  }
}
"""
_RUNS_IN_STATUS = """
query RunsInStatus($statuses: [RunStatus!]) {
  runsOrError(filter: {statuses: $statuses}) { ... on Runs { results { runId tags { key value } } } }
}
"""
_REEXECUTE = """
mutation Reexecute($executionParams: ExecutionParams, $reexecutionParams: ReexecutionParams) {
  launchPipelineReexecution(executionParams: $executionParams, reexecutionParams: $reexecutionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
