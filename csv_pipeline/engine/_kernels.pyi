"""Types of the compiled loops in ``_kernels.cpp``, for readers and type checkers.

Buffers in: anything exposing the buffer protocol (bytes, memoryview, numpy arrays) in
Arrow's layouts: string offsets int32, song bytes UTF-8, days int32 (date32), plays int64.
Buffers out: ``bytes`` in the same layouts, which ``kernels.table_of`` wraps without copying.
A problem is ``(line, problem, column, value)``: 0-based line of the block, the problem's
code (``rules.row_error`` turns it into a sentence), the 0-based column and the offending value as bytes.
"""

import numpy as np
from typing_extensions import Buffer as _Buffer  # collections.abc.Buffer from Python 3.12

# numpy declares its arrays' buffer protocol to type checkers only from Python 3.12.
Buffer = _Buffer | np.ndarray
RowBuffers = tuple[Buffer, Buffer, Buffer, Buffer]  # song offsets, song bytes, days, plays
Problem = tuple[int, int, int, bytes]
Columns = tuple[int, bytes, bytes, bytes, bytes]  # rows, song offsets, song bytes, days, plays

def parse_plain(data: Buffer, /) -> tuple[int, int, bytes, bytes, bytes, bytes] | None: ...
def parse_rows(
    data: Buffer, lines: bool = False, /
) -> tuple[int, Columns, bytes | None, None] | tuple[int, None, None, Problem]: ...
def first_record(data: Buffer, complete: bool, /) -> tuple[int, int, list[bytes]] | tuple[int, None, Problem] | None: ...
def hash_strings(offsets: Buffer, data: Buffer, /) -> bytes: ...
def partition(rows: RowBuffers, hashes: Buffer, buckets: int, /) -> tuple[bytes, bytes, bytes, bytes, bytes]: ...
def combine(rows: RowBuffers, /) -> tuple[int, bytes, bytes, bytes, bytes, bytes] | None: ...
def sum_sort_render(rows: RowBuffers, /) -> tuple[bytes, bytes, bytes, bytes]: ...
