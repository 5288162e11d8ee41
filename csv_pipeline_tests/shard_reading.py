"""Reading shards back with the csv module, as any user would."""

import csv
import io
from pathlib import Path


def read_shards(manifest) -> list[list[list[str]]]:
    """Every shard's data rows (header checked and dropped)."""
    shards = []
    for shard in manifest.shards:
        rows = list(csv.reader(io.StringIO(Path(shard.uri).read_text(encoding="utf-8"), newline="")))
        assert rows[0] == ["Song", "Date", "Total Number of Plays for Date"]
        shards.append(rows[1:])
    return shards


def totals_of(manifest) -> dict[tuple[str, str], int]:
    return {(song, date): int(total) for shard in read_shards(manifest) for song, date, total in shard}
