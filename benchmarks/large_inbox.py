"""Benchmark of the inbox sensor on a large S3 inbox (moto's S3 server on a loopback port).

The inbox is filled to each size in turn (tiny objects, a thousand puts at a time); the sensor
catches up once, then one new file is put and that tick is timed: it lists the whole inbox and
must request exactly that file. The listing alone is timed apart, since over moto it is most of
the tick. The cursor's size is shown next to the size the earlier format (every file key with
its stamp) would have had. The Dagster instance is a temporary SQLite one.

    .venv/bin/python benchmarks/large_inbox.py
    .venv/bin/python benchmarks/large_inbox.py --sizes 1000,10000
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import s3fs
from dagster import DagsterInstance, SensorResult, build_sensor_context, instance_for_test

from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.defs.sensors.inbox_sensor import inbox_sensor
from csv_pipeline.inbox import list_inbox

BIN = Path(sys.executable).parent
ROWS = b"Song,Date,Number of Plays\nUmbrella,2020-01-01,100\n"
PUTS_AT_ONCE = 1_000
BUCKET = "large-inbox-bench"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("moto_server did not answer within a minute")


def fill(inbox: str, start: int, stop: int) -> None:
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    for first in range(start, stop, PUTS_AT_ONCE):
        numbers = range(first, min(first + PUTS_AT_ONCE, stop))
        fs.pipe({f"{inbox}/{number // 1000:03d}/plays-{number:06d}.csv": ROWS for number in numbers})


def tick(instance: DagsterInstance, play_files: PlayFiles, cursor: str | None) -> tuple[float, SensorResult]:
    """One evaluation as the daemon makes it, its partitions added; its wall seconds."""
    started = time.perf_counter()
    result = inbox_sensor(build_sensor_context(instance=instance, cursor=cursor, resources={"play_files": play_files}))
    seconds = time.perf_counter() - started
    assert isinstance(result, SensorResult)  # what the inbox sensor returns, typed as any sensor's result
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="files in the inbox, ascending")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    port = free_port()
    server = start_moto(port)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
    )
    try:
        s3fs.S3FileSystem(skip_instance_cache=True).mkdir(BUCKET)
        play_files = PlayFiles(
            inbox=f"s3://{BUCKET}/inbox",
            outbox=f"s3://{BUCKET}/outbox",
            scratch="/tmp/unused",
            max_shard_bytes=1_000_000,
        )
        print(f"load average at the start: {os.getloadavg()[0]:.1f} (2 cores)\n")
        print(
            "| files in inbox | fill s | catch-up tick s | listing alone s | tick s, one new file "
            "| cursor bytes | old-format cursor bytes | load |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
        with instance_for_test() as instance:
            cursor, filled = None, 0
            for size in sizes:
                started = time.perf_counter()
                fill(play_files.inbox, filled, size - 1)
                fill_seconds = time.perf_counter() - started
                catch_up_seconds, result = tick(instance, play_files, cursor)
                cursor = result.cursor
                s3fs.S3FileSystem(skip_instance_cache=True).pipe(f"{play_files.inbox}/new-{size}.csv", ROWS)
                started = time.perf_counter()
                inbox = list_inbox(play_files.inbox)
                listing_seconds = time.perf_counter() - started
                old_format = json.dumps({key: file.stamp for key, file in inbox.files.items()}, sort_keys=True)
                new_file_seconds, result = tick(instance, play_files, cursor)
                requested = [request.partition_key for request in result.run_requests or []]
                assert requested == [f"new-{size}.csv"] and len(inbox.files) == size, (requested, len(inbox.files))
                cursor, filled = result.cursor, size
                assert cursor is not None  # the sensor always saves its cursor
                print(
                    f"| {size:,} | {fill_seconds:.1f} | {catch_up_seconds:.2f} | {listing_seconds:.2f} "
                    f"| {new_file_seconds:.2f} | {len(cursor):,} | {len(old_format):,} "
                    f"| {os.getloadavg()[0]:.1f} |",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
