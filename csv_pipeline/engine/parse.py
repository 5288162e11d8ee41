"""Parsing one block of rows into an Arrow table, validating every value on the way.

The fastest path is a compiled loop for the plain form nearly every file is in
(``song,YYYY-MM-DD,digits``, LF line ends, no quotes), which accepts a block only if
every row in it is valid. Any other block goes to the general compiled parser
(``_kernels.parse_rows``: RFC 4180 quoting, CRLF, every input rule), which returns the
rows or the first bad record with its line, column and value.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from csv_pipeline.engine import _kernels
from csv_pipeline.engine.errors import InvalidFileError
from csv_pipeline.engine.kernels import SCHEMA, table_of
from csv_pipeline.engine.rules import row_error

__all__ = ["SCHEMA", "ParsedBlock", "parse_block", "parse_plain", "parse_rows"]


@dataclass(frozen=True)
class ParsedBlock:
    """A block's rows, or its first invalid row; and the counts that place it in the file."""

    table: pa.Table | None
    error: InvalidFileError | None
    newlines: int  # to number the lines of the blocks after it
    quotes: int  # an odd count before a block means its start fell inside a quoted field


def parse_block(data: bytes | memoryview, file_name: str) -> ParsedBlock:
    """The rows of ``data`` (whole rows, no header) as a table of SCHEMA, or the first bad
    row as an InvalidFileError with its line counted from the block's first line."""
    plain = parse_plain(data)
    if plain is not None:
        table, newlines = plain
        return ParsedBlock(table, None, newlines, 0)
    quotes = bytes(data).count(b'"')
    newlines, table, _, error = parse_rows(data, file_name)
    return ParsedBlock(table, error, newlines, quotes)


def parse_plain(data: bytes | memoryview) -> tuple[pa.Table, int] | None:
    """The rows of a block in the plain form (``song,YYYY-MM-DD,digits``, LF line ends, no
    quotes or CR), all valid, and the block's newline count; None when any line is in
    another form or invalid."""
    parsed = _kernels.parse_plain(data)
    if parsed is None:
        return None
    newlines, rows, offsets, songs, days, plays = parsed
    return table_of(rows, offsets, songs, days, plays), newlines


def parse_rows(
    data: bytes | memoryview, file_name: str, *, lines: bool = False
) -> tuple[int, pa.Table | None, np.ndarray | None, InvalidFileError | None]:
    """(newlines, rows, each row's 0-based line if ``lines``, first error) of a block in any
    allowed form; the error's line is counted from the block's first line."""
    newlines, columns, row_lines, problem = _kernels.parse_rows(data, lines)
    if problem is not None:
        line, code, column, value = problem
        return newlines, None, None, row_error(file_name, line + 1, code, column, value)
    assert columns is not None  # the loop returns either the columns or a problem
    lines_of_rows = None if row_lines is None else np.frombuffer(row_lines, np.int64)
    return newlines, table_of(*columns), lines_of_rows, None
