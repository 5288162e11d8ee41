"""Run workers forked from a process that has already loaded the code location.

Dagster's code server starts each run worker with multiprocessing's "spawn": a new interpreter
that imports Dagster and the code location before the run's first step, 3.3 s of CPU on this
project's 2-core machine, most of a small file's run. A burst of small files spent its time
there, and the queue's launches waited on it one after another.

A fork server is started once per code location by the run launcher (``ForkServer``, in the
launcher's process: the daemon). It imports the code location and builds its definitions, then
forks a run worker per run; the child runs the run as ``dagster api execute_run`` does and ends.
Forking is safe because the fork server has a single thread and no open connections: it only
reads requests. A child costs a fork (milliseconds) and the pages it writes. What every run would
otherwise prepare again is prepared here once: botocore's S3 descriptions, and the run's Dagster
instance (opened at the first request, its connections then closed, so each child opens its own).

The fork server ends when its launcher's end of the pipe closes (the daemon stopped or died); run
workers it started finish their runs. When a module of the code location changes on disk it
says so instead of forking, and the launcher starts a new one: a run never runs old code.

One JSON line each way per run, on the fork server's standard input and output:
    launcher -> fork server  {"run_id": "...", "instance_ref": "<serialized InstanceRef>"}
    fork server -> launcher  {"pid": 1234}, or {"stale": true}
and one ``{"ready": true}`` line when it has loaded the code location.
"""

import contextlib
import functools
import gc
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, NoReturn

from dagster._core.code_pointer import CodePointer, FileCodePointer, ModuleCodePointer, PackageCodePointer
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.instance.ref import InstanceRef
from dagster._core.origin import RepositoryPythonOrigin
from dagster._serdes import deserialize_value, serialize_value

from csv_pipeline.defs.pooled_instance import close_connections, open_instance
from csv_pipeline.engine.storage import warm_aws_session

READY_TIMEOUT_SECONDS = 180  # importing the code location under load; as run monitoring's start timeout
REPLY_TIMEOUT_SECONDS = 30
# Imported before the first fork, so that no run worker imports them itself: what a run uses
# beyond the code location's own imports (Dagster's run execution, its instance's storage, the
# executor's local cluster). The launcher's process (the daemon) needs none of them.
WARM_MODULES = (
    "dagster._cli.api",
    "dagster_postgres",
    "deltalake",
    "distributed.deploy.local",
    "pyarrow.parquet",
    "s3fs",
    "upath.core",
)


class ForkServerError(RuntimeError):
    """The fork server did not start the run worker."""


class ForkServerEnded(ForkServerError):
    """The fork server ended (or its pipe broke) before it answered."""


