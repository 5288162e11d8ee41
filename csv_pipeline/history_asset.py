"""The ``play_history`` asset and the schedule that keeps its table compact.

``play_history`` is partitioned like ``play_totals`` (one partition per inbox file) and runs in
the same run, right after it: ``process_inbox_file`` selects both, so every path that processes
a file (the sensor, the UI, ``csv-pipeline process``) updates the history, and a failed
``play_totals`` skips it, leaving the history as it was. The table code is in ``history.py``.
"""

from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    ScheduleDefinition,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    in_process_executor,
    job,
    op,
)

from csv_pipeline import engine, history
from csv_pipeline.partitions import inbox_files
from csv_pipeline.resources import PlayFiles

PLAYS_PER_MONTH_SCHEMA = TableSchema(columns=[TableColumn("month", "string"), TableColumn("plays", "int")])


class PlayHistory(ConfigurableResource):
    """Where the history table is (``CSV_PIPELINE_HISTORY``); empty: ``<outbox>/_history`` of
    the run, so it follows the outbox that travels in each run's config."""

    location: str = ""

    def url(self, play_files: PlayFiles) -> str:
        return self.location or f"{play_files.outbox}/_history"


@asset(partitions_def=inbox_files)
def play_history(
    context: AssetExecutionContext, play_files: PlayFiles, history_table: PlayHistory, play_totals: engine.Manifest
) -> MaterializeResult:
    """Play totals per (Song, Date) of every processed file, one Delta Lake table; this
    partition is the file's latest successful result."""
    url = history_table.url(play_files)
    version = history.replace_file(url, context.partition_key, context.run.run_id, play_totals.output_files)
    summary = history.summarize(url)
    context.log.info(f"{context.partition_key}: {play_totals.rows_out} rows in {url} (version {version})")
    return MaterializeResult(
        metadata={
            "table": MetadataValue.path(url),
            "table_version": version,
            "rows_of_file": play_totals.rows_out,
            "files": summary.files,
            "rows": summary.rows,
            "distinct_songs": summary.distinct_songs,
            "first_date": str(summary.first_date),
            "last_date": str(summary.last_date),
            "total_plays": sum(plays for _, plays in summary.plays_per_month),
            "plays_per_month": MetadataValue.table(
                [TableRecord({"month": month, "plays": plays}) for month, plays in summary.plays_per_month],
                schema=PLAYS_PER_MONTH_SCHEMA,
            ),
        }
    )


@op
def maintain_history_table(context: OpExecutionContext, play_files: PlayFiles, history_table: PlayHistory) -> None:
    """Compact, checkpoint and vacuum the history table (see ``history.maintain``)."""
    metrics = history.maintain(history_table.url(play_files))
    context.log.info(f"history maintenance: {metrics}")


@job(executor_def=in_process_executor)
def maintain_play_history() -> None:
    """Keep reads of the history fast after thousands of files: one small op, no Dask cluster."""
    maintain_history_table()


maintain_play_history_daily = ScheduleDefinition(
    name="maintain_play_history_daily",
    job=maintain_play_history,
    cron_schedule="30 3 * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Compact, checkpoint and vacuum the play history table every night.",
)
