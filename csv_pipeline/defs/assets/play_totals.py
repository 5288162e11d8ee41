"""The ``play_totals`` asset: one partition per inbox file, built by three ops on the Dask executor.

Each op is one engine step. The ops run inside a Dask worker (the ``dagster-dask`` executor puts
them there) and hand the engine's own Dask work to the whole cluster through the ``dask``
resource (``worker_client`` there, which secedes from the worker's thread pool so
single-threaded workers cannot deadlock; a given cluster under ``dagster.materialize()``).
Between ops only small, picklable descriptions travel (``FilePlan``, ``Aggregation``); the data
stays in the scratch directory.
"""

import errno
import os
import posixpath
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError
from dagster import (
    AssetObservation,
    Backoff,
    Failure,
    Jitter,
    MetadataValue,
    OpExecutionContext,
    Output,
    RetryPolicy,
    TableColumn,
    TableRecord,
    TableSchema,
    graph_asset,
    op,
)
from dagster._core.storage.tags import RETRY_ON_ASSET_OR_OP_FAILURE_TAG
from dagster_postgres.utils import DagsterPostgresException
from distributed import KilledWorker
from distributed.comm.core import CommClosedError
from sqlalchemy.exc import InterfaceError, OperationalError

from csv_pipeline import engine
from csv_pipeline.defs.assets.top_songs import top_songs_table
from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.defs.resources.dask_client import DaskClient
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.engine.cluster import thread_counts
from csv_pipeline.engine.storage import remove_tree
from csv_pipeline.labels import ERROR_TAG, MANIFEST_TAG, OUTPUT_FILES, PLAYS_IN, ROWS_IN, ROWS_OUT, TOP_SONGS

SHARDS_SCHEMA = TableSchema(
    columns=[TableColumn("uri", "string"), TableColumn("rows", "int"), TableColumn("bytes", "int")]
)
PREVIEW_SCHEMA = TableSchema(
    columns=[
        TableColumn("Song", "string"),
        TableColumn("Date", "string"),
        TableColumn("Total Number of Plays for Date", "int"),
    ]
)

# Storage that is briefly unreachable or full, a lost Dask worker, an instance write while
# PostgreSQL restarts: each op is tried again after about 5, 10, 20 and 40 s (±5 s), so a
# minute-long outage is ridden out. A bad file or a missing input fails at once.
TRANSIENT_RETRIES = RetryPolicy(max_retries=4, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
# Errors that may heal: I/O (OSError, including S3 through s3fs/aiohttp), botocore's own
# connection errors, the instance's database, the Dask cluster.
_MAY_HEAL = (
    OSError,
    BotoCoreError,
    OperationalError,
    InterfaceError,
    DagsterPostgresException,
    KilledWorker,
    CommClosedError,
    TimeoutError,
)
# ...except these, which the same attempt would meet again.
_CANNOT_HEAL = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
_CANNOT_HEAL_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT})
# fsspec and s3fs raise some of these without an errno.
_ERRNO_OF = {
    FileNotFoundError: errno.ENOENT,
    PermissionError: errno.EACCES,
    IsADirectoryError: errno.EISDIR,
    NotADirectoryError: errno.ENOTDIR,
}


@op(retry_policy=TRANSIENT_RETRIES)
def validate_format(context: OpExecutionContext, play_files: PlayFiles) -> engine.FilePlan:
    """Check the header and layout of the partition's file and plan the byte ranges to read."""
    file_key = context.partition_key
    with _failure_explained(context, f"cannot read the input {play_files.inbox}/{file_key}"):
        plan = engine.inspect_file(
            play_files.input_url(file_key),
            file_name=file_key,
            block_bytes=play_files.block_bytes,
            bucket_bytes=play_files.bucket_bytes,
        )
    context.log.info(f"{file_key}: {plan.size} bytes, read in {len(plan.offsets)} blocks")
    return plan


@op(retry_policy=TRANSIENT_RETRIES)
def aggregate_plays(
    context: OpExecutionContext, play_files: PlayFiles, dask: DaskClient, plan: engine.FilePlan
) -> engine.Aggregation:
    """Sum the plays per (Song, Date) across the Dask cluster into sorted scratch buckets."""
    aggregation, workers = _aggregate(context, play_files, dask, plan)
    context.add_output_metadata(
        {"rows_in": aggregation.rows_in, "buckets": len(aggregation.buckets), "dask_workers": workers}
    )
    return aggregation


