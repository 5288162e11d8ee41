"""Hash-partitioning rows by song, so every song lands in exactly one bucket.

The bucket of a song depends only on its bytes and the bucket count, never on the block
it was read in or the worker that read it: that is what makes shards byte-identical
whatever the cluster or block size.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from csv_pipeline.engine import kernels

_EXACT_INT64_SUMS = 2.0**62  # below this, no sum of these non-negative int64 values can wrap
_EXACT_FLOAT_SUMS = 2.0**53  # below this, float64 sums of integers are exact
_DAY_MIX = np.uint64(0x165667B19E3779F9)


def song_hashes(songs: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A stable 64-bit hash of each song's bytes (the same on every machine)."""
    if isinstance(songs, pa.ChunkedArray):
        songs = songs.combine_chunks()
    return kernels.hash_strings(songs)


def split_by_bucket(table: pa.Table, hashes: np.ndarray, buckets: int) -> tuple[pa.Table, np.ndarray]:
    """Rows grouped by bucket (hash modulo ``buckets``; input order kept within a bucket)
    and each bucket's row offsets."""
    return kernels.partition(table, hashes, buckets)


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
