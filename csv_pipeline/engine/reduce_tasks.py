"""The reduce side of the shuffle: one Dask task per bucket, or per group of adjacent buckets.

A reduce task reads its buckets' byte range of every map task's file (no file footers or
schemas to parse), then for each bucket sums and sorts the rows, renders the CSV lines into a
scratch file and decides where shards are cut; it also notes the bucket's preview and most
played songs. ``bucket_groups`` decides which buckets share a task.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from csv_pipeline.engine import storage
from csv_pipeline.engine.allocator import reuse_freed_memory
from csv_pipeline.engine.parse import SCHEMA, parse_rows
from csv_pipeline.engine.rules import OUTPUT_HEADER
from csv_pipeline.engine.totals import RenderedBucket, sum_sort_render

PREVIEW_ROWS = 10
MOST_PLAYED = 10  # songs in a manifest's top songs


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


def reduce_buckets(
    buckets: range,
    paths: np.ndarray,
    offsets: np.ndarray,
    scratch_url: str,
    storage_options: dict,
    max_shard_bytes: int,
) -> list[BucketResult]:
    """Sum, sort and render adjacent ``buckets``.

    ``paths`` (an array of strings) are the map tasks' files that have rows; row ``i`` of
    ``offsets`` says where each of the buckets starts in ``paths[i]``, then where the last ends.
    The buckets are adjacent in every map file, so each file is read once for all of them: one
    ranged read (a GET on S3) per map task and group of buckets, all of a group's reads at once.
    The scratch filesystem is resolved once, not per piece.
    """
    reuse_freed_memory()
    fs, _ = storage.filesystem(scratch_url, storage_options)
    ranges = zip(paths.tolist(), offsets[:, 0].tolist(), offsets[:, -1].tolist(), strict=True)
    data = storage.map_ranges(fs, list(ranges))
    within = offsets - offsets[:, :1]  # where each bucket starts and ends in the bytes read
    results = []
    for index, bucket in enumerate(buckets):
        pieces = [
            view[start:end]
            for view, start, end in zip(data, within[:, index].tolist(), within[:, index + 1].tolist(), strict=True)
        ]
        results.append(_reduce_bucket(bucket, pieces, scratch_url, storage_options, max_shard_bytes))
    return results


def _reduce_bucket(
    bucket: int, pieces: list[memoryview], scratch_url: str, storage_options: dict, max_shard_bytes: int
) -> BucketResult:
    """One bucket from its pieces, one per map task, each a record batch message per block."""
    batches = [
        ipc.read_record_batch(message, SCHEMA)
        for piece in pieces
        for message in ipc.MessageReader.open_stream(pa.py_buffer(piece))
    ]
    rendered = sum_sort_render(pa.Table.from_batches(batches, SCHEMA))
    del batches
    url = storage.join(scratch_url, "buckets", f"{bucket:05d}.csv")
    storage.write_bytes(url, [OUTPUT_HEADER, rendered.body], storage_options)
    preview_lines = rendered.body[: rendered.line_offsets[min(PREVIEW_ROWS, rendered.rows)]]
    _, preview_rows, _, _ = parse_rows(preview_lines, "preview")  # the rendered lines are valid input rows
    assert preview_rows is not None
    preview = tuple(
        (song, str(day), plays)
        for song, day, plays in zip(*(column.to_pylist() for column in preview_rows.columns), strict=True)
    )
    shard_pieces = _cut_pieces(rendered.line_offsets + len(OUTPUT_HEADER), rendered.song_starts, max_shard_bytes)
    return BucketResult(bucket, url, rendered.rows, shard_pieces, preview, _top_songs(rendered))


def bucket_groups(bucket_offsets: np.ndarray, max_read_bytes: int) -> list[range]:
    """Adjacent buckets whose pieces, summed over every map file, stay within ``max_read_bytes``
    (a bucket larger than that alone): the reduce tasks, in bucket order.

    ``bucket_offsets`` holds a row per map file (each bucket's start, then the end). With
    ``max_read_bytes`` 0 every bucket is a task of its own, empty ones too.
    """
    sizes = np.diff(bucket_offsets, axis=1).sum(axis=0)
    buckets = len(sizes)
    groups, first, held = [], 0, 0
    for bucket, size in enumerate(sizes.tolist()):
        if bucket > first and (max_read_bytes <= 0 or held + size > max_read_bytes):
            groups.append(range(first, bucket))
            first, held = bucket, 0
        held += size
    groups.append(range(first, buckets))
    return groups


def _top_songs(rendered: RenderedBucket) -> tuple[tuple[str, int], ...]:
    """The bucket's ``MOST_PLAYED`` most played songs. A song lives in one bucket only, so the
    file's top songs are the top of all buckets' tops."""
    count = min(MOST_PLAYED, len(rendered.song_totals))
    if not count:
        return ()
    top = np.argpartition(-rendered.song_totals, count - 1)[:count]
    offsets = rendered.line_offsets
    lines = b"".join(rendered.body[offsets[start] : offsets[start + 1]] for start in rendered.song_starts[top])
    _, rows, _, _ = parse_rows(lines, "top songs")  # each song's first line, a valid input row
    assert rows is not None
    return most_played(zip(rows.column(0).to_pylist(), rendered.song_totals[top].tolist(), strict=True))


def most_played(songs: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """The ``MOST_PLAYED`` most played, ties by song name so the result does not depend on buckets."""
    return tuple(sorted(songs, key=lambda song: (-song[1], song[0]))[:MOST_PLAYED])


def _cut_pieces(offsets: np.ndarray, song_starts: np.ndarray, max_shard_bytes: int) -> tuple[Piece, ...]:
    """Cut a bucket's lines into shards of at most ``max_shard_bytes`` (header included).

    Cuts fall between songs; only a song too large for one shard on its own is cut
    between its rows, continuing in the next shard.
    """
    rows = len(offsets) - 1
    header = len(OUTPUT_HEADER)
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
                raise ValueError(
                    f"a row of {offsets[first + 1] - offsets[first]} bytes does not fit "
                    f"in a shard of {max_shard_bytes} bytes"
                )
        pieces.append(Piece(first, end, int(offsets[first]), int(offsets[end])))
        first = end
    return tuple(pieces)
