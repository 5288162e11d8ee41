"""PostgreSQL restarted, or away for half a minute, under a running service.

The webserver and the daemon run on a PostgreSQL server of the test's own (the machine's
shared server is never stopped). They must ride out the outage without being restarted, and
every file must end with exactly one successful run and one complete result.
"""

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, WILL_RETRY_TAG

from csv_pipeline.cli.graphql_client import DagsterApiError, DagsterGraphQL, RunResult
from csv_pipeline.labels import FILE_TAG
from csv_pipeline_tests.private_services import LocalService, PrivatePostgres, local_service, private_postgres
from csv_pipeline_tests.service_fixtures import wait_until

OUTAGE_SECONDS = 30
FINISH_TIMEOUT_SECONDS = 600
CLEANUP_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrivatePostgres, LocalService]]:
    with private_postgres() as postgres, local_service(tmp_path_factory.mktemp("outage"), postgres.dsn) as service:
        yield postgres, service


def plays_csv(seed: int, rows: int = 2000) -> str:
    lines = ["Song,Date,Number of Plays"]
    lines += [f"Song {(seed * 7 + i) % 97},2020-01-{1 + i % 28:02d},{i % 500}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def put(service: LocalService, file_key: str, content: str) -> None:
    """Move a complete file into the inbox, as ``csv-pipeline submit`` does."""
    target = service.inbox / file_key
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial"
    partial.write_text(content)
    partial.rename(target)


def latest_runs(service: LocalService, file_keys: list[str]) -> list[RunResult | None] | None:
    """The latest run of each file, or None while the webserver cannot answer."""
    graphql = DagsterGraphQL(service.url, timeout_seconds=10)
    try:
        return [graphql.latest_run(file_key) for file_key in file_keys]
    except DagsterApiError:
        return None


def wait_for_a_started_run(service: LocalService, file_keys: list[str]) -> None:
    def started() -> bool | None:
        runs = latest_runs(service, file_keys) or []
        return True if any(run and run.status == "STARTED" for run in runs) else None

    wait_until(started, 300, "a started run", service.logs)


def file_runs(postgres: PrivatePostgres, file_key: str) -> list[tuple[str, str, str, str]]:
    """``(run id, status, will retry, parent run id)`` of every run of the file, oldest first."""
    with psycopg2.connect(postgres.dsn) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.run_id, r.status,"
            " coalesce((SELECT value FROM run_tags w WHERE w.run_id = r.run_id AND w.key = %s), ''),"
            " coalesce((SELECT value FROM run_tags p WHERE p.run_id = r.run_id AND p.key = %s), '')"
            " FROM runs r JOIN run_tags t ON t.run_id = r.run_id WHERE t.key = %s AND t.value = %s"
            " ORDER BY r.create_timestamp",
            (WILL_RETRY_TAG, PARENT_RUN_ID_TAG, FILE_TAG, file_key),
        )
        return cursor.fetchall()


def wait_until_settled(postgres: PrivatePostgres, file_key: str, runs_before: int = 0) -> list[tuple[str, str]]:
    """``(status, will_retry)`` of the file's runs once there are more than ``runs_before`` and the
    latest succeeded or failed for good."""

    def settled() -> list[tuple[str, str]] | None:
        runs = [(status, will_retry) for _, status, will_retry, _ in file_runs(postgres, file_key)]
        last = runs[-1] if runs else None
        ended = last and (last[0] == "SUCCESS" or last == ("FAILURE", "false"))
        return runs if ended and len(runs) > runs_before else None

    return wait_until(settled, FINISH_TIMEOUT_SECONDS, f"the last run of {file_key}")


