"""Hash-partitioning rows by song, so every song lands in exactly one bucket.

The bucket of a song depends only on its bytes and the bucket count, never on the block
it was read in or the worker that read it: that is what makes shards byte-identical
whatever the cluster or block size.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_EXACT_INT64_SUMS = 2.0**62  # below this, no sum of these non-negative int64 values can wrap
_EXACT_FLOAT_SUMS = 2.0**53  # below this, float64 sums of integers are exact
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], dtype=np.uint64)
_K1, _K2, _K3, _K4 = (np.uint64(k) for k in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xBF58476D1CE4E5B9))


def song_hashes(songs: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A stable 64-bit hash of each string, from its length and its first, middle and last 8 bytes.

    Vectorised over Arrow's offsets and data buffers: a handful of gathers instead of a
    pass over every byte. Different strings may share a hash; that only affects balance.
    """
    if isinstance(songs, pa.ChunkedArray):
        songs = songs.combine_chunks()
    if len(songs) == 0:
        return np.empty(0, np.uint64)
    width = np.int64 if songs.type == pa.large_string() else np.int32
    offsets = np.frombuffer(songs.buffers()[1], width)[songs.offset : songs.offset + len(songs) + 1].astype(np.int64)
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


def split_by_bucket(table: pa.Table, hashes: np.ndarray, buckets: int) -> tuple[pa.Table, np.ndarray]:
    """Rows grouped by bucket (input order kept within a bucket) and each bucket's row offsets."""
    ids = (hashes % np.uint64(buckets)).astype(np.uint16)  # uint16: the stable sort is a radix sort
    order = np.argsort(ids, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(ids, minlength=buckets))])
    return table.take(pa.array(order)), offsets


def worth_combining(table: pa.Table, sample_rows: int = 1 << 16) -> bool:
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
    distinct = len(np.unique(song_hashes(sample["song"]) ^ (days * _K3)))
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
    """Sum plays per (song, date) within one block, with each row's song hash.

    Songs are dictionary-encoded, so only distinct songs are hashed and the grouping runs
    on integers: a dense ``bincount`` over (song, day) when that grid is small and float
    sums are exact (total below 2**53), Arrow's hash aggregation otherwise. None when the
    block's plays could overflow int64 in a wrapping sum: the reduce checks those exactly.
    """
    plays = table["plays"].combine_chunks()
    total = pc.sum(plays.cast(pa.float64(), safe=False)).as_py() or 0.0
    if total >= _EXACT_INT64_SUMS:
        return None
    encoded = pc.dictionary_encode(table["song"].combine_chunks())
    codes = encoded.indices.to_numpy().astype(np.int64)
    days = table["date"].combine_chunks().cast(pa.int32()).to_numpy()
    first_day = int(days.min())
    span = int(days.max()) - first_day + 1
    cells = len(encoded.dictionary) * span
    if total < _EXACT_FLOAT_SUMS and cells <= 4 * len(codes):
        cell = codes * span + (days - first_day)
        counts = np.bincount(cell, minlength=cells)
        sums = np.bincount(cell, weights=plays.to_numpy(), minlength=cells)
        present = np.flatnonzero(counts)
        song_codes, group_days, totals = present // span, (present % span + first_day).astype(np.int32), sums[present].astype(np.int64)
    else:
        grouped = pa.table({"code": codes, "day": days, "plays": plays}).group_by(["code", "day"], use_threads=False)
        summed = grouped.aggregate([("plays", "sum")])
        song_codes = summed["code"].to_numpy()
        group_days, totals = summed["day"].to_numpy(), summed["plays_sum"].to_numpy()
    combined = pa.table(
        {
            "song": encoded.dictionary.take(pa.array(song_codes)),
            "date": pa.array(group_days, pa.int32()).cast(pa.date32()),
            "plays": pa.array(totals, pa.int64()),
        }
    )
    return combined, song_hashes(encoded.dictionary)[song_codes]
