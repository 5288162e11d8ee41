"""A real Dask cluster started by hand, as an operator would: a pytest plugin.

``dask scheduler`` and ``dask worker`` run as separate processes from the venv's ``bin``, on
127.0.0.1, with free ports (the scheduler picks its own and writes its address to a scheduler
file), no dashboards (their small HTTP servers on loopback too) and one thread per worker.
Each process runs in its own process group, so killing a worker kills its nanny too, as when a
machine is lost. Everything is stopped at the end.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from distributed import Client

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 10
# Without a dashboard a Dask server still answers /health and /metrics: on loopback, any port.
NO_DASHBOARD = ("--no-dashboard", "--dashboard-address", "127.0.0.1:0")


class DaskCluster:
    """A scheduler and named workers, each a ``dask`` command line process with a log file."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workers: dict[str, subprocess.Popen] = {}
        scheduler_file = workdir / "scheduler.json"
        self.scheduler = self._start(
            "scheduler",
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                *NO_DASHBOARD,
                "--scheduler-file",
                str(scheduler_file),
            ],
        )
        self.address = self._wait_for_address(scheduler_file)

    def add_workers(self, *names: str, memory_limit: str = "auto") -> None:
        """Start single-threaded workers (each under its nanny) and wait until the scheduler has them."""
        for name in names:
            self.workers[name] = self._start(
                name,
                [
                    "worker",
                    self.address,
                    "--name",
                    name,
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    *NO_DASHBOARD,
                    "--memory-limit",
                    memory_limit,
                    "--local-directory",
                    str(self.workdir / name),
                    "--death-timeout",
                    "30",
                ],
            )
        with Client(self.address, timeout=STARTUP_TIMEOUT_SECONDS) as client:
            deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
            while missing := set(names) - set(self.worker_names(client)):
                for name in missing:
                    self._check_alive(name, self.workers[name])
                if time.monotonic() > deadline:
                    raise TimeoutError(f"workers {sorted(missing)} did not join {self.address}; see {self.workdir}")
                time.sleep(0.1)

    def worker_names(self, client: Client) -> dict[str, str]:
        """``{name: address}`` of the workers the scheduler knows now."""
        return {info["name"]: address for address, info in client.scheduler_info(n_workers=-1)["workers"].items()}

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker and its nanny at once: nothing restarts it."""
        process = self.workers.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        for name in list(self.workers):
            self._stop(self.workers.pop(name))
        self._stop(self.scheduler)

    def _start(self, name: str, arguments: list[str]) -> subprocess.Popen:
        with open(self.workdir / f"{name}.log", "wb") as log:
            return subprocess.Popen(
                [str(BIN / "dask"), *arguments],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )

    def _wait_for_address(self, scheduler_file: Path) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            self._check_alive("scheduler", self.scheduler)
            if scheduler_file.exists():
                try:
                    return json.loads(scheduler_file.read_text())["address"]
                except (ValueError, KeyError):
                    pass  # half written
            if time.monotonic() > deadline:
                raise TimeoutError(f"the scheduler wrote no address; see {self.workdir / 'scheduler.log'}")
            time.sleep(0.1)

    def _check_alive(self, name: str, process: subprocess.Popen) -> None:
        if process.poll() is not None:
            log = (self.workdir / f"{name}.log").read_text(errors="replace")
            raise RuntimeError(f"dask {name} exited with status {process.returncode}:\n{log[-3000:]}")

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def dask_cluster_of(workdir: Path, workers: int, *, memory_limit: str = "auto") -> Iterator[DaskCluster]:
    """A running cluster of ``workers`` workers named ``worker-0``, ``worker-1``, …"""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = DaskCluster(workdir)
    try:
        cluster.add_workers(*(f"worker-{index}" for index in range(workers)), memory_limit=memory_limit)
        yield cluster
    finally:
        cluster.close()


def unused_address() -> str:
    """A loopback address that nothing listens on (a port just freed by the kernel)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory) -> Iterator[DaskCluster]:
    """A scheduler with two single-threaded workers, shared by a module's tests (which keep it whole)."""
    with dask_cluster_of(tmp_path_factory.mktemp("dask-cluster"), 2) as cluster:
        yield cluster


@pytest.fixture
def disposable_cluster(tmp_path_factory) -> Iterator[DaskCluster]:
    """A scheduler with two single-threaded workers for one test, which may kill them."""
    with dask_cluster_of(tmp_path_factory.mktemp("dask-cluster"), 2) as cluster:
        yield cluster


@pytest.fixture
def unused_scheduler_address() -> str:
    return unused_address()
