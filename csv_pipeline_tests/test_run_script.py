"""``scripts/run`` started in the background, as ``scripts/run &`` does, stops on SIGTERM and on
SIGINT, and with it everything it started: ``dagster dev``, the webserver, the daemon and their
code servers.

A shell starts a background job with SIGINT ignored; so does the ``bash`` that starts it here.
The instance, inbox and outbox are temporary (the script honours ``DAGSTER_HOME`` and the
``CSV_PIPELINE_*`` locations); the inbox holds a small demo file, so the script writes none.
"""

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
import requests

from csv_pipeline_tests.service_fixtures import STARTUP_TIMEOUT_SECONDS, free_port, wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED_FIXTURES = Path(__file__).resolve().parent / "fixtures"
STOP_TIMEOUT_SECONDS = 60


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_in_the_background_stops_with_everything_it_started(tmp_path, signum):
    (tmp_path / "inbox").mkdir()
    shutil.copy(SEED_FIXTURES / "initial_test.csv", tmp_path / "inbox" / "demo.csv")
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "CSV_PIPELINE_INBOX": str(tmp_path / "inbox"),
        "CSV_PIPELINE_OUTBOX": str(tmp_path / "outbox"),
        "CSV_PIPELINE_DASK_DASHBOARD": "127.0.0.1:0",
    }
    shell = subprocess.Popen(
        ["bash", "-c", f"{REPO_ROOT / 'scripts' / 'run'} >run.log 2>&1 & echo $!; wait"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    started: list[psutil.Process] = []
    try:
        run = psutil.Process(int(shell.stdout.readline()))
        wait_until(
            lambda: _answers(f"http://127.0.0.1:{port}/server_info"), STARTUP_TIMEOUT_SECONDS, "the UI", tmp_path
        )
        started = [run, *run.children(recursive=True)]
        commands = " ".join(" ".join(process.cmdline()) for process in started)
        assert "dagster_webserver" in commands and "dagster._daemon" in commands and "grpc" in commands, commands

        run.send_signal(signum)

        _, alive = psutil.wait_procs(started, timeout=STOP_TIMEOUT_SECONDS)
        assert not alive, f"still running {STOP_TIMEOUT_SECONDS} s after {signum.name}: {alive}"
        shell.wait(STOP_TIMEOUT_SECONDS)
    finally:
        for process in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()
        shell.stdout.close()


def _answers(url: str) -> bool | None:
    try:
        return requests.get(url, timeout=5).ok or None
    except requests.ConnectionError:
        return None
