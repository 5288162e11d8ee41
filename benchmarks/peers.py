"""The peers ``benchmarks/run.py`` measures against: the same aggregation in other engines.

    python benchmarks/peers.py ENGINE IN.csv OUT_DIR

ENGINE is one of ``polars``, ``duckdb``, ``dask_seed`` (the replaced system's own Dask code,
without Django), ``pandas_chunks`` or ``arrow_read`` (parse only: the floor for anything that
must read the file). Each writes ``Song,Date,Total Number of Plays for Date`` into OUT_DIR,
unsorted, as each engine does it natively. Run each in its own process (``run.py`` does) so its
memory is measured alone. The imports are inside each engine so one's import cost is not
charged to another.
"""

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

TOTAL = "Total Number of Plays for Date"


def duckdb_totals(source: Path, out_dir: Path) -> None:
    import duckdb

    columns = "{'Song': 'VARCHAR', 'Date': 'VARCHAR', 'Number of Plays': 'BIGINT'}"
    duckdb.sql(
        f"""COPY (SELECT "Song", "Date", SUM("Number of Plays") AS "{TOTAL}"
            FROM read_csv('{source}', header=true, columns={columns})
            GROUP BY ALL) TO '{out_dir}/duckdb.csv' (HEADER)"""
    )


def polars_totals(source: Path, out_dir: Path) -> None:
    import polars as pl

    schema = {"Song": pl.Utf8, "Date": pl.Utf8, "Number of Plays": pl.Int64}
    (
        pl.scan_csv(source, schema=schema)
        .group_by(["Song", "Date"])
        .agg(pl.col("Number of Plays").sum().alias(TOTAL))
        .sink_csv(out_dir / "polars.csv")
    )


def dask_seed_totals(source: Path, out_dir: Path) -> None:
    """The replaced service's algorithm: one output partition per 500 MB of input."""
    import dask.dataframe as dd

    frame = dd.read_csv(source)
    frame["Number of Plays"] = dd.to_numeric(frame["Number of Plays"])
    split_out = math.ceil(os.path.getsize(source) / 500_000_000)
    totals = frame.groupby(["Song", "Date"], sort=False).sum(split_out=split_out).reset_index()
    totals.to_csv(str(out_dir / "dask-*.csv"), index=False)


def pandas_chunks_totals(source: Path, out_dir: Path) -> None:
    import pandas as pd

    parts = [
        chunk.groupby(["Song", "Date"])["Number of Plays"].sum() for chunk in pd.read_csv(source, chunksize=5_000_000)
    ]
    pd.concat(parts).groupby(level=[0, 1]).sum().rename(TOTAL).to_csv(out_dir / "pandas.csv")


def arrow_read(source: Path, out_dir: Path) -> None:
    import pyarrow.csv

    pyarrow.csv.read_csv(source)


ENGINES: dict[str, Callable[[Path, Path], None]] = {
    "duckdb": duckdb_totals,
    "polars": polars_totals,
    "dask_seed": dask_seed_totals,
    "pandas_chunks": pandas_chunks_totals,
    "arrow_read": arrow_read,
}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ENGINES:
        print(f"usage: peers.py {{{'|'.join(ENGINES)}}} IN.csv OUT_DIR", file=sys.stderr)
        return 2
    engine, source, out_dir = argv[0], Path(argv[1]), Path(argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ENGINES[engine](source, out_dir)
    print(f"{engine} wall_s={time.perf_counter() - started:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
