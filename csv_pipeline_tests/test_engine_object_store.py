"""Scratch on S3 (moto's server): each reduce task reads a map file once for a group of adjacent
buckets, and the shards are the same as with one bucket a task or with local scratch. And every
S3 filesystem of a process shares one botocore session, which a forked run worker inherits parsed.

The reads are counted in moto's own request log: the ranged GETs of the map files.
"""

import multiprocessing
import random
import re
from multiprocessing.connection import Connection
from pathlib import Path

import botocore.loaders
import numpy as np
import pytest
import s3fs
from aiobotocore.session import AioSession

from csv_pipeline.engine import aggregate, inspect_file, storage, write_shards
from csv_pipeline.engine.reduce_tasks import bucket_groups
from csv_pipeline_tests.engine_fixtures import csv_row
from csv_pipeline_tests.service_fixtures import moto_server

BUCKET = "scratch-test"
SIZES = {"block_bytes": 32 << 10, "bucket_bytes": 32 << 10}  # about ten map tasks and ten buckets
pytest_plugins = ["csv_pipeline_tests.engine_fixtures"]
MAP_FILE_GET = re.compile(rf"GET /{BUCKET}/scratch/[^/\s]+/maps/[^/\s]+\.arrows ")


@pytest.fixture
def s3(tmp_path: Path):
    (tmp_path / "moto").mkdir()
    with moto_server(tmp_path / "moto") as endpoint:
        options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
        filesystem = s3fs.S3FileSystem(**options, skip_instance_cache=True)
        filesystem.mkdir(BUCKET)
        yield filesystem, options, tmp_path / "moto" / "moto.log"


def plays_file(rows: int) -> bytes:
    generator = random.Random(7)
    lines = ["Song,Date,Number of Plays"] + [
        csv_row(f"song {generator.randrange(3000)}", f"2024-01-{generator.randrange(1, 29):02d}", plays)
        for plays in (generator.randrange(50) for _ in range(rows))
    ]
    return ("\n".join(lines) + "\n").encode()


def shards(filesystem: s3fs.S3FileSystem, manifest) -> list[bytes]:
    return [filesystem.cat_file(shard.uri.removeprefix("s3://")) for shard in manifest.shards]


def test_a_reduce_task_reads_each_map_file_once_for_its_group_of_buckets(dask_client, s3, tmp_path):
    filesystem, options, moto_log = s3
    filesystem.pipe_file(f"{BUCKET}/plays.csv", plays_file(15_000))
    plan = inspect_file(f"s3://{BUCKET}/plays.csv", "plays.csv", options, **SIZES)
    assert len(plan.offsets) >= 8 and plan.buckets >= 8

    outputs, map_file_gets = {}, {}
    for name, reduce_read_bytes in (("bucket a task", 0), ("grouped", 1 << 30)):
        before = len(MAP_FILE_GET.findall(moto_log.read_text()))
        aggregation = aggregate(
            dask_client, plan, f"s3://{BUCKET}/scratch/{name.replace(' ', '-')}", reduce_read_bytes=reduce_read_bytes
        )
        map_file_gets[name] = len(MAP_FILE_GET.findall(moto_log.read_text())) - before
        outputs[name] = shards(filesystem, write_shards(dask_client, aggregation, f"s3://{BUCKET}/out/{name}"))

    map_files = len(filesystem.ls(f"{BUCKET}/scratch/grouped/maps"))
    assert map_file_gets == {"bucket a task": map_files * plan.buckets, "grouped": map_files}
    (tmp_path / "plays.csv").write_bytes(filesystem.cat_file(f"{BUCKET}/plays.csv"))
    local = inspect_file(str(tmp_path / "plays.csv"), "plays.csv", **SIZES)
    aggregation = aggregate(dask_client, local, str(tmp_path / "scratch"))
    manifest = write_shards(dask_client, aggregation, str(tmp_path / "out"))
    assert outputs["grouped"] == outputs["bucket a task"] == [Path(s.uri).read_bytes() for s in manifest.shards]


def test_buckets_are_grouped_up_to_the_read_size_in_order():
    two_map_files = np.array([[0, 10, 30, 30, 90, 100], [0, 5, 5, 25, 30, 40]])  # buckets of 15, 20, 20, 65, 20 bytes
    assert bucket_groups(two_map_files, 40) == [range(0, 2), range(2, 3), range(3, 4), range(4, 5)]
    assert bucket_groups(two_map_files, 60) == [range(0, 3), range(3, 4), range(4, 5)]
    assert bucket_groups(two_map_files, 1000) == [range(0, 5)]
    assert bucket_groups(two_map_files, 0) == [range(bucket, bucket + 1) for bucket in range(5)]
    assert bucket_groups(np.zeros((0, 4), np.int64), 0) == [range(0, 1), range(1, 2), range(2, 3)]


def test_every_s3_filesystem_of_a_process_shares_its_botocore_session(s3):
    _, options, _ = s3
    storage.write_bytes(f"s3://{BUCKET}/shared/a.csv", [b"a"], options)
    filesystems = [
        storage.filesystem(f"s3://{BUCKET}/shared", options)[0],
        storage.filesystem(f"s3://{BUCKET}/shared", {**options, "default_block_size": 1 << 20})[0],
    ]
    assert filesystems[0] is not filesystems[1]
    for filesystem in filesystems:
        assert filesystem.session is storage.aws_session()  # type: ignore[attr-defined]  # s3fs's
        assert filesystem.ls(f"{BUCKET}/shared", detail=False) == [f"{BUCKET}/shared/a.csv"]


def _json_files_parsed_to_list(url: str, options: dict, replies: Connection) -> None:
    """In a forked process: list ``url``, and say how many of botocore's JSON files that parsed."""
    parsed = []
    load_file = botocore.loaders.JSONFileLoader.load_file

    def counted(loader: botocore.loaders.JSONFileLoader, file_path: str) -> object:
        parsed.append(file_path)
        return load_file(loader, file_path)

    botocore.loaders.JSONFileLoader.load_file = counted  # type: ignore[method-assign]
    storage.filesystem(url, options)[0].ls(url.removeprefix("s3://"))
    replies.send(len(parsed))


def test_a_run_worker_forked_after_the_warm_up_parses_no_botocore_json_for_its_client(s3):
    _, options, _ = s3
    storage.warm_aws_session()  # as the fork server does before its first fork
    fork = multiprocessing.get_context("fork")
    parsed = {}
    own_session = {**options, "session": AioSession()}
    for name, child_options in (("shared session", options), ("session of its own", own_session)):
        replies, reply = fork.Pipe(duplex=False)
        child = fork.Process(target=_json_files_parsed_to_list, args=(f"s3://{BUCKET}", child_options, reply))
        child.start()
        assert replies.poll(60), name
        parsed[name] = replies.recv()
        child.join(10)
    assert parsed == {"shared session": 0, "session of its own": parsed["session of its own"]}
    assert parsed["session of its own"] >= 3  # S3's API, its endpoint rules, the endpoints
