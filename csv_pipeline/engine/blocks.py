"""Cutting a file into byte-range blocks at row boundaries, so workers read it in parallel.

A block owns every row that *starts* inside its nominal range ``[nominal_start,
nominal_end)``; a row starts at the data start or right after a ``\\n``. Workers find
their own boundaries, so planning needs no read of the file. A quoted field holding a
newline can put a boundary inside a record; ``pipeline.aggregate`` notices from the
blocks' quote counts and merges the blocks on either side.
"""

from fsspec import AbstractFileSystem

from csv_pipeline.engine.storage import read_range

_OVERREAD = 1 << 16  # read past the nominal end to find the end of the last row


def nominal_offsets(data_start: int, size: int, block_bytes: int) -> list[int]:
    """Block start offsets: the data start, then every ``block_bytes``."""
    return list(range(data_start, size, block_bytes)) or [data_start]


def read_block(
    fs: AbstractFileSystem, path: str, nominal_start: int, nominal_end: int, data_start: int, size: int
) -> tuple[int, memoryview]:
    """(offset of the first byte, bytes) of the rows starting in ``[nominal_start, nominal_end)``."""
    low = data_start if nominal_start <= data_start else nominal_start - 1
    data = read_range(fs, path, low, min(nominal_end + _OVERREAD, size))

    def newline_at_or_after(position: int) -> int | None:
        nonlocal data
        found = data.find(b"\n", position)
        while found < 0 and low + len(data) < size:  # only for rows longer than the over-read
            data += read_range(fs, path, low + len(data), min(low + len(data) + _OVERREAD, size))
            found = data.find(b"\n", position)
        return None if found < 0 else found

    skip = 0
    if nominal_start > data_start:  # the row in progress belongs to the block before
        first = newline_at_or_after(0)
        if first is None:
            return size, b""
        skip = first + 1
    end = None
    if nominal_end < size:
        last = newline_at_or_after(max(nominal_end - 1 - low, skip))
        end = None if last is None else last + 1
    return low + skip, memoryview(data)[skip:end]  # no copy of the block
