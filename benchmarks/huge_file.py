"""The shuffle's size on huge files: planned pieces, map tasks and offsets, before and after.

Planning only, so 1 GB to 1 TB take no time and no disk: "before" is one block per map task
(blocks x buckets pieces), "after" is ``plan_shuffle`` with its default piece limit. With
``--run SIZE`` it also processes a demo file of that size on a local Dask cluster twice,
one block per map task and with map tasks of several blocks (forced by ``--max-pieces``),
and prints the wall time of each and whether the shards are byte-identical.

    .venv/bin/python benchmarks/huge_file.py
    .venv/bin/python benchmarks/huge_file.py --run 2GB --max-pieces 600

The demo file is made like ``run.py`` makes it, in ``--data-dir`` (outside git), and reused.
"""

import argparse
import hashlib
import shutil
import sys
import time
from pathlib import Path

from distributed import Client
from run import demo_input, two_worker_cluster

from csv_pipeline.demo_data import parse_size
from csv_pipeline.engine import aggregate, inspect_file, write_shards
from csv_pipeline.engine.plan import plan_shuffle
from csv_pipeline.engine.sizes import BLOCK_BYTES, BUCKET_BYTES, MAX_SHUFFLE_PIECES

SIZES = ("1GB", "10GB", "100GB", "1TB")
NO_LIMIT = sys.maxsize


def planning_table(sizes: list[str]) -> str:
    lines = [
        "| file | blocks | buckets | pieces before | offsets before | blocks / map task | map tasks "
        "| pieces after | offsets after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in sizes:
        before = plan_shuffle(parse_size(size), BLOCK_BYTES, BUCKET_BYTES, NO_LIMIT)
        after = plan_shuffle(parse_size(size), BLOCK_BYTES, BUCKET_BYTES)
        lines.append(
            f"| {size} | {after.blocks:,} | {after.buckets:,} | {before.pieces:,} | {human(before.offsets_bytes)} "
            f"| {after.blocks_per_map_task:,} | {after.map_tasks:,} | {after.pieces:,} | {human(after.offsets_bytes)} |"
        )
    return "\n".join(lines)


def human(size: int) -> str:
    """``size`` bytes in decimal units: 7.4 KB, 7.1 GB."""
    for power, unit in ((4, "TB"), (3, "GB"), (2, "MB"), (1, "KB")):
        if size >= 1000**power:
            return f"{size / 1000**power:.1f} {unit}"
    return f"{size} B"


def timed_run(client: Client, source: Path, work: Path, max_pieces: int) -> tuple[float, str]:
    """(wall seconds of the engine's three steps, digest of the shards)."""
    started = time.perf_counter()
    plan = inspect_file(str(source), source.name, max_shuffle_pieces=max_pieces)
    manifest = write_shards(client, aggregate(client, plan, str(work / "scratch")), str(work / "out"))
    wall = time.perf_counter() - started
    digest = hashlib.sha256()
    for shard in manifest.shards:
        digest.update(Path(shard.uri).read_bytes())
    shutil.rmtree(work)
    return wall, digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(SIZES),
        type=lambda text: text.split(","),
        help="planned sizes (default %(default)s)",
    )
    parser.add_argument("--run", help="also process a demo file of this size, e.g. 2GB")
    parser.add_argument(
        "--max-pieces", type=int, default=600, help="piece limit of the grouped run (default %(default)s)"
    )
    parser.add_argument(
        "--data-dir", default="/tmp/csv_pipeline_bench", help="inputs and outputs (default %(default)s)"
    )
    args = parser.parse_args()
    print(f"block {BLOCK_BYTES >> 20} MiB, bucket {BUCKET_BYTES >> 20} MiB, piece limit {MAX_SHUFFLE_PIECES:,}\n")
    print(planning_table(args.sizes))
    if not args.run:
        return
    data_dir = Path(args.data_dir).resolve()
    source = demo_input(args.run, data_dir)
    print(f"\n| run on {source.label} | plan | wall s |\n| --- | --- | ---: |")
    digests = set()
    with two_worker_cluster() as client:
        for name, max_pieces in (("one block per map task", NO_LIMIT), ("grouped blocks", args.max_pieces)):
            plan = plan_shuffle(source.path.stat().st_size, BLOCK_BYTES, BUCKET_BYTES, max_pieces)
            wall, digest = timed_run(client, source.path, data_dir / "huge_file_out", max_pieces)
            digests.add(digest)
            described = f"{plan.map_tasks} map tasks of {plan.blocks_per_map_task} blocks, {plan.pieces:,} pieces"
            print(f"| {name} | {described} | {wall:.1f} |", flush=True)
    print(f"\nshards byte-identical: {len(digests) == 1}")


if __name__ == "__main__":
    main()
