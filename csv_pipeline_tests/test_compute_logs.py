"""Steps' output is captured into Dagster's compute log files without starting a process."""

import os
import sys
from pathlib import Path

import psutil
import yaml
from dagster import DagsterInstance
from dagster._core.storage.compute_log_manager import ComputeIOType

from csv_pipeline.defs.compute_logs import FileComputeLogManager
from csv_pipeline_tests.service_fixtures import PRODUCTION_INSTANCE_YAML

LOG_KEY = ["run-1", "compute_logs", "play_totals.validate_format"]


def test_what_a_step_prints_goes_to_its_files_and_nothing_is_started(tmp_path: Path, capfd):
    manager = FileComputeLogManager.from_config_value(None, {"base_dir": str(tmp_path)})

    with capfd.disabled():  # the process's own descriptors 1 and 2, as in a run worker
        streams_before = [os.fstat(descriptor).st_ino for descriptor in (1, 2)]
        with manager.capture_logs(LOG_KEY):
            print("from Python", flush=True)
            os.write(1, b"from a C library\n")  # below sys.stdout: the descriptor itself
            print("a warning", file=sys.stderr, flush=True)
            helpers = psutil.Process().children(recursive=True)
        streams_after = [os.fstat(descriptor).st_ino for descriptor in (1, 2)]

    assert helpers == []
    captured = manager.get_log_data(LOG_KEY)
    assert (captured.stdout, captured.stderr) == (b"from Python\nfrom a C library\n", b"a warning\n")
    assert manager.is_capture_complete(LOG_KEY)
    assert streams_after == streams_before
    with manager.open_log_stream(LOG_KEY, ComputeIOType.STDERR) as stream:
        assert stream is not None and Path(stream.name).parent == tmp_path / "run-1" / "compute_logs"


def test_the_production_instance_uses_it_under_dagster_home(tmp_path: Path, monkeypatch):
    config = yaml.safe_load(PRODUCTION_INSTANCE_YAML.read_text())
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({"compute_logs": config["compute_logs"]}))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    with DagsterInstance.get() as instance:
        manager = instance.compute_log_manager
        assert isinstance(manager, FileComputeLogManager)
        with manager.capture_logs(LOG_KEY):
            print("in the step", flush=True)

    assert (tmp_path / "storage" / "run-1" / "compute_logs").is_dir()
    assert manager.get_log_data(LOG_KEY).stdout == b"in the step\n"
