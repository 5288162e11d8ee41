"""Parsing one block of rows into an Arrow table, validating every value on the way.

The fastest path is a compiled loop for the plain form nearly every file is in
(``song,YYYY-MM-DD,digits``, LF line ends, no quotes or padding), which accepts a block
only if every row in it is valid. Any other block goes to Arrow's CSV reader with the
target types, which handles quoting, CRLF and padding and rejects bad dates,
non-integers, out-of-range numbers and bad UTF-8 by itself; the few remaining rules are
vectorised checks. Only when something is wrong does the block go through
``rules.first_invalid_row`` to name the exact line, column and value.
"""

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from csv_pipeline.engine.errors import InvalidFileError
from csv_pipeline.engine import _kernels
from csv_pipeline.engine.kernels import SCHEMA, table_of
from csv_pipeline.engine.rules import first_invalid_row

_READ = pacsv.ReadOptions(column_names=SCHEMA.names, use_threads=False, block_size=1 << 24)
_CONVERT = pacsv.ConvertOptions(
    column_types=SCHEMA,
    null_values=[],
    strings_can_be_null=False,
    quoted_strings_can_be_null=False,
    check_utf8=True,
)
_PARSE = pacsv.ParseOptions(newlines_in_values=False)
_PARSE_QUOTED = pacsv.ParseOptions(newlines_in_values=True)


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
    data = bytes(data)
    newlines, quotes = data.count(b"\n"), data.count(b'"')
    try:
        return ParsedBlock(parse_with_arrow(data, file_name, first_line=1), None, newlines, quotes)
    except InvalidFileError as error:
        return ParsedBlock(None, error, newlines, quotes)


def parse_plain(data: bytes | memoryview) -> tuple[pa.Table, int] | None:
    """The rows of a block in the plain form (``song,YYYY-MM-DD,digits``, LF line ends, no
    quotes, CR or padding), all valid, and the block's newline count; None when any line
    is in another form or invalid."""
    parsed = _kernels.parse_plain(data)
    if parsed is None:
        return None
    newlines, *columns = parsed
    return table_of(*columns), newlines


def parse_with_arrow(data: bytes, file_name: str, first_line: int) -> pa.Table:
    """The rows of a block in any form (quoting, CRLF, padding); InvalidFileError for the
    first bad row, ``first_line`` being the line number of the block's first line."""
    if not data.strip(b"\r\n"):
        return SCHEMA.empty_table()
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=_READ,
            parse_options=_PARSE_QUOTED if b'"' in data else _PARSE,
            convert_options=_CONVERT,
        )
    except pa.ArrowInvalid as arrow_error:
        raise _first_error(data, file_name, first_line, str(arrow_error)) from None
    if table.num_rows and (
        pc.min(pc.binary_length(table["song"])).as_py() == 0 or pc.min(table["plays"]).as_py() < 0
    ):
        raise _first_error(data, file_name, first_line, "an empty song or a negative number")
    return table


def _first_error(data: bytes, file_name: str, first_line: int, arrow_reason: str) -> InvalidFileError:
    error = first_invalid_row(data.decode("utf-8", "surrogateescape"), file_name, first_line)
    if error is None:  # Arrow refused what the row rules accept: report Arrow's own words
        return InvalidFileError(file_name, f"could not be parsed: {arrow_reason}", line=first_line)
    return error
