"""The inbox sensor with many files on moto's S3 server: a bounded cursor that misses nothing.

The cursor keeps stamps only for the files that arrived lately and a digest of the older ones'
keys; these tests hold that a new file among a thousand is requested once, across restarts,
and that an older file the cursor no longer lists is still caught when it appears late.
"""

import json

import s3fs
from dagster import DagsterRunStatus

from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.defs.sensors.inbox_cursor import RECENT_CHARS, InboxCursor, digest_of_keys
from csv_pipeline_tests.test_file_keys import record_run, s3_play_files, s3_put  # noqa: F401 (fixture)
from csv_pipeline_tests.test_inbox_sensor import ROWS, Daemon

pytest_plugins = ["csv_pipeline_tests.service_fixtures"]

FILES = 1_000
PUTS_AT_ONCE = 250
CURSOR_LIMIT = 100_000


def fill_inbox(inbox: str, count: int) -> list[str]:
    """``count`` small CSV files under ``inbox``, put a few hundred at a time."""
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    keys = [f"2026/{number // 100:03d}/plays-{number:05d}.csv" for number in range(count)]
    for start in range(0, count, PUTS_AT_ONCE):
        fs.pipe({f"{inbox}/{key}": ROWS for key in keys[start : start + PUTS_AT_ONCE]})
    return keys


def test_one_new_file_among_a_thousand_is_requested_once_with_a_small_cursor(instance, s3_play_files):
    daemon = Daemon(instance, s3_play_files)
    keys = fill_inbox(s3_play_files.inbox, FILES)
    first = daemon.tick()
    assert sorted(request.partition_key for request in first.run_requests) == keys
    assert len(instance.get_dynamic_partitions(inbox_files.name)) == FILES
    assert daemon.tick().run_requests == []
    old_format = json.dumps({request.partition_key: request.run_key.split("@", 1)[1] for request in first.run_requests})
    assert len(daemon.cursor) < CURSOR_LIMIT < len(old_format) * 2
    assert len(InboxCursor.read(daemon.cursor).recent) < FILES  # the older files are a digest

    before = daemon.cursor
    s3_put(s3_play_files, "2026/new.csv", ROWS + b"In The End,2020-01-01,5\n")
    (new,) = daemon.tick().run_requests

    assert new.partition_key == "2026/new.csv"
    assert len(daemon.cursor) < CURSOR_LIMIT
    assert daemon.tick().run_requests == []
    daemon.cursor = before  # a restart before that tick was committed: the same run key again
    assert [request.run_key for request in daemon.tick().run_requests] == [new.run_key]
    record_run(instance, new, DagsterRunStatus.STARTED)
    daemon.cursor = before  # and once that run is launched, nothing at all
    assert daemon.tick().run_requests == []


def test_an_older_file_listed_late_is_requested_and_a_deleted_one_changes_nothing(instance, s3_play_files):
    """As a long multipart upload, dated from its start, is listed only once it completes."""
    daemon = Daemon(instance, s3_play_files)
    keys = fill_inbox(s3_play_files.inbox, FILES)
    daemon.tick()
    cursor = InboxCursor.read(daemon.cursor)
    late = keys[0]  # the first put: older than the files whose stamps the cursor keeps
    assert late not in cursor.recent

    # The state of a tick that listed every file but the late one.
    instance.delete_dynamic_partition(inbox_files.name, late)
    older = set(keys) - cursor.recent.keys() - {late}
    daemon.cursor = InboxCursor(cursor.since, cursor.recent, digest_of_keys(older)).dump()
    assert [request.partition_key for request in daemon.tick().run_requests] == [late]

    s3fs.S3FileSystem(skip_instance_cache=True).rm(f"{s3_play_files.inbox}/{keys[1]}")
    assert daemon.tick().run_requests == []
    assert daemon.tick().run_requests == []


def test_a_burst_of_files_within_the_upload_window_keeps_the_cursor_small():
    """A thousand files put in the same minute: the newest that fit keep their stamps."""
    stamps = {f"plays-{number:05d}.csv": f"{number:032x}@1800000000.{number:06d}" for number in range(FILES)}
    arrived = {key: 1_800_000_000 + number / 1_000_000 for number, key in enumerate(stamps)}

    cursor = InboxCursor.of(stamps, arrived, window_seconds=900, listed=1_800_000_001)

    assert len(cursor.dump()) < RECENT_CHARS + 1_000
    assert 0 < len(cursor.recent) < FILES
    assert all(arrived[key] >= cursor.since for key in cursor.recent)
    assert all(arrived[key] < cursor.since for key in stamps.keys() - cursor.recent.keys())
