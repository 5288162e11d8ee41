"""The inbox sensor: one run of ``process_inbox_file`` per new or changed CSV file in the inbox."""

import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, sensor

from csv_pipeline.inbox import list_inbox
from csv_pipeline.jobs import process_inbox_file
from csv_pipeline.partitions import inbox_files
from csv_pipeline.resources import PlayFiles
from csv_pipeline.tags import FILE_TAG, VERSION_TAG

POLL_SECONDS = 5


@sensor(
    job=process_inbox_file,
    minimum_interval_seconds=POLL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
)
def inbox_sensor(context: SensorEvaluationContext, play_files: PlayFiles) -> SensorResult:
    """Request a run for every inbox file whose version is not the one in the cursor.

    The cursor maps each file key in the inbox to the version already requested, so a file seen
    again starts nothing and a rewritten one starts a new run of its partition. The run key
    (file key and version) lets Dagster drop a request it already launched, should a tick be
    repeated after a daemon restart.
    """
    requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    present = list_inbox(play_files.inbox)
    cursor = json.dumps(present, sort_keys=True)
    changed = {key: version for key, version in present.items() if requested.get(key) != version}
    if not changed:
        return SensorResult(skip_reason=f"No new or changed .csv file in {play_files.inbox}.", cursor=cursor)
    new_partitions = sorted(changed.keys() - set(context.instance.get_dynamic_partitions(inbox_files.name)))
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"{key}@{version}",
                partition_key=key,
                run_config=play_files.run_config(),
                tags={FILE_TAG: key, VERSION_TAG: version},
            )
            for key, version in sorted(changed.items())
        ],
        dynamic_partitions_requests=[inbox_files.build_add_request(new_partitions)] if new_partitions else [],
        cursor=cursor,
    )
