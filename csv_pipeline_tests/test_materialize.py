"""``play_totals`` and its checks materialized with ``dagster.materialize()``: in this process, no
executor, the engine's Dask work on an in-process cluster given through the ``dask`` resource.
This is how an asset of the code location is tested on its own."""

import csv
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize
from distributed import LocalCluster

from csv_pipeline.defs.assets.checks import verify_shards
from csv_pipeline.defs.assets.play_totals import play_totals
from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.defs.resources.dask_client import DaskClient
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline_tests.shard_reading import totals_of

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def in_process_cluster() -> Iterator[LocalCluster]:
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as cluster:
        yield cluster


def summed(path: Path) -> Counter[tuple[str, str]]:
    """The totals per (Song, Date) of a small valid file, summed here."""
    totals: Counter[tuple[str, str]] = Counter()
    with path.open(newline="") as file:
        for song, date, plays in [row for row in csv.reader(file) if row][1:]:
            totals[song, date] += int(plays)
    return totals


def in_inbox(instance: DagsterInstance, play_files: PlayFiles, fixture: str) -> str:
    """``fixture`` copied into the inbox, its partition added: the file key."""
    Path(play_files.inbox).mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / fixture, Path(play_files.inbox) / fixture)
    instance.add_dynamic_partitions(inbox_files.name, [fixture])
    return fixture


def materialized(instance: DagsterInstance, play_files: PlayFiles, cluster: LocalCluster, fixture: str):
    return materialize(
        [play_totals, verify_shards],
        partition_key=in_inbox(instance, play_files, fixture),
        instance=instance,
        resources={"play_files": play_files, "dask": DaskClient(scheduler_address=cluster.scheduler_address)},
        raise_on_error=False,
    )


def test_play_totals_materializes_in_process_with_its_checks_passing(instance, play_files, in_process_cluster):
    result = materialized(instance, play_files, in_process_cluster, "initial_test.csv")

    assert result.success
    manifest = result.output_for_node("play_totals", "result")
    assert totals_of(manifest) == summed(FIXTURES / "initial_test.csv")
    (materialization,) = result.asset_materializations_for_node("play_totals")
    assert materialization.partition == "initial_test.csv"
    assert materialization.metadata["rows_out"].value == len(summed(FIXTURES / "initial_test.csv"))
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
    result = materialize(
        [play_totals],
        partition_key=in_inbox(instance, play_files, "initial_test.csv"),
        instance=instance,
        resources={"play_files": play_files, "dask": DaskClient()},
        raise_on_error=False,
    )

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert "runs outside a Dask worker and the dask resource has no scheduler_address" in failure.event_specific_data.error.message
