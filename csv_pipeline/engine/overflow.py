"""Finding the line where a (song, date) total passes 64 bits: a rare path, one block at a time."""

import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from distributed import Client

from csv_pipeline.engine import storage
from csv_pipeline.engine.blocks import read_block
from csv_pipeline.engine.cluster import gather
from csv_pipeline.engine.errors import InvalidFileError
from csv_pipeline.engine.parse import parse_rows
from csv_pipeline.engine.plan import FilePlan
from csv_pipeline.engine.rules import MAX_INT64
from csv_pipeline.engine.totals import TotalOverflow


def rows_of_key(
    plan: FilePlan, nominal_start: int, nominal_end: int, song: str, day: str
) -> tuple[int, list[tuple[int, int]]]:
    """(newlines in the block, [(line within the block, plays)] of the rows of one key).

    The block was valid when it was mapped; it is read again, so the version check holds.
    """
    fs, path = storage.filesystem(plan.url, plan.storage_options)
    _, data = read_block(
        fs, path, nominal_start, nominal_end, plan.data_start, plan.size, file_name=plan.file_name, version=plan.version
    )
    newlines, table, lines, error = parse_rows(data, plan.file_name, lines=True)
    if error is not None:
        raise error
    assert table is not None and lines is not None  # without an error: the rows and, as asked, their lines
    same_song = pc.call_function("equal", [table["song"], song])
    same_day = pc.call_function("equal", [table["date"], pa.scalar(datetime.date.fromisoformat(day))])
    same_key = pc.call_function("and", [same_song, same_day])
    matches = np.flatnonzero(same_key.to_numpy(zero_copy_only=False))
    plays = table["plays"].to_numpy()
    return newlines, [(int(lines[row]) + 1, int(plays[row])) for row in matches]


def locate_overflow(client: Client, plan: FilePlan, offsets: list[int], overflow: TotalOverflow) -> InvalidFileError:
    """The line at which the running total of the overflowing (song, date) passes 64 bits,
    read from the blocks the map used (``offsets``, after merges)."""
    day = str(np.datetime64(overflow.day, "D"))
    ends = offsets[1:] + [plan.size]
    futures = client.map(rows_of_key, [plan] * len(ends), offsets, ends, [overflow.song] * len(ends), [day] * len(ends))
    lines_before, running = plan.lines_before_data, 0
    for newlines, matches in gather(client, futures):
        for line, plays in matches:
            running += int(plays)
            if running > MAX_INT64:
                return InvalidFileError(
                    plan.file_name,
                    f"makes the total of Song {overflow.song!r} on {day} larger than 64 bits",
                    line=lines_before + line,
                    column="Number of Plays",
                    value=str(plays),
                )
        lines_before += newlines
    raise AssertionError("a total overflowed in the reduce but not in a rescan of the file")
