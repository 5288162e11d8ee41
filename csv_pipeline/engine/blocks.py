"""Cutting a file into byte-range blocks at row boundaries, so workers read it in parallel.

A block owns every row that *starts* inside its nominal range ``[nominal_start,
nominal_end)``; a row starts at the data start or right after a ``\\n``. Workers find
their own boundaries, so planning needs no read of the file. A quoted field holding a
newline can put a boundary inside a record; ``pipeline.aggregate`` notices from the
blocks' quote counts and merges the blocks on either side.
"""

from fsspec import AbstractFileSystem

from csv_pipeline.engine.storage import map_range

_OVERREAD = 1 << 16  # read past the nominal end to find the end of the last row


def nominal_offsets(data_start: int, size: int, block_bytes: int) -> list[int]:
    """Block start offsets: the data start, then every ``block_bytes``."""
    return list(range(data_start, size, block_bytes)) or [data_start]


def read_block(
    fs: AbstractFileSystem, path: str, nominal_start: int, nominal_end: int, data_start: int, size: int
) -> tuple[int, memoryview]:
    """(offset of the first byte, bytes) of the rows starting in ``[nominal_start, nominal_end)``.

    A local file is mapped, not copied: the parse reads the page cache directly.
    """
    low = data_start if nominal_start <= data_start else nominal_start - 1
    high = min(nominal_end + _OVERREAD, size)
    data = map_range(fs, path, low, high)

    def newline_at_or_after(position: int) -> int | None:
        nonlocal data, high
        while (found := _find_newline(data, position)) is None and high < size:
            high = min(high + max(_OVERREAD, high - low), size)  # a row longer than the over-read
            data = map_range(fs, path, low, high)
        return found

    skip = 0
    if nominal_start > data_start:  # the row in progress belongs to the block before
        first = newline_at_or_after(0)
        if first is None:
            return size, memoryview(b"")
        skip = first + 1
    end = None
    if nominal_end < size:
        last = newline_at_or_after(max(nominal_end - 1 - low, skip))
        end = None if last is None else last + 1
    return low + skip, data[skip:end]


def _find_newline(data: memoryview, position: int) -> int | None:
    """The first ``\n`` at or after ``position``, looking at one over-read's bytes at a time."""
    for start in range(position, len(data), _OVERREAD):
        found = bytes(data[start : start + _OVERREAD]).find(b"\n")
        if found >= 0:
            return start + found
    return None
