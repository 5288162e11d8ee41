"""Hash-partitioning rows by song, so every song lands in exactly one bucket.

The bucket of a song depends only on its bytes and the bucket count, never on the block
it was read in or the worker that read it: that is what makes shards byte-identical
whatever the cluster or block size.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], dtype=np.uint64)
_K1, _K2, _K3, _K4 = (np.uint64(k) for k in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xBF58476D1CE4E5B9))


def song_hashes(songs: pa.Array) -> np.ndarray:
    """A stable 64-bit hash of each string, from its length and its first, middle and last 8 bytes.

    Vectorised over Arrow's offsets and data buffers: a handful of gathers instead of a
    pass over every byte. Different strings may share a hash; that only affects balance.
    """
    songs = songs.cast(pa.large_string()) if songs.type != pa.large_string() else songs
    offsets = np.frombuffer(songs.buffers()[1], np.int64)[songs.offset : songs.offset + len(songs) + 1]
    data = np.frombuffer(songs.buffers()[2], np.uint8) if songs.buffers()[2] is not None else np.empty(0, np.uint8)
    padded = np.concatenate([data[: offsets[-1]], np.zeros(8, np.uint8)])
    words = np.ndarray(buffer=padded, dtype="<u8", shape=(len(padded) - 7,), strides=(1,))
    starts, ends = offsets[:-1], offsets[1:]
    lengths = ends - starts
    mask = _MASKS[np.minimum(lengths, 8)]
    first = words[starts] & mask
    last = words[np.maximum(ends - 8, starts)] & mask
    middle = words[starts + np.maximum(lengths // 2 - 4, 0)] & mask
    mixed = (first * _K1) ^ (last * _K2) ^ (middle * _K3) ^ (lengths.astype(np.uint64) * _K4)
    mixed ^= mixed >> np.uint64(31)
    mixed *= _K2
    mixed ^= mixed >> np.uint64(29)
    return mixed


def bucket_ids(songs: pa.Array, buckets: int) -> np.ndarray:
    """The bucket (0..buckets-1) of each song, as uint16 so a stable sort by it is a radix sort."""
    return (song_hashes(songs) % np.uint64(buckets)).astype(np.uint16)


def split_by_bucket(table: pa.Table, buckets: int) -> tuple[pa.Table, np.ndarray]:
    """Rows grouped by bucket (input order kept within a bucket) and each bucket's row offsets."""
    if table.num_rows == 0:
        return table, np.zeros(buckets + 1, np.int64)
    ids = bucket_ids(table.column(0).combine_chunks(), buckets)
    order = np.argsort(ids, kind="stable")
    counts = np.bincount(ids, minlength=buckets)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return table.take(pa.array(order)), offsets


def combine_if_worthwhile(table: pa.Table) -> pa.Table:
    """Sum plays per (song, date) within the block when that shrinks it at least by half.

    Low-cardinality files collapse here, before the shuffle; files where almost every
    (song, date) is distinct skip the work. The estimate is linear counting over a
    bitmap of (song hash, date) pairs, far cheaper than the aggregation it decides on.
    """
    rows = table.num_rows
    if rows < 1024:
        return table
    keys = song_hashes(table.column(0).combine_chunks()) ^ (
        table.column(1).combine_chunks().cast(pa.int32()).to_numpy().astype(np.uint64) * _K3
    )
    bits = 1 << max(16, int(rows).bit_length())
    seen = np.zeros(bits, dtype=bool)
    seen[(keys >> np.uint64(11)) % np.uint64(bits)] = True
    empty = bits - int(np.count_nonzero(seen))
    estimate = bits * np.log(bits / max(empty, 1))
    if estimate > rows / 2:
        return table
    summed = table.group_by([table.column_names[0], table.column_names[1]], use_threads=False).aggregate(
        [(table.column_names[2], "sum")]
    )
    return summed.rename_columns(table.column_names)
