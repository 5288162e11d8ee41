"""Deciding whether a file starts with the header, from its first record only."""

from dataclasses import dataclass

from fsspec import AbstractFileSystem

from csv_pipeline.engine import _kernels
from csv_pipeline.engine.blocks import read_exactly
from csv_pipeline.engine.errors import InvalidFileError
from csv_pipeline.engine.rules import HEADER_FIELDS, HEADER_LINE, row_error, shown

BOM = b"\xef\xbb\xbf"
_PROBE = 1 << 16


@dataclass(frozen=True)
class Head:
    has_header: bool
    data_start: int  # first byte of the data rows
    lines_before_data: int
    quotes_before_data: int


def detect_header(fs: AbstractFileSystem, path: str, size: int, file_name: str) -> Head:
    """The header is optional; a first row that is neither header nor valid data is an error.

    The probe doubles until it holds the first record, so a record of any length is read
    in time linear in its size.
    """
    head = read_exactly(fs, path, 0, min(_PROBE, size), file_name)
    start = len(BOM) if head.startswith(BOM) else 0
    while (found := _kernels.first_record(memoryview(head)[start:], len(head) == size)) is None:
        head += read_exactly(fs, path, len(head), min(2 * len(head), size), file_name)
    record_start, record_end, fields_or_problem = found
    record_start += start
    if record_start == len(head):  # only blank lines: no header, no rows
        return Head(False, start, 0, 0)
    line = head.count(b"\n", 0, record_start) + 1
    if record_end is not None:
        record_end += start
        if fields_or_problem == HEADER_FIELDS:
            return Head(True, record_end, head.count(b"\n", 0, record_end), head.count(b'"', 0, record_end))
        *_, problem = _kernels.parse_rows(head[record_start:record_end])
        if problem is None:  # a valid data row: the file has no header
            return Head(False, start, 0, 0)
        record = head[record_start:record_end]
    else:
        assert isinstance(fields_or_problem, tuple)  # without a record end the loop returns the problem
        problem = fields_or_problem
        record = head[record_start:]
    _, code, column, value = problem
    error = row_error(file_name, line, code, column, value)
    row = shown(record.rstrip(b"\r\n"))
    detail = error.problem if error.column is None else f"{error.column} {error.value!r} {error.problem}"
    raise InvalidFileError(
        file_name,
        f"invalid header: the first row {row!r} is neither the header {HEADER_LINE!r} nor a valid data row ({detail})",
        line=line,
    )
