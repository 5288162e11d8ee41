"""The first step: what can be known of a file without reading it all, and how it is cut.

``inspect_file`` checks what needs no full read (not empty, a header or a valid first row)
and plans the byte-range blocks and the buckets; ``plan_shuffle`` decides how many blocks
each map task reads, so that the shuffle's pieces stay bounded on huge files.
"""

import math
from dataclasses import dataclass, field

from csv_pipeline.engine import storage
from csv_pipeline.engine.blocks import check_version, nominal_offsets
from csv_pipeline.engine.errors import InvalidFileError
from csv_pipeline.engine.header import detect_header
from csv_pipeline.engine.sizes import BLOCK_BYTES, BUCKET_BYTES, MAX_SHUFFLE_PIECES


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
