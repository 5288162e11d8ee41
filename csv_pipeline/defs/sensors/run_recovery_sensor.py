"""``run_recovery_sensor``: what a killed run leaves behind is cleared up.

Two things the daemon's run monitoring does not do:

- a run stays STARTING until the start timeout (minutes) when the daemon dies while launching
  it, before its worker was forked. The launcher tags every run with the process
  that launched it; a run still STARTING some seconds after that process is gone is failed here,
  and run retries launch it again;
- a run killed mid-step leaves its scratch directory (about the size of the input) and a
  half-written output directory (shards, never ``_SUCCESS``). Here both are removed for every
  run that ended unsuccessfully, never for a run still going, and an output directory holding
  ``_SUCCESS`` is never touched.

It runs in the code server, on the daemon's machine, and requests no runs.
"""

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from dagster import DagsterInstance, DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import PARTITION_NAME_TAG

from csv_pipeline.defs.jobs import process_inbox_file
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.defs.run_launcher import ProcessIdentity
from csv_pipeline.engine.pipeline import SUCCESS
from csv_pipeline.engine.storage import filesystem, join, remove_tree
from csv_pipeline.labels import LAUNCHED_BY_TAG

INTERVAL_SECONDS = 10
# A launch that reached the fork server has its worker running (STARTED) within seconds.
ORPHANED_LAUNCH_SECONDS = 20


@sensor(minimum_interval_seconds=INTERVAL_SECONDS, default_status=DefaultSensorStatus.RUNNING)
def run_recovery_sensor(context: SensorEvaluationContext, play_files: PlayFiles) -> SkipReason:
    """Fail runs whose launch died with its launcher; remove the leftovers of ended, failed runs.

    The cursor is the last update time of the failed runs already cleaned up.
    """
    orphans = fail_orphaned_launches(context.instance)
    since = float(context.cursor) if context.cursor else 0.0
    cleaned, since = remove_leftovers(context.instance, play_files, since)
    context.update_cursor(str(since))
    return SkipReason(f"Failed {orphans} orphaned launch(es); removed the leftovers of {cleaned} failed run(s).")


def fail_orphaned_launches(instance: DagsterInstance) -> int:
    """Fail the STARTING runs whose launching process (on this machine) is gone; how many."""
    failed = 0
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTING])):
        run = record.dagster_run
        launcher = ProcessIdentity.from_tags(run, LAUNCHED_BY_TAG)
        if launcher is None or time.time() - launcher.recorded < ORPHANED_LAUNCH_SECONDS or not launcher.is_gone():
            continue
        instance.report_run_failed(
            run,
            f"The process that launched this run, {launcher.describe()}, is gone and the run worker "
            f"did not start within {ORPHANED_LAUNCH_SECONDS} seconds.",
        )
        failed += 1
    return failed


def remove_leftovers(instance: DagsterInstance, play_files: PlayFiles, since: float) -> tuple[int, float]:
    """Remove the scratch and unfinished output of every run of the job that failed or was
    cancelled after ``since``; how many runs, and the newest update time seen."""
    records = instance.get_run_records(
        RunsFilter(
            job_name=process_inbox_file.name,
            statuses=[DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED],
            updated_after=datetime.fromtimestamp(since, tz=UTC),
        )
    )
    for record in records:
        remove_run_leftovers(record.dagster_run, play_files)
        since = max(since, record.update_timestamp.timestamp())
    return len(records), since


def remove_run_leftovers(run: DagsterRun, default: PlayFiles) -> None:
    """The run's scratch directory, and its output directory unless it holds ``_SUCCESS``."""
    run_config = cast(Mapping[str, Any], run.run_config)  # typed as a Mapping of objects
    config = run_config.get("resources", {}).get("play_files", {}).get("config")
    play_files = PlayFiles(**config) if config else default
    _remove_tree(play_files.scratch_url(run.run_id))
    partition = run.tags.get(PARTITION_NAME_TAG)
    if partition is None:
        return
    output_url = play_files.output_url(partition, run.run_id)
    fs, path = filesystem(join(output_url, SUCCESS))
    if not fs.exists(path):
        _remove_tree(output_url)


def _remove_tree(url: str) -> None:
    """``remove_tree``, listing afresh: s3fs caches listings, and other processes wrote these."""
    filesystem(url)[0].invalidate_cache()
    remove_tree(url)
