"""The service's run queue: Dagster's ``QueuedRunCoordinator``, with every file's run sized.

The service's queue starts at most two runs tagged ``csv_pipeline/size: large`` at once (each
uses every core). The sensor tags each run it requests by its file's size; a run launched any
other way (the job's launchpad, the asset graph's *Materialize*, which runs Dagster's own asset
job, a backfill) arrives without a size, and would escape that limit. Here a run of an inbox
file's partition that has none is tagged large as it enters the queue: the safe guess, since
the queue cannot see the file.
"""

from dagster import DagsterRunStatus, QueuedRunCoordinator
from dagster._core.run_coordinator import SubmitRunContext
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_START_TAG, PARTITION_NAME_TAG

from csv_pipeline.labels import LARGE, SIZE_TAG

PARTITION_TAGS = (PARTITION_NAME_TAG, ASSET_PARTITION_RANGE_START_TAG)  # inbox files are the only partitions


class SizingRunCoordinator(QueuedRunCoordinator):
    """Queues runs as ``QueuedRunCoordinator`` does (same configuration); a partitioned run
    without ``csv_pipeline/size`` is tagged ``large`` first."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        unsized = SIZE_TAG not in run.tags and any(tag in run.tags for tag in PARTITION_TAGS)
        if unsized and run.status == DagsterRunStatus.NOT_STARTED:
            self._instance.add_run_tags(run.run_id, {SIZE_TAG: LARGE})  # the queue reads the stored run
        return super().submit_run(context)
