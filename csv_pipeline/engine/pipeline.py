"""The three engine steps, run on the Dask cluster behind a ``distributed.Client``.

``inspect_file`` (``plan.py``) plans the blocks and buckets. ``aggregate`` runs the map
tasks (``map_tasks.py``), checks every block was valid, and runs the reduce tasks
(``reduce_tasks.py``). ``write_shards`` numbers the pieces in bucket order, moves or copies
them to ``part-NNNNN.csv`` and writes ``_SUCCESS`` last. Peak memory is a few blocks and
buckets per worker, whatever the file size; the scratch directory holds the data in between.
"""

import json
import posixpath
from dataclasses import asdict, dataclass

import numpy as np
from distributed import Client

from csv_pipeline.engine import storage
from csv_pipeline.engine.allocator import release_kept_memory
from csv_pipeline.engine.blocks import check_version
from csv_pipeline.engine.cluster import gather
from csv_pipeline.engine.errors import InvalidFileError
from csv_pipeline.engine.map_tasks import run_map
from csv_pipeline.engine.overflow import locate_overflow
from csv_pipeline.engine.plan import FilePlan, inspect_file
from csv_pipeline.engine.reachability import check_workers_reach
from csv_pipeline.engine.reduce_tasks import BucketResult, Piece, bucket_groups, most_played, reduce_buckets
from csv_pipeline.engine.rules import OUTPUT_HEADER
from csv_pipeline.engine.sizes import DEFAULT_MAX_SHARD_BYTES, REDUCE_READ_BYTES
from csv_pipeline.engine.totals import TotalOverflow

SUCCESS = "_SUCCESS"


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


def aggregate(
    client: Client,
    plan: FilePlan,
    scratch_url: str,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    reduce_read_bytes: int = REDUCE_READ_BYTES,
) -> Aggregation:
    """Parse, validate, shuffle and sum the file on the cluster behind ``client``.

    On object-store scratch a reduce task takes adjacent buckets up to ``reduce_read_bytes`` of
    pieces (``bucket_groups``); on local scratch, one bucket.
    """
    if max_shard_bytes <= len(OUTPUT_HEADER):
        raise ValueError(
            f"the maximum shard size ({max_shard_bytes} bytes) must exceed the header's {len(OUTPUT_HEADER)} bytes"
        )
    fs, path = storage.filesystem(plan.url, plan.storage_options)
    check_version(fs, path, plan.file_name, plan.version)  # before the workers' size check says it less clearly
    check_workers_reach(client, reads={plan.url: plan.size}, writes=[scratch_url], storage_options=plan.storage_options)
    offsets, maps = run_map(client, plan, scratch_url)
    blocks = [block for result in maps for block in result.blocks]
    lines_before = plan.lines_before_data
    for block in blocks:
        if block.error is not None:
            assert block.error.line is not None  # a block's error names its line within the block
            raise replace_line(block.error, lines_before + block.error.line)
        lines_before += block.newlines
    # Every reduce task's reads as slices of one matrix (map file x bucket offset) and one array
    # of paths. Lists of (path, offsets) per task came to blocks x buckets Python objects, which
    # the scheduler's message log kept alive after the run; and Dask tokenizes every task's
    # arguments into one string, where a list of paths is spelled out in full for each task (31 MB
    # at 573 x 573 pieces) and an array is a digest.
    filled = [
        (result.path, result.bucket_offsets)
        for result in maps
        if result.path is not None and result.bucket_offsets is not None  # both None when it has no rows
    ]
    paths = np.array([path for path, _ in filled], np.str_)
    bucket_offsets = np.array([offsets for _, offsets in filled], np.int64).reshape(-1, plan.buckets + 1)
    read_bytes = 0 if storage.is_local(scratch_url, plan.storage_options) else reduce_read_bytes
    groups = bucket_groups(bucket_offsets, read_bytes)
    futures = client.map(
        reduce_buckets,
        groups,
        [paths] * len(groups),
        [bucket_offsets[:, group.start : group.stop + 1] for group in groups],
        [scratch_url] * len(groups),
        [plan.storage_options] * len(groups),
        [max_shard_bytes] * len(groups),
    )
    try:
        buckets = [bucket for group in gather(client, futures) for bucket in group]
    except TotalOverflow as overflow:
        raise locate_overflow(client, plan, offsets, overflow) from None
    client.run(release_kept_memory)  # no more map or reduce tasks of this file
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


def write_shards(client: Client, aggregation: Aggregation, output_url: str) -> Manifest:
    """Number the pieces in bucket order, write them as ``part-NNNNN.csv``, then ``_SUCCESS``."""
    jobs = []
    for bucket in aggregation.buckets:
        for piece in bucket.pieces:
            jobs.append((bucket, piece, storage.join(output_url, f"part-{len(jobs):05d}.csv")))
    options = aggregation.plan.storage_options
    check_workers_reach(client, writes=[output_url], storage_options=options)
    if jobs:
        gather(client, client.map(write_piece, *zip(*jobs, strict=True), [options] * len(jobs)))
    else:  # no rows at all: one shard holding only the header
        target = storage.join(output_url, "part-00000.csv")
        storage.write_bytes(target, [OUTPUT_HEADER], options)
        jobs.append((None, Piece(0, 0, len(OUTPUT_HEADER), len(OUTPUT_HEADER)), target))
    shards = tuple(
        Shard(target, piece.end_row - piece.first_row, len(OUTPUT_HEADER) + piece.end_byte - piece.start_byte)
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
        top_songs=most_played(song for bucket in aggregation.buckets for song in bucket.top_songs),
    )
    storage.write_bytes(storage.join(output_url, SUCCESS), [json.dumps(manifest.to_dict(), indent=2).encode()], options)
    return manifest


def write_piece(bucket: BucketResult, piece: Piece, target: str, storage_options: dict) -> None:
    fs, source = storage.filesystem(bucket.url, storage_options)
    target_fs, target_path = storage.filesystem(target, storage_options)
    if len(bucket.pieces) == 1 and type(fs) is type(target_fs):
        if not fs.exists(source) and target_fs.exists(target_path):
            return  # moved already by an attempt whose worker died before reporting
        target_fs.makedirs(posixpath.dirname(target_path), exist_ok=True)
        fs.mv(source, target_path)  # a rename locally, a server-side copy on object stores
        return
    body = storage.read_range(fs, source, piece.start_byte, piece.end_byte)
    storage.write_bytes(target, [OUTPUT_HEADER, body], storage_options)


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


__all__ = ["Aggregation", "FilePlan", "Manifest", "Shard", "aggregate", "inspect_file", "process_file", "write_shards"]
