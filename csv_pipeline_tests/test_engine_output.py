"""Output: exact totals, songs partitioned over sorted shards, size limit, determinism."""

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from csv_pipeline.engine import aggregate, inspect_file, write_shards
from csv_pipeline_tests.engine_fixtures import csv_row
from csv_pipeline_tests.shard_reading import read_shards, totals_of

pytest_plugins = ["csv_pipeline_tests.engine_fixtures"]

SONGS = [f"song {i}" for i in range(1500)] + ["Hello, Goodbye", 'Say "Hi"', "two\nlines", "Ça plane pour moi", "東京"]


@pytest.fixture(scope="module")
def plays_file(tmp_path_factory) -> tuple[Path, Counter]:
    """~40k rows over ~1500 songs and 60 days, with songs that need quoting, and the expected totals."""
    rng = random.Random(7)
    expected: Counter = Counter()
    lines = ["Song,Date,Number of Plays"]
    for _ in range(40_000):
        song, day, plays = (
            rng.choice(SONGS),
            f"2020-{rng.randint(1, 2):02d}-{rng.randint(1, 28):02d}",
            rng.randint(0, 10**6),
        )
        expected[(song, day)] += plays
        lines.append(csv_row(song, day, plays))
    path = tmp_path_factory.mktemp("input") / "plays.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path, expected


def shard_bytes(manifest) -> list[bytes]:
    return [Path(shard.uri).read_bytes() for shard in manifest.shards]


def test_totals_are_exact_and_every_pair_appears_once(run_engine, plays_file):
    path, expected = plays_file
    manifest = run_engine(path, block_bytes=16_384, bucket_bytes=65_536)
    rows = [tuple(row) for shard in read_shards(manifest) for row in shard]
    assert len(rows) == len(set((song, day) for song, day, _ in rows)) == len(expected)
    assert totals_of(manifest) == dict(expected)
    assert (manifest.rows_in, manifest.rows_out) == (40_000, len(expected))


def test_songs_are_partitioned_over_shards_and_sorted_within_each(run_engine, plays_file):
    path, _ = plays_file
    manifest = run_engine(path, block_bytes=16_384, bucket_bytes=65_536)
    shards = read_shards(manifest)
    assert len(shards) > 5
    owner: dict[str, int] = {}
    for index, rows in enumerate(shards):
        keys = [(song.encode(), day) for song, day, _ in rows]
        assert keys == sorted(keys)
        for song, _, _ in rows:
            assert owner.setdefault(song, index) == index


def test_manifest_is_written_last_and_describes_every_shard(run_engine, plays_file, tmp_path):
    path, _ = plays_file
    manifest = run_engine(path, block_bytes=16_384, bucket_bytes=65_536)
    success = tmp_path / "out" / "_SUCCESS"
    recorded = json.loads(success.read_text())
    assert [shard["uri"] for shard in recorded["shards"]] == [
        str(tmp_path / "out" / f"part-{i:05d}.csv") for i in range(len(manifest.shards))
    ]
    for shard in recorded["shards"]:
        data = Path(shard["uri"]).read_bytes()
        assert shard["bytes"] == len(data)
        assert shard["rows"] == data.count(b"\n") - 1 - data.count(b"two\nlines")
        assert Path(shard["uri"]).stat().st_mtime_ns <= success.stat().st_mtime_ns
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [*(Path(s["uri"]).name for s in recorded["shards"]), "_SUCCESS"]
    )
    assert recorded["bytes_out"] == sum(shard["bytes"] for shard in recorded["shards"])


def test_same_input_gives_byte_identical_shards_whatever_the_block_or_cluster_size(run_engine, plays_file, tmp_path):
    path, _ = plays_file
    reference = shard_bytes(run_engine(path, block_bytes=7_777, bucket_bytes=65_536, out="small-blocks"))
    assert shard_bytes(run_engine(path, block_bytes=10**7, bucket_bytes=65_536, out="one-block")) == reference
    plan = inspect_file(str(path), path.name, block_bytes=30_000, bucket_bytes=65_536)
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        aggregation = aggregate(client, plan, str(tmp_path / "scratch-1"), 500_000_000)
        assert shard_bytes(write_shards(client, aggregation, str(tmp_path / "one-worker"))) == reference


def test_shard_size_limit_with_many_shards_and_a_song_too_big_for_one(run_engine, tmp_path):
    rows = [f"big song,2020-{1 + d // 28:02d}-{1 + d % 28:02d},{d}\n" for d in range(300)]
    rows += [f"s{i:04d},2020-01-01,{i}\n" for i in range(2000)]
    path = tmp_path / "plays.csv"
    path.write_text("".join(rows))
    manifest = run_engine(path, max_shard_bytes=1_000, bucket_bytes=10_000)
    sizes = [len(data) for data in shard_bytes(manifest)]
    assert len(sizes) > 30 and max(sizes) <= 1_000
    shards_of: dict[str, set[int]] = {}
    for index, shard in enumerate(read_shards(manifest)):
        for song, _, _ in shard:
            shards_of.setdefault(song, set()).add(index)
    big = sorted(shards_of.pop("big song"))
    assert len(big) > 1 and big == list(range(big[0], big[-1] + 1))  # continues in the next shards
    assert all(len(owners) == 1 for owners in shards_of.values())
    assert sum(total for (song, _), total in totals_of(manifest).items() if song == "big song") == sum(range(300))


def test_a_row_larger_than_the_shard_limit_is_refused(run_engine, tmp_path):
    path = tmp_path / "plays.csv"
    path.write_text("a rather long song title indeed,2020-01-01,1\n")
    with pytest.raises(ValueError, match="does not fit in a shard of 50 bytes"):
        run_engine(path, max_shard_bytes=50)
