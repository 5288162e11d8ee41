"""The map side of the shuffle: one Dask task per block, or per run of consecutive blocks.

A map task reads its blocks one at a time, parses and validates the rows, folds equal
(song, date) rows when that pays, hash-partitions them by song into buckets and writes one
scratch file: each bucket's rows as Arrow IPC record batch messages, bucket after bucket,
their byte offsets returned to the client. ``run_map`` runs them all and remaps the blocks
on either side of a boundary that fell inside a quoted field.
"""

import mmap
import os
import tempfile
from bisect import bisect_right
from dataclasses import dataclass
from itertools import pairwise
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from distributed import Client
from fsspec import AbstractFileSystem

from csv_pipeline.engine import storage
from csv_pipeline.engine.allocator import reuse_freed_memory
from csv_pipeline.engine.blocks import read_block
from csv_pipeline.engine.cluster import gather
from csv_pipeline.engine.errors import InvalidFileError
from csv_pipeline.engine.parse import SCHEMA, parse_block
from csv_pipeline.engine.plan import FilePlan
from csv_pipeline.engine.shuffle import combine, song_hashes, split_by_bucket, worth_combining

_COPY_SLAB_BUCKETS = 4096  # buckets of a spilled map task's offsets read at a time


@dataclass(frozen=True)
class BlockResult:
    nominal_start: int
    rows: int
    newlines: int
    quotes: int
    error: InvalidFileError | None
    plays: int = 0
    days: tuple[int, int] | None = None  # first and last date32 of the block's rows


@dataclass(frozen=True)
class MapResult:
    path: str | None  # of the map task's file on the scratch filesystem; None when it has no rows
    bucket_offsets: np.ndarray | None  # where each bucket's messages start in the file, then the end
    blocks: tuple[BlockResult, ...]


def map_blocks(plan: FilePlan, blocks: tuple[tuple[int, int], ...], scratch_url: str) -> MapResult:
    """Map consecutive blocks, one at a time, into one scratch file laid out bucket by bucket.

    One block is written straight to scratch. Several go first to a spill file on the
    worker's local disk, each block's buckets one after the other, and are then copied to
    scratch bucket by bucket, so memory stays one block's whatever the map task's size.
    """
    reuse_freed_memory()
    fs, path = storage.filesystem(plan.url, plan.storage_options)
    url = storage.join(scratch_url, "maps", f"{blocks[0][0]:016d}-{blocks[-1][1]:016d}.arrows")
    if len(blocks) == 1:
        result, grouped = _map_block(plan, fs, path, *blocks[0])
        if grouped is None:
            return MapResult(None, None, (result,))
        with storage.open_output(url, plan.storage_options) as out:
            bucket_offsets = _write_buckets(out, *grouped, plan.buckets)
        return MapResult(storage.filesystem(url, plan.storage_options)[1], bucket_offsets, (result,))
    with tempfile.TemporaryDirectory(prefix="csv-pipeline-map-") as spill_dir:
        return _map_blocks_through_spill(plan, fs, path, blocks, url, spill_dir)


def _map_blocks_through_spill(
    plan: FilePlan, fs: AbstractFileSystem, path: str, blocks: tuple[tuple[int, int], ...], url: str, spill_dir: str
) -> MapResult:
    """Several blocks: each block's buckets appended to a local spill file, with where they
    start in a second one, then copied to ``url`` bucket by bucket. After a bad block the
    rest are still parsed, for the newline and quote counts the client needs."""
    spill_path, offsets_path = os.path.join(spill_dir, "blocks.arrows"), os.path.join(spill_dir, "offsets.i64")
    results: list[BlockResult] = []
    with open(spill_path, "wb") as spill, open(offsets_path, "wb") as spill_offsets:
        for start, end in blocks:
            result, grouped = _map_block(plan, fs, path, start, end)
            results.append(result)
            if grouped is not None and all(result.error is None for result in results):
                block_start = spill.tell()
                spill_offsets.write((block_start + _write_buckets(spill, *grouped, plan.buckets)).tobytes())
            del grouped
    if any(result.error for result in results) or not os.path.getsize(offsets_path):
        return MapResult(None, None, tuple(results))
    block_offsets = np.memmap(offsets_path, np.int64, "r").reshape(-1, plan.buckets + 1)
    with (
        open(spill_path, "rb") as spill,
        mmap.mmap(spill.fileno(), 0, access=mmap.ACCESS_READ) as spilled,
        memoryview(spilled) as view,
        storage.open_output(url, plan.storage_options) as out,
    ):
        _copy_bucket_by_bucket(view, block_offsets, out)
    # Bucket b's bytes in the new file: its message sizes summed over the blocks.
    bucket_offsets = np.asarray(block_offsets.sum(axis=0) - block_offsets[:, 0].sum())
    return MapResult(storage.filesystem(url, plan.storage_options)[1], bucket_offsets, tuple(results))


