"""Steps' standard output and error captured into files, without helper processes.

Dagster's ``LocalComputeLogManager`` also copies what a step prints back to the process's own
streams: for each stream of each step it starts ``tail -F`` and a Python that watches for
orphans. A run of five steps starts twenty processes: 0.27 of the 1.05 CPU-seconds of a warm
run of a two-row file (``csv-pipeline process``), and 30 such files through the service took
53.2 s with them, 50.0 s without. Here a step's descriptors 1 and 2 are pointed at its log files
for the step's duration, as Dagster does before it starts the copies, and nothing else is
started: what a step prints is in the UI (the step's stdout and stderr), and no longer also
in the log of the process that ran it (the daemon's, for sensor-launched runs).

The files, their names and the completion marker are Dagster's, so the webserver reads them
as it reads ``LocalComputeLogManager``'s.
"""

import os
import sys
import tempfile
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from dagster import Field, Float, StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.execution.compute_logs import redirect_to_file
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._serdes import ConfigurableClassData
from dagster._utils import ensure_file, touch_file


class FileComputeLogManager(LocalComputeLogManager):
    """``LocalComputeLogManager`` that writes a step's output to its files only."""

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {
            "base_dir": Field(
                StringSource, is_required=False, description="Where the files go; $DAGSTER_HOME/storage if not given."
            ),
            "polling_timeout": Field(Float, is_required=False),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "FileComputeLogManager":
        base_dir = config_value.get("base_dir") or _storage_dir()
        return cls(base_dir, config_value.get("polling_timeout"), inst_data=inst_data)

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[CapturedLogContext, None, None]:
        out_path = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        err_path = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        ensure_file(out_path)
        ensure_file(err_path)
        with redirect_to_file(sys.stdout, out_path), redirect_to_file(sys.stderr, err_path):
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))  # the webserver stops following the files


def _storage_dir() -> str:
    """Dagster's default place, ``$DAGSTER_HOME/storage``; a Dask worker on another machine may
    have no ``DAGSTER_HOME``, and then keeps its steps' output in its temporary directory."""
    home = os.environ.get("DAGSTER_HOME") or os.path.join(tempfile.gettempdir(), "dagster")
    return os.path.join(home, "storage")
