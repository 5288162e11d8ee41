"""The input rules of SPEC section 2, applied row by row.

This is the authority on what a valid row is. The fast path (``parse.py``) parses whole
blocks with Arrow and only falls back to these functions to find and describe the first
bad row, so both must agree; the tests hold them to that.
"""

import csv
import datetime
import io
import re

from csv_pipeline.engine.errors import InvalidFileError

COLUMNS = ("Song", "Date", "Number of Plays")
HEADER_LINE = ",".join(COLUMNS)
OUTPUT_COLUMNS = ("Song", "Date", "Total Number of Plays for Date")
MAX_INT64 = 2**63 - 1

# Arrow's CSV converter trims spaces and tabs around numbers and dates; so do we.
_PADDING = " \t"
_INTEGER = re.compile(r"-?[0-9]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def row_problem(fields: list[str]) -> tuple[str | None, str | None, str] | None:
    """Why a parsed row is invalid, as (column, value, problem), or None if it is valid."""
    if len(fields) != len(COLUMNS):
        return None, None, (
            f"row {','.join(fields)!r} has {len(fields)} columns, expected 3 ({HEADER_LINE})"
        )
    song, date, plays = fields
    for column, value in zip(COLUMNS, fields):
        if _has_undecodable_bytes(value):
            shown = value.encode("utf-8", "surrogateescape").decode("latin-1")
            return column, shown, "is not valid UTF-8"
    if song == "":
        return "Song", song, "is empty"
    stripped = date.strip(_PADDING)
    if not _DATE.fullmatch(stripped) or not _is_calendar_date(stripped):
        return "Date", date, "is not a real calendar date written YYYY-MM-DD"
    stripped = plays.strip(_PADDING)
    if not _INTEGER.fullmatch(stripped):
        return "Number of Plays", plays, "is not a non-negative integer"
    number = int(stripped)
    if number < 0:
        return "Number of Plays", plays, "is not a non-negative integer"
    if number > MAX_INT64:
        return "Number of Plays", plays, "does not fit in 64 bits"
    return None


def is_header(fields: list[str]) -> bool:
    return tuple(fields) == COLUMNS


def numbered_rows(text: str, first_line: int):
    """(line, fields) of every non-blank row of ``text``; ``first_line`` numbers its first line.

    Raises InvalidFileError for text that is not CSV (e.g. an unterminated quote).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    lines_before = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise InvalidFileError(
                "<text>", f"is not valid CSV ({error})", line=first_line + lines_before
            ) from None
        if fields:
            yield first_line + lines_before, fields
        lines_before = reader.line_num


def first_invalid_row(text: str, file_name: str, first_line: int) -> InvalidFileError | None:
    """The first invalid row of ``text`` (decoded with surrogateescape), numbered from ``first_line``."""
    try:
        for line, fields in numbered_rows(text, first_line):
            problem = row_problem(fields)
            if problem:
                column, value, reason = problem
                return InvalidFileError(file_name, reason, line=line, column=column, value=value)
    except InvalidFileError as error:
        return InvalidFileError(file_name, error.problem, line=error.line)
    return None


def _has_undecodable_bytes(value: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in value)


def _is_calendar_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True