def _map_block(
    plan: FilePlan, fs: AbstractFileSystem, path: str, nominal_start: int, nominal_end: int
) -> tuple[BlockResult, tuple[pa.Table, np.ndarray] | None]:
    """A block's result and, when it has valid rows, the rows grouped by bucket with each
    bucket's row offsets."""
    _, data = read_block(
        fs, path, nominal_start, nominal_end, plan.data_start, plan.size, file_name=plan.file_name, version=plan.version
    )
    parsed = parse_block(data, plan.file_name)
    del data
    table = parsed.table  # None when the block has an error
    if table is None or table.num_rows == 0:
        return BlockResult(nominal_start, 0, parsed.newlines, parsed.quotes, parsed.error), None
    rows = table.num_rows
    plays, days = _plays_and_days(table)
    combined = combine(table) if worth_combining(table) else None
    table, hashes = combined or (table, song_hashes(table["song"]))
    table, bucket_rows = split_by_bucket(table, hashes, plan.buckets)
    return BlockResult(nominal_start, rows, parsed.newlines, parsed.quotes, None, plays, days), (table, bucket_rows)


def _write_buckets(out: BinaryIO, table: pa.Table, bucket_rows: np.ndarray, buckets: int) -> np.ndarray:
    """Each bucket's rows as one Arrow IPC record batch message, one after the other; where
    each starts relative to the first, then the end."""
    message_offsets = [0]
    for bucket in range(buckets):
        part = table.slice(bucket_rows[bucket], bucket_rows[bucket + 1] - bucket_rows[bucket])
        message = pa.RecordBatch.from_arrays(
            [column.combine_chunks() for column in part.columns], schema=SCHEMA
        ).serialize()
        out.write(message)
        message_offsets.append(message_offsets[-1] + message.size)
    return np.array(message_offsets, np.int64)


def _copy_bucket_by_bucket(spilled: memoryview, block_offsets: np.ndarray, out: BinaryIO) -> None:
    """Write every block's messages of bucket 0, then of bucket 1, ...; ``block_offsets``
    (blocks x buckets + 1, memory-mapped) is read a slab of buckets at a time."""
    buckets = block_offsets.shape[1] - 1
    for first in range(0, buckets, _COPY_SLAB_BUCKETS):
        slab = np.array(block_offsets[:, first : min(first + _COPY_SLAB_BUCKETS, buckets) + 1]).T.tolist()
        for starts, ends in pairwise(slab):
            out.writelines(spilled[start:end] for start, end in zip(starts, ends, strict=True))


def _plays_and_days(table: pa.Table) -> tuple[int, tuple[int, int] | None]:
    """The exact sum of a block's plays (as two 32-bit halves, so no int64 overflow) and its
    first and last day: a few milliseconds a block, for the run's "every play accounted for" check."""
    if not table.num_rows:
        return 0, None
    plays = table["plays"].to_numpy().view(np.uint64)
    total = (int((plays >> np.uint64(32)).sum()) << 32) + int((plays & np.uint64(0xFFFFFFFF)).sum())
    days = pc.call_function("min_max", [table["date"].cast(pa.int32())])
    return total, (days["min"].as_py(), days["max"].as_py())


def run_map(client: Client, plan: FilePlan, scratch_url: str) -> tuple[list[int], list[MapResult]]:
    """Map every block; where a boundary fell inside a quoted field, merge the blocks on
    either side and map only the map tasks holding merged blocks again. Returns the block
    starts used too.

    Merging leaves the other boundaries, and so the quote parity before them, unchanged:
    one round of merges is enough, but the loop does not rely on it.
    """
    offsets, done = list(plan.offsets), {}
    while True:
        tasks = _map_tasks(plan, offsets)
        todo = [task for task in tasks if task not in done]
        futures = client.map(map_blocks, [plan] * len(todo), todo, [scratch_url] * len(todo)) if todo else []
        done.update(zip(todo, gather(client, futures), strict=True))
        results = [done[task] for task in tasks]
        parity = plan.quotes_before_data
        misaligned = set()
        for index, block in enumerate(block for result in results for block in result.blocks):
            if index and parity % 2:
                misaligned.add(offsets[index])
            parity += block.quotes
        if not misaligned:
            return offsets, results
        offsets = [offset for offset in offsets if offset not in misaligned]


def _map_tasks(plan: FilePlan, offsets: list[int]) -> list[tuple[tuple[int, int], ...]]:
    """The (start, end) blocks of each map task: a task takes the blocks that start in its
    nominal range, so merging two blocks changes at most the two tasks around the boundary."""
    task_starts = plan.offsets[:: plan.blocks_per_map_task]
    tasks: dict[int, list[tuple[int, int]]] = {}
    for start, end in pairwise([*offsets, plan.size]):
        tasks.setdefault(bisect_right(task_starts, start) - 1, []).append((start, end))
    return [tuple(blocks) for blocks in tasks.values()]
