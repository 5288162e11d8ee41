"""The three engine steps and the Dask tasks behind them.

Map (one task per byte-range block, or per run of consecutive blocks on huge files: see
``plan_shuffle``): read, parse and validate the rows a block at a time, fold equal
(song, date) rows when that pays, hash-partition by song into buckets, write one scratch
file per map task: each bucket's rows as Arrow IPC record batch messages, bucket after
bucket, their byte offsets returned to the client.
Reduce (one task per bucket): read that bucket's byte range of every map task's file (no
file footers or schemas to parse), sum and sort, render the CSV lines into a scratch file,
decide where shards are cut.
Write: number the pieces in bucket order and move or copy them to ``part-NNNNN.csv``;
``_SUCCESS`` goes last. Peak memory is a few blocks and buckets per worker, whatever the
file size; the scratch directory holds the data in between.
"""

import json
import math
import mmap
import os
import posixpath
import tempfile
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
from distributed import Client
from fsspec import AbstractFileSystem

from csv_pipeline.engine import storage
from csv_pipeline.engine.allocator import reuse_freed_memory
from csv_pipeline.engine.blocks import check_version, nominal_offsets, read_block
from csv_pipeline.engine.errors import InvalidFileError
from csv_pipeline.engine.header import detect_header
from csv_pipeline.engine.overflow import rows_of_key
from csv_pipeline.engine.parse import SCHEMA, parse_block, parse_rows
from csv_pipeline.engine.reachability import check_workers_reach
from csv_pipeline.engine.rules import MAX_INT64, OUTPUT_COLUMNS
from csv_pipeline.engine.shuffle import combine, song_hashes, split_by_bucket, worth_combining
from csv_pipeline.engine.sizes import BLOCK_BYTES, BUCKET_BYTES, DEFAULT_MAX_SHARD_BYTES, MAX_SHUFFLE_PIECES
from csv_pipeline.engine.totals import RenderedBucket, TotalOverflow, sum_sort_render

PREVIEW_ROWS = 10
TOP_SONGS = 10
_COPY_SLAB_BUCKETS = 4096  # buckets of a spilled map task's offsets read at a time
HEADER = (",".join(OUTPUT_COLUMNS) + "\n").encode()
SUCCESS = "_SUCCESS"


@dataclass(frozen=True)
class FilePlan:
    """What the map tasks need to know about a file; small and picklable."""

    url: str
    file_name: str
    size: int
    version: str  # size and modification time or ETag: a change mid-run is an InputChangedError
    has_header: bool
    data_start: int  # first byte after the BOM and header
    lines_before_data: int  # physical lines before data_start
    quotes_before_data: int  # '"' characters before data_start
    offsets: tuple[int, ...]  # nominal block starts
    buckets: int
    storage_options: dict = field(default_factory=dict)
    blocks_per_map_task: int = 1


@dataclass(frozen=True)
class ShufflePlan:
    """How many blocks each map task reads and how many buckets the reduce has."""

    blocks: int
    blocks_per_map_task: int
    buckets: int

    @property
    def map_tasks(self) -> int:
        return math.ceil(self.blocks / self.blocks_per_map_task)

    @property
    def pieces(self) -> int:
        """(map task, bucket) pairs: the ranged reads of scratch the reduce makes."""
        return self.map_tasks * self.buckets

    @property
    def offsets_bytes(self) -> int:
        """The client's matrix of where each bucket starts in each map task's file."""
        return self.map_tasks * (self.buckets + 1) * 8


