"""The environment variables that configure csv_pipeline, read in this one place.

Every default is embedded, so a fresh checkout runs with nothing set. No Dagster imports:
the CLI reads these too.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from csv_pipeline.engine.sizes import BLOCK_BYTES as DEFAULT_BLOCK_BYTES
from csv_pipeline.engine.sizes import BUCKET_BYTES as DEFAULT_BUCKET_BYTES
from csv_pipeline.engine.sizes import DEFAULT_MAX_SHARD_BYTES

# How long before the newest inbox file another one may still appear in a listing with its
# older time: S3 dates a multipart upload from its start, so this is the longest upload.
DEFAULT_UPLOAD_WINDOW_SECONDS = 900
# With inbox notifications (an SQS queue), how often the sensor still lists the whole inbox.
DEFAULT_INBOX_LISTING_SECONDS = 600


@dataclass(frozen=True)
class Settings:
    """Where files come from and go to, and which Dask cluster and Dagster instance to use."""

    inbox: str
    outbox: str
    scratch: str
    max_shard_bytes: int
    block_bytes: int
    bucket_bytes: int
    dask_scheduler_address: str | None
    dask_dashboard: str | None  # host:port of a per-run local cluster's dashboard; None: no dashboard
    dagster_url: str
    dagster_home: str
    step_outputs: str | None  # where ops hand each other their small results; None: the instance's storage
    history: str | None = None  # the play history table; None: <outbox>/_history of each run
    upload_window_seconds: int = DEFAULT_UPLOAD_WINDOW_SECONDS
    inbox_queue: str | None = None  # the SQS queue URL of the S3 inbox's notifications; None: list every tick
    inbox_listing_seconds: int = DEFAULT_INBOX_LISTING_SECONDS

    @property
    def history_url(self) -> str:
        return self.history or f"{self.outbox}/_history"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        outbox = absolute_url(environ.get("CSV_PIPELINE_OUTBOX", "./data/outbox"))
        return cls(
            inbox=absolute_url(environ.get("CSV_PIPELINE_INBOX", "./data/inbox")),
            outbox=outbox,
            scratch=absolute_url(environ.get("CSV_PIPELINE_SCRATCH", f"{outbox}/.scratch")),
            max_shard_bytes=_positive_int(environ, "CSV_PIPELINE_MAX_SHARD_BYTES", DEFAULT_MAX_SHARD_BYTES),
            block_bytes=_positive_int(environ, "CSV_PIPELINE_BLOCK_BYTES", DEFAULT_BLOCK_BYTES),
            bucket_bytes=_positive_int(environ, "CSV_PIPELINE_BUCKET_BYTES", DEFAULT_BUCKET_BYTES),
            dask_scheduler_address=environ.get("DASK_SCHEDULER_ADDRESS") or None,
            dask_dashboard=environ.get("CSV_PIPELINE_DASK_DASHBOARD") or None,
            dagster_url=environ.get("CSV_PIPELINE_DAGSTER_URL", "http://127.0.0.1:3000").rstrip("/"),
            dagster_home=os.path.abspath(environ.get("DAGSTER_HOME", "./.dagster_home")),
            step_outputs=absolute_url(environ["CSV_PIPELINE_STEP_OUTPUTS"])
            if environ.get("CSV_PIPELINE_STEP_OUTPUTS")
            else None,
            history=absolute_url(environ["CSV_PIPELINE_HISTORY"]) if environ.get("CSV_PIPELINE_HISTORY") else None,
            upload_window_seconds=_positive_int(
                environ, "CSV_PIPELINE_UPLOAD_WINDOW_SECONDS", DEFAULT_UPLOAD_WINDOW_SECONDS, "seconds"
            ),
            inbox_queue=environ.get("CSV_PIPELINE_INBOX_QUEUE") or None,
            inbox_listing_seconds=_positive_int(
                environ, "CSV_PIPELINE_INBOX_LISTING_SECONDS", DEFAULT_INBOX_LISTING_SECONDS, "seconds"
            ),
        )


def absolute_url(location: str) -> str:
    """An fsspec URL as given, or an absolute path: runs and Dask workers start in other directories."""
    location = location.rstrip("/") or "/"
    return location if "://" in location else os.path.abspath(location)


def _positive_int(environ: Mapping[str, str], name: str, default: int, unit: str = "bytes") -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit() or int(raw) <= 0:
        raise ValueError(f"{name} must be a positive whole number of {unit}, not {raw!r}.")
    return int(raw)
