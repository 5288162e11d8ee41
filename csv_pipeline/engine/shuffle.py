"""Hash-partitioning rows by song, so every song lands in exactly one bucket.

The bucket of a song depends only on its bytes and the bucket count, never on the block
it was read in or the worker that read it: that is what makes shards byte-identical
whatever the cluster or block size.
"""

import numpy as np
import pyarrow as pa

from csv_pipeline.engine import _kernels
from csv_pipeline.engine.kernels import row_buffers, string_buffers, table_of

_DAY_MIX = np.uint64(0x165667B19E3779F9)


def song_hashes(songs: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A stable 64-bit hash of each song's bytes (the same on every machine)."""
    if isinstance(songs, pa.ChunkedArray):
        songs = songs.combine_chunks()
    return np.frombuffer(_kernels.hash_strings(*string_buffers(songs)), np.uint64)


def split_by_bucket(table: pa.Table, hashes: np.ndarray, buckets: int) -> tuple[pa.Table, np.ndarray]:
    """Rows grouped by bucket (hash modulo ``buckets``; input order kept within a bucket)
    and each bucket's row offsets."""
    *grouped, bucket_offsets = _kernels.partition(row_buffers(table), hashes, buckets)
    return table_of(table.num_rows, *grouped), np.frombuffer(bucket_offsets, np.int64)


def worth_combining(table: pa.Table, sample_rows: int = 1 << 14) -> bool:
    """Whether summing equal (song, date) rows within the block would at least halve it.

    Low-cardinality files collapse by orders of magnitude, files where almost every
    (song, date) is distinct not at all. The group count G is estimated from the
    distinct pairs d among the first k rows, inverting d = G * (1 - exp(-k / G)).
    """
    rows = table.num_rows
    if rows < 2 * sample_rows:
        return rows > 1
    sample = table.slice(0, sample_rows)
    days = sample["date"].cast(pa.int32()).to_numpy().astype(np.uint64)
    distinct = len(np.unique(song_hashes(sample["song"]) ^ (days * _DAY_MIX)))
    if distinct >= sample_rows:
        return False
    low, high = float(distinct), float(rows) * 64  # d grows with G: bisect for G
    for _ in range(60):
        groups = (low + high) / 2
        if groups * -np.expm1(-sample_rows / groups) < distinct:
            low = groups
        else:
            high = groups
    return low < rows / 2


def combine(table: pa.Table) -> tuple[pa.Table, np.ndarray] | None:
    """Plays summed per (song, date) within one block, with each row's song hash; None when
    a total would not fit in 64 bits (the reduce then names the line).

    One compiled pass: songs dictionary-encoded through a hash table, (song, day) keys
    radix-sorted, equal neighbours summed; only distinct songs are hashed.
    """
    combined = _kernels.combine(row_buffers(table))
    if combined is None:
        return None
    rows, offsets, songs, days, plays, hashes = combined
    return table_of(rows, offsets, songs, days, plays), np.frombuffer(hashes, np.uint64)
