"""An existing Dask cluster of separate processes.

The cluster is started as an operator would (``dask scheduler`` and ``dask worker`` processes,
see ``cluster_fixtures``). The engine connects to it with ``Client(address)``; the whole job runs
on it through ``csv-pipeline process`` (``execute_job`` on the reconstructable job) with
``DASK_SCHEDULER_ADDRESS`` set, read from the environment as a run worker reads it. The shards
are compared byte for byte with the engine's run on a local cluster, and the scheduler's task
stream says which worker ran what.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec
import pytest
from dagster import DagsterEventType, DagsterInstance, EventLogEntry
from distributed import Client, LocalCluster, get_task_stream

from csv_pipeline.demo_data import write_demo_file
from csv_pipeline.engine import Manifest, aggregate, inspect_file, write_shards
from csv_pipeline.engine.reachability import UnreachablePathError, check_workers_reach

pytest_plugins = ["csv_pipeline_tests.engine_fixtures", "csv_pipeline_tests.cluster_fixtures"]

BIN = Path(sys.executable).parent
MAP_TASK = "map_blocks-"
REDUCE_TASK = "reduce_buckets-"
JOB_STEP = "process_inbox_file.play_totals."
MAX_SHARD_BYTES = 200_000
KILL_TIMEOUT_SECONDS = 120
KILL_BLOCK_BYTES = 128 << 10  # small blocks: many map tasks, so a worker can be killed while they run
JOB_TIMEOUT_SECONDS = 300
# Dask's own connect timeout is 30 s; the run must give up well before that.
FAIL_FAST_SECONDS = 20
# Starting Python and Dagster in the command, on a loaded machine.
STARTUP_ALLOWANCE_SECONDS = 60


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    """8 MB of plays: 16 blocks and 16 buckets of 512 KiB, several shards per bucket."""
    path = tmp_path_factory.mktemp("inbox") / "plays.csv"
    write_demo_file(str(path), 8_000_000, seed=11, progress=False)
    return path


@pytest.fixture(scope="module")
def larger_file(tmp_path_factory) -> Path:
    """30 MB of plays: with 128 KiB blocks (240 map tasks) the map phase lasts long enough on
    two workers to kill one in the middle of it."""
    path = tmp_path_factory.mktemp("inbox") / "larger.csv"
    write_demo_file(str(path), 30_000_000, seed=12, progress=False)
    return path


def run_engine(client: Client, path: Path, out: Path, *, block_bytes: int, bucket_bytes: int) -> Manifest:
    """The engine's three steps, as ``process_file`` runs them, with chosen block and bucket sizes."""
    plan = inspect_file(str(path), path.name, block_bytes=block_bytes, bucket_bytes=bucket_bytes)
    aggregation = aggregate(client, plan, str(out / "scratch"), MAX_SHARD_BYTES)
    return write_shards(client, aggregation, str(out / "run"))


def shard_contents(manifest: Manifest) -> dict[str, bytes]:
    return {Path(shard.uri).name: Path(shard.uri).read_bytes() for shard in manifest.shards}


@pytest.fixture(scope="module")
def local_shards(dask_client, tmp_path_factory) -> Callable[[Path, int], dict[str, bytes]]:
    """The shards of a file read as one block on the local cluster, with the given bucket size."""

    def shards_of(path: Path, bucket_bytes: int) -> dict[str, bytes]:
        out = tmp_path_factory.mktemp("local")
        manifest = run_engine(dask_client, path, out, block_bytes=path.stat().st_size, bucket_bytes=bucket_bytes)
        return shard_contents(manifest)

    return shards_of


def worker_tasks(task_stream: list[dict], prefix: str) -> dict[str, set[str]]:
    """``{worker address: keys}`` of the tasks named ``prefix…`` that finished on each worker."""
    by_worker: dict[str, set[str]] = {}
    for task in task_stream:
        if isinstance(task["key"], str) and task["key"].startswith(prefix) and task["status"] == "OK":
            by_worker.setdefault(task["worker"], set()).add(task["key"])
    return by_worker


