"""Run workers are forked from the daemon's fork server, which a kill or a code change replaces,
and a terminated run's worker is interrupted: on the processes production runs."""

from pathlib import Path

import psutil

from csv_pipeline import labels
from csv_pipeline.demo_data import write_demo_file
from csv_pipeline_tests.service_fixtures import DagsterService, graphql_data, wait_until
from csv_pipeline_tests.test_service_e2e import plays_file

pytest_plugins = ["csv_pipeline_tests.service_fixtures"]

TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) { __typename ... on TerminateRunFailure { message } ... on PythonError { message } }
}
"""


def in_flight(service: DagsterService, file_key: str, tmp_path: Path) -> str:
    """Put a file of 30 MB and return its run once its worker has started executing it."""
    big = tmp_path / "big.csv"
    write_demo_file(str(big), 30_000_000, songs=50, days=10, seed=9, progress=False)
    service.put_large(big, file_key)
    run = service.wait_for_run(
        file_key, until=lambda run: run.finished or (run.status == "STARTED" and service.worker_recorded(run.run_id))
    )
    assert run.status == "STARTED", run
    return run.run_id


def succeeds(service: DagsterService, file_key: str) -> None:
    service.put(file_key, plays_file(rows=20, seed=len(file_key))[0])
    assert service.wait_for_run(file_key).status == "SUCCESS", service.runs_told(file_key)


def test_run_workers_are_forked_from_a_fork_server_that_a_kill_or_a_code_change_replaces(
    dagster_service: DagsterService, tmp_path: Path
):
    run_id = in_flight(dagster_service, "forks/big.csv", tmp_path)
    with dagster_service.run_worker_paused(run_id):
        worker = psutil.Process(dagster_service.run_worker_pid(run_id))
        first = dagster_service.daemon_fork_server()
        assert first is not None and worker.ppid() == first.pid
    assert dagster_service.wait_for_run("forks/big.csv").status == "SUCCESS"

    first.kill()
    succeeds(dagster_service, "forks/after-kill.csv")
    second = dagster_service.daemon_fork_server()
    assert second is not None and second.pid != first.pid

    Path(labels.__file__).touch()  # as an editor saving a module of the code location
    succeeds(dagster_service, "forks/after-edit.csv")
    third = dagster_service.daemon_fork_server()
    assert third is not None and third.pid != second.pid
    wait_until(lambda: gone(second), 30, "the stale fork server to end")


def test_terminating_a_run_interrupts_its_worker_and_the_run_ends_canceled(
    dagster_service: DagsterService, tmp_path: Path
):
    run_id = in_flight(dagster_service, "forks/terminated.csv", tmp_path)
    worker = psutil.Process(dagster_service.run_worker_pid(run_id))
    with dagster_service.run_worker_paused(run_id):  # the interrupt waits until it goes on
        answer = graphql_data(dagster_service.url, TERMINATE, {"runId": run_id})["terminateRun"]
    assert answer["__typename"] == "TerminateRunSuccess", answer

    ended = dagster_service.wait_for_run("forks/terminated.csv")
    assert (ended.run_id, ended.status) == (run_id, "CANCELED")
    wait_until(lambda: gone(worker), 60, "the interrupted worker to end")


def gone(process: psutil.Process) -> bool | None:
    try:
        return True if process.status() == psutil.STATUS_ZOMBIE else None
    except psutil.NoSuchProcess:
        return True
