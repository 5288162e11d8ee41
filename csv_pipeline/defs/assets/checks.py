"""Asset checks of ``play_totals``: every partition's written shards read back and verified.

They run in the same run as the asset, after it (and can be run again alone from the asset's
Checks tab). The shards are read back, not the engine's own counts trusted: one Dask task per
shard streams it in 1 MiB record batches parsed on the task's own thread (bounded memory
whatever its size; larger blocks and Arrow's read-ahead threads read no faster and added a few
hundred MB to the run's peak), and reports its rows, plays, size, first and last (Song, Date)
and whether its rows are in order. The input's figures (rows and plays in) come from the
engine's map step, which counts them as it parses.
"""

import heapq
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    PreviewWarning,
    multi_asset_check,
)
from distributed import Client

from csv_pipeline import engine
from csv_pipeline.defs.assets.top_songs import top_songs_table
from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.defs.resources.dask_client import DaskClient
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.engine import storage
from csv_pipeline.engine.cluster import gather
from csv_pipeline.engine.reduce_tasks import MOST_PLAYED, most_played
from csv_pipeline.engine.rules import MAX_INT64, OUTPUT_COLUMNS
from csv_pipeline.labels import PLAYS_IN, ROWS_IN, TOP_SONGS

READ_BLOCK_BYTES = 1 << 20
ACCOUNTED_FOR = "every_input_row_accounted_for"
SORTED_AND_BOUNDED = "shards_sorted_and_within_size_limit"


@dataclass(frozen=True)
class ShardReading:
    """What one shard holds, read back from storage."""

    uri: str
    bytes: int
    rows: int
    plays: int
    header: tuple[str, ...]
    first_key: tuple[str, str] | None
    last_key: tuple[str, str] | None
    first_unsorted_line: int | None  # line of the shard (header = 1) whose key is not above the previous one
    song_totals: dict[str, int] = field(default_factory=dict)  # its top songs, and its first and last (partial) songs


def read_shard(uri: str) -> ShardReading:
    """Stream one shard and summarise it; memory is one record batch, whatever the shard's size."""
    fs, path = storage.filesystem(uri)
    size = cast(int, fs.size(path))  # None only on filesystems that do not know sizes
    convert = pacsv.ConvertOptions(
        column_types=dict(zip(OUTPUT_COLUMNS, (pa.string(), pa.string(), pa.int64()), strict=True))
    )
    rows = plays = 0
    first_key = last_key = unsorted = None
    top: list[tuple[int, str]] = []
    first_song = last_song = None
    first_total = last_total = 0  # plays of the shard's first song, and of the song being summed
    with fs.open(path, "rb") as stream:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=READ_BLOCK_BYTES, use_threads=False),
            convert_options=convert,
        )
        header = tuple(reader.schema.names)
        for batch in reader:
            if not batch.num_rows:
                continue
            songs, days, totals = batch.columns
            if unsorted is None:
                position = _first_out_of_order(songs, days, last_key)
                if position is not None:
                    unsorted = rows + position + 2  # 1-based, after the header
            plays += _exact_sum(totals)
            by_song = (
                pa.table({"song": songs, "plays": totals})
                .group_by("song", use_threads=False)
                .aggregate([("plays", "sum")])
            )
            for song, total in zip(by_song["song"].to_pylist(), by_song["plays_sum"].to_pylist(), strict=True):
                if song == last_song:
                    last_total += total
                    continue
                if last_song is not None:  # the song before is complete in this shard
                    if last_song == first_song:
                        first_total = last_total
                    heapq.heappush(top, (last_total, last_song))
                    if len(top) > MOST_PLAYED:
                        heapq.heappop(top)
                first_song = first_song if first_song is not None else song
                last_song, last_total = song, total
            rows += batch.num_rows
            first_key = first_key or (songs[0].as_py(), days[0].as_py())
            last_key = (songs[-1].as_py(), days[-1].as_py())
    song_totals = {song: total for total, song in top}
    if first_song is not None and last_song is not None:  # perhaps partial: it may go on in the shard before or after
        song_totals[first_song] = last_total if first_song == last_song else first_total
        song_totals[last_song] = last_total
    return ShardReading(uri, size, rows, plays, header, first_key, last_key, unsorted, song_totals)


def _first_out_of_order(songs: pa.Array, days: pa.Array, previous: tuple[str, str] | None) -> int | None:
    """Index in the batch of the first row whose (Song, Date) is not above the row before it."""
    if previous is not None and (songs[0].as_py(), days[0].as_py()) <= previous:
        return 0
    before, after = slice(0, len(songs) - 1), slice(1, None)
    song_increases = pc.call_function("less", [songs[before], songs[after]])
    same_song = pc.call_function("equal", [songs[before], songs[after]])
    day_increases = pc.call_function("less", [days[before], days[after]])
    increasing = pc.call_function("or", [song_increases, pc.call_function("and", [same_song, day_increases])])
    wrong = np.flatnonzero(~increasing.to_numpy(zero_copy_only=False))
    return int(wrong[0]) + 1 if len(wrong) else None