def test_the_engine_spreads_map_and_reduce_over_both_workers_with_identical_output(
    dask_cluster, small_file, local_shards, tmp_path
):
    with Client(dask_cluster.address) as client:
        workers = set(dask_cluster.worker_names(client).values())
        with get_task_stream(client) as stream:
            manifest = run_engine(client, small_file, tmp_path, block_bytes=512 << 10, bucket_bytes=512 << 10)

    assert set(worker_tasks(stream.data, MAP_TASK)) == workers
    assert set(worker_tasks(stream.data, REDUCE_TASK)) == workers
    assert len(manifest.shards) > 16
    assert shard_contents(manifest) == local_shards(small_file, 512 << 10)


def test_a_worker_killed_during_the_map_phase_changes_nothing_in_the_output(
    disposable_cluster, larger_file, local_shards, tmp_path
):
    with Client(disposable_cluster.address) as client:
        names = {address: name for name, address in disposable_cluster.worker_names(client).items()}
        with get_task_stream(client) as stream, ThreadPoolExecutor(1) as background:
            run = background.submit(
                run_engine, client, larger_file, tmp_path, block_bytes=KILL_BLOCK_BYTES, bucket_bytes=1 << 20
            )
            victim = wait_for_map_results_while_mapping(client)
            disposable_cluster.kill_worker(names[victim])
            manifest = run.result(timeout=KILL_TIMEOUT_SECONDS)

    (survivor,) = set(names) - {victim}
    maps = worker_tasks(stream.data, MAP_TASK)
    assert maps[victim] & maps[survivor], "the killed worker's map results were recomputed on the survivor"
    assert set(worker_tasks(stream.data, REDUCE_TASK)) == {survivor}
    assert shard_contents(manifest) == local_shards(larger_file, 1 << 20)


def wait_for_map_results_while_mapping(client: Client) -> str:
    """A worker holding finished map results while other map tasks still run, and running no job step."""
    deadline = time.monotonic() + KILL_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        processing = client.processing()
        mapping = any(key.startswith(MAP_TASK) for keys in processing.values() for key in keys)
        running_steps = {worker for worker, keys in processing.items() if any(key.startswith(JOB_STEP) for key in keys)}
        holders = [
            worker
            for worker, keys in client.has_what().items()
            if worker not in running_steps and any(key.startswith(MAP_TASK) for key in keys)
        ]
        if mapping and holders:
            return holders[0]
        time.sleep(0.02)
    raise TimeoutError("no map task finished on a worker outside the job's steps")


def test_the_engine_refuses_a_file_that_the_workers_do_not_see(dask_cluster):
    """``memory://`` is per process: what the client writes there no worker sees, like a local disk."""
    fsspec.filesystem("memory").pipe_file("/inbox/unseen.csv", b"Song,Date,Number of Plays\nx,2020-01-01,1\n")
    plan = inspect_file("memory://inbox/unseen.csv", "unseen.csv")
    with Client(dask_cluster.address) as client, pytest.raises(UnreachablePathError) as refused:
        aggregate(client, plan, "memory://outbox/.scratch/run")

    assert refused.value.message.startswith("memory://inbox/unseen.csv does not exist on Dask workers ")


def test_paths_that_only_the_client_sees_are_refused_naming_them_and_every_worker(dask_cluster):
    with Client(dask_cluster.address) as client:
        workers = sorted(dask_cluster.worker_names(client).values())
        fsspec.filesystem("memory").pipe_file("/inbox/plays.csv", b"Song,Date,Number of Plays\n")
        with pytest.raises(UnreachablePathError) as refused:
            check_workers_reach(client, reads={"memory://inbox/plays.csv": 26}, writes=["memory://outbox/.scratch/run"])

    assert refused.value.problems == {
        ("memory://inbox/plays.csv", "does not exist"): tuple(workers),
        (
            "memory://outbox/.scratch/run",
            "is not shared with the Dask client (a file the client wrote there is missing)",
        ): tuple(workers),
    }
    assert refused.value.message.startswith(
        f"memory://inbox/plays.csv does not exist on Dask workers {', '.join(workers)}; "
    )
    assert refused.value.message.endswith("mount one shared filesystem at the same path on every machine.")


def test_a_different_file_under_the_same_path_on_a_worker_is_refused(dask_cluster, tmp_path):
    """Each machine with its own disk may hold some other file at the inbox path."""
    with Client(dask_cluster.address) as client:
        first = sorted(dask_cluster.worker_names(client).values())[0]
        memory = fsspec.filesystem("memory")  # pickled by reference: on the worker, the worker's own
        client.run(
            memory.pipe_file, "/inbox/other.csv", b"Song,Date,Number of Plays\nx,2020-01-01,1\n", workers=[first]
        )
        memory.pipe_file("/inbox/other.csv", b"Song,Date,Number of Plays\n")
        with pytest.raises(UnreachablePathError) as refused:
            check_workers_reach(client, reads={"memory://inbox/other.csv": 26})

    assert list(refused.value.problems.items())[0] == (
        ("memory://inbox/other.csv", "is a different file (41 bytes, not 26)"),
        (first,),
    )