def assert_one_complete_result_each(outbox: Path, file_keys: list[str]) -> None:
    """One complete result per file, and, once the recovery sensor has been by, no scratch: a run
    that failed outside its op (its event write cut off) leaves its scratch to that sensor."""
    for file_key in file_keys:
        run_dirs = [path for path in (outbox / file_key.removesuffix(".csv")).iterdir()]
        assert [(path / "_SUCCESS").is_file() for path in run_dirs] == [True], (file_key, run_dirs)
    scratch = outbox / ".scratch"
    wait_until(
        lambda: True if not scratch.exists() or not any(scratch.iterdir()) else None,
        CLEANUP_TIMEOUT_SECONDS,
        f"the failed runs' scratch under {scratch} to be removed",
    )


def test_a_restart_mid_burst_loses_no_file_and_completes_each_once(outage):
    """Connections are dropped under the runs. A run whose event write was cut off mid-statement
    fails (Dagster writes every event of a run, and a statement is not retried); the daemon's run
    retry then re-executes it from the failure. Every file ends with one successful run, reached
    either directly or through retries of its own failed run, and one complete result."""
    postgres, service = outage
    file_keys = [f"burst/{i}.csv" for i in range(6)]
    for seed, file_key in enumerate(file_keys):
        put(service, file_key, plays_csv(seed))
    wait_for_a_started_run(service, file_keys)

    restarted = time.monotonic()
    postgres.pg_ctl("restart", "-m", "fast")
    for file_key in file_keys:
        wait_until_settled(postgres, file_key)
    recovered_after = time.monotonic() - restarted
    runs = {file_key: file_runs(postgres, file_key) for file_key in file_keys}

    retried = sum(len(runs_of_file) - 1 for runs_of_file in runs.values())
    print(
        f"PostgreSQL restart mid-burst: all {len(file_keys)} files settled {recovered_after:.1f} s after the restart;"
        f" {retried} failed run(s) retried"
    )
    assert service.all_running()
    for file_key, runs_of_file in runs.items():
        statuses = [status for _, status, _, _ in runs_of_file]
        assert statuses == ["FAILURE"] * (len(statuses) - 1) + ["SUCCESS"], (file_key, runs_of_file)
        for failed, retry in itertools.pairwise(runs_of_file):
            assert failed[2] == "true" and retry[3] == failed[0], (file_key, runs_of_file)  # a retry of that run
    assert_one_complete_result_each(service.outbox, file_keys)


def test_postgres_away_for_half_a_minute_during_a_run(outage):
    """Dagster cannot write the run's events for 30 s, so the run fails; it must fail cleanly.

    The daemon's run retry then starts it again, unless its code server could not load the code
    location during the outage: Dagster then gives up the retry for good (``dagster/will_retry``
    false), and the file is run again the way a user would, by putting the same file into the inbox again.
    """
    postgres, service = outage
    file_key = "away/plays.csv"
    put(service, file_key, plays_csv(42, rows=20000))
    wait_for_a_started_run(service, [file_key])

    stopped = time.monotonic()
    postgres.pg_ctl("stop", "-m", "fast")
    time.sleep(OUTAGE_SECONDS)
    postgres.pg_ctl("start")
    runs = wait_until_settled(postgres, file_key)
    print(
        f"PostgreSQL away {OUTAGE_SECONDS} s: settled {time.monotonic() - stopped:.1f} s after the stop; "
        f"runs (status, will retry): {runs}"
    )
    assert service.all_running()
    assert runs[0][0] == "FAILURE"  # its events could not be written: failed, not hanging
    if runs[-1] == ("FAILURE", "false"):
        assert not (service.outbox / "away").exists()  # it failed cleanly: no shard, no directory
        put(service, file_key, plays_csv(42, rows=20000))  # the same bytes: a failed content runs again
        runs = wait_until_settled(postgres, file_key, runs_before=len(runs))
        print(f"  put again: settled {time.monotonic() - stopped:.1f} s after the stop; runs: {runs}")

    assert [status for status, _ in runs].count("SUCCESS") == 1 and runs[-1][0] == "SUCCESS", runs
    assert_one_complete_result_each(service.outbox, [file_key])
