"""The inbox sensor: one run of ``process_inbox_file`` per new or changed CSV file in the inbox."""

import json

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from csv_pipeline.defs.jobs import process_inbox_file
from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.inbox import InboxFile, list_inbox, shown
from csv_pipeline.labels import FILE_TAG, VERSION_TAG

POLL_SECONDS = 5
SKIPPED = ""  # the cursor's value for a skipped entry: reported once while it stays in the inbox
RERUN_AFTER = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
SKIPS_IN_TICK_MESSAGE = 5


@sensor(
    job=process_inbox_file,
    minimum_interval_seconds=POLL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
)
def inbox_sensor(context: SensorEvaluationContext, play_files: PlayFiles) -> SensorResult:
    """Request a run for every inbox file that is new, changed, or put again after a failed run.

    The cursor maps each file key in the inbox to the stamp (version, and on S3 the time it was
    written) already handled, so a file seen again starts nothing and a rewritten one starts a
    new run of its partition. A re-put of the same content (same ETag, new LastModified) starts
    a run only when that content's latest run failed or was canceled. The run key (file key and
    stamp) lets Dagster drop a request it already launched, should a tick be repeated after a
    daemon restart. Skipped entries (links, unsafe names) are logged once, kept in the cursor.
    """
    handled: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    inbox = list_inbox(play_files.inbox)
    cursor = json.dumps(
        {**{key: file.stamp for key, file in inbox.files.items()}, **dict.fromkeys(inbox.skipped, SKIPPED)},
        sort_keys=True,
    )
    skipped = [
        f"{shown(key)}: {reason}" for key, reason in sorted(inbox.skipped.items()) if handled.get(key) != SKIPPED
    ]
    for line in skipped:
        context.log.warning(f"Skipped {line}.")
    changed = {
        key: file
        for key, file in sorted(inbox.files.items())
        if handled.get(key) != file.stamp and _starts_a_run(context, key, file, handled.get(key))
    }
    if not changed:
        return SensorResult(skip_reason=_skip_reason(play_files.inbox, skipped), cursor=cursor)
    new_partitions = sorted(changed.keys() - set(context.instance.get_dynamic_partitions(inbox_files.name)))
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"{key}@{file.stamp}",
                partition_key=key,
                run_config=play_files.run_config(),
                tags={FILE_TAG: key, VERSION_TAG: file.version},
            )
            for key, file in changed.items()
        ],
        dynamic_partitions_requests=[inbox_files.build_add_request(new_partitions)] if new_partitions else [],
        cursor=cursor,
    )


def _starts_a_run(context: SensorEvaluationContext, key: str, file: InboxFile, before: str | None) -> bool:
    """New content always does; the same content written again only if its latest run failed."""
    if before in (None, SKIPPED):
        return True
    previous = InboxFile.from_stamp(before)
    if previous.version != file.version:
        return True
    if not previous.written:
        return False  # a cursor written before stamps held LastModified: the same put, seen again
    status = _latest_run_status(context.instance, key, file.version)
    again = status is None or status in RERUN_AFTER
    latest = "it has no run" if status is None else f"its latest run is {status.value}"
    context.log.info(
        f"{shown(key)} was put again with the same content and {latest}: "
        + ("running it again." if again else "nothing to do.")
    )
    return again


def _latest_run_status(instance: DagsterInstance, key: str, version: str) -> DagsterRunStatus | None:
    runs = instance.get_run_records(RunsFilter(tags={FILE_TAG: key, VERSION_TAG: version}), limit=1)
    return runs[0].dagster_run.status if runs else None


def _skip_reason(inbox: str, skipped: list[str]) -> str:
    reason = f"No new or changed .csv file in {inbox}."
    if skipped:
        more = len(skipped) - SKIPS_IN_TICK_MESSAGE
        reason += f" Skipped {'; '.join(skipped[:SKIPS_IN_TICK_MESSAGE])}" + (
            f"; and {more} more." if more > 0 else "."
        )
    return reason
