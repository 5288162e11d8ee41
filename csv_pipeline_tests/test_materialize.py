"""``play_totals`` and its checks materialized with ``dagster.materialize()``: in this process, no
executor, the engine's Dask work on an in-process cluster given through the ``dask`` resource.
This is how an asset of the code location is tested on its own."""

from collections.abc import Iterator

import pytest
from dagster import DagsterInstance, materialize
from distributed import LocalCluster

from csv_pipeline.defs.assets.checks import verify_shards
from csv_pipeline.defs.assets.play_totals import play_totals
from csv_pipeline.defs.resources.dask_client import DaskClient
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline_tests.shard_reading import totals_of
from csv_pipeline_tests.test_engine_properties import reference
from csv_pipeline_tests.test_process_inbox_file_job import SEED_FIXTURES, put_in_inbox


@pytest.fixture(scope="module")
def in_process_cluster() -> Iterator[LocalCluster]:
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as cluster:
        yield cluster


def materialized(instance: DagsterInstance, play_files: PlayFiles, cluster: LocalCluster, fixture: str):
    put_in_inbox(instance, play_files, fixture, fixture)
    return materialize(
        [play_totals, verify_shards],
        partition_key=fixture,
        instance=instance,
        resources={"play_files": play_files, "dask": DaskClient(scheduler_address=cluster.scheduler_address)},
        raise_on_error=False,
    )


def test_play_totals_materializes_in_process_with_its_checks_passing(instance, play_files, in_process_cluster):
    result = materialized(instance, play_files, in_process_cluster, "initial_test.csv")

    assert result.success
    manifest = result.output_for_node("play_totals", "result")
    expected = reference((SEED_FIXTURES / "initial_test.csv").read_bytes())
    assert totals_of(manifest) == expected
    (materialization,) = result.asset_materializations_for_node("play_totals")
    assert materialization.partition == "initial_test.csv"
    assert materialization.metadata["rows_out"].value == len(expected)
    checks = {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}
    assert checks == {"every_input_row_accounted_for": True, "shards_sorted_and_within_size_limit": True}


def test_a_bad_file_fails_its_materialization_with_the_sentence(instance, play_files, in_process_cluster):
    result = materialized(instance, play_files, in_process_cluster, "initial_test_with_invalid_value.csv")

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "play_totals.aggregate_plays"
    assert failure.event_specific_data.error.message == (
        "dagster._core.definitions.events.Failure: initial_test_with_invalid_value.csv: line 4: "
        "Number of Plays 'patata' is not a non-negative integer\n"
    )


def test_outside_a_dask_worker_without_an_address_the_op_says_what_to_do(instance, play_files):
    put_in_inbox(instance, play_files, "x.csv", "initial_test.csv")

    result = materialize(
        [play_totals],
        partition_key="x.csv",
        instance=instance,
        resources={"play_files": play_files, "dask": DaskClient()},
        raise_on_error=False,
    )

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert (
        "runs outside a Dask worker and the dask resource has no scheduler_address"
        in failure.event_specific_data.error.message
    )
