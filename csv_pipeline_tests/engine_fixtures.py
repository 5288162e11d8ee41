"""Fixtures for driving the engine directly on a real local Dask cluster (no Dagster)."""

from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from csv_pipeline.engine import InvalidFileError, aggregate, inspect_file, write_shards


@pytest.fixture(scope="session")
def dask_client():
    """Two single-threaded worker processes, like the executor's local cluster."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        with Client(cluster) as client:
            yield client


@pytest.fixture
def run_engine(dask_client, tmp_path):
    """Process a file with the engine; small block and bucket sizes exercise the parallel paths."""

    def run(path: Path, *, block_bytes=1 << 20, bucket_bytes=1 << 20, max_shard_bytes=500_000_000, out="out"):
        plan = inspect_file(str(path), path.name, block_bytes=block_bytes, bucket_bytes=bucket_bytes)
        aggregation = aggregate(dask_client, plan, str(tmp_path / "scratch" / out), max_shard_bytes)
        return write_shards(dask_client, aggregation, str(tmp_path / out))

    return run


def csv_row(song: str, day: str, plays: int) -> str:
    """One input line, the song quoted as RFC 4180 wants where it holds a comma, quote or newline."""
    quoted = '"' + song.replace('"', '""') + '"' if any(c in song for c in ',"\n') else song
    return f"{quoted},{day},{plays}"


def write(tmp_path: Path, content: bytes, name: str = "plays.csv") -> Path:
    """``content`` as a file in ``tmp_path``."""
    path = tmp_path / name
    path.write_bytes(content)
    return path


def error_of(run_engine, path: Path, **sizes) -> str:
    """The sentence the engine refuses ``path`` with."""
    with pytest.raises(InvalidFileError) as caught:
        run_engine(path, **sizes)
    return caught.value.message