def plan_shuffle(
    file_size: int, block_bytes: int, bucket_bytes: int, max_pieces: int = MAX_SHUFFLE_PIECES
) -> ShufflePlan:
    """Blocks per map task, so that map tasks x buckets stays under ``max_pieces``.

    With one block per map task the pieces grow with the square of the file (900 at 1 GB,
    89,000 at 10 GB, a billion at 1 TB): each piece is a ranged read (a GET on S3) and a
    row of offsets on the client. The bucket count must not change (it decides which
    shard holds a song, so the output), so past ``max_pieces`` a map task takes several
    consecutive blocks instead, reads them one at a time and lays out each bucket's rows
    from all of them together: one read per map task and bucket. Larger map tasks mean
    fewer of them to run in parallel, hence the generous limit.
    """
    blocks = max(1, math.ceil(file_size / block_bytes))
    buckets = max(1, math.ceil(file_size / bucket_bytes))
    map_tasks = max(1, min(blocks, max_pieces // buckets))
    return ShufflePlan(blocks, math.ceil(blocks / map_tasks), buckets)


@dataclass(frozen=True)
class Piece:
    """A run of whole lines of a bucket file that becomes one shard."""

    first_row: int
    end_row: int
    start_byte: int  # within the bucket file (which starts with the header)
    end_byte: int


@dataclass(frozen=True)
class BucketResult:
    bucket: int
    url: str
    rows: int
    pieces: tuple[Piece, ...]
    preview: tuple[tuple[str, str, int], ...]
    top_songs: tuple[tuple[str, int], ...] = ()  # the bucket's most played songs, all dates summed


@dataclass(frozen=True)
class Aggregation:
    plan: FilePlan
    scratch_url: str
    rows_in: int
    max_shard_bytes: int
    buckets: tuple[BucketResult, ...]
    plays_in: int = 0  # sum of the Number of Plays of every input row
    date_range: tuple[str, str] | None = None  # first and last Date of the input, None without rows


@dataclass(frozen=True)
class Shard:
    uri: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class Manifest:
    file_name: str
    output_url: str
    shards: tuple[Shard, ...]
    rows_in: int
    rows_out: int
    bytes_in: int
    bytes_out: int
    preview: tuple[tuple[str, str, int], ...]
    plays_in: int = 0
    date_range: tuple[str, str] | None = None
    top_songs: tuple[tuple[str, int], ...] = ()  # (song, plays over all dates), most played first

    @property
    def output_files(self) -> list[str]:
        return [shard.uri for shard in self.shards]

    def to_dict(self) -> dict:
        return asdict(self) | {"output_files": self.output_files}


def inspect_file(
    url: str,
    file_name: str,
    storage_options: dict | None = None,
    *,
    block_bytes: int = BLOCK_BYTES,
    bucket_bytes: int = BUCKET_BYTES,
    max_shuffle_pieces: int = MAX_SHUFFLE_PIECES,
) -> FilePlan:
    """Checks that need no full read (not empty, header or valid first row) and the block plan.

    The bucket count depends on the file size alone, so the output does not depend on
    ``block_bytes``, ``max_shuffle_pieces`` or the cluster.
    """
    options = storage_options or {}
    fs, path = storage.filesystem(url, options)
    version = storage.file_version(fs, path)
    size = int(version.split(":", 1)[0])
    if size == 0:
        raise InvalidFileError(file_name, "is empty (0 bytes); a valid file has at least a header or a row")
    head = detect_header(fs, path, size, file_name)
    check_version(fs, path, file_name, version)
    shuffle = plan_shuffle(size, block_bytes, bucket_bytes, max_shuffle_pieces)
    return FilePlan(
        url=url,
        file_name=file_name,
        size=size,
        version=version,
        has_header=head.has_header,
        data_start=head.data_start,
        lines_before_data=head.lines_before_data,
        quotes_before_data=head.quotes_before_data,
        offsets=tuple(nominal_offsets(head.data_start, size, block_bytes)),
        buckets=shuffle.buckets,
        storage_options=options,
        blocks_per_map_task=shuffle.blocks_per_map_task,
    )


@dataclass(frozen=True)
class _BlockResult:
    nominal_start: int
    rows: int
    newlines: int
    quotes: int
    error: InvalidFileError | None
    plays: int = 0
    days: tuple[int, int] | None = None  # first and last date32 of the block's rows


@dataclass(frozen=True)
class _MapResult:
    path: str | None  # of the map task's file on the scratch filesystem; None when it has no rows
    bucket_offsets: np.ndarray | None  # where each bucket's messages start in the file, then the end
    blocks: tuple[_BlockResult, ...]


def _map_blocks(plan: FilePlan, blocks: tuple[tuple[int, int], ...], scratch_url: str) -> _MapResult:
    """Map consecutive blocks, one at a time, into one scratch file laid out bucket by bucket.

    One block is written straight to scratch. Several go first to a spill file on the
    worker's local disk, each block's buckets one after the other, and are then copied to
    scratch bucket by bucket, so memory stays one block's whatever the map task's size.
    """
    reuse_freed_memory()
    fs, path = storage.filesystem(plan.url, plan.storage_options)
    url = storage.join(scratch_url, "maps", f"{blocks[0][0]:016d}-{blocks[-1][1]:016d}.arrows")
    if len(blocks) == 1:
        result, table, bucket_rows = _map_block(plan, fs, path, *blocks[0])
        if table is None:
            return _MapResult(None, None, (result,))
        with storage.open_output(url, plan.storage_options) as out:
            bucket_offsets = _write_buckets(out, table, bucket_rows, plan.buckets)
        return _MapResult(storage.filesystem(url, plan.storage_options)[1], bucket_offsets, (result,))
    with tempfile.TemporaryDirectory(prefix="csv-pipeline-map-") as spill_dir:
        return _map_blocks_through_spill(plan, fs, path, blocks, url, spill_dir)


def _map_blocks_through_spill(
    plan: FilePlan, fs: AbstractFileSystem, path: str, blocks: tuple[tuple[int, int], ...], url: str, spill_dir: str
) -> _MapResult:
    """Several blocks: each block's buckets appended to a local spill file, with where they
    start in a second one, then copied to ``url`` bucket by bucket. After a bad block the
    rest are still parsed, for the newline and quote counts the client needs."""
    spill_path, offsets_path = os.path.join(spill_dir, "blocks.arrows"), os.path.join(spill_dir, "offsets.i64")
    results: list[_BlockResult] = []
    with open(spill_path, "wb") as spill, open(offsets_path, "wb") as spill_offsets:
        for start, end in blocks:
            result, table, bucket_rows = _map_block(plan, fs, path, start, end)
            results.append(result)
            if table is not None and all(result.error is None for result in results):
                block_start = spill.tell()
                spill_offsets.write((block_start + _write_buckets(spill, table, bucket_rows, plan.buckets)).tobytes())
            del table, bucket_rows
    if any(result.error for result in results) or not os.path.getsize(offsets_path):
        return _MapResult(None, None, tuple(results))
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
    return _MapResult(storage.filesystem(url, plan.storage_options)[1], bucket_offsets, tuple(results))


def _map_block(
    plan: FilePlan, fs: AbstractFileSystem, path: str, nominal_start: int, nominal_end: int
) -> tuple[_BlockResult, pa.Table | None, np.ndarray | None]:
    """A block's result and, when it has valid rows, the rows grouped by bucket with each
    bucket's row offsets."""
    _, data = read_block(
        fs, path, nominal_start, nominal_end, plan.data_start, plan.size, file_name=plan.file_name, version=plan.version
    )
    parsed = parse_block(data, plan.file_name)
    del data
    if parsed.error is not None or parsed.table.num_rows == 0:
        return _BlockResult(nominal_start, 0, parsed.newlines, parsed.quotes, parsed.error), None, None
    table = parsed.table
    rows = table.num_rows
    plays, days = _plays_and_days(table)
    combined = combine(table) if worth_combining(table) else None
    table, hashes = combined or (table, song_hashes(table["song"]))
    table, bucket_rows = split_by_bucket(table, hashes, plan.buckets)
    return _BlockResult(nominal_start, rows, parsed.newlines, parsed.quotes, None, plays, days), table, bucket_rows


def _write_buckets(out: BinaryIO, table: pa.Table, bucket_rows: np.ndarray, buckets: int) -> np.ndarray:
    """Each bucket's rows as one Arrow IPC record batch message, one after the other; where
    each starts relative to the first, then the end."""
    message_offsets = [0]
    for bucket in range(buckets):
        part = table.slice(bucket_rows[bucket], bucket_rows[bucket + 1] - bucket_rows[bucket])
        message = pa.RecordBatch.from_arrays([column.combine_chunks() for column in part.columns], schema=SCHEMA).serialize()
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
            out.writelines(spilled[start:end] for start, end in zip(starts, ends))


def _plays_and_days(table: pa.Table) -> tuple[int, tuple[int, int] | None]:
    """The exact sum of a block's plays (as two 32-bit halves, so no int64 overflow) and its
    first and last day: a few milliseconds a block, for the run's "every play accounted for" check."""
    if not table.num_rows:
        return 0, None
    plays = table["plays"].to_numpy().view(np.uint64)
    total = (int((plays >> np.uint64(32)).sum()) << 32) + int((plays & np.uint64(0xFFFFFFFF)).sum())
    days = pc.min_max(table["date"].cast(pa.int32()))
    return total, (days["min"].as_py(), days["max"].as_py())


def _run_map(client: Client, plan: FilePlan, scratch_url: str) -> tuple[list[int], list[_MapResult]]:
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
        futures = client.map(_map_blocks, [plan] * len(todo), todo, [scratch_url] * len(todo)) if todo else []
        done.update(zip(todo, client.gather(futures)))
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
    for start, end in zip(offsets, offsets[1:] + [plan.size]):
        tasks.setdefault(bisect_right(task_starts, start) - 1, []).append((start, end))
    return [tuple(blocks) for blocks in tasks.values()]


def aggregate(
    client: Client, plan: FilePlan, scratch_url: str, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES
) -> Aggregation:
    """Parse, validate, shuffle and sum the file on the cluster behind ``client``."""
    if max_shard_bytes <= len(HEADER):
        raise ValueError(f"the maximum shard size ({max_shard_bytes} bytes) must exceed the header's {len(HEADER)} bytes")
    fs, path = storage.filesystem(plan.url, plan.storage_options)
    check_version(fs, path, plan.file_name, plan.version)  # before the workers' size check says it less clearly
    check_workers_reach(client, reads={plan.url: plan.size}, writes=[scratch_url], storage_options=plan.storage_options)
    offsets, maps = _run_map(client, plan, scratch_url)
    blocks = [block for result in maps for block in result.blocks]
    lines_before = plan.lines_before_data
    for block in blocks:
        if block.error is not None:
            raise replace_line(block.error, lines_before + block.error.line)
        lines_before += block.newlines
    filled = [result for result in maps if result.path is not None]
    futures = client.map(
        _reduce_bucket,
        range(plan.buckets),
        [[(result.path, *result.bucket_offsets[bucket : bucket + 2]) for result in filled] for bucket in range(plan.buckets)],
        [scratch_url] * plan.buckets,
        [plan.storage_options] * plan.buckets,
        [max_shard_bytes] * plan.buckets,
    )
    try:
        buckets = client.gather(futures)
    except TotalOverflow as overflow:
        raise _locate_overflow(client, plan, offsets, overflow) from None
    days = [block.days for block in blocks if block.days]
    date_range = (_iso_day(min(d[0] for d in days)), _iso_day(max(d[1] for d in days))) if days else None
    return Aggregation(
        plan,
        scratch_url,
        sum(block.rows for block in blocks),
        max_shard_bytes,
        tuple(buckets),
        plays_in=sum(block.plays for block in blocks),
        date_range=date_range,
    )


def _iso_day(day: int) -> str:
    return str(np.datetime64(day, "D"))


def replace_line(error: InvalidFileError, line: int) -> InvalidFileError:
    return InvalidFileError(error.file_name, error.problem, line=line, column=error.column, value=error.value)


def _reduce_bucket(
    bucket: int, pieces: list[tuple[str, int, int]], scratch_url: str, storage_options: dict, max_shard_bytes: int
) -> BucketResult:
    """Sum, sort and render one bucket from its (map file path, start, end) pieces, one per
    map task, each a record batch message per block: the scratch filesystem is resolved
    once, not per piece (map tasks x buckets calls)."""
    reuse_freed_memory()
    fs, _ = storage.filesystem(scratch_url, storage_options)
    batches = [
        ipc.read_record_batch(message, SCHEMA)
        for path, start, end in pieces
        for message in ipc.MessageReader.open_stream(pa.py_buffer(storage.map_range(fs, path, int(start), int(end))))
    ]
    rendered = sum_sort_render(pa.Table.from_batches(batches, SCHEMA))
    del batches
    url = storage.join(scratch_url, "buckets", f"{bucket:05d}.csv")
    storage.write_bytes(url, [HEADER, rendered.body], storage_options)
    preview_lines = rendered.body[: rendered.line_offsets[min(PREVIEW_ROWS, rendered.rows)]]
    _, preview_rows, _, _ = parse_rows(preview_lines, "preview")  # the rendered lines are valid input rows
    preview = tuple((song, str(day), plays) for song, day, plays in zip(*(column.to_pylist() for column in preview_rows.columns)))
    pieces = _cut_pieces(rendered.line_offsets + len(HEADER), rendered.song_starts, max_shard_bytes)
    return BucketResult(bucket, url, rendered.rows, pieces, preview, _top_songs(rendered))


def _top_songs(rendered: RenderedBucket) -> tuple[tuple[str, int], ...]:
    """The bucket's ``TOP_SONGS`` most played songs. A song lives in one bucket only, so the
    file's top songs are the top of all buckets' tops."""
    count = min(TOP_SONGS, len(rendered.song_totals))
    if not count:
        return ()
    top = np.argpartition(-rendered.song_totals, count - 1)[:count]
    offsets = rendered.line_offsets
    lines = b"".join(rendered.body[offsets[start] : offsets[start + 1]] for start in rendered.song_starts[top])
    _, rows, _, _ = parse_rows(lines, "top songs")  # each song's first line, a valid input row
    return _most_played(zip(rows.column(0).to_pylist(), rendered.song_totals[top].tolist()))


def _most_played(songs: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """The ``TOP_SONGS`` most played, ties by song name so the result does not depend on buckets."""
    return tuple(sorted(songs, key=lambda song: (-song[1], song[0]))[:TOP_SONGS])


def _cut_pieces(offsets: np.ndarray, song_starts: np.ndarray, max_shard_bytes: int) -> tuple[Piece, ...]:
    """Cut a bucket's lines into shards of at most ``max_shard_bytes`` (header included).

    Cuts fall between songs; only a song too large for one shard on its own is cut
    between its rows, continuing in the next shard.
    """
    rows = len(offsets) - 1
    header = len(HEADER)
    pieces, first = [], 0
    song_starts = np.append(song_starts, rows)
    while first < rows:
        limit = offsets[first] + max_shard_bytes - header
        end = int(np.searchsorted(offsets, limit, side="right")) - 1  # rows that fit: [first, end)
        if end >= rows:
            end = rows
        else:
            song_end = int(song_starts[np.searchsorted(song_starts, end, side="right") - 1])
            if song_end > first:
                end = song_end
            elif end <= first:
                raise ValueError(f"a row of {offsets[first + 1] - offsets[first]} bytes does not fit in a shard of {max_shard_bytes} bytes")
        pieces.append(Piece(first, end, int(offsets[first]), int(offsets[end])))
        first = end
    return tuple(pieces)


def _locate_overflow(client: Client, plan: FilePlan, offsets: list[int], overflow: TotalOverflow) -> InvalidFileError:
    """The line at which the running total of the overflowing (song, date) passes 64 bits,
    read from the blocks the map used (``offsets``, after merges)."""
    day = str(np.datetime64(overflow.day, "D"))
    ends = offsets[1:] + [plan.size]
    futures = client.map(rows_of_key, [plan] * len(ends), offsets, ends, [overflow.song] * len(ends), [day] * len(ends))
    lines_before, running = plan.lines_before_data, 0
    for newlines, matches in client.gather(futures):
        for line, plays in matches:
            running += int(plays)
            if running > MAX_INT64:
                return InvalidFileError(
                    plan.file_name,
                    f"makes the total of Song {overflow.song!r} on {day} larger than 64 bits",
                    line=lines_before + line,
                    column="Number of Plays",
                    value=str(plays),
                )
        lines_before += newlines
    raise AssertionError("a total overflowed in the reduce but not in a rescan of the file")


def write_shards(client: Client, aggregation: Aggregation, output_url: str) -> Manifest:
    """Number the pieces in bucket order, write them as ``part-NNNNN.csv``, then ``_SUCCESS``."""
    jobs = []
    for bucket in aggregation.buckets:
        for piece in bucket.pieces:
            jobs.append((bucket, piece, storage.join(output_url, f"part-{len(jobs):05d}.csv")))
    options = aggregation.plan.storage_options
    check_workers_reach(client, writes=[output_url], storage_options=options)
    if jobs:
        client.gather(client.map(_write_piece, *zip(*jobs), [options] * len(jobs)))
    else:  # no rows at all: one shard holding only the header
        target = storage.join(output_url, "part-00000.csv")
        storage.write_bytes(target, [HEADER], options)
        jobs.append((None, Piece(0, 0, len(HEADER), len(HEADER)), target))
    shards = tuple(
        Shard(target, piece.end_row - piece.first_row, len(HEADER) + piece.end_byte - piece.start_byte)
        for bucket, piece, target in jobs
    )
    first_nonempty = next((bucket.preview for bucket in aggregation.buckets if bucket.rows), ())
    manifest = Manifest(
        file_name=aggregation.plan.file_name,
        output_url=output_url,
        shards=shards,
        rows_in=aggregation.rows_in,
        rows_out=sum(bucket.rows for bucket in aggregation.buckets),
        bytes_in=aggregation.plan.size,
        bytes_out=sum(shard.bytes for shard in shards),
        preview=first_nonempty,
        plays_in=aggregation.plays_in,
        date_range=aggregation.date_range,
        top_songs=_most_played(song for bucket in aggregation.buckets for song in bucket.top_songs),
    )
    storage.write_bytes(storage.join(output_url, SUCCESS), [json.dumps(manifest.to_dict(), indent=2).encode()], options)
    return manifest


def _write_piece(bucket: BucketResult, piece: Piece, target: str, storage_options: dict) -> None:
    fs, source = storage.filesystem(bucket.url, storage_options)
    target_fs, target_path = storage.filesystem(target, storage_options)
    if len(bucket.pieces) == 1 and type(fs) is type(target_fs):
        if not fs.exists(source) and target_fs.exists(target_path):
            return  # moved already by an attempt whose worker died before reporting
        target_fs.makedirs(posixpath.dirname(target_path), exist_ok=True)
        fs.mv(source, target_path)  # a rename locally, a server-side copy on object stores
        return
    body = storage.read_range(fs, source, piece.start_byte, piece.end_byte)
    storage.write_bytes(target, [HEADER, body], storage_options)


def process_file(
    client: Client,
    url: str,
    output_url: str,
    scratch_url: str,
    *,
    file_name: str,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    storage_options: dict | None = None,
) -> Manifest:
    """All three steps; a bad file leaves neither shards nor scratch behind."""
    try:
        plan = inspect_file(url, file_name, storage_options)
        aggregation = aggregate(client, plan, scratch_url, max_shard_bytes)
        return write_shards(client, aggregation, output_url)
    except BaseException:
        storage.remove_tree(output_url, storage_options)
        raise
    finally:
        storage.remove_tree(scratch_url, storage_options)


__all__ = [
    "Aggregation",
    "FilePlan",
    "Manifest",
    "Shard",
    "ShufflePlan",
    "aggregate",
    "inspect_file",
    "plan_shuffle",
    "process_file",
    "write_shards",
]
