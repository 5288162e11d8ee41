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
import tempfile
import time
from pathlib import Path
from typing import cast

import s3fs

from benchmarks.run import demo_input, two_worker_cluster
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
    source = demo_input(args.size, Path(args.data_dir).resolve())

    with tempfile.TemporaryDirectory(prefix="scratch-reads-") as logs, moto_server(Path(logs)) as endpoint:
        log = Path(logs) / "moto.log"
        options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
        s3 = s3fs.S3FileSystem(endpoint_url=endpoint, key="testing", secret="testing", skip_instance_cache=True)
        s3.mkdir(BUCKET)
        s3.put_file(str(source.path), f"{BUCKET}/input.csv")
        print(f"{source.label}, {source.path.stat().st_size:,} bytes, scratch and output on moto S3\n")
        print("| reduce tasks take | map files | buckets | GETs of map files | aggregate s | write s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        digests = set()
        with two_worker_cluster() as client:
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
                    digest.update(cast(bytes, s3.cat_file(shard.uri.removeprefix("s3://"))))  # fsspec: str or bytes
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
