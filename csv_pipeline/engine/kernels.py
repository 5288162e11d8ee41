"""Arrow arrays in and out of the compiled loops (``_kernels.cpp``) without copies.

The loops take and return plain buffers in Arrow's layouts (string offsets int32, date32
as int32 days, int64 plays); these helpers unwrap Arrow arrays into such buffers and wrap
the results back into a table of SCHEMA.
"""

import numpy as np
import pyarrow as pa

from csv_pipeline.engine import _kernels

SCHEMA = pa.schema([("song", pa.string()), ("date", pa.date32()), ("plays", pa.int64())])


def columns(table: pa.Table) -> list[pa.Array]:
    """The table's columns, each as one array."""
    table = table.combine_chunks()
    return [column.chunk(0) if column.num_chunks else pa.array([], column.type) for column in table.columns]


def string_buffers(strings: pa.Array) -> tuple[np.ndarray, memoryview | bytes]:
    """A string array's offsets (its own slice of them) and its data buffer."""
    if strings.type != pa.string():
        raise TypeError(f"expected a string array, got {strings.type}")
    if len(strings) == 0:
        return np.zeros(1, np.int32), b""
    offsets = np.frombuffer(strings.buffers()[1], np.int32)[strings.offset : strings.offset + len(strings) + 1]
    return offsets, memoryview(strings.buffers()[2])


def values(array: pa.Array, dtype: type) -> np.ndarray:
    """A fixed-width array's values."""
    if len(array) == 0:
        return np.empty(0, dtype)
    return np.frombuffer(array.buffers()[1], dtype)[array.offset : array.offset + len(array)]


def table_of(rows: int, offsets: bytes, songs: bytes, days: bytes, plays: bytes) -> pa.Table:
    """A table of SCHEMA around the buffers a loop returned."""
    return pa.Table.from_arrays(
        [
            pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(songs)]),
            pa.Array.from_buffers(pa.date32(), rows, [None, pa.py_buffer(days)]),
            pa.Array.from_buffers(pa.int64(), rows, [None, pa.py_buffer(plays)]),
        ],
        schema=SCHEMA,
    )


def parse_plain(data: bytes | memoryview) -> tuple[pa.Table, int] | None:
    """The rows of a block in the plain form (``song,YYYY-MM-DD,digits``, LF line ends, no
    quotes, CR or padding), all valid, and the block's newline count; None when any line
    is in another form or invalid."""
    parsed = _kernels.parse_plain(data)
    if parsed is None:
        return None
    newlines, *columns = parsed
    return table_of(*columns), newlines


def hash_strings(strings: pa.Array) -> np.ndarray:
    return np.frombuffer(_kernels.hash_strings(*string_buffers(strings)), np.uint64)


def partition(table: pa.Table, hashes: np.ndarray, buckets: int) -> tuple[pa.Table, np.ndarray]:
    songs, days, plays = columns(table)
    *grouped, bucket_offsets = _kernels.partition(
        *string_buffers(songs), values(days, np.int32), values(plays, np.int64), hashes, buckets
    )
    return table_of(table.num_rows, *grouped), np.frombuffer(bucket_offsets, np.int64)


def combine(table: pa.Table) -> tuple[pa.Table, np.ndarray] | None:
    songs, days, plays = columns(table)
    combined = _kernels.combine(*string_buffers(songs), values(days, np.int32), values(plays, np.int64))
    if combined is None:
        return None
    *grouped, hashes = combined
    return table_of(*grouped), np.frombuffer(hashes, np.uint64)


def sum_sort_render(table: pa.Table) -> tuple[bytes, np.ndarray, np.ndarray]:
    """(CSV body, line offsets, first line of each song); OverflowError(song bytes, day)
    when a total does not fit in 64 bits."""
    songs, days, plays = columns(table)
    body, line_offsets, song_starts = _kernels.sum_sort_render(
        *string_buffers(songs), values(days, np.int32), values(plays, np.int64)
    )
    return body, np.frombuffer(line_offsets, np.int64), np.frombuffer(song_starts, np.int64)