def test_a_shared_local_directory_and_file_pass_and_the_check_leaves_nothing(dask_cluster, small_file, tmp_path):
    with Client(dask_cluster.address) as client:
        check_workers_reach(
            client, reads={str(small_file): small_file.stat().st_size}, writes=[str(tmp_path / "scratch")]
        )

    assert list((tmp_path / "scratch").iterdir()) == []


def test_workers_in_the_clients_own_process_are_not_asked(dask_cluster):
    """``memory://`` is per process: in-process workers share the client's, so there is nothing to
    ask them, and a size they are never asked about is not checked; workers in processes of
    their own are asked, and do not find the file. (The client still writes its own token in
    each directory, so an unwritable outbox fails at once either way: ``test_failures.py``.)"""
    fsspec.filesystem("memory").pipe_file("/inbox/own.csv", b"Song,Date,Number of Plays\n")
    reads = {"memory://inbox/own.csv": 999}
    with (
        LocalCluster(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        check_workers_reach(client, reads=reads, writes=["memory://outbox/.scratch/run"])

    with Client(dask_cluster.address) as client, pytest.raises(UnreachablePathError):
        check_workers_reach(client, reads=reads)


def process_on_cluster(address: str, path: Path, out: Path, *, block_bytes: int, bucket_bytes: int) -> subprocess.Popen:
    """``csv-pipeline process`` with ``DASK_SCHEDULER_ADDRESS`` set: the job, through ``execute_job``."""
    env = {
        **os.environ,
        "DASK_SCHEDULER_ADDRESS": address,
        "DAGSTER_HOME": str(out / "dagster_home"),
        "CSV_PIPELINE_MAX_SHARD_BYTES": str(MAX_SHARD_BYTES),
        "CSV_PIPELINE_BLOCK_BYTES": str(block_bytes),
        "CSV_PIPELINE_BUCKET_BYTES": str(bucket_bytes),
    }
    command = [str(BIN / "csv-pipeline"), "process", str(path), "--output", str(out / "outbox")]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> dict:
    """The result JSON of a finished ``csv-pipeline process``."""
    stdout, stderr = process.communicate(timeout=JOB_TIMEOUT_SECONDS)
    assert stdout, f"csv-pipeline process printed nothing; its stderr:\n{stderr[-3000:]}"
    return json.loads(stdout) | {"exit_status": process.returncode}


def output_contents(result: dict) -> dict[str, bytes]:
    return {Path(uri).name: Path(uri).read_bytes() for uri in result["output_files"]}


def run_events(dagster_home: Path, run_id: str) -> list[EventLogEntry]:
    """The run's Dagster events, as stored in the instance the command used."""
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        return [record for record in instance.all_logs(run_id) if record.dagster_event]


def test_the_job_runs_its_steps_and_the_aggregation_on_every_worker_of_the_cluster(
    dask_cluster, small_file, local_shards, tmp_path
):
    with Client(dask_cluster.address) as client:
        worker_pids = client.run(os.getpid)
        with get_task_stream(client) as stream:
            result = finished(
                process_on_cluster(
                    dask_cluster.address, small_file, tmp_path, block_bytes=512 << 10, bucket_bytes=512 << 10
                )
            )

    assert (result["status"], result["exit_status"], result["error"]) == ("SUCCESS", 0, None)
    assert output_contents(result) == local_shards(small_file, 512 << 10)
    steps = worker_tasks(stream.data, JOB_STEP)
    assert sorted(key for keys in steps.values() for key in keys) == [
        f"{JOB_STEP}{step}-{result['run_id']}" for step in ("aggregate_plays", "validate_format", "write_shards")
    ]
    events = [record.dagster_event for record in run_events(tmp_path / "dagster_home", result["run_id"])]
    step_pids = {event.step_key: event.pid for event in events if event.event_type == DagsterEventType.STEP_START}
    # three ops, the checks and the play history load
    assert len(step_pids) == 5 and set(step_pids.values()) <= set(worker_pids.values())
    assert set(worker_tasks(stream.data, MAP_TASK)) == set(worker_pids)
    assert set(worker_tasks(stream.data, REDUCE_TASK)) == set(worker_pids)


def test_the_job_succeeds_with_the_same_output_when_a_worker_is_killed_during_the_map_phase(
    disposable_cluster, larger_file, local_shards, tmp_path
):
    with Client(disposable_cluster.address) as client:
        names = {address: name for name, address in disposable_cluster.worker_names(client).items()}
        with get_task_stream(client) as stream:
            job = process_on_cluster(
                disposable_cluster.address, larger_file, tmp_path, block_bytes=KILL_BLOCK_BYTES, bucket_bytes=1 << 20
            )
            victim = wait_for_map_results_while_mapping(client)
            disposable_cluster.kill_worker(names[victim])
            result = finished(job)

    (survivor,) = set(names) - {victim}
    assert (result["status"], result["exit_status"], result["error"]) == ("SUCCESS", 0, None)
    assert output_contents(result) == local_shards(larger_file, 1 << 20)
    maps = worker_tasks(stream.data, MAP_TASK)
    assert maps[victim] & maps[survivor], "the killed worker's map results were recomputed on the survivor"
    assert set(worker_tasks(stream.data, REDUCE_TASK)) == {survivor}


def test_two_runs_of_the_job_at_once_on_one_cluster_each_run_their_own_steps(
    dask_cluster, small_file, local_shards, tmp_path
):
    """Stock dagster-dask keys a step's Dask task ``<job>.<step>``: the second run would get the first's."""
    with Client(dask_cluster.address) as client, get_task_stream(client) as stream:
        jobs = [
            process_on_cluster(
                dask_cluster.address, small_file, tmp_path / run, block_bytes=512 << 10, bucket_bytes=512 << 10
            )
            for run in ("first", "second")
        ]
        results = [finished(job) for job in jobs]

    assert [(result["status"], result["exit_status"]) for result in results] == [("SUCCESS", 0)] * 2
    assert results[0]["run_id"] != results[1]["run_id"]
    for result in results:
        assert all(f"/{result['run_id']}/part-" in uri for uri in result["output_files"]), "its own shards"
        assert output_contents(result) == local_shards(small_file, 512 << 10)
    steps = {key for keys in worker_tasks(stream.data, JOB_STEP).values() for key in keys}
    assert steps == {
        f"{JOB_STEP}{step}-{result['run_id']}"
        for step in ("validate_format", "aggregate_plays", "write_shards")
        for result in results
    }
    (first_start, first_end), (second_start, second_end) = (
        compute_span(stream.data, result["run_id"]) for result in results
    )
    assert first_start < second_end and second_start < first_end, "the two runs were on the cluster at the same time"


def compute_span(task_stream: list[dict], run_id: str) -> tuple[float, float]:
    """When the first of a run's steps started computing and the last one stopped."""
    spans = [
        (period["start"], period["stop"])
        for task in task_stream
        if str(task["key"]).startswith(JOB_STEP) and str(task["key"]).endswith(run_id)
        for period in task["startstops"]
        if period["action"] == "compute"
    ]
    return min(start for start, _ in spans), max(stop for _, stop in spans)


def test_a_scheduler_address_nobody_listens_on_fails_the_run_within_seconds_naming_it(
    unused_scheduler_address, small_file, tmp_path
):
    started = time.monotonic()
    result = finished(
        process_on_cluster(unused_scheduler_address, small_file, tmp_path, block_bytes=1 << 20, bucket_bytes=1 << 20)
    )
    elapsed = time.monotonic() - started

    assert (result["status"], result["exit_status"]) == ("FAILURE", 1)
    assert (
        f"The Dask scheduler at {unused_scheduler_address} (DASK_SCHEDULER_ADDRESS) did not answer" in result["error"]
    )
    records = {
        record.dagster_event.event_type: record for record in run_events(tmp_path / "dagster_home", result["run_id"])
    }
    run_start, run_failure = records[DagsterEventType.RUN_START], records[DagsterEventType.RUN_FAILURE]
    assert unused_scheduler_address in run_failure.dagster_event.event_specific_data.error.message
    assert run_failure.timestamp - run_start.timestamp < FAIL_FAST_SECONDS
    assert elapsed < FAIL_FAST_SECONDS + STARTUP_ALLOWANCE_SECONDS
