"""``csv-pipeline process``, run as the installed console script: JSON out, exit 0, 1 or 2."""

import contextlib
import csv
import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from csv_pipeline.labels import FILE_TAG

CSV_PIPELINE = Path(sys.executable).parent / "csv-pipeline"
SEED_FIXTURES = Path(__file__).resolve().parent / "fixtures"
RESULT_KEYS = {"status", "run_id", "file", "output_files", "rows_in", "rows_out", "error"}
DASK_DASHBOARD_PORT = 8787  # where a Dask scheduler serves HTTP unless told otherwise


def process(tmp_path: Path, *args: str, **environ: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), **environ}
    return subprocess.run(
        [str(CSV_PIPELINE), "process", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )


def test_a_good_file_prints_its_result_and_exits_0(tmp_path):
    done = process(tmp_path, str(SEED_FIXTURES / "initial_test.csv"), "--output", "out")

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == RESULT_KEYS
    assert result["status"] == "SUCCESS"
    assert result["file"] == "initial_test.csv"
    assert (result["rows_in"], result["rows_out"], result["error"]) == (7, 4, None)
    run_dir = tmp_path / "out" / "initial_test" / result["run_id"]
    assert result["output_files"] == [str(run_dir / "part-00000.csv")]
    with open(result["output_files"][0], newline="") as shard:
        assert list(csv.reader(shard)) == [
            ["Song", "Date", "Total Number of Plays for Date"],
            ["In The End", "2020-01-01", "1500"],
            ["In The End", "2020-01-02", "500"],
            ["Umbrella", "2020-01-01", "150"],
            ["Umbrella", "2020-01-02", "250"],
        ]
    assert (run_dir / "_SUCCESS").is_file()

    # The same job as the sensor's, recorded in the instance of DAGSTER_HOME, so the UI shows it.
    with DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        run = instance.get_run_by_id(result["run_id"])
        assert run.job_name == "process_inbox_file"
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags[FILE_TAG] == run.tags["dagster/partition"] == "initial_test.csv"


def test_a_bad_file_prints_the_error_and_exits_1(tmp_path):
    done = process(tmp_path, str(SEED_FIXTURES / "initial_test_with_invalid_value.csv"), "--output", "out")

    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == RESULT_KEYS
    assert result["status"] == "FAILURE"
    message = "initial_test_with_invalid_value.csv: line 4: Number of Plays 'patata' is not a non-negative integer"
    assert result["error"] == message
    assert message in done.stderr
    assert (result["output_files"], result["rows_in"], result["rows_out"]) == ([], None, None)
    assert not (tmp_path / "out" / "initial_test_with_invalid_value").exists()


def test_a_dask_scheduler_that_does_not_answer_fails_the_run_naming_it(tmp_path):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{unused.getsockname()[1]}"

    done = process(tmp_path, str(SEED_FIXTURES / "initial_test.csv"), "--output", "out", DASK_SCHEDULER_ADDRESS=address)

    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["status"] == "FAILURE"
    assert f"The Dask scheduler at {address} (DASK_SCHEDULER_ADDRESS) did not answer" in result["error"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["missing.csv", "--output", "out"], "missing.csv is not a file"),
        (["in", "--output", "out"], "in is not a file"),
        ([str(SEED_FIXTURES / "initial_test.csv")], "the following arguments are required: --output"),
    ],
    ids=["missing input", "directory input", "no --output"],
)
def test_usage_errors_and_unreadable_input_exit_2(tmp_path, args, said):
    (tmp_path / "in").mkdir()

    done = process(tmp_path, *args)

    assert done.returncode == 2
    assert done.stdout == ""
    assert said in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_first_run_in_a_fresh_folder_prints_no_telemetry_notice_nor_a_dashboard_port_warning(tmp_path):
    """A new user's first command: no DAGSTER_HOME, no ~/.dagster, and the Dask dashboard's usual
    port held by something else (another cluster's dashboard)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {name: value for name, value in os.environ.items() if name != "DAGSTER_HOME"}
    env = {name: value for name, value in env.items() if not name.startswith("CSV_PIPELINE_")}
    env["HOME"] = str(home)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(socket.create_server(("127.0.0.1", DASK_DASHBOARD_PORT)))
        except OSError as error:  # in use already: what the test needs holds as well
            if error.errno != errno.EADDRINUSE:
                raise

        done = subprocess.run(
            [str(CSV_PIPELINE), "process", str(SEED_FIXTURES / "initial_test.csv"), "--output", "out"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )

    assert done.returncode == 0, done.stderr
    assert "telemetry" not in done.stderr.lower()
    assert str(DASK_DASHBOARD_PORT) not in done.stderr
    assert (tmp_path / ".dagster_home" / "dagster.yaml").is_file()
