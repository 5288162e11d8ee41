"""The heap that map and reduce tasks keep for each other is handed back once a file's aggregation ends.

Workers keep up to 512 MB of freed heap between tasks (``allocator.reuse_freed_memory``); the
steps after the aggregation (history load, read-back) would otherwise run on top of it, so a
run's peak grew with every step it ran rather than being the largest step's.
"""

from pathlib import Path

import psutil
from distributed import Client, LocalCluster

from csv_pipeline.demo_data import write_demo_file
from csv_pipeline.engine import aggregate, inspect_file
from csv_pipeline.engine.allocator import release_kept_memory

BLOCK_BYTES = 32 << 20  # the default block: each map task allocates a few hundred MB


def _trimmed_bytes() -> int:
    """RSS this worker gives back when asked to trim its heap now."""
    process = psutil.Process()
    before = process.memory_info().rss
    release_kept_memory()
    return before - process.memory_info().rss


def test_a_finished_aggregation_leaves_no_kept_heap_on_its_workers(tmp_path: Path) -> None:
    source = tmp_path / "plays.csv"
    write_demo_file(str(source), 3 * BLOCK_BYTES, songs=50_000, days=365, seed=7, progress=False)
    plan = inspect_file(str(source), source.name, block_bytes=BLOCK_BYTES)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        aggregate(client, plan, str(tmp_path / "scratch"))
        (left_to_trim,) = client.run(_trimmed_bytes).values()
    assert len(plan.offsets) >= 3
    assert left_to_trim < 8 << 20, f"{left_to_trim / 2**20:.0f} MiB of freed heap still kept after the aggregation"