def _exact_sum(values: pa.Array) -> int:
    """Sum of non-negative int64 values without wrapping at 64 bits."""
    array = values.to_numpy(zero_copy_only=False).view(np.uint64)
    return (int((array >> np.uint64(32)).sum()) << 32) + int((array & np.uint64(0xFFFFFFFF)).sum())


def read_shards(client: Client, manifest: engine.Manifest) -> list[ShardReading]:
    """Every shard read back by its own Dask task on the run's cluster."""
    return gather(client, client.map(read_shard, manifest.output_files))


def top_songs(readings: list[ShardReading]) -> tuple[tuple[str, int], ...]:
    """The songs with the most plays over all dates; a song cut across shards is summed back.
    Ranked and capped as the engine ranks them, so the two can be compared."""
    totals: Counter[str] = Counter()
    for reading in readings:
        totals.update(reading.song_totals)
    return most_played((song, min(plays, MAX_INT64)) for song, plays in totals.items())


def accounted_for(manifest: engine.Manifest, readings: list[ShardReading]) -> AssetCheckResult:
    """Plays in equal plays out, the shards hold as many rows as the manifest says, and their
    most played songs, which the read-back yields for free, are the ones the materialization shows."""
    rows_read = sum(reading.rows for reading in readings)
    plays_out = sum(reading.plays for reading in readings)
    top_read = top_songs(readings)
    problems = []
    if plays_out != manifest.plays_in or rows_read != manifest.rows_out or rows_read > manifest.rows_in:
        problems.append(
            f"{manifest.plays_in} plays in {manifest.rows_in} input rows, {plays_out} plays in "
            f"{rows_read} rows of the shards (the manifest says {manifest.rows_out} rows)"
        )
    if top_read != tuple(manifest.top_songs):
        problems.append("the most played songs read back are not the ones the materialization shows")
    return AssetCheckResult(
        check_name=ACCOUNTED_FOR,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems) or None,
        metadata={
            ROWS_IN: manifest.rows_in,
            "rows_out (manifest)": manifest.rows_out,
            "rows_out (read back)": rows_read,
            PLAYS_IN: manifest.plays_in,
            "plays_out (read back)": plays_out,
            f"{TOP_SONGS} (read back)": top_songs_table(top_read),
        },
    )


def sorted_and_bounded(readings: list[ShardReading], max_shard_bytes: int) -> AssetCheckResult:
    """Each shard has the header, its rows in (Song, Date) order, and no more than the limit in bytes.
    Shards follow the hash buckets, so songs are sorted within a shard, not from one shard to the next;
    only a song cut across two shards must go on in date order."""
    problems = [f"{r.uri}: header {','.join(r.header)}" for r in readings if r.header != OUTPUT_COLUMNS]
    problems += [f"{r.uri}: line {r.first_unsorted_line} is out of order" for r in readings if r.first_unsorted_line]
    problems += [f"{r.uri}: {r.bytes} bytes, over {max_shard_bytes}" for r in readings if r.bytes > max_shard_bytes]
    keyed = [(r.uri, r.first_key, r.last_key) for r in readings if r.first_key and r.last_key]  # shards with rows
    problems += [  # a song too large for one shard goes on in the next one, its dates still in order
        f"{after_uri} goes on with {before_last[0]!r} at or before the last date of {before_uri}"
        for (before_uri, _, before_last), (after_uri, after_first, _) in pairwise(keyed)
        if after_first[0] == before_last[0] and after_first <= before_last
    ]
    return AssetCheckResult(
        check_name=SORTED_AND_BOUNDED,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems[:5]) or None,
        metadata={
            "shards": len(readings),
            "largest_shard_bytes": max((r.bytes for r in readings), default=0),
            "max_shard_bytes": max_shard_bytes,
            "shards_out_of_order": sum(1 for r in readings if r.first_unsorted_line),
            "problems": len(problems),
        },
    )


# Partitioned checks are a preview feature of Dagster 1.13: one result per file is what they are for.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", PreviewWarning)
    CHECK_SPECS = [
        AssetCheckSpec(
            ACCOUNTED_FOR,
            asset="play_totals",
            partitions_def=inbox_files,
            description="Every input row is accounted for: the plays summed over all input rows equal the "
            "plays summed over the shards as read back, and the shards hold the rows the manifest lists.",
        ),
        AssetCheckSpec(
            SORTED_AND_BOUNDED,
            asset="play_totals",
            partitions_def=inbox_files,
            description="Every shard, read back, has the output header, its rows sorted by Song then Date "
            "(a song too large for one shard going on in date order in the next), and is no larger "
            "than the shard size limit.",
        ),
    ]


@multi_asset_check(
    specs=CHECK_SPECS,
    ins={"manifest": AssetIn("play_totals")},
    name="verify_shards",
    compute_kind="dask",
)
def verify_shards(
    context: AssetCheckExecutionContext, play_files: PlayFiles, dask: DaskClient, manifest: engine.Manifest
) -> Iterator[AssetCheckResult]:
    """Read the partition's shards back on the Dask cluster and check them."""
    with dask.client() as client:
        readings = read_shards(client, manifest)
    context.log.info(f"{manifest.file_name}: read back {len(readings)} shards, {sum(r.rows for r in readings)} rows")
    yield accounted_for(manifest, readings)
    yield sorted_and_bounded(readings, play_files.max_shard_bytes)