def _aggregate(
    context: OpExecutionContext, play_files: PlayFiles, dask: DaskClient, plan: engine.FilePlan
) -> tuple[engine.Aggregation, int]:
    """The aggregation into this run's scratch directory, and the number of Dask workers."""
    scratch_url = play_files.scratch_url(context.run_id)
    doing = f"cannot sum the plays of {plan.url} into the scratch {scratch_url}"
    with _failure_explained(context, doing), _removed_on_error(scratch_url), dask.client() as client:
        return engine.aggregate(client, plan, scratch_url, play_files.max_shard_bytes), len(thread_counts(client))


@op(retry_policy=TRANSIENT_RETRIES)
def write_shards(
    context: OpExecutionContext, play_files: PlayFiles, dask: DaskClient, aggregation: engine.Aggregation
) -> Output[engine.Manifest]:
    """Write the size-bounded output shards and the ``_SUCCESS`` manifest, then drop the scratch.

    A retry of this step within the run needs the scratch, so a failed attempt keeps it and the
    last one removes it. A re-execution from this step gets the aggregation of an earlier run,
    whose scratch files a run never reuses (that run may have moved some into its own output
    before it died, or the leftover cleanup may be removing them): it aggregates the file again
    into its own scratch.
    """
    if aggregation.scratch_url != play_files.scratch_url(context.run_id):
        context.log.info(
            f"Aggregating again: the aggregation handed over was made by another run, in {aggregation.scratch_url}"
        )
        aggregation, _ = _aggregate(context, play_files, dask, aggregation.plan)
    output_url = play_files.output_url(context.partition_key, context.run_id)
    doing = f"cannot write the output to {output_url}"
    with _failure_explained(context, doing, leftovers=[output_url, aggregation.scratch_url]):
        with _removed_on_error(output_url), dask.client() as client:
            manifest = engine.write_shards(client, aggregation, output_url)
        context.instance.add_run_tags(context.run_id, {MANIFEST_TAG: f"{output_url}/_SUCCESS"})
        metadata = _materialization_metadata(context, manifest)
    remove_tree(aggregation.scratch_url)
    return Output(manifest, metadata=metadata)


SHARD_PATHS_SHOWN = 20


@graph_asset(
    partitions_def=inbox_files,
    group_name="play_counts",
    kinds={"csv", "dask"},
    owners=["team:support"],
    description=(
        "Play totals per (Song, Date) of one inbox file, as sorted CSV shards in the outbox: one "
        "partition per file (its path under the inbox). A materialized partition lists its shards, "
        "rows and plays in and out, a preview and the file's date range; a failed one carries the "
        "reason the file was refused (an observation on the partition, and the run's "
        "csv_pipeline/error tag). The checks read the shards back."
    ),
)
def play_totals() -> engine.Manifest:
    """Play totals per (Song, Date) of one inbox file, as sorted CSV shards in the outbox."""
    return write_shards(aggregate_plays(validate_format()))


@contextmanager
def _failure_explained(context: OpExecutionContext, doing: str, leftovers: Sequence[str] = ()) -> Iterator[None]:
    """Turn any error of the op into a ``Failure`` whose description is one sentence.

    A bad file says its line, column and value; anything else says the file, what the op could
    not do and where (``doing``), and the cause, e.g. ``plays.csv: cannot write the output to
    /srv/outbox/plays/<run>: Read-only file system.`` An error that may heal is retried
    (``TRANSIENT_RETRIES``); the final failure also removes ``leftovers`` and puts the sentence
    in the ``csv_pipeline/error`` run tag. The stack trace stays in the failure event.
    """
    try:
        yield
    except (engine.InvalidFileError, engine.InputChangedError) as error:
        where = {"file": error.file_name, **{key: getattr(error, key, None) for key in ("line", "column", "value")}}
        _fail_finally(context, error.message, leftovers, where)
        raise Failure(
            description=error.message,
            metadata={"error": error.message, **{k: v for k, v in where.items() if v is not None}},
            allow_retries=False,
        ) from None
    except Exception as error:
        sentence = f"{context.partition_key}: {doing}: {_cause(error)}"
        final = not _may_heal(error) or context.retry_number >= TRANSIENT_RETRIES.max_retries
        if final:
            _fail_finally(context, sentence, leftovers, {"file": context.partition_key})
        else:
            context.log.warning(f"{sentence} Trying again (attempt {context.retry_number + 2}).")
        raise Failure(
            description=sentence, metadata={"error": sentence, "file": context.partition_key}, allow_retries=not final
        ) from error


