"""Cutting a file into byte-range blocks at row boundaries, so workers read it in parallel.

A row starts at the data start or right after a ``\\n``. A block owns every row that
*starts* inside its nominal range ``[nominal_start, nominal_end)``, i.e. the bytes from
the first row start at or after ``nominal_start`` to the first at or after
``nominal_end``: so the blocks tile the data exactly, whatever their size, and a block
inside a row longer than itself owns nothing. Workers find their own boundaries, so
planning needs no read of the file, and a block reads past its end only to finish its
last row: every byte is read about once. A quoted field holding a newline can put a
boundary inside a record; ``pipeline.aggregate`` notices from the blocks' quote counts
and merges the blocks on either side.

The file is read, not memory-mapped: a file truncated under a map kills the process
(SIGBUS); a read just comes back short, and the version check before and after each
read turns any change into an ``InputChangedError``.
"""

from fsspec import AbstractFileSystem

from csv_pipeline.engine.errors import InputChangedError
from csv_pipeline.engine.storage import file_version, read_range

_OVERREAD = 1 << 16  # the first read past the nominal end, to find the end of the last row


def nominal_offsets(data_start: int, size: int, block_bytes: int) -> list[int]:
    """Block start offsets: the data start, then every ``block_bytes``."""
    return list(range(data_start, size, block_bytes)) or [data_start]


def read_block(
    fs: AbstractFileSystem,
    path: str,
    nominal_start: int,
    nominal_end: int,
    data_start: int,
    size: int,
    *,
    file_name: str,
    version: str,
) -> tuple[int, memoryview]:
    """(offset of the first byte, bytes) of the rows starting in ``[nominal_start, nominal_end)``.

    InputChangedError when the file is no longer the ``version`` the run planned with.
    """
    check_version(fs, path, file_name, version)
    low = max(nominal_start - 1, data_start)  # the byte before the block says if a row starts at it
    # One read for the block and the end of its last row, mostly; never more than twice the
    # block, so that the many tiny blocks inside a long row cost O(their size).
    high = min(nominal_end + min(_OVERREAD, nominal_end - low), size)
    data = read_exactly(fs, path, low, high, file_name)
    skip = 0
    if nominal_start > data_start:
        first = data.find(b"\n", 0, nominal_end - 1 - low)
        if first < 0:  # no row starts in the block
            check_version(fs, path, file_name, version)
            return nominal_end, memoryview(b"")
        skip = first + 1
    end = len(data)
    if nominal_end < size:
        searched, step = nominal_end - 1 - low, _OVERREAD
        while (last := data.find(b"\n", searched)) < 0 and high < size:  # the last row goes on
            searched = len(data)
            data = data if isinstance(data, bytearray) else bytearray(data)
            data += read_exactly(fs, path, high, min(high + step, size), file_name)
            high, step = low + len(data), 2 * step  # doubling: a long row costs O(its length)
        end = len(data) if last < 0 else last + 1
    check_version(fs, path, file_name, version)
    return low + skip, memoryview(data)[skip:end]


def read_exactly(fs: AbstractFileSystem, path: str, start: int, end: int, file_name: str) -> bytes:
    """Bytes ``[start, end)`` of the input; InputChangedError when it is shorter now or gone."""
    try:
        data = read_range(fs, path, start, end)
    except FileNotFoundError:
        raise InputChangedError(file_name, "the file disappeared while it was being read") from None
    if len(data) != max(end - start, 0):
        raise InputChangedError(file_name, "the file became shorter while it was being read")
    return data


def check_version(fs: AbstractFileSystem, path: str, file_name: str, version: str) -> None:
    """InputChangedError unless the input is still at ``version``."""
    try:
        now = file_version(fs, path)
    except FileNotFoundError:
        raise InputChangedError(file_name, "the file disappeared while it was being read") from None
    if now != version:
        size, size_now = version.split(":", 1)[0], now.split(":", 1)[0]
        change = f"{size} bytes, now {size_now}" if size != size_now else "same size, new modification time or ETag"
        raise InputChangedError(file_name, f"the file changed while it was being read ({change})")
