"""The one resource: where a run reads its file and writes its shards."""

from typing import Any

from dagster import ConfigurableResource

from csv_pipeline.engine import InvalidFileError
from csv_pipeline.inbox import file_key_problem, is_csv, shown, symlink_problem
from csv_pipeline.settings import (
    DEFAULT_BLOCK_BYTES,
    DEFAULT_BUCKET_BYTES,
    DEFAULT_INBOX_LISTING_SECONDS,
    DEFAULT_UPLOAD_WINDOW_SECONDS,
    Settings,
)


class PlayFiles(ConfigurableResource):
    """Inbox, outbox and scratch locations (fsspec URLs: local paths or ``s3://``), the shard limit,
    the engine's task sizes (smaller blocks and buckets: less memory per Dask task), the
    inbox's upload window (how late the sensor may list a file, counted from its arrival) and,
    for an S3 inbox, the SQS queue of its notifications and how often it is listed all the same.

    Its values are also written into every run's config, so the Dask workers that run the ops
    use the locations the run was launched with, whatever their own environment says.
    """

    inbox: str
    outbox: str
    scratch: str
    max_shard_bytes: int
    block_bytes: int = DEFAULT_BLOCK_BYTES
    bucket_bytes: int = DEFAULT_BUCKET_BYTES
    upload_window_seconds: int = DEFAULT_UPLOAD_WINDOW_SECONDS
    inbox_queue: str = ""
    inbox_listing_seconds: int = DEFAULT_INBOX_LISTING_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> "PlayFiles":
        return cls(
            inbox=settings.inbox,
            outbox=settings.outbox,
            scratch=settings.scratch,
            max_shard_bytes=settings.max_shard_bytes,
            block_bytes=settings.block_bytes,
            bucket_bytes=settings.bucket_bytes,
            upload_window_seconds=settings.upload_window_seconds,
            inbox_queue=settings.inbox_queue or "",
            inbox_listing_seconds=settings.inbox_listing_seconds,
        )

    def input_url(self, file_key: str) -> str:
        """Where the run reads ``file_key``: only a safe key, never through a symbolic link.

        The sensor skips such files already; this also stops a run launched by hand from the UI
        with any partition key, or a link put in place after the sensor listed the file.
        """
        problem = file_key_problem(file_key) or symlink_problem(self.inbox, file_key)
        if problem:
            raise InvalidFileError(shown(file_key), f"not read: {problem}")
        return f"{self.inbox}/{file_key}"

    def output_url(self, file_key: str, run_id: str) -> str:
        """``<outbox>/<file key without .csv>/<run id>``, always inside the outbox."""
        problem = file_key_problem(file_key)
        if problem:
            raise InvalidFileError(shown(file_key), f"not written: {problem}")
        stem = file_key[: -len(".csv")] if is_csv(file_key) else file_key
        return f"{self.outbox}/{stem}/{run_id}"

    def scratch_url(self, run_id: str) -> str:
        return f"{self.scratch}/{run_id}"

    def run_config(self) -> dict[str, Any]:
        """The run config of the runs the sensor and the CLI launch: this resource's values, and the
        project's console logger (INFO, each error as one line) instead of Dagster's DEBUG one with
        stack traces, which a run gets when its config names no logger."""
        return {
            "resources": {"play_files": {"config": self.model_dump()}},
            "loggers": {"console": {"config": {"log_level": "INFO"}}},
        }
