"""Finding the line where a (song, date) total passes 64 bits: a rare path, read row by row."""

from csv_pipeline.engine import storage
from csv_pipeline.engine.blocks import read_block
from csv_pipeline.engine.rules import numbered_rows


def rows_of_key(plan, nominal_start: int, nominal_end: int, song: str, day: str) -> tuple[int, list[tuple[int, str]]]:
    """(newlines in the block, [(line within the block, plays text)] of the rows of one key)."""
    fs, path = storage.filesystem(plan.url, plan.storage_options)
    _, block = read_block(fs, path, nominal_start, nominal_end, plan.data_start, plan.size)
    data = bytes(block)
    matches = [
        (line, fields[2])
        for line, fields in numbered_rows(data.decode("utf-8", "surrogateescape"), 1)
        if fields[0] == song and fields[1].strip(" \t") == day
    ]
    return data.count(b"\n"), matches