def _fail_finally(context: OpExecutionContext, sentence: str, leftovers: Sequence[str], details: dict) -> None:
    """The run's last word on the file: nothing half-written, the sentence in its tag and on its
    partition, and no run retry (the file would fail the same way; transient errors were retried)."""
    for url in leftovers:
        remove_tree(url)
    context.instance.add_run_tags(context.run_id, {ERROR_TAG: sentence, RETRY_ON_ASSET_OR_OP_FAILURE_TAG: "false"})
    report_failed_partition(context, sentence, details)


def _may_heal(error: BaseException) -> bool:
    if isinstance(error, _CANNOT_HEAL) or getattr(error, "errno", None) in _CANNOT_HEAL_ERRNOS:
        return False
    return isinstance(error, _MAY_HEAL)


def _cause(error: BaseException) -> str:
    """The error as the end of a sentence: ``No space left on device.``"""
    code = getattr(error, "errno", None) or next((c for k, c in _ERRNO_OF.items() if isinstance(error, k)), None)
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    elif isinstance(error, OSError) and code:
        text = os.strerror(code)
    elif isinstance(error, OSError) and str(error).strip():
        text = str(error).strip().splitlines()[0]
    else:
        lines = str(error).strip().splitlines()
        text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text.rstrip(".") + "."


def report_failed_partition(context: OpExecutionContext, sentence: str, details: dict) -> None:
    """Put the reason a file failed on its partition of ``play_totals``: an observation with the
    sentence as its description, which the asset's Events view of the partition and the failed
    step's logs (the partition's "View logs") show without a stack trace. A failed run materializes
    nothing, and Dagster OSS stores no failed-materialization events, so nothing else would carry it.
    Every failure path that has its one sentence should call this."""
    context.log_event(
        AssetObservation(
            asset_key=play_totals.key,
            partition=context.partition_key,
            description=sentence,
            metadata={"error": sentence, "status": "failed", **{k: v for k, v in details.items() if v is not None}},
        )
    )


@contextmanager
def _removed_on_error(url: str) -> Iterator[None]:
    """A failed run leaves nothing behind at ``url``."""
    try:
        yield
    except BaseException:
        remove_tree(url)
        raise


def _materialization_metadata(context: OpExecutionContext, manifest: engine.Manifest) -> dict:
    """Counts as numbers (the UI plots them across partitions), the result and its shards as paths."""
    record = context.instance.get_run_record_by_id(context.run_id)
    assert record is not None and record.start_time is not None  # this run, started
    started = record.start_time
    first_date, last_date = manifest.date_range or ("", "")
    shard_paths = {
        f"shard {posixpath.basename(shard.uri)}": MetadataValue.path(shard.uri)
        for shard in manifest.shards[:SHARD_PATHS_SHOWN]
    }
    return {
        ROWS_IN: manifest.rows_in,
        ROWS_OUT: manifest.rows_out,
        "dagster/row_count": manifest.rows_out,
        PLAYS_IN: manifest.plays_in,
        "first_date": first_date,
        "last_date": last_date,
        TOP_SONGS: top_songs_table(manifest.top_songs),
        "preview": MetadataValue.table(
            [
                TableRecord({"Song": song, "Date": date, "Total Number of Plays for Date": total})
                for song, date, total in manifest.preview
            ],
            schema=PREVIEW_SCHEMA,
        ),
        "result": MetadataValue.path(manifest.output_url),
        "manifest": MetadataValue.path(f"{manifest.output_url}/_SUCCESS"),
        **shard_paths,
        "shard_count": len(manifest.shards),
        "bytes_in": manifest.bytes_in,
        "bytes_out": manifest.bytes_out,
        "seconds": MetadataValue.float(round(time.time() - started, 3)),
        "shards": MetadataValue.table(
            [TableRecord({"uri": s.uri, "rows": s.rows, "bytes": s.bytes}) for s in manifest.shards],
            schema=SHARDS_SCHEMA,
        ),
        OUTPUT_FILES: MetadataValue.json(manifest.output_files),
    }
