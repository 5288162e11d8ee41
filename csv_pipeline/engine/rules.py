"""The input rules' names and sentences: what users read when a row is bad.

Which rows are valid is decided in one place, the compiled parser
(``_kernels.parse_rows``, with ``parse_plain`` as its fast path for the plain form): RFC
4180 quoting, LF or CRLF line ends, three columns, a non-empty UTF-8 Song, a real
``YYYY-MM-DD`` Date (years 0001 to 9999), a Number of Plays of digits only that fits in
64 bits. It reports the first bad record as a problem code, a column and the value; this
module turns that into the sentence.
"""

from csv_pipeline.engine.errors import InvalidFileError

COLUMNS = ("Song", "Date", "Number of Plays")
HEADER_LINE = ",".join(COLUMNS)
HEADER_FIELDS = [column.encode() for column in COLUMNS]
OUTPUT_COLUMNS = ("Song", "Date", "Total Number of Plays for Date")
OUTPUT_HEADER = (",".join(OUTPUT_COLUMNS) + "\n").encode()  # the first line of every shard
MAX_INT64 = 2**63 - 1
SHOWN_CHARACTERS = 200  # of a value or row quoted in a message

_COLUMN_COUNT = 5
_PROBLEMS = {  # the problem codes of _kernels.cpp
    1: "has a quote inside an unquoted field (a quoted field must be quoted from its first character)",
    2: "has text after its closing quote",
    3: "opens a quote that is never closed",
    4: "holds a carriage return that is not followed by a line feed (line ends must be LF or CRLF)",
    6: "is not valid UTF-8",
    7: "is empty",
    8: "is not a real calendar date written YYYY-MM-DD",
    9: "is not a non-negative integer",
    10: "does not fit in 64 bits",
}


def shown(value: bytes) -> str:
    """A value as a message quotes it: decoded (Latin-1 where it is not UTF-8) and shortened."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "..."


def row_error(file_name: str, line: int, problem: int, column: int, value: bytes) -> InvalidFileError:
    """The error for a bad record the parser reported, ``line`` being its line in the file."""
    if problem == _COLUMN_COUNT:  # ``column`` is the record's column count, ``value`` the record
        return InvalidFileError(
            file_name, f"row {shown(value)!r} has {column} columns, expected 3 ({HEADER_LINE})", line=line
        )
    name = COLUMNS[column] if column < len(COLUMNS) else f"column {column + 1}"
    return InvalidFileError(file_name, _PROBLEMS[problem], line=line, column=name, value=shown(value))
