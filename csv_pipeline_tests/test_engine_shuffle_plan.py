"""The shuffle plan: pieces grow far slower than blocks x buckets on huge files, and a map
task taking several blocks gives the same shards, read once per map task and bucket."""

import math
import random
from collections import Counter
from pathlib import Path

import pytest
from distributed import Client, LocalCluster, get_worker

from csv_pipeline.engine import FilePlan, Manifest, aggregate, inspect_file, storage, write_shards
from csv_pipeline.engine.plan import plan_shuffle
from csv_pipeline.engine.sizes import BLOCK_BYTES, BUCKET_BYTES, MAX_SHUFFLE_PIECES
from csv_pipeline_tests.engine_fixtures import csv_row
from csv_pipeline_tests.shard_reading import totals_of

GB, TB = 10**9, 10**12
SONGS = [f"song {i}" for i in range(800)] + ["Hello, Goodbye", 'Say "Hi"', "two\nlines", "東京"]
LONG_SONG = "la la la\n" * 30


def test_a_1_gb_file_keeps_one_block_per_map_task():
    plan = plan_shuffle(GB, BLOCK_BYTES, BUCKET_BYTES)
    assert (plan.blocks, plan.blocks_per_map_task, plan.buckets) == (30, 1, 30)
    assert (plan.map_tasks, plan.pieces, plan.offsets_bytes) == (30, 900, 30 * 31 * 8)


def test_a_10_gb_file_keeps_one_block_per_map_task():
    plan = plan_shuffle(10 * GB, BLOCK_BYTES, BUCKET_BYTES)
    assert (plan.blocks_per_map_task, plan.map_tasks, plan.buckets, plan.pieces) == (1, 299, 299, 89_401)


@pytest.mark.parametrize(("size", "blocks_per_map_task", "map_tasks"), [(100 * GB, 5, 597), (TB, 445, 67)])
def test_huge_files_group_blocks_and_stay_under_the_piece_limit(size, blocks_per_map_task, map_tasks):
    plan = plan_shuffle(size, BLOCK_BYTES, BUCKET_BYTES)
    blocks = math.ceil(size / BLOCK_BYTES)
    assert (plan.blocks, plan.buckets) == (blocks, math.ceil(size / BUCKET_BYTES))  # the output's bucket count kept
    assert (plan.blocks_per_map_task, plan.map_tasks) == (blocks_per_map_task, map_tasks)
    assert plan.pieces <= MAX_SHUFFLE_PIECES < blocks * plan.buckets
    assert plan.offsets_bytes == map_tasks * (plan.buckets + 1) * 8 < 16 * 2**20


def test_a_1_tb_file_plans_under_2_million_pieces():
    plan = plan_shuffle(TB, BLOCK_BYTES, BUCKET_BYTES)
    assert plan.blocks * plan.buckets > 880_000_000
    assert plan.pieces < 2_000_000


def test_more_buckets_than_the_limit_leaves_one_map_task():
    plan = plan_shuffle(10_000, 100, 1, max_pieces=50)
    assert (plan.blocks_per_map_task, plan.map_tasks, plan.buckets) == (100, 1, 10_000)


@pytest.fixture(scope="module")
def plays_file(tmp_path_factory) -> tuple[Path, Counter]:
    """~20k rows with quoted songs, every tenth a song of 30 lines, so that many block
    boundaries fall inside a quoted field and blocks merge, also across map tasks."""
    rng = random.Random(11)
    expected: Counter = Counter()
    lines = ["Song,Date,Number of Plays"]
    for _ in range(20_000):
        song = LONG_SONG if rng.random() < 0.1 else rng.choice(SONGS)
        day, plays = f"2020-03-{rng.randint(1, 31):02d}", rng.randint(0, 10**6)
        expected[(song, day)] += plays
        lines.append(csv_row(song, day, plays))
    path = tmp_path_factory.mktemp("input") / "plays.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, expected


@pytest.fixture(scope="module")
def threaded_client():
    """Workers as threads of this process (in-process transport, no ports), so the test sees
    which reduce task made each scratch read."""
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run(client: Client, path: Path, workdir: Path, max_shuffle_pieces: int) -> tuple[list[bytes], Manifest, FilePlan]:
    plan = inspect_file(
        str(path), path.name, block_bytes=4_096, bucket_bytes=32_768, max_shuffle_pieces=max_shuffle_pieces
    )
    manifest = write_shards(client, aggregate(client, plan, str(workdir / "scratch")), str(workdir / "out"))
    return [Path(shard.uri).read_bytes() for shard in manifest.shards], manifest, plan


def test_grouped_blocks_give_the_same_shards_with_one_read_per_map_task_and_bucket(
    threaded_client, plays_file, tmp_path, monkeypatch
):
    path, expected = plays_file
    reference, _, single = run(threaded_client, path, tmp_path / "one-block-per-task", MAX_SHUFFLE_PIECES)
    assert single.blocks_per_map_task == 1

    reads: dict[str, list[str]] = {}  # reduce task -> map files it read
    map_range = storage.map_range

    def counted_map_range(path, start, end):
        reads.setdefault(get_worker().get_current_task(), []).append(path)
        return map_range(path, start, end)

    monkeypatch.setattr(storage, "map_range", counted_map_range)
    grouped_shards, manifest, grouped = run(threaded_client, path, tmp_path / "grouped", 4 * single.buckets)
    assert grouped.blocks_per_map_task > 1
    assert grouped_shards == reference
    assert totals_of(manifest) == dict(expected)
    map_tasks = math.ceil(len(grouped.offsets) / grouped.blocks_per_map_task)
    assert map_tasks <= 4 and len(grouped.offsets) > 4 * map_tasks
    assert len(reads) == grouped.buckets
    for files in reads.values():
        assert len(files) == len(set(files)) == map_tasks  # one ranged read of each map task's file
    first_blocks = {int(Path(file).name.split("-")[0]) for files in reads.values() for file in files}
    assert first_blocks != set(
        grouped.offsets[:: grouped.blocks_per_map_task]
    )  # a map task lost its first block to a merge
