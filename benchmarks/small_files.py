"""Benchmark of many small files through the whole service: a burst, then one file's latency.

The stack is the production one, each part real: moto's S3 server holds the inbox and outbox,
a fresh PostgreSQL database on the machine's server (dropped at the end), and
``dagster-webserver`` and ``dagster-daemon`` on ``deploy/dagster.yaml`` (four runs at once, two large).

- Burst: ``--files`` files of two rows are put into the inbox at once, one of them bad. Timed
  from the first put until the last run's end, as GraphQL shows them (asked every 2 s). Each file must
  have exactly one run: SUCCESS with its two rows, the bad one FAILURE with its message.
- Latency: then ``--latency-files`` files, one at a time: put, then GraphQL polled every
  0.1 s until the file's run is SUCCESS.

Each run is also split into its parts from its GraphQL times: put to created (the sensor's
poll), created to started (queue, launch and the run worker's start) and started to ended.

    .venv/bin/python -m benchmarks.small_files   (from the repository root: it uses the tests' service stack)
    .venv/bin/python -m benchmarks.small_files --files 30 --latency-files 5
"""

import argparse
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from csv_pipeline.labels import FILE_TAG
from csv_pipeline_tests.service_fixtures import (
    DagsterService,
    fresh_database,
    graphql_data,
    moto_server,
    running_service,
    wait_until,
)

GOOD = b"Song,Date,Number of Plays\nUmbrella,2020-01-01,100\nHey Jude,2020-01-02,5\n"
BAD = b"Song,Date,Number of Plays\nUmbrella,2020-01-01,100\nHey Jude,2020-01-02,patata\n"
BAD_MESSAGE = "line 3: Number of Plays 'patata' is not a non-negative integer"
BURST_POLL_SECONDS = 2.0
RUNS = """
query Runs {
  runsOrError(limit: 5000) {
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } } }
  }
}
"""


@dataclass(frozen=True)
class Run:
    file_key: str
    run_id: str
    status: str
    created: float
    started: float | None
    ended: float | None


def runs_by_file(service: DagsterService) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {}
    for run in graphql_data(service.url, RUNS)["runsOrError"]["results"]:
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        if FILE_TAG in tags:
            runs.setdefault(tags[FILE_TAG], []).append(
                Run(tags[FILE_TAG], run["runId"], run["status"], run["creationTime"], run["startTime"], run["endTime"])
            )
    return runs


def ended(service: DagsterService, keys: list[str]) -> dict[str, list[Run]] | None:
    runs = runs_by_file(service)
    finished = all(key in runs and all(run.ended for run in runs[key]) for key in keys)
    return runs if finished else None


def parts(put: float, runs: list[Run]) -> str:
    """Median seconds of put to created, created to started and started to ended, as table cells."""
    created = statistics.median(run.created - put for run in runs)
    queued = statistics.median((run.started or run.created) - run.created for run in runs)
    running = statistics.median((run.ended or 0) - (run.started or 0) for run in runs)
    return f"{created:.1f} | {queued:.1f} | {running:.1f}"


def burst(service: DagsterService, files: int) -> None:
    keys = [f"burst/{number:04d}.csv" for number in range(files)]
    bad = keys[files // 2]
    started = time.time()
    service.s3.pipe({f"{service.inbox}/{key}": BAD if key == bad else GOOD for key in keys})
    # Every run's times come from GraphQL, so how often it is asked changes nothing measured but
    # the load: each question lists every run with its tags (webserver and PostgreSQL time).
    runs = wait_until(lambda: ended(service, keys), 3600, "the burst", service.logs, interval=BURST_POLL_SECONDS)
    seconds = max(run.ended or 0 for key in keys for run in runs[key]) - started

    assert {key: len(runs[key]) for key in keys} == dict.fromkeys(keys, 1), "a file without exactly one run"
    statuses = {key: runs[key][0].status for key in keys}
    assert statuses == {key: "FAILURE" if key == bad else "SUCCESS" for key in keys}, statuses
    bad_run = service.graphql.latest_run(bad)
    assert bad_run is not None and bad_run.error is not None and BAD_MESSAGE in bad_run.error, bad_run
    good_run = service.graphql.latest_run(keys[0])
    assert good_run is not None and good_run.rows_out == 2, good_run

    every = [runs[key][0] for key in keys]
    print("| files | queue limit | drained in s | s per file | put→created s | created→started s | started→ended s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {files} | {service.max_concurrent_runs()} | {seconds:.1f} | {seconds / files:.2f} "
        f"| {parts(started, every)} |"
    )
    print(f"\n{files - 1} SUCCESS, 1 FAILURE ({bad}: {bad_run.error}); one run each.\n", flush=True)


def latency(service: DagsterService, files: int) -> None:
    print("| file | put→SUCCESS s | put→created s | created→started s | started→ended s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    seconds = []
    for number in range(files):
        key = f"latency/{number:02d}.csv"
        put = time.time()
        service.put(key, GOOD)
        run = service.graphql.latest_run(key)
        while run is None or not run.finished:
            assert time.time() - put < 600, f"no end of the run of {key} in 10 minutes"
            time.sleep(0.1)
            run = service.graphql.latest_run(key)
        seconds.append(time.time() - put)
        (timed,) = runs_by_file(service)[key]
        assert run.succeeded and timed.run_id == run.run_id
        print(f"| {key} | {seconds[-1]:.2f} | {parts(put, [timed])} |", flush=True)
    print(
        f"\nmedian {statistics.median(seconds):.2f} s, min {min(seconds):.2f}, max {max(seconds):.2f} "
        f"(load average {os.getloadavg()[0]:.1f}, 2 cores)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100, help="files in the burst")
    parser.add_argument("--latency-files", type=int, default=10, help="files put one at a time")
    args = parser.parse_args()
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="small-files-")))
        (root / "moto").mkdir()
        endpoint = stack.enter_context(moto_server(root / "moto"))
        dsn = stack.enter_context(fresh_database())
        started = time.perf_counter()
        service = stack.enter_context(running_service(dsn, endpoint, root, "small-files"))
        print(f"stack up in {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.1f}\n")
        service.wait_for_sensor_tick()
        burst(service, args.files)
        if args.latency_files:
            latency(service, args.latency_files)


if __name__ == "__main__":
    main()
