"""One sorted CSV from a run's sorted shards, read as streams (``csv-pipeline result``).

Each shard holds rows sorted by Song then Date; ``heapq.merge`` holds one row per shard, and
each shard is read through one buffer of ``READ_BLOCK_BYTES``, so memory stays bounded
whatever the shards' size. Python orders strings by code point, which is the UTF-8 byte order
the shards are sorted in.
"""

import contextlib
import csv
import heapq
from typing import IO, cast

from csv_pipeline.engine.storage import filesystem

READ_BLOCK_BYTES = 1 << 20


def write_merged_csv(shard_urls: list[str], output: IO[str]) -> int:
    """Write the rows of the shards as one sorted CSV under the header they all start with,
    written once; return the number of rows written."""
    writer = csv.writer(output, lineterminator="\n")
    rows = 0
    with contextlib.ExitStack() as stack:
        readers = [csv.reader(stack.enter_context(_open_shard(url))) for url in shard_urls]
        headers = [next(reader) for reader in readers]
        writer.writerows(headers[:1])
        for row in heapq.merge(*readers, key=lambda row: (row[0], row[1])):
            writer.writerow(row)
            rows += 1
    return rows


def _open_shard(url: str) -> IO[str]:
    fs, path = filesystem(url)
    return cast(IO[str], fs.open(path, "rt", block_size=READ_BLOCK_BYTES, encoding="utf-8", newline=""))
