"""Benchmark of the inbox sensor on a large S3 inbox (moto's S3 server on a loopback port).

The inbox is filled to each size in turn (tiny objects, a thousand puts at a time); the sensor
catches up once, then one new file is put and that tick is timed: it lists the whole inbox and
must request exactly that file. The listing alone is timed apart, since over moto it is most of
the tick. Then the bucket's notifications go to an SQS queue (on the same moto server), one more
file is put, and the tick that reads the queue instead of listing is timed: it must request
exactly that file. The cursor's size is shown next to the size the earlier format (every file
key with its stamp) would have had. The Dagster instance is a temporary SQLite one.

    .venv/bin/python -m benchmarks.large_inbox   (from the repository root: it uses the tests' helpers)
    .venv/bin/python -m benchmarks.large_inbox --sizes 1000,10000
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import s3fs
from dagster import DagsterInstance, SensorResult, build_sensor_context, instance_for_test

from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.defs.sensors.inbox_sensor import inbox_sensor
from csv_pipeline.inbox import list_inbox
from csv_pipeline_tests.service_fixtures import FAKE_AWS, moto_server
from csv_pipeline_tests.test_inbox_notifications import Notifications

ROWS = b"Song,Date,Number of Plays\nUmbrella,2020-01-01,100\n"
PUTS_AT_ONCE = 1_000
BUCKET = "large-inbox-bench"


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
    with tempfile.TemporaryDirectory(prefix="large-inbox-") as logs, moto_server(Path(logs)) as endpoint:
        os.environ.update(FAKE_AWS, AWS_ENDPOINT_URL=endpoint)
        s3fs.S3FileSystem(skip_instance_cache=True).mkdir(BUCKET)
        listing = PlayFiles(
            inbox=f"s3://{BUCKET}/inbox",
            outbox=f"s3://{BUCKET}/outbox",
            scratch="/tmp/unused",
            max_shard_bytes=1_000_000,
        )
        notifications = Notifications(listing)
        notified = PlayFiles(**{**listing.model_dump(), "inbox_queue": notifications.queue_url})
        print(f"load average at the start: {os.getloadavg()[0]:.1f} (2 cores)\n")
        print(
            "| files in inbox | fill s | catch-up tick s | listing alone s | tick s, one new file listed "
            "| tick s, one new file notified | cursor bytes | old-format cursor bytes | load |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
        with instance_for_test() as instance:
            cursor, filled = None, 0
            for size in sizes:
                started = time.perf_counter()
                fill(listing.inbox, filled, size - 2)
                fill_seconds = time.perf_counter() - started
                catch_up_seconds, result = tick(instance, listing, cursor)
                cursor = result.cursor
                s3fs.S3FileSystem(skip_instance_cache=True).pipe(f"{listing.inbox}/new-{size}.csv", ROWS)
                started = time.perf_counter()
                inbox = list_inbox(listing.inbox)
                listing_seconds = time.perf_counter() - started
                old_format = json.dumps({key: file.stamp for key, file in inbox.files.items()}, sort_keys=True)
                listed_seconds, result = tick(instance, listing, cursor)
                requested = [request.partition_key for request in result.run_requests or []]
                assert requested == [f"new-{size}.csv"] and len(inbox.files) == size - 1, (requested, len(inbox.files))

                notifications.turn_on()
                s3fs.S3FileSystem(skip_instance_cache=True).pipe(f"{listing.inbox}/notified-{size}.csv", ROWS)
                notified_seconds, result = tick(instance, notified, result.cursor)
                notifications.turn_off()
                requested = [request.partition_key for request in result.run_requests or []]
                assert requested == [f"notified-{size}.csv"], requested
                cursor, filled = result.cursor, size
                assert cursor is not None  # the sensor always saves its cursor
                print(
                    f"| {size:,} | {fill_seconds:.1f} | {catch_up_seconds:.2f} | {listing_seconds:.2f} "
                    f"| {listed_seconds:.2f} | {notified_seconds:.2f} | {len(cursor):,} | {len(old_format):,} "
                    f"| {os.getloadavg()[0]:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
