"""``status`` and ``result`` name a file by its file key, by its path or URL in the inbox, or
name a run by its id; a path outside the inbox is refused.

Against a real ``dagster-webserver`` on a SQLite instance with a local inbox (no daemon, so a
file nobody processed stays PENDING); ``csv-pipeline process`` records a finished run of an
inbox file in the same instance.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterRunStatus

from csv_pipeline.cli.graphql_client import DagsterApiError, DagsterGraphQL, RunResult
from csv_pipeline.cli.run_results import PENDING, report
from csv_pipeline_tests.service_fixtures import (
    CODE,
    STARTUP_TIMEOUT_SECONDS,
    free_port,
    start_process,
    stop_process,
    wait_until,
)

BIN = Path(sys.executable).parent
SEED_FIXTURES = Path(__file__).resolve().parent / "fixtures"
README = Path(__file__).resolve().parents[1] / "README.md"


@dataclass(frozen=True)
class Webserver:
    root: Path
    inbox: Path
    env: dict[str, str]

    def cli(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "csv-pipeline"), *args],
            env=self.env,
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webserver]:
    root = tmp_path_factory.mktemp("status_targets")
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    inbox = root / "inbox"
    inbox.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "CSV_PIPELINE_INBOX": str(inbox),
        "CSV_PIPELINE_OUTBOX": str(root / "outbox"),
        "CSV_PIPELINE_DAGSTER_URL": url,
    }
    process = start_process(
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *CODE], env, root, root / "webserver.log"
    )
    try:
        wait_until(lambda: _answers(url), STARTUP_TIMEOUT_SECONDS, "the webserver", root)
        yield Webserver(root, inbox, env)
    finally:
        stop_process(process)


def _answers(url: str) -> bool | None:
    try:
        DagsterGraphQL(url, timeout_seconds=5).latest_run("any.csv")
    except DagsterApiError:
        return None
    return True


@pytest.mark.parametrize("command", ["status", "result"])
def test_a_file_nobody_processed_is_pending_by_key_and_by_its_paths_in_the_inbox(webserver, command):
    (webserver.inbox / "2026").mkdir(exist_ok=True)
    shutil.copy(SEED_FIXTURES / "initial_test.csv", webserver.inbox / "2026" / "plays.csv")
    pending = "2026/plays.csv: not finished: waiting for the inbox sensor to start its run.\n"
    names = {
        "file key": ("2026/plays.csv", webserver.root),
        "relative path": ("inbox/2026/plays.csv", webserver.root),
        "relative path with ./": ("./inbox/2026/plays.csv", webserver.root),
        "absolute path": (str(webserver.inbox / "2026" / "plays.csv"), Path("/")),
        "path from a folder inside the inbox": ("plays.csv", webserver.inbox / "2026"),
        "path with ..": ("../2026/plays.csv", webserver.inbox / "2026"),
    }

    for name, (target, cwd) in names.items():
        done = webserver.cli(command, target, cwd=cwd)

        assert (done.returncode, done.stderr) == (3, pending), name
        if command == "status":
            printed = json.loads(done.stdout)
            assert (printed["status"], printed["run_id"], printed["file"]) == ("PENDING", None, "2026/plays.csv"), name


def test_a_processed_file_is_found_by_its_path_in_the_inbox(webserver):
    shutil.copy(SEED_FIXTURES / "initial_test.csv", webserver.inbox / "done.csv")
    processed = webserver.cli("process", str(webserver.inbox / "done.csv"), "--output", str(webserver.root / "out"))
    assert processed.returncode == 0, processed.stderr
    run = json.loads(processed.stdout)

    status = webserver.cli("status", "inbox/done.csv")
    result = webserver.cli("result", str(webserver.inbox / "done.csv"))

    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == run
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Song,Date,Total Number of Plays for Date",
        "In The End,2020-01-01,1500",
        "In The End,2020-01-02,500",
        "Umbrella,2020-01-01,150",
        "Umbrella,2020-01-02,250",
    ]


@pytest.mark.parametrize("command", ["status", "result"])
def test_a_path_outside_the_inbox_is_refused_naming_it(webserver, command):
    elsewhere = webserver.root / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    shutil.copy(SEED_FIXTURES / "initial_test.csv", elsewhere / "plays.csv")

    for target, cwd in [(str(elsewhere / "plays.csv"), Path("/")), ("../elsewhere/plays.csv", webserver.inbox)]:
        done = webserver.cli(command, target, cwd=cwd)

        assert done.returncode == 2, target
        assert done.stdout == ""
        assert done.stderr == (
            f"{target} is not inside the inbox {webserver.inbox}: name a file by its path in the inbox, "
            "its file key or a run id.\n"
        )


def test_the_readme_tells_every_status_and_the_exit_code_it_gives():
    """Its table of statuses names every status ``status`` can print, each with its true exit code."""
    rows = re.findall(r"^  \| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \| .+ \| (\d) \|$", README.read_text(), re.MULTILINE)
    documented = {status: int(code) for statuses, code in rows for status in re.findall(r"`([A-Z_]+)`", statuses)}

    assert set(documented) == {status.value for status in DagsterRunStatus} | {PENDING}
    for status, code in documented.items():
        run = RunResult(status=status, run_id=None if status == PENDING else "a-run-id", file="plays.csv")
        assert report(run, print_json=False) == code, status
