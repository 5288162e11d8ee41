"""The ``play_history`` asset and the schedule that keeps its table compact.

``play_history`` is partitioned like ``play_totals`` (one partition per inbox file) and runs in
the same run, right after it: ``process_inbox_file`` selects both, so every path that processes
a file (the sensor, the UI, ``csv-pipeline process``) updates the history, and a failed
``play_totals`` skips it, leaving the history as it was. The table code is the engine's, in ``engine/history.py``.
"""

from dagster import (
    AssetExecutionContext,
    AssetObservation,
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

from csv_pipeline import engine
from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.engine import history

# The observation also carries the latest months as numbers of their own, which the UI plots.
MONTHS_PLOTTED = 24
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
    partition is the file's latest successful result.

    The metadata costs no scan of the history: the table's files, rows and dates come from its
    log, the file's songs and plays per month were counted while it was loaded."""
    url = history_table.url(play_files)
    loaded = history.replace_file(url, context.partition_key, context.run.run_id, play_totals.output_files)
    contents = loaded.table
    context.log.info(f"{context.partition_key}: {loaded.rows} rows in {url} (version {loaded.version})")
    return MaterializeResult(
        metadata={
            "table": MetadataValue.path(url),
            "table_version": loaded.version,
            "files": contents.files,
            "rows": contents.rows,
            "first_date": str(contents.first_date),
            "last_date": str(contents.last_date),
            "file_rows": loaded.rows,
            "file_songs": loaded.songs,
            "file_plays": sum(plays for _, plays in loaded.plays_per_month),
            "file_plays_per_month": _months_table(loaded.plays_per_month),
        }
    )


@op
def maintain_history_table(context: OpExecutionContext, play_files: PlayFiles, history_table: PlayHistory) -> None:
    """Compact, checkpoint and vacuum the history table (see ``history.maintain``), then record
    what only a scan of the whole history tells as an observation of ``play_history``."""
    url = history_table.url(play_files)
    metrics = history.maintain(url)
    context.log.info(f"history maintenance of {url}: {metrics}")
    if not history.exists(url):
        return
    contents, totals = history.contents(url), history.scan_totals(url)
    context.log_event(
        AssetObservation(
            asset_key=play_history.key,
            metadata={
                "table": MetadataValue.path(url),
                "table_version": totals.version,
                "files": contents.files,
                "rows": contents.rows,
                "distinct_songs": totals.distinct_songs,
                "first_date": str(contents.first_date),
                "last_date": str(contents.last_date),
                "total_plays": sum(plays for _, plays in totals.plays_per_month),
                "plays_per_month": _months_table(totals.plays_per_month),
                **{f"plays {month}": plays for month, plays in totals.plays_per_month[-MONTHS_PLOTTED:]},
            },
        )
    )


def _months_table(plays_per_month: tuple[tuple[str, int], ...]) -> MetadataValue:
    return MetadataValue.table(
        [TableRecord({"month": month, "plays": plays}) for month, plays in plays_per_month],
        schema=PLAYS_PER_MONTH_SCHEMA,
    )


@job(executor_def=in_process_executor)
def maintain_play_history() -> None:
    """Keep reads of the history fast after thousands of files: one small op, no Dask cluster."""
    maintain_history_table()


maintain_play_history_daily = ScheduleDefinition(
    name="maintain_play_history_daily",
    job=maintain_play_history,
    cron_schedule="30 3 * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Compact, checkpoint and vacuum the play history table every night, and observe its totals.",
)
