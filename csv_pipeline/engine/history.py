"""The play history: every file's totals in one Delta Lake table, cumulative across files.

No Dagster imports: the asset, the schedule and ``csv-pipeline history`` call these functions,
and tests call them alone. The table is partitioned by ``file_id``, a fixed-length digest of
``file_key`` (a key itself may be too long, once URL-encoded, for a folder name), so a file's
contribution is one partition: loading a file replaces that partition in one commit (the file's old rows are
removed and its new rows added atomically), whatever else the table holds, and the cost is the
file's own shards, read once. Commits of different files never conflict: delta-rs checks a
losing commit against the winners and retries it on the next version; on S3 the log entry is
written with a conditional PUT (``If-None-Match``), so two writers cannot take the same version.
"""

import datetime
import functools
import hashlib
import operator
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from csv_pipeline.engine import storage
from csv_pipeline.engine.rules import OUTPUT_COLUMNS

if TYPE_CHECKING:
    import duckdb
    from deltalake import DeltaTable

SCHEMA = pa.schema(
    [
        pa.field("song", pa.string(), nullable=False),
        pa.field("date", pa.date32(), nullable=False),
        pa.field("plays", pa.int64(), nullable=False),
        pa.field("file_key", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("file_id", pa.string(), nullable=False),
    ]
)
PARTITION_BY = ["file_id"]
_SHARD_COLUMNS = {"Song": pa.string(), "Date": pa.date32(), "Total Number of Plays for Date": pa.int64()}
# A checkpoint every 10 commits keeps opening the table a read of one Parquet file and at most
# 9 JSON commits, however many files it holds. Every run opens it, and delta-rs reads each
# commit twice (two GETs on S3); the checkpoint rewrites every file's entry, one small row each.
TABLE_CONFIGURATION = {"delta.checkpointInterval": "10"}
# Rows arrive sorted by (song, date); row groups of this size let a reader skip, by their song
# statistics, all but the groups that may hold the song it asks for.
ROW_GROUP_ROWS = 128 * 1024
COMMIT_RETRIES = 100
# The history command's aggregation spills to disk beyond this much memory.
QUERY_MEMORY_LIMIT = "1GB"
# A load writes one partition (its file's), so one Parquet writer. delta-rs starts one per core
# and hashes the rows among them by partition: every row goes to the same one, and the stream
# feeding the idle others is never drained, so the whole load piled up in memory (a 2 GB demo
# file: 2.68 GB peak in play_history, 1.00 GB with one writer, in the same time). delta-rs reads
# this once per process, at its first write; an operator's own value is kept.
os.environ.setdefault("DELTARS_MAX_CONCURRENT_WRITERS", "1")


@dataclass(frozen=True)
class Contents:
    """What the table holds, from its log alone (file statistics; no data read)."""

    version: int
    files: int
    rows: int
    first_date: datetime.date | None
    last_date: datetime.date | None


@dataclass(frozen=True)
class Loaded:
    """One file's contribution, counted while it was loaded, and the table it made."""

    version: int  # of the commit
    rows: int
    songs: int
    plays_per_month: tuple[tuple[str, int], ...]  # ("YYYY-MM", plays), in month order
    table: Contents  # the whole table as of the commit


@dataclass(frozen=True)
class Totals:
    """Figures of the whole history that only a scan of its rows gives."""

    version: int
    distinct_songs: int
    plays_per_month: tuple[tuple[str, int], ...]


def storage_options(url: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """delta-rs options for ``url``: on S3, the endpoint and region the rest of the project
    (s3fs) takes from the environment; delta-rs refuses plain-HTTP endpoints unless told."""
    if not url.startswith("s3://"):
        return {}
    options = {}
    endpoint = environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        options["AWS_REGION"] = region
    return options


def replace_file(table_url: str, file_key: str, run_id: str, shard_urls: Sequence[str]) -> Loaded:
    """Make the rows of ``shard_urls`` the whole contribution of ``file_key``, in one commit.

    The shards are streamed (read once, a block at a time), and counted on the way. The table is
    opened once: opening replays the commits since its last checkpoint (two GETs each on S3),
    and the commit then brings the same table object up to its own version.
    """
    from deltalake import CommitProperties, WriterProperties, write_deltalake

    table = _open_or_create(table_url, storage_options(table_url))
    count = _Count()
    write_deltalake(
        table,
        pa.RecordBatchReader.from_batches(SCHEMA, count.passing(_shard_batches(shard_urls, file_key, run_id))),
        mode="overwrite",
        predicate=f"file_id = '{file_id(file_key)}'",
        partition_by=PARTITION_BY,
        writer_properties=WriterProperties(max_row_group_size=ROW_GROUP_ROWS, compression="ZSTD"),
        commit_properties=CommitProperties(max_commit_retries=COMMIT_RETRIES),
    )
    months = tuple(sorted(count.plays_per_month.items()))
    return Loaded(table.version(), count.rows, count.songs, months, _contents_of(table))


class _Count:
    """Rows, songs and plays per month of the batches that pass through.

    All rows of a song are adjacent in a result's shards (sorted within a shard, and a song
    that spills into the next shard continues at its start), so the songs are the runs of
    equal neighbours."""

    def __init__(self) -> None:
        self.rows = 0
        self.songs = 0
        self.plays_per_month: dict[str, int] = {}
        self._last_song: str | None = None

    def passing(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            self._count(batch)
            yield batch

    def _count(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        songs = batch.column("song")
        self.rows += batch.num_rows
        song_changes = pc.call_function("not_equal", [songs[1:], songs[:-1]])
        self.songs += pc.call_function("sum", [song_changes]).as_py() or 0
        self.songs += songs[0].as_py() != self._last_song
        self._last_song = songs[-1].as_py()
        # Sum per date first (an integer hash aggregate over the batch), then per month over the
        # few distinct dates: calendar arithmetic on every row would cost more than the load.
        days = (
            pa.table({"date": batch.column("date"), "plays": batch.column("plays")})
            .group_by("date")
            .aggregate([("plays", "sum")])
        )
        dates = days.column("date")
        years = pc.call_function("multiply", [pc.call_function("year", [dates]), 100])
        months = pa.table(
            {
                "month": pc.call_function("add", [years, pc.call_function("month", [dates])]),
                "plays": days.column("plays_sum"),
            }
        )
        for row in months.group_by("month").aggregate([("plays", "sum")]).to_pylist():
            month = f"{row['month'] // 100:04d}-{row['month'] % 100:02d}"
            self.plays_per_month[month] = self.plays_per_month.get(month, 0) + row["plays_sum"]


def _open_or_create(table_url: str, options: dict[str, str]) -> "DeltaTable":
    """The table, created empty first if there is none. Creation is not retried on a later version:
    a writer that loses the race to create it uses the winner's table, rather than committing
    a second protocol change that would fail the other writers' commits."""
    from deltalake import CommitProperties, DeltaTable
    from deltalake.exceptions import DeltaError

    table = _existing(table_url, options)
    if table is not None:
        return table
    try:
        return DeltaTable.create(
            table_url,
            SCHEMA,
            mode="ignore",
            partition_by=PARTITION_BY,
            configuration=TABLE_CONFIGURATION,
            storage_options=options,
            commit_properties=CommitProperties(max_commit_retries=0),
        )
    except DeltaError:
        table = _existing(table_url, options)  # another writer created it first
        if table is None:
            raise
        return table


def _existing(table_url: str, options: dict[str, str]) -> "DeltaTable | None":
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(table_url, storage_options=options)
    except TableNotFoundError:
        return None


def _shard_batches(shard_urls: Sequence[str], file_key: str, run_id: str) -> Iterator[pa.RecordBatch]:
    convert = pa_csv.ConvertOptions(column_types=_SHARD_COLUMNS, strings_can_be_null=False)
    for url in shard_urls:
        fs, path = storage.filesystem(url)
        with fs.open(path, "rb") as stream:
            for batch in pa_csv.open_csv(stream, convert_options=convert):
                constants = [
                    pa.repeat(pa.scalar(value, pa.string()), batch.num_rows)
                    for value in (file_key, run_id, file_id(file_key))
                ]
                yield pa.RecordBatch.from_arrays([*batch.columns, *constants], schema=SCHEMA)


def file_id(file_key: str) -> str:
    """The partition value of ``file_key``: 16 hex digits of its SHA-256, a safe folder name
    whatever the key's length or characters."""
    return hashlib.sha256(file_key.encode("utf-8")).hexdigest()[:16]


def exists(table_url: str) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(table_url, storage_options=storage_options(table_url))


def write_totals(
    table_url: str,
    out: IO[bytes],
    *,
    song: str | None = None,
    date_from: datetime.date | None = None,
    date_until: datetime.date | None = None,
) -> None:
    """Write ``Song,Date,Total Number of Plays for Date`` summed over all files, sorted by Song
    then Date, to ``out``.

    delta-rs lists the live files and pyarrow reads them with ``song`` and the dates pushed down
    (partitions and row groups whose statistics exclude them are not read); DuckDB sums and
    sorts the stream within a memory limit, spilling to a temporary directory beyond it, and
    hands the result back a batch at a time.
    """
    header = (",".join(OUTPUT_COLUMNS) + "\n").encode()
    if not exists(table_url):
        out.write(header)
        return
    scanner = _dataset(table_url).scanner(
        columns=["song", "date", "plays"], filter=_row_filter(song, date_from, date_until)
    )
    with _duckdb() as connection:
        connection.register("rows", scanner.to_reader())
        totals = connection.sql(
            'SELECT song AS "Song", date AS "Date", CAST(sum(plays) AS BIGINT) AS "Total Number of Plays for Date" '
            "FROM rows GROUP BY song, date ORDER BY song, date"
        )
        out.write(header)
        for batch in totals.to_arrow_reader(64 * 1024):
            out.write(_csv_lines(batch))


def _csv_lines(batch: pa.RecordBatch) -> memoryview:
    """The batch as CSV lines, the song quoted only where RFC 4180 needs it (as in the shards),
    rendered by Arrow kernels rather than row by row."""
    song, date, plays = (column.cast(pa.string()) for column in batch.columns)
    escaped = pc.call_function("replace_substring", [song], pc.ReplaceSubstringOptions('"', '""'))
    quoted = pc.call_function("binary_join_element_wise", ['"', escaped, '"', ""])
    needs_quotes = pc.call_function("match_substring_regex", [song], pc.MatchSubstringOptions('[",\r\n]'))
    song = pc.call_function("if_else", [needs_quotes, quoted, song])
    plays_and_newline = pc.call_function("binary_join_element_wise", [plays, "", "\n"])
    lines = pc.call_function("binary_join_element_wise", [song, date, plays_and_newline, ","])
    offsets = memoryview(lines.buffers()[1]).cast("i")[lines.offset : lines.offset + len(lines) + 1]
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]] if len(lines) else memoryview(b"")


def _row_filter(
    song: str | None, date_from: datetime.date | None, date_until: datetime.date | None
) -> pc.Expression | None:
    conditions = []
    if song is not None:
        conditions.append(pc.field("song") == song)
    if date_from is not None:
        conditions.append(pc.field("date") >= date_from)
    if date_until is not None:
        conditions.append(pc.field("date") <= date_until)
    return functools.reduce(operator.and_, conditions) if conditions else None


def _dataset(table_url: str):
    from deltalake import DeltaTable

    return DeltaTable(table_url, storage_options=storage_options(table_url)).to_pyarrow_dataset()


@contextmanager
def _duckdb() -> Iterator["duckdb.DuckDBPyConnection"]:
    """An in-memory DuckDB connection with a memory limit and a private spill directory."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="csv_pipeline_history_") as spill:
        config = {"memory_limit": QUERY_MEMORY_LIMIT, "temp_directory": spill, "preserve_insertion_order": False}
        with duckdb.connect(config=config) as connection:
            yield connection


def contents(table_url: str) -> Contents:
    """Files, rows and date range of the table from its log's file statistics: the cost grows
    with the number of data files, never with their rows."""
    from deltalake import DeltaTable

    return _contents_of(DeltaTable(table_url, storage_options=storage_options(table_url)))


def _contents_of(table: "DeltaTable") -> Contents:
    actions = pa.table(table.get_add_actions(flatten=True))
    if not actions.num_rows:
        return Contents(table.version(), 0, 0, None, None)
    return Contents(
        version=table.version(),
        files=len(pc.call_function("unique", [actions["partition.file_id"]])),
        rows=pc.call_function("sum", [actions["num_records"]]).as_py(),
        first_date=pc.call_function("min", [actions["min.date"]]).as_py(),
        last_date=pc.call_function("max", [actions["max.date"]]).as_py(),
    )


def scan_totals(table_url: str) -> Totals:
    """Distinct songs and plays per month of the whole history: a scan of its ``song``,
    ``date`` and ``plays`` columns, so it takes time in proportion to the history (the
    nightly maintenance runs it, not each file's run)."""
    from deltalake import DeltaTable

    table = DeltaTable(table_url, storage_options=storage_options(table_url))
    with _duckdb() as connection:
        connection.register("history", table.to_pyarrow_dataset())  # scanned with only the columns named
        ((songs,),) = connection.sql("SELECT count(DISTINCT song) FROM history").fetchall()
        months = connection.sql(
            "SELECT strftime(date, '%Y-%m') AS month, CAST(sum(plays) AS BIGINT) FROM history "
            "GROUP BY month ORDER BY month"
        ).fetchall()
    return Totals(table.version(), int(songs), tuple((month, int(plays)) for month, plays in months))


def maintain(table_url: str, retention_hours: int = 168) -> dict[str, int]:
    """Compact small files within each file's partition, checkpoint the log, drop expired log
    entries and delete files no version younger than ``retention_hours`` needs. A table made with
    other settings (an earlier checkpoint interval) is given the current ones first."""
    from deltalake import CommitProperties, DeltaTable

    if not exists(table_url):
        return {"files_added": 0, "files_removed": 0, "files_vacuumed": 0}
    table = DeltaTable(table_url, storage_options=storage_options(table_url))
    configuration = table.metadata().configuration
    if any(configuration.get(key) != value for key, value in TABLE_CONFIGURATION.items()):
        table.alter.set_table_properties(TABLE_CONFIGURATION)
    metrics = table.optimize.compact(commit_properties=CommitProperties(max_commit_retries=COMMIT_RETRIES))
    table.create_checkpoint()
    table.cleanup_metadata()
    vacuumed = table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
    return {
        "files_added": int(metrics.get("numFilesAdded", 0)),
        "files_removed": int(metrics.get("numFilesRemoved", 0)),
        "files_vacuumed": len(vacuumed),
    }
