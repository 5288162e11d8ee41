"""Deciding whether a file starts with the header, from its first record only."""

import csv
import io
from dataclasses import dataclass

from fsspec import AbstractFileSystem

from csv_pipeline.engine.errors import InvalidFileError
from csv_pipeline.engine.rules import HEADER_LINE, is_header, row_problem
from csv_pipeline.engine.storage import read_range

BOM = b"\xef\xbb\xbf"
_PROBE = 1 << 16


@dataclass(frozen=True)
class Head:
    has_header: bool
    data_start: int  # first byte of the data rows
    lines_before_data: int
    quotes_before_data: int


def detect_header(fs: AbstractFileSystem, path: str, size: int, file_name: str) -> Head:
    """The header is optional; a first row that is neither header nor valid data is an error."""
    head = read_range(fs, path, 0, min(_PROBE, size))
    start = len(BOM) if head.startswith(BOM) else 0
    while True:
        record_start, record_end = _first_record(head, start)
        if record_end is not None or len(head) == size:
            break
        head += read_range(fs, path, len(head), min(len(head) + _PROBE, size))
    if record_start is None:  # only blank lines: no header, no rows
        return Head(False, start, 0, 0)
    end = len(head) if record_end is None else record_end + 1
    record = head[record_start:end]
    line = head.count(b"\n", 0, record_start) + 1
    fields = next(csv.reader(io.StringIO(record.decode("utf-8", "surrogateescape"), newline="")), [])
    if is_header(fields):
        return Head(True, end, head.count(b"\n", 0, end), head.count(b'"', 0, end))
    problem = row_problem(fields)
    if problem:
        column, value, reason = problem
        detail = f"{column} {value!r} {reason}" if column else reason
        shown = record.rstrip(b"\r\n").decode("utf-8", "replace")
        raise InvalidFileError(
            file_name,
            f"invalid header: the first row {shown!r} is neither the header {HEADER_LINE!r} "
            f"nor a valid data row ({detail})",
            line=line,
        )
    return Head(False, start, 0, 0)


def _first_record(data: bytes, start: int) -> tuple[int | None, int | None]:
    """(start, index of the ending newline) of the first non-blank record; None where unknown.

    A newline ends the record only outside quotes, i.e. after an even number of '"'.
    """
    position = start
    while position < len(data) and data[position : position + 1] in (b"\n", b"\r"):
        position += 1
    if position >= len(data):
        return None, None
    search, quotes = position, 0
    while True:
        newline = data.find(b"\n", search)
        if newline < 0:
            return position, None
        quotes += data.count(b'"', search, newline)
        if quotes % 2 == 0:
            return position, newline
        search = newline + 1
