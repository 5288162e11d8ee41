"""Finding the line where a (song, date) total passes 64 bits: a rare path, one block at a time."""

import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from csv_pipeline.engine import storage
from csv_pipeline.engine.blocks import read_block
from csv_pipeline.engine.parse import parse_rows


def rows_of_key(plan, nominal_start: int, nominal_end: int, song: str, day: str) -> tuple[int, list[tuple[int, int]]]:
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
    same_key = pc.and_(pc.equal(table["song"], song), pc.equal(table["date"], pa.scalar(datetime.date.fromisoformat(day))))
    matches = np.flatnonzero(same_key.to_numpy(zero_copy_only=False))
    plays = table["plays"].to_numpy()
    return newlines, [(int(lines[row]) + 1, int(plays[row])) for row in matches]
