"""Arrow arrays in and out of the compiled loops (``_kernels.cpp``) without copies.

The loops take and return plain buffers in Arrow's layouts (string offsets int32, date32
as int32 days, int64 plays); these helpers unwrap Arrow arrays into such buffers and wrap
the results back into a table of SCHEMA. The modules of each step (parse, shuffle, totals)
call the loops through them.
"""

import numpy as np
import pyarrow as pa

SCHEMA = pa.schema([("song", pa.string()), ("date", pa.date32()), ("plays", pa.int64())])


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


def row_buffers(table: pa.Table) -> tuple[np.ndarray, memoryview | bytes, np.ndarray, np.ndarray]:
    """A table of SCHEMA as the (song offsets, song bytes, days, plays) arguments of a loop."""
    table = table.combine_chunks()
    songs, days, plays = (
        column.chunk(0) if column.num_chunks else pa.array([], column.type) for column in table.columns
    )
    return (*string_buffers(songs), values(days, np.int32), values(plays, np.int64))


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