class ForkServer:
    """The launcher's side: a fork server of one code location, started on first use, restarted
    when it ended or its code changed. Safe to share between threads."""

    def __init__(self, origin: RepositoryPythonOrigin) -> None:
        self.origin = origin
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start_run(self, run_id: str, instance_ref: InstanceRef) -> int:
        """Fork a run worker for ``run_id``; its pid.

        A fork server that had ended, or whose code changed, is replaced and asked again: it
        forked nothing. One that does not answer in time is killed and the launch fails: it may
        have forked the worker, so asking another could run the run twice.
        """
        request = json.dumps({"run_id": run_id, "instance_ref": serialize_value(instance_ref)})
        with self._lock:
            for _attempt in range(2):
                process = self._running()
                try:
                    _write_line(process, request)
                    answer = _read_line(process, REPLY_TIMEOUT_SECONDS)
                except ForkServerEnded:
                    answer = {}
                except ForkServerError:
                    self._stop()
                    raise
                if "pid" in answer:
                    return answer["pid"]
                self._stop()
            raise ForkServerError(f"The fork server of {self._described()} ended without starting the run worker.")

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _running(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [self.origin.executable_path, "-m", __name__, serialize_value(self.origin)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            try:
                ready = _read_line(self._process, READY_TIMEOUT_SECONDS)
            except ForkServerError as error:
                self._stop()
                raise ForkServerError(f"The fork server of {self._described()} did not start: {error}") from None
            if not ready.get("ready"):
                self._stop()
                raise ForkServerError(f"The fork server of {self._described()} did not start: {ready}")
        return self._process

    def _stop(self) -> None:
        """Close its input, which ends it; kill it if it does not end (it may be hung)."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.stdin.close()  # type: ignore[union-attr]  # started with a pipe
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]

    def _described(self) -> str:
        return str(self.origin.code_pointer.describe())


def _write_line(process: subprocess.Popen, line: str) -> None:
    try:
        process.stdin.write(line.encode() + b"\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
    except OSError as error:  # BrokenPipeError: it ended
        raise ForkServerEnded(str(error)) from error


def _read_line(process: subprocess.Popen, timeout: float) -> dict:
    """The next line from the fork server, as JSON, within ``timeout`` seconds."""
    stdout: IO[bytes] = process.stdout  # type: ignore[assignment]  # started with a pipe
    line = b""
    while not line.endswith(b"\n"):
        readable, _, _ = select.select([stdout], [], [], timeout)
        if not readable:
            process.kill()
            process.wait()
            raise ForkServerError(f"it did not answer within {timeout:.0f} seconds and was killed")
        chunk = os.read(stdout.fileno(), 4096)
        if not chunk:
            raise ForkServerEnded(f"it ended with exit code {process.wait()}")
        line += chunk
    return json.loads(line)


class _SourceStamps:
    """The modification times of the code location's loaded modules: those of its top-level
    package, or of its file's folder."""

    def __init__(self, pointer: CodePointer) -> None:
        if isinstance(pointer, ModuleCodePointer | PackageCodePointer):
            root = str(Path(sys.modules[pointer.module.split(".")[0]].__file__ or "").parent)
        elif isinstance(pointer, FileCodePointer):
            root = str(Path(pointer.python_file).resolve().parent)
        else:
            raise TypeError(f"a fork server loads code from a module, package or file, not {pointer.describe()}")
        self.files = {
            path: os.stat(path).st_mtime_ns
            for loaded in list(sys.modules.values())
            if (path := getattr(loaded, "__file__", None)) and path.startswith(root)
        }

    def changed(self) -> bool:
        try:
            return any(os.stat(path).st_mtime_ns != stamp for path, stamp in self.files.items())
        except OSError:
            return True


def serve(origin: RepositoryPythonOrigin) -> None:
    """The fork server: load the code location, then fork a run worker per request line."""
    # Requests and replies on private descriptors: whatever the code prints goes to standard error.
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    # Stopped with its daemon (the terminal's Ctrl-C, SIGTERM to the group): nothing to clean up.
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGCHLD, _reap_children)

    ReconstructableRepository(origin.code_pointer, executable_path=origin.executable_path).get_definition()
    for module in WARM_MODULES:
        importlib.import_module(module)
    warm_aws_session()  # botocore's S3 descriptions, parsed once for every run worker
    sources = _SourceStamps(origin.code_pointer)
    if threading.active_count() != 1:
        raise RuntimeError(f"the code location started threads, so forking it is unsafe: {threading.enumerate()}")
    gc.freeze()  # what is loaded now stays shared with the children, not copied when collected
    replies.write(b'{"ready": true}\n')

    for line in requests:
        if sources.changed():
            replies.write(b'{"stale": true}\n')
            return
        request = json.loads(line)
        instance_ref = serialize_value(deserialize_value(request["instance_ref"], InstanceRef))  # as the run's own
        pid = os.fork()
        if pid == 0:
            requests.close()
            replies.close()
            _run_worker(request["run_id"], instance_ref)
        replies.write(json.dumps({"pid": pid}).encode() + b"\n")
        _open_for_children(instance_ref)


def _reap_children(_signum: int, _frame: object) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


@functools.cache
def _open_for_children(instance_ref: str) -> None:
    """Open the run workers' instance here, once, after the first child was forked and
    answered for, and leave no connection open: later children inherit it opened. Should it
    fail (PostgreSQL down), it is not tried again: each child opens its own, and its run fails
    there with the reason."""
    try:
        close_connections(open_instance(instance_ref))
    except Exception:  # whatever the storage raises: the children meet and report it
        return
    if threading.active_count() != 1:
        raise RuntimeError(f"opening the instance started threads, so forking is unsafe: {threading.enumerate()}")


def _run_worker(run_id: str, instance_ref: str) -> NoReturn:
    """Run ``run_id`` in this (forked) process as ``dagster api execute_run`` does, then end it."""
    from dagster._cli.api import _execute_run_command_body  # loaded by the fork server
    from dagster._utils.interrupts import capture_interrupts, setup_interrupt_handlers

    exit_code = 1
    try:
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        setup_interrupt_handlers()  # SIGTERM as SIGINT; run termination sends SIGINT
        with capture_interrupts(), open_instance(instance_ref) as instance:
            exit_code = _execute_run_command_body(run_id, instance, lambda _event: None, set_exit_code_on_failure=True)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)


if __name__ == "__main__":
    serve(deserialize_value(sys.argv[1], RepositoryPythonOrigin))
