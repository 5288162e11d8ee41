"""The inbox sensor: one run of ``process_inbox_file`` per new or changed CSV file in the inbox."""

import time

from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from csv_pipeline.defs.jobs import process_inbox_file
from csv_pipeline.defs.partitions import INBOX_FILES, inbox_files
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.defs.sensors.inbox_cursor import SKIPPED, InboxCursor, digest_of_keys
from csv_pipeline.inbox import InboxFile, list_inbox, shown
from csv_pipeline.inbox_notifications import receive_new_files
from csv_pipeline.labels import FILE_TAG, LARGE, SIZE_TAG, SMALL, VERSION_TAG

# The daemon looks at its sensors every 5 s at best. An interval of exactly 5 s made a loop
# that came a moment early skip the tick, so a new file waited up to 10 s for its run; at 4 s
# every loop ticks.
POLL_SECONDS = 4
RERUN_AFTER = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
SKIPS_IN_TICK_MESSAGE = 5
FEW_KEYS = 100  # partitions asked about one by one; past that, all of them are read at once
KEYS_PER_RUN_QUERY = 500


@sensor(
    job=process_inbox_file,
    minimum_interval_seconds=POLL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
)
def inbox_sensor(context: SensorEvaluationContext, play_files: PlayFiles) -> SensorResult:
    """Request a run for every inbox file that is new, changed, or put again after a failed run.

    The cursor (see ``inbox_cursor``) holds the stamps (version, and on S3 the time it was
    written) of the files that arrived within the upload window, and a digest of the older
    ones' keys, so it stays small however full the inbox. A file the cursor knows starts a run
    when its stamp changed; one it does not know when it has no partition yet, or when the
    latest run of its partition was of other content, failed or was canceled. An older file the
    cursor does not know counts as handled once its partition exists. So a re-put of the same
    content (same ETag, new LastModified) starts a run only when that content's run failed. The
    run key (file key and stamp) lets Dagster drop a request it already launched, should a tick
    be repeated after a daemon restart. Skipped entries (links, unsafe names) are logged once.

    With ``inbox_queue`` set (an S3 inbox whose ObjectCreated notifications go to that SQS
    queue), a tick reads the notified files instead of listing the inbox, and the whole inbox is
    listed every ``inbox_listing_seconds`` as the safety net for a lost notification.
    """
    before = InboxCursor.read(context.cursor)
    now = time.time()
    listing = not play_files.inbox_queue or now - before.listed >= play_files.inbox_listing_seconds
    if listing:
        inbox = list_inbox(play_files.inbox)
    else:
        inbox = receive_new_files(play_files.inbox_queue, play_files.inbox)
    stamps = {**{key: file.stamp for key, file in inbox.files.items()}, **dict.fromkeys(inbox.skipped, SKIPPED)}
    unseen = {key for key in stamps if key not in before.recent and before.arrived_since(inbox.arrived[key])}
    # What a listing shows beyond the recent entries; a notification names only new entries.
    older = stamps.keys() - before.recent.keys() - unseen if listing else set()
    older_changed = digest_of_keys(older) != before.older
    skipped = [
        f"{shown(key)}: {reason}"
        for key, reason in sorted(inbox.skipped.items())
        if key in unseen or before.recent.get(key, SKIPPED) != SKIPPED
    ]
    for line in skipped:
        context.log.warning(f"Skipped {line}.")
    partitions = _Partitions(context.instance)
    changed: dict[str, InboxFile] = {}
    ask_runs: dict[str, InboxFile] = {}  # the latest run of their partition decides
    for key, file in sorted(inbox.files.items()):
        previous = before.recent.get(key, SKIPPED)
        if previous != SKIPPED:
            was = InboxFile.from_stamp(previous)
            if was.version != file.version:
                changed[key] = file
            elif previous != file.stamp and was.written:  # no time: a cursor of the earlier format
                ask_runs[key] = file
        elif key in older and not older_changed:
            continue
        elif key not in partitions:
            changed[key] = file
        elif key not in older:
            ask_runs[key] = file
    latest_runs = _latest_runs(context.instance, list(ask_runs))
    changed.update(
        (key, file) for key, file in ask_runs.items() if _runs_again(context, key, file, latest_runs.get(key))
    )
    if listing:
        cursor = InboxCursor.of(stamps, inbox.arrived, play_files.upload_window_seconds, listed=now).dump()
    else:
        cursor = before.with_notified(stamps).dump()
    if not changed:
        return SensorResult(skip_reason=_skip_reason(play_files.inbox, skipped), cursor=cursor)
    new_partitions = [key for key in sorted(changed) if key not in partitions]
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"{key}@{file.stamp}",
                partition_key=key,
                run_config=play_files.run_config(),
                tags={FILE_TAG: key, VERSION_TAG: file.version, SIZE_TAG: _size_class(file, play_files.block_bytes)},
            )
            for key, file in sorted(changed.items())
        ],
        dynamic_partitions_requests=[inbox_files.build_add_request(new_partitions)] if new_partitions else [],
        cursor=cursor,
    )


class _Partitions:
    """Which file keys have an ``inbox_files`` partition: asked key by key while few are asked,
    then all read at once (as when older files are checked after one was deleted)."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self.known: dict[str, bool] = {}
        self.every: set[str] | None = None

    def __contains__(self, key: str) -> bool:
        if self.every is None and key not in self.known and len(self.known) >= FEW_KEYS:
            self.every = set(self.instance.get_dynamic_partitions(INBOX_FILES))
        if self.every is not None:
            return key in self.every
        if key not in self.known:
            self.known[key] = self.instance.has_dynamic_partition(INBOX_FILES, key)
        return self.known[key]


def _latest_runs(instance: DagsterInstance, keys: list[str]) -> dict[str, DagsterRun]:
    """The latest run of each file key that has one, in a query per ``KEYS_PER_RUN_QUERY`` keys."""
    latest: dict[str, DagsterRun] = {}
    for start in range(0, len(keys), KEYS_PER_RUN_QUERY):
        chunk = keys[start : start + KEYS_PER_RUN_QUERY]
        for record in instance.get_run_records(RunsFilter(tags={FILE_TAG: chunk})):  # newest first
            latest.setdefault(record.dagster_run.tags[FILE_TAG], record.dagster_run)
    return latest


def _runs_again(context: SensorEvaluationContext, key: str, file: InboxFile, latest: DagsterRun | None) -> bool:
    """New content always does; the same content written again only if its latest run failed."""
    if latest is not None and latest.tags.get(VERSION_TAG) != file.version:
        return True
    again = latest is None or latest.status in RERUN_AFTER
    said = "it has no run" if latest is None else f"its latest run is {latest.status.value}"
    context.log.info(
        f"{shown(key)} was put again with the same content and {said}: "
        + ("running it again." if again else "nothing to do.")
    )
    return again


def _size_class(file: InboxFile, block_bytes: int) -> str:
    """Small: a file of one engine block, whose run waits on Dagster more than it computes."""
    return SMALL if file.size is not None and file.size <= block_bytes else LARGE


def _skip_reason(inbox: str, skipped: list[str]) -> str:
    reason = f"No new or changed .csv file in {inbox}."
    if skipped:
        more = len(skipped) - SKIPS_IN_TICK_MESSAGE
        reason += f" Skipped {'; '.join(skipped[:SKIPS_IN_TICK_MESSAGE])}" + (
            f"; and {more} more." if more > 0 else "."
        )
    return reason
