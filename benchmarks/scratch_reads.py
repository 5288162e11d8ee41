"""Reads of the shuffle's scratch on S3: one bucket per reduce task against groups of adjacent buckets.

A demo file is put into a bucket of moto's S3 server (a loopback port) and processed by the
engine on a local Dask cluster of two single-threaded worker processes, with the scratch in
the same bucket: once with one bucket per reduce task (every piece its own GET) and once as
the engine does it on object stores (adjacent buckets up to 128 MiB of pieces per task, each
map file read once per group). The map files' GETs are counted in moto's request log; the
shards of both runs must be byte-identical.

    .venv/bin/python -m benchmarks.scratch_reads              (from the repository root)
    .venv/bin/python -m benchmarks.scratch_reads --size 256MB

moto keeps objects in memory: the input, two runs' scratch and outputs (about 4x the size).
"""

import argparse
import hashlib
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import s3fs
from distributed import Client, LocalCluster

from benchmarks.run import InputFile, make_input
from csv_pipeline.demo_data import parse_size
from csv_pipeline.engine import aggregate, inspect_file, write_shards
from csv_pipeline.engine.sizes import REDUCE_READ_BYTES
from csv_pipeline_tests.service_fixtures import moto_server

BUCKET = "scratch-reads"
MODES = (("one bucket per reduce task", 0), ("adjacent buckets grouped", REDUCE_READ_BYTES))


def map_file_gets(log: Path, scratch: str) -> int:
    return len(re.findall(rf"GET /{BUCKET}/{scratch}/maps/[^/\s]+\.arrows ", log.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size", default="1GB", help="demo file size (default %(default)s)")
    parser.add_argument("--data-dir", default="/tmp/csv_pipeline_bench", help="where the input is made and kept")
    args = parser.parse_args()
    inputs_dir = Path(args.data_dir).resolve() / "inputs"
    inputs_dir.mkdir(parents=True, exist_ok=True)
    source = InputFile(f"demo-{args.size}", inputs_dir / f"demo-{args.size}.csv", parse_size(args.size))
    csv_pipeline = shutil.which("csv-pipeline", path=str(Path(sys.executable).parent))
    if csv_pipeline is None:
        sys.exit(f"csv-pipeline is not installed next to {sys.executable}.")
    make_input(source, csv_pipeline, inputs_dir)

    with tempfile.TemporaryDirectory(prefix="scratch-reads-") as logs, moto_server(Path(logs)) as endpoint:
        log = Path(logs) / "moto.log"
        options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
        s3 = s3fs.S3FileSystem(**options, skip_instance_cache=True)
        s3.mkdir(BUCKET)
        s3.put_file(str(source.path), f"{BUCKET}/input.csv")
        print(f"{source.label}, {source.path.stat().st_size:,} bytes, scratch and output on moto S3\n")
        print("| reduce tasks take | map files | buckets | GETs of map files | aggregate s | write s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        digests = set()
        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,  # pyright: ignore[reportArgumentType]
            ) as cluster,
            Client(cluster) as client,
        ):
            for number, (name, reduce_read_bytes) in enumerate(MODES):
                scratch = f"scratch-{number}"
                plan = inspect_file(f"s3://{BUCKET}/input.csv", "input.csv", options)
                started = time.perf_counter()
                aggregation = aggregate(client, plan, f"s3://{BUCKET}/{scratch}", reduce_read_bytes=reduce_read_bytes)
                aggregated = time.perf_counter()
                manifest = write_shards(client, aggregation, f"s3://{BUCKET}/out-{number}")
                written = time.perf_counter()
                digest = hashlib.sha256()
                for shard in manifest.shards:
                    digest.update(s3.cat_file(shard.uri.removeprefix("s3://")))
                digests.add(digest.hexdigest())
                map_files = len(s3.ls(f"{BUCKET}/{scratch}/maps"))
                print(
                    f"| {name} | {map_files} | {plan.buckets} | {map_file_gets(log, scratch):,} "
                    f"| {aggregated - started:.1f} | {written - aggregated:.1f} |",
                    flush=True,
                )
        print(f"\nshards byte-identical: {len(digests) == 1}")


if __name__ == "__main__":
    main()
