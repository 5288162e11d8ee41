"""The run launcher: run workers forked from a warm process, and told dead when they are gone.

Dagster's ``DefaultRunLauncher`` asks the code server to start each run worker, which it does
with multiprocessing's "spawn": every run imports Dagster and the code location afresh (3.3 s
of CPU here), and the daemon's launches wait on it one after another. This launcher forks each
run worker from a fork server that has the code location loaded (``fork_server``): a launch
takes milliseconds, and the worker runs the run as ``dagster api execute_run`` does.

The default launcher also cannot tell whether a run worker still lives, so run monitoring only
fails runs stuck in STARTING or CANCELING: a run whose worker died with its whole process group
(``systemctl restart``, an out-of-memory kill of the cgroup) stayed STARTED forever, holding a
slot of the run queue. Here the run worker records its own host, pid and process start time as a
run tag when it starts executing (``record_run_worker``, called by the executor), and the
launcher records the same of the process that launched the run. ``check_run_worker_health``
compares the worker's tag with the process table: run monitoring fails a run whose worker is
gone, and run retries run it again. The start time tells a reused pid from the original process.
Terminating a run sends its worker SIGINT, as Dagster's code server does.
"""

import json
import os
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Self

import psutil
from dagster import DagsterInstance
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import ConfigurableClass, ConfigurableClassData, serialize_value

from csv_pipeline.defs.fork_server import ForkServer
from csv_pipeline.labels import LAUNCHED_BY_TAG, RUN_WORKER_TAG

# psutil's start times are rounded to clock ticks; a reused pid starts much later than this.
START_TIME_TOLERANCE_SECONDS = 1.0


@dataclass(frozen=True)
class ProcessIdentity:
    """A process, told apart from a later one that reuses its pid by its start time."""

    run_id: str  # the run the tag was written for: a retry copies its parent's tags
    host: str
    pid: int
    started: float
    recorded: float  # when the tag was written

    @classmethod
    def of_this_process(cls, run_id: str) -> "ProcessIdentity":
        process = psutil.Process()
        return cls(run_id, socket.gethostname(), process.pid, process.create_time(), time.time())

    @classmethod
    def from_tags(cls, run: DagsterRun, tag: str) -> "ProcessIdentity | None":
        """The identity under ``tag`` if it was written for this run (not copied from a parent)."""
        raw = run.tags.get(tag)
        if raw is None:
            return None
        identity = cls(**json.loads(raw))
        return identity if identity.run_id == run.run_id else None

    def as_tag(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def is_gone(self) -> bool | None:
        """True if the process has ended, False if it runs, None if it is on another host."""
        if self.host != socket.gethostname():
            return None
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started) > START_TIME_TOLERANCE_SECONDS:
                return True
            return process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"


def record_run_worker(instance: DagsterInstance, run_id: str) -> None:
    """Tag the run with this process, the one executing it, for ``check_run_worker_health``."""
    instance.add_run_tags(run_id, {RUN_WORKER_TAG: ProcessIdentity.of_this_process(run_id).as_tag()})


class ForkingRunLauncher(RunLauncher, ConfigurableClass):
    """Forks each run worker from its code location's fork server, records who launched a run,
    and tells run monitoring whether its worker lives."""

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        self._inst_data = inst_data
        self._fork_servers: dict[str, ForkServer] = {}  # by serialized code location origin
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> Self:
        return cls(inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        self._instance.add_run_tags(run.run_id, {LAUNCHED_BY_TAG: ProcessIdentity.of_this_process(run.run_id).as_tag()})
        origin = context.job_code_origin.repository_origin  # type: ignore[union-attr]  # every launched run has one
        server = self._fork_servers.setdefault(serialize_value(origin), ForkServer(origin))
        server.start_run(run.run_id, self._instance.get_ref())

    def terminate(self, run_id: str) -> bool:
        """Interrupt the run's worker (SIGINT), which then stops its steps and ends the run CANCELED."""
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        worker = ProcessIdentity.from_tags(run, RUN_WORKER_TAG)
        if worker is None or worker.is_gone() is not False:
            why = self.check_run_worker_health(run).msg  # not recorded yet, gone, or on another host
            self._instance.report_engine_event(f"Cannot terminate the run: {why}.", run, cls=type(self))
            return False
        self._instance.report_run_canceling(run)
        os.kill(worker.pid, signal.SIGINT)
        return True

    def dispose(self) -> None:
        for server in self._fork_servers.values():
            server.stop()

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        """FAILED when the recorded worker process has ended; RUNNING when it runs or cannot be
        seen from here (another host, or the worker has not recorded itself yet): run
        monitoring fails a run on any answer but RUNNING and SUCCESS."""
        worker = ProcessIdentity.from_tags(run, RUN_WORKER_TAG)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "the run worker has not recorded its process yet")
        gone = worker.is_gone()
        if gone is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"the run worker is {worker.describe()}, not here")
        if gone:
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"the run worker, {worker.describe()}, is gone: killed, or its machine or service restarted",
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"the run worker is {worker.describe()}")
