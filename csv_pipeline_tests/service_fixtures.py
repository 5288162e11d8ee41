"""The production processes, for end-to-end tests: a pytest plugin.

Per test session: a fresh PostgreSQL database on the machine's server (dropped at the end),
moto's S3 server on a free loopback port with one bucket, and ``dagster-webserver`` plus
``dagster-daemon`` started with ``deploy/dagster.yaml`` and ``csv_pipeline.definitions``,
inbox and outbox in that bucket. Each process runs in its own process group, so stopping it
also stops the code server, the fork server and the run workers it started.
"""

import contextlib
import csv
import os
import posixpath
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psutil
import psycopg2
import pytest
import requests
import s3fs
import yaml

from csv_pipeline.cli.graphql_client import DagsterGraphQL, RunResult
from csv_pipeline.labels import FILE_TAG, RUN_WORKER_TAG

REPO_ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_INSTANCE_YAML = REPO_ROOT / "deploy" / "dagster.yaml"
POSTGRES_SERVER = "postgres@127.0.0.1:5432"
BUCKET = "plays"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Small enough that the test files are written as several shards.
MAX_SHARD_BYTES = 20_000
STARTUP_TIMEOUT_SECONDS = 180
BIN = Path(sys.executable).parent
CODE = ["-m", "csv_pipeline.definitions"]
FORK_SERVER_MODULE = "csv_pipeline.defs.fork_server"

T = TypeVar("T")


