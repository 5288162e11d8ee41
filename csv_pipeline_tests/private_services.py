"""Servers a test may stop and start: a PostgreSQL server of its own, a webserver and daemon on it.

The machine's PostgreSQL on 5432 is shared with other tests and is never stopped; a test that
takes the database away starts this one (initdb into a temporary folder, pg_ctl on a free
loopback port) and stops it at the end. As root, the server runs as the ``postgres`` user.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from csv_pipeline_tests.service_fixtures import (
    BIN,
    PRODUCTION_INSTANCE_YAML,
    STARTUP_TIMEOUT_SECONDS,
    _code_location,
    free_port,
    postgres_environment,
    start_process,
    stop_process,
    wait_until,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_CTL_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class PrivatePostgres:
    """A PostgreSQL server in ``data_dir`` on 127.0.0.1:``port``, trust authentication."""

    data_dir: Path
    port: int

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, action: str, *options: str) -> None:
        """``pg_ctl start``, ``stop`` or ``restart``, waiting until it is done."""
        server_options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1"
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            action,
            "-D",
            str(self.data_dir),
            "-l",
            str(self.data_dir / "server.log"),
            "-w",
            "-t",
            str(PG_CTL_TIMEOUT_SECONDS),
            "-o",
            server_options,
            *options,
        )


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh server of its own, stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="csv_pipeline_pg_"))
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        server = PrivatePostgres(root / "data", free_port())
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(server.data_dir), "-U", "postgres", "-A", "trust", "--no-sync")
        server.pg_ctl("start")
        try:
            yield server
        finally:
            server.pg_ctl("stop", "-m", "immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _as_postgres(*args: str) -> None:
    runuser = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*runuser, *args], check=True, capture_output=True, timeout=PG_CTL_TIMEOUT_SECONDS + 30)


@dataclass(frozen=True)
class LocalService:
    """dagster-webserver and dagster-daemon on ``deploy/dagster.yaml``, local inbox and outbox."""

    url: str
    env: dict[str, str]
    inbox: Path
    outbox: Path
    logs: Path
    processes: tuple[subprocess.Popen, ...]

    def all_running(self) -> bool:
        return all(process.poll() is None for process in self.processes)


@contextmanager
def local_service(
    root: Path, postgres_dsn: str, instance_yaml: str | None = None, **environ: str
) -> Iterator[LocalService]:
    """The production processes on the database ``postgres_dsn``, inbox and outbox under ``root``.

    ``instance_yaml`` replaces ``deploy/dagster.yaml``; ``environ`` adds to the environment.
    """
    dagster_home = root / "dagster_home"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(instance_yaml or PRODUCTION_INSTANCE_YAML.read_text())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **postgres_environment(postgres_dsn),
        "DAGSTER_HOME": str(dagster_home),
        "CSV_PIPELINE_INBOX": str(root / "inbox"),
        "CSV_PIPELINE_OUTBOX": str(root / "outbox"),
        "CSV_PIPELINE_DAGSTER_URL": url,
        **environ,
    }
    (root / "inbox").mkdir()
    code = ["-m", "csv_pipeline.definitions"]
    processes = (
        start_process(
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *code],
            env,
            root,
            root / "webserver.log",
        ),
        start_process([str(BIN / "dagster-daemon"), "run", *code], env, root, root / "daemon.log"),
    )
    try:
        wait_until(lambda: _code_location(url), STARTUP_TIMEOUT_SECONDS, "the webserver and the daemon", root)
        yield LocalService(url, env, root / "inbox", root / "outbox", root, processes)
    finally:
        for process in processes:
            stop_process(process)
