"""The ``play_totals`` asset: one partition per inbox file, built by three ops on the Dask executor.

Each op is one engine step. The ops run inside a Dask worker (the ``dagster-dask`` executor puts
them there) and hand the engine's own Dask work to the whole cluster through ``worker_client``,
which secedes from the worker's thread pool so single-threaded workers cannot deadlock.
Between ops only small, picklable descriptions travel (``FilePlan``, ``Aggregation``); the data
stays in the scratch directory.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import (
    Failure,
    MetadataValue,
    OpExecutionContext,
    Output,
    TableColumn,
    TableRecord,
    TableSchema,
    graph_asset,
    op,
)
from distributed import worker_client

from csv_pipeline import engine
from csv_pipeline.engine.storage import remove_tree
from csv_pipeline.partitions import inbox_files
from csv_pipeline.resources import PlayFiles
from csv_pipeline.tags import ERROR_TAG, MANIFEST_TAG

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


@op
def validate_format(context: OpExecutionContext, play_files: PlayFiles) -> engine.FilePlan:
    """Check the header and layout of the partition's file and plan the byte ranges to read."""
    file_key = context.partition_key
    with _bad_file_fails_run(context):
        plan = engine.inspect_file(
            play_files.input_url(file_key),
            file_name=file_key,
            block_bytes=play_files.block_bytes,
            bucket_bytes=play_files.bucket_bytes,
        )
    context.log.info(f"{file_key}: {plan.size} bytes, read in {len(plan.offsets)} blocks")
    return plan


@op
def aggregate_plays(
    context: OpExecutionContext, play_files: PlayFiles, plan: engine.FilePlan
) -> engine.Aggregation:
    """Sum the plays per (Song, Date) across the Dask cluster into sorted scratch buckets."""
    aggregation, workers = _aggregate(context, play_files, plan)
    context.add_output_metadata(
        {"rows_in": aggregation.rows_in, "buckets": len(aggregation.buckets), "dask_workers": workers}
    )
    return aggregation


def _aggregate(
    context: OpExecutionContext, play_files: PlayFiles, plan: engine.FilePlan
) -> tuple[engine.Aggregation, int]:
    """The aggregation into this run's scratch directory, and the number of Dask workers."""
    scratch_url = play_files.scratch_url(context.run_id)
    with _removed_on_error(scratch_url), _bad_file_fails_run(context), worker_client() as client:
        return engine.aggregate(client, plan, scratch_url, play_files.max_shard_bytes), len(client.nthreads())


@op
def write_shards(
    context: OpExecutionContext, play_files: PlayFiles, aggregation: engine.Aggregation
) -> Output[engine.Manifest]:
    """Write the size-bounded output shards and the ``_SUCCESS`` manifest, then drop the scratch.

    A re-execution from this step gets the aggregation of an earlier run, whose scratch files a
    run never reuses (that run may have moved some into its own output before it died, or the
    leftover cleanup may be removing them): it aggregates the file again into its own scratch.
    """
    if aggregation.scratch_url != play_files.scratch_url(context.run_id):
        context.log.info(f"Aggregating again: the aggregation handed over was made by another run, in {aggregation.scratch_url}")
        aggregation, _ = _aggregate(context, play_files, aggregation.plan)
    output_url = play_files.output_url(context.partition_key, context.run_id)
    try:
        with _removed_on_error(output_url), worker_client() as client:
            manifest = engine.write_shards(client, aggregation, output_url)
    finally:
        remove_tree(aggregation.scratch_url)
    context.instance.add_run_tags(context.run_id, {MANIFEST_TAG: f"{output_url}/_SUCCESS"})
    return Output(manifest, metadata=_materialization_metadata(context, manifest))


@graph_asset(partitions_def=inbox_files)
def play_totals() -> engine.Manifest:
    """Play totals per (Song, Date) of one inbox file, as sorted CSV shards in the outbox."""
    return write_shards(aggregate_plays(validate_format()))


@contextmanager
def _bad_file_fails_run(context: OpExecutionContext) -> Iterator[None]:
    """Turn a bad file into a run failure whose message is the SPEC section 3 sentence."""
    try:
        yield
    except engine.InvalidFileError as error:
        context.instance.add_run_tags(context.run_id, {ERROR_TAG: error.message})
        where = {"file": error.file_name, "line": error.line, "column": error.column, "value": error.value}
        raise Failure(
            description=error.message,
            metadata={"error": error.message, **{k: v for k, v in where.items() if v is not None}},
            allow_retries=False,
        ) from None


@contextmanager
def _removed_on_error(url: str) -> Iterator[None]:
    """A failed run leaves nothing behind at ``url``."""
    try:
        yield
    except BaseException:
        remove_tree(url)
        raise


def _materialization_metadata(context: OpExecutionContext, manifest: engine.Manifest) -> dict:
    started = context.instance.get_run_record_by_id(context.run_id).start_time
    return {
        "output_files": MetadataValue.json(manifest.output_files),
        "shards": MetadataValue.table(
            [TableRecord({"uri": s.uri, "rows": s.rows, "bytes": s.bytes}) for s in manifest.shards],
            schema=SHARDS_SCHEMA,
        ),
        "rows_in": manifest.rows_in,
        "rows_out": manifest.rows_out,
        "bytes_in": manifest.bytes_in,
        "bytes_out": manifest.bytes_out,
        "seconds": MetadataValue.float(round(time.time() - started, 3)),
        "preview": MetadataValue.table(
            [
                TableRecord(
                    {"Song": song, "Date": date, "Total Number of Plays for Date": total}
                )
                for song, date, total in manifest.preview
            ],
            schema=PREVIEW_SCHEMA,
        ),
    }
