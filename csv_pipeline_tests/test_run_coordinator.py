"""The shipped run queue sizes every run of an inbox file, however it was launched."""

from collections.abc import Iterator
from typing import cast

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus, instance_for_test
from dagster._core.definitions.repository_definition import SINGLETON_REPOSITORY_NAME
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.run_coordinator import SubmitRunContext
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from dagster._core.test_utils import create_run_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import BaseWorkspaceRequestContext

from csv_pipeline.defs.run_coordinator import SizingRunCoordinator
from csv_pipeline.labels import FILE_TAG, LARGE, SIZE_TAG, SMALL
from csv_pipeline_tests.service_fixtures import PRODUCTION_INSTANCE_YAML

ASSET_JOB = "__ASSET_JOB"
REPOSITORY = RemoteRepositoryOrigin(
    InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="csv_pipeline.definitions", attribute="defs")),
    SINGLETON_REPOSITORY_NAME,
)  # Dagster's own job behind the asset graph's Materialize


@pytest.fixture
def queued_instance() -> Iterator[DagsterInstance]:
    """A throwaway instance with the run queue exactly as ``deploy/dagster.yaml`` configures it."""
    shipped = yaml.safe_load(PRODUCTION_INSTANCE_YAML.read_text())
    with instance_for_test(overrides={"run_coordinator": shipped["run_coordinator"]}) as instance:
        yield instance


def submitted_tags(instance: DagsterInstance, job_name: str, tags: dict[str, str]) -> dict[str, str]:
    """The tags of a run of ``job_name`` in the code location, as stored once it is queued."""
    run = create_run_for_test(
        instance, job_name=job_name, tags=tags, remote_job_origin=RemoteJobOrigin(REPOSITORY, job_name)
    )
    workspace = cast(BaseWorkspaceRequestContext, None)  # the queue does not look at the workspace
    queued = instance.run_coordinator.submit_run(SubmitRunContext(run, workspace))
    assert queued.status == DagsterRunStatus.QUEUED
    stored = instance.get_run_by_id(run.run_id)
    assert stored is not None
    return dict(stored.tags)


def test_the_shipped_queue_limits_large_runs(queued_instance: DagsterInstance) -> None:
    coordinator = queued_instance.run_coordinator
    assert isinstance(coordinator, SizingRunCoordinator)
    limits = coordinator.get_run_queue_config().tag_concurrency_limits
    assert {"key": SIZE_TAG, "value": LARGE, "limit": 2} in limits


@pytest.mark.parametrize("job_name", [ASSET_JOB, "process_inbox_file"])  # Materialize, the job's launchpad
def test_a_file_launched_by_hand_queues_as_large(queued_instance: DagsterInstance, job_name: str) -> None:
    assert submitted_tags(queued_instance, job_name, {PARTITION_NAME_TAG: "plays.csv"})[SIZE_TAG] == LARGE


def test_a_backfill_of_a_range_of_files_queues_as_large(queued_instance: DagsterInstance) -> None:
    range_tags = {ASSET_PARTITION_RANGE_START_TAG: "a.csv", ASSET_PARTITION_RANGE_END_TAG: "z.csv"}
    assert submitted_tags(queued_instance, ASSET_JOB, range_tags)[SIZE_TAG] == LARGE


def test_the_sensors_size_is_kept_and_unpartitioned_runs_stay_unsized(queued_instance: DagsterInstance) -> None:
    sensor_tags = {PARTITION_NAME_TAG: "plays.csv", FILE_TAG: "plays.csv", SIZE_TAG: SMALL}
    assert submitted_tags(queued_instance, "process_inbox_file", sensor_tags)[SIZE_TAG] == SMALL
    assert SIZE_TAG not in submitted_tags(queued_instance, "maintain_play_history", {})