@dataclass(frozen=True)
class DagsterService:
    """A running webserver and daemon, and where to find everything they use."""

    url: str
    env: dict[str, str]
    inbox: str
    outbox: str
    s3: s3fs.S3FileSystem
    graphql: DagsterGraphQL
    postgres_dsn: str
    location: str
    max_shard_bytes: int
    logs: Path
    processes: dict[str, subprocess.Popen]  # "webserver", "daemon" (the one running), killed daemons

    def daemon_fork_server(self) -> psutil.Process | None:
        """The fork server the running daemon's run launcher started (its run workers are forked
        from it), once it has launched a run."""
        for child in psutil.Process(self.processes["daemon"].pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if FORK_SERVER_MODULE in child.cmdline():
                    return child
        return None

    def kill_daemon(self, whole_group: bool) -> None:
        """SIGKILL the daemon alone, or its whole process group (its code server, its fork server
        and the run workers), as an out-of-memory kill of its cgroup or a hard restart would."""
        daemon = self.processes["daemon"]
        if whole_group:
            _signal_group(daemon, signal.SIGKILL)
        else:
            daemon.kill()
        daemon.wait()

    def start_daemon(self) -> None:
        """Start the daemon again, in a new process group, its output appended to its log.

        What the killed daemon left in its group (run workers still going) is stopped at the end.
        """
        self.processes[f"killed daemon {self.processes['daemon'].pid}"] = self.processes["daemon"]
        self.processes["daemon"] = start_process(
            [str(BIN / "dagster-daemon"), "run", *CODE], self.env, self.logs, self.logs / "daemon.log", append=True
        )

    def put(self, file_key: str, content: bytes) -> None:
        """Drop a file into the S3 inbox, as any S3 client would."""
        self.s3.pipe_file(f"{self.inbox}/{file_key}", content)

    def put_large(self, local_path: Path, file_key: str) -> None:
        """Drop a large local file into the S3 inbox: uploaded beside the inbox, then copied into
        it in one request, so that the sensor sees it appear once and complete. (Put straight
        into the inbox during a loaded suite, a 30 MB file once showed the sensor two versions,
        a second apart, and the second started a run of its own.)"""
        staging = f"{posixpath.dirname(self.inbox)}/staging/{uuid.uuid4().hex}"
        self.s3.put_file(str(local_path), staging)
        self.s3.copy(staging, f"{self.inbox}/{file_key}")
        self.s3.rm(staging)

    def wait_for_run(
        self, file_key: str, until: Callable[[RunResult], bool] = lambda run: run.finished, timeout: float = 300
    ) -> RunResult:
        """The newest run of ``file_key`` once it exists and ``until`` holds for it (by default: it ended)."""

        def ready() -> RunResult | None:
            run = self.graphql.latest_run(file_key)
            return run if run is not None and until(run) else None

        return wait_until(ready, timeout, f"the run of {file_key}", self.logs)

    def watch_statuses(self, file_keys: list[str], timeout: float = 600) -> list[list[str]]:
        """The status of each file's latest run (PENDING before it has one), sampled until all ended."""
        samples: list[list[str]] = []

        def all_ended() -> bool | None:
            runs = [self.graphql.latest_run(file_key) for file_key in file_keys]
            samples.append([run.status if run else "PENDING" for run in runs])
            return True if all(run and run.finished for run in runs) else None

        wait_until(all_ended, timeout, f"the runs of {', '.join(file_keys)}", self.logs)
        return samples

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """The installed ``csv-pipeline`` console script, in the service's environment."""
        return subprocess.run(
            [str(BIN / "csv-pipeline"), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def read_csv(self, uri: str) -> list[list[str]]:
        """All rows of a CSV file in the bucket, read with the csv module."""
        with self.s3.open(uri, "r", encoding="utf-8", newline="") as stream:
            return list(csv.reader(stream))

    def runs(self, file_key: str | None = None) -> list[dict[str, Any]]:
        """Every run (of ``file_key`` if given), newest first, as GraphQL lists them: id, status,
        parent run id and tags."""
        tags = [{"key": FILE_TAG, "value": file_key}] if file_key else []
        return graphql_data(self.url, _RUNS, {"tags": tags})["runsOrError"]["results"]

    def run_ids(self, file_key: str | None = None) -> list[str]:
        return [run["runId"] for run in self.runs(file_key)]

    def wait_for_sensor_tick(self) -> None:
        """Wait until a tick of the inbox sensor that started after this call has ended."""
        since = time.time()

        def ended() -> bool | None:
            state = graphql_data(self.url, _SENSOR_TICKS, {"location": self.location, "since": since})
            for tick in state["sensorOrError"]["sensorState"]["ticks"]:
                if tick["status"] == "FAILURE":
                    pytest.fail(f"inbox_sensor tick failed: {tick['error']['message']}")
                if tick["status"] in ("SUCCESS", "SKIPPED"):
                    return True
            return None

        wait_until(ended, 120, "a tick of inbox_sensor", self.logs)

    def max_concurrent_runs(self) -> int:
        """The run queue's limit, as the running instance has it."""
        return self._run_queue_config()["maxConcurrentRuns"]

    def tag_concurrency_limits(self) -> list[dict[str, Any]]:
        """The run queue's limits per run tag, as the running instance has them."""
        return yaml.safe_load(self._run_queue_config()["tagConcurrencyLimitsYaml"] or "[]")

    def _run_queue_config(self) -> dict[str, Any]:
        query = "{ instance { runQueueConfig { maxConcurrentRuns tagConcurrencyLimitsYaml } } }"
        return graphql_data(self.url, query)["instance"]["runQueueConfig"]

    def parent_run_id(self, run_id: str) -> str | None:
        return graphql_data(self.url, _PARENT_RUN, {"runId": run_id})["runOrError"]["parentRunId"]

    def captured_logs(self, run_id: str) -> dict[str, tuple[str, str]]:
        """What each step of the run printed, ``step key: (stdout, stderr)``, as the UI reads it."""
        run = graphql_data(self.url, _CAPTURED_LOG_KEYS, {"runId": run_id})["runOrError"]
        logs = {}
        for event in run["eventConnection"]["events"]:
            if event.get("fileKey"):
                log_key = [run_id, "compute_logs", event["fileKey"]]
                captured = graphql_data(self.url, _CAPTURED_LOGS, {"logKey": log_key})["capturedLogs"]
                for step_key in event["stepKeys"]:
                    logs[step_key] = (captured["stdout"] or "", captured["stderr"] or "")
        return logs

    def runs_told(self, file_key: str) -> str:
        """Every run of ``file_key`` with what launched it, and the daemon's lines about the file:
        what a failed assertion on runs needs to say."""
        lines = [
            f"{run['runId']} {run['status']} parent={run['parentRunId']} "
            + " ".join(f"{tag['key']}={tag['value']}" for tag in run["tags"] if tag["key"].startswith("dagster/"))
            for run in self.runs(file_key)
        ]
        daemon_log = (self.logs / "daemon.log").read_text(errors="replace").splitlines()
        return "\n".join(lines + [line for line in daemon_log if file_key in line and "SensorDaemon" in line])

    def run_worker_pid(self, run_id: str) -> int:
        """The process executing ``run_id``, as its launch event names it."""
        events = graphql_data(self.url, _ENGINE_EVENTS, {"runId": run_id})["runOrError"]["eventConnection"]["events"]
        (pid,) = [
            int(entry["text"])
            for event in events
            if event.get("message", "").startswith("Started process for run")
            for entry in event["metadataEntries"]
            if entry["label"] == "pid"
        ]
        return pid

    def kill_run_worker(self, run_id: str) -> None:
        """SIGKILL the process executing ``run_id``, as an out-of-memory killer would."""
        os.kill(self.run_worker_pid(run_id), signal.SIGKILL)

    @contextlib.contextmanager
    def run_worker_paused(self, run_id: str) -> Iterator[None]:
        """Hold ``run_id`` in flight (its worker stopped by SIGSTOP) however fast it would finish."""
        pid = self.run_worker_pid(run_id)
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def worker_recorded(self, run_id: str) -> bool:
        """Whether the run's worker has tagged the run with its process, as it does when it starts executing."""
        run = graphql_data(self.url, _RUN_TAGS, {"runId": run_id})["runOrError"]
        return any(tag["key"] == RUN_WORKER_TAG and run_id in tag["value"] for tag in run["tags"])

    def runs_in_database(self) -> list[tuple[str, str]]:
        """``(run_id, status)`` of every row of the runs table in the test database."""
        with psycopg2.connect(self.postgres_dsn) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT run_id, status FROM runs ORDER BY create_timestamp")
            return cursor.fetchall()


def postgres_environment(dsn: str) -> dict[str, str]:
    """The ``DAGSTER_PG_*`` variables that ``deploy/dagster.yaml`` reads, for a ``postgresql://`` DSN."""
    url = urlsplit(dsn)
    return {
        "DAGSTER_PG_USERNAME": url.username or "",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_HOST": url.hostname or "",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_DB": url.path.lstrip("/"),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(
    probe: Callable[[], T | None], timeout: float, what: str, logs: Path | None = None, interval: float = 0.25
) -> T:
    """Poll ``probe`` every ``interval`` seconds until it returns something other than None; fail
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = probe()
        if answer is not None:
            return answer
        time.sleep(interval)
    pytest.fail(f"waited {timeout:.0f} s for {what}" + (f"; process logs: {_log_tails(logs)}" if logs else ""))


def start_process(args: list[str], env: dict[str, str], cwd: Path, log: Path, append: bool = False) -> subprocess.Popen:
    """Start ``args`` in a new process group with its output in ``log``."""
    with log.open("ab" if append else "wb") as output:
        return subprocess.Popen(args, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(process: subprocess.Popen, grace_seconds: float = 30) -> None:
    """SIGTERM the process group, SIGKILL what is still there after ``grace_seconds``."""
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        pass
    # The leader may be gone while children it started (code server, fork server, run workers) linger.
    _signal_group(process, signal.SIGKILL)
    process.wait()


def _signal_group(process: subprocess.Popen, signum: signal.Signals) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def _log_tails(logs: Path, lines: int = 40) -> str:
    tails = []
    for log in sorted(logs.glob("*.log")):
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        tails.append(f"\n--- {log.name} ---\n{tail}")
    return "".join(tails)


@contextmanager
def fresh_database() -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL server, dropped at the end."""
    name = f"csv_pipeline_e2e_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(f"postgresql://{POSTGRES_SERVER}/postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql://{POSTGRES_SERVER}/{name}"
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A database of the test session, dropped after it."""
    with fresh_database() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on a free loopback port."""
    with moto_server(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@contextmanager
def moto_server(logs: Path) -> Iterator[str]:
    """moto's S3 server on a free loopback port, its log in ``logs``; its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = start_process(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], dict(os.environ), logs, logs / "moto.log"
    )
    try:
        wait_until(lambda: _answers(f"{endpoint}/moto-api/"), 60, "moto_server", logs)
        yield endpoint
    finally:
        stop_process(server)


@pytest.fixture(scope="session")
def dagster_service(
    postgres_dsn: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DagsterService]:
    """dagster-webserver and dagster-daemon on the production dagster.yaml, S3 inbox and outbox."""
    with running_service(postgres_dsn, s3_endpoint, tmp_path_factory.mktemp("service"), BUCKET) as service:
        yield service


@contextmanager
def running_service(
    postgres_dsn: str, s3_endpoint: str, root: Path, bucket: str, extra_env: dict[str, str] | None = None
) -> Iterator[DagsterService]:
    """dagster-webserver and dagster-daemon on ``postgres_dsn``, inbox and outbox in ``bucket``;
    ``extra_env`` adds to (or overrides) the environment of both."""
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(PRODUCTION_INSTANCE_YAML, dagster_home / "dagster.yaml")
    s3 = s3fs.S3FileSystem(
        endpoint_url=s3_endpoint,
        key=FAKE_AWS["AWS_ACCESS_KEY_ID"],
        secret=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    s3.mkdir(bucket)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **FAKE_AWS,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "DAGSTER_HOME": str(dagster_home),
        **postgres_environment(postgres_dsn),
        "CSV_PIPELINE_INBOX": f"s3://{bucket}/inbox",
        "CSV_PIPELINE_OUTBOX": f"s3://{bucket}/outbox",
        "CSV_PIPELINE_MAX_SHARD_BYTES": str(MAX_SHARD_BYTES),
        "CSV_PIPELINE_DAGSTER_URL": url,
        **(extra_env or {}),
    }
    processes = {
        "webserver": start_process(
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *CODE],
            env,
            root,
            root / "webserver.log",
        ),
        "daemon": start_process([str(BIN / "dagster-daemon"), "run", *CODE], env, root, root / "daemon.log"),
    }
    try:
        location = wait_until(
            lambda: _code_location(url), STARTUP_TIMEOUT_SECONDS, "the webserver and the daemon", root
        )
        yield DagsterService(
            url=url,
            env=env,
            inbox=env["CSV_PIPELINE_INBOX"],
            outbox=env["CSV_PIPELINE_OUTBOX"],
            s3=s3,
            graphql=DagsterGraphQL(url),
            postgres_dsn=postgres_dsn,
            location=location,
            max_shard_bytes=int(env["CSV_PIPELINE_MAX_SHARD_BYTES"]),
            logs=root,
            processes=processes,
        )
    finally:
        for process in list(processes.values()):
            stop_process(process)


_READINESS = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } }
    }
  }
  instance { daemonHealth { allDaemonStatuses { daemonType healthy } } }
}
"""
_DAEMONS_NEEDED = {"SENSOR", "QUEUED_RUN_COORDINATOR", "MONITORING"}
_RUN_TAGS = """
query RunTags($runId: ID!) { runOrError(runId: $runId) { ... on Run { tags { key value } } } }
"""
_PARENT_RUN = """
query ParentRun($runId: ID!) { runOrError(runId: $runId) { ... on Run { parentRunId } } }
"""
_RUNS = """
query Runs($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId status parentRunId tags { key value } } } }
}
"""
_ENGINE_EVENTS = """
query EngineEvents($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run {
      eventConnection {
        events { ... on EngineEvent { message metadataEntries { label ... on TextMetadataEntry { text } } } }
      }
    }
  }
}
"""
_CAPTURED_LOG_KEYS = """
query CapturedLogKeys($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run { eventConnection { events { ... on LogsCapturedEvent { fileKey stepKeys } } } }
  }
}
"""
_CAPTURED_LOGS = """
query CapturedLogs($logKey: [String!]!) { capturedLogs(logKey: $logKey) { stdout stderr } }
"""
_SENSOR_TICKS = """
query SensorTicks($location: String!, $since: Float!) {
  sensorOrError(sensorSelector: {
    repositoryLocationName: $location, repositoryName: "__repository__", sensorName: "inbox_sensor"
  }) {
    ... on Sensor { sensorState { ticks(afterTimestamp: $since, limit: 10) { status error { message } } } }
  }
}
"""


def graphql_data(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30).json()
    assert not answer.get("errors"), answer["errors"]
    return answer["data"]


def _code_location(url: str) -> str | None:
    """The name of the loaded code location once the daemons the tests rely on beat, else None."""
    try:
        data = graphql_data(url, _READINESS)
    except (requests.RequestException, ValueError):
        return None
    locations = data["workspaceOrError"].get("locationEntries") or []
    for location in locations:
        loaded = location["locationOrLoadError"]
        if loaded and loaded["__typename"] == "PythonError":
            pytest.fail(f"csv_pipeline.definitions did not load in the webserver: {loaded['message']}")
    healthy = {
        status["daemonType"] for status in data["instance"]["daemonHealth"]["allDaemonStatuses"] if status["healthy"]
    }
    if len(locations) == 1 and locations[0]["loadStatus"] == "LOADED" and _DAEMONS_NEEDED <= healthy:
        return locations[0]["name"]
    return None


def _answers(url: str) -> bool | None:
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return None
    return True
