"""``process_inbox_file`` run through Dagster's ``execute_job`` on the dagster-dask executor.

Each run starts a real local Dask cluster, as the sensor's runs do (in-process workers, one
per core); the steps run as tasks on its workers and the aggregation spreads over all of them.
"""

import csv
import json
import os
import shutil
from pathlib import Path

import fsspec
import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    JobExecutionResult,
    execute_job,
)

from csv_pipeline.defs.jobs import PROCESS_INBOX_FILE
from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.inbox import file_version
from csv_pipeline.labels import ERROR_TAG, FILE_TAG, MANIFEST_TAG, VERSION_TAG

SEED_FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED_TOTALS = [
    ["In The End", "2020-01-01", "1500"],
    ["In The End", "2020-01-02", "500"],
    ["Umbrella", "2020-01-01", "150"],
    ["Umbrella", "2020-01-02", "250"],
]
MATERIALIZATION_METADATA = {
    "output_files",
    "shards",
    "rows_in",
    "rows_out",
    "bytes_in",
    "bytes_out",
    "seconds",
    "preview",
}


def put_in_inbox(instance: DagsterInstance, play_files: PlayFiles, file_key: str, seed_fixture: str) -> Path:
    """Drop a seed file into the inbox under ``file_key`` and add its partition, as the sensor would."""
    path = Path(play_files.inbox) / file_key
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SEED_FIXTURES / seed_fixture, path)
    instance.add_dynamic_partitions(inbox_files.name, [file_key])
    return path


def run_job(instance: DagsterInstance, play_files: PlayFiles, file_key: str, seed_fixture: str) -> JobExecutionResult:
    """Drop a seed file into the inbox under ``file_key`` and run its partition, as the sensor would."""
    path = put_in_inbox(instance, play_files, file_key, seed_fixture)
    return execute_job(
        PROCESS_INBOX_FILE,
        instance,
        run_config=play_files.run_config(),
        tags={"dagster/partition": file_key, FILE_TAG: file_key, VERSION_TAG: file_version(str(path))},
    )


def read_csv(url: str) -> list[list[str]]:
    with fsspec.open(url, "rt", newline="") as stream:
        return list(csv.reader(stream))


def files_under(path: str) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*")) if os.path.exists(path) else []


def file_contents(path: str) -> dict[str, bytes]:
    return {name: Path(path, name).read_bytes() for name in files_under(path) if Path(path, name).is_file()}


@pytest.mark.parametrize("seed_fixture", ["initial_test.csv", "initial_test_without_headers.csv"])
def test_a_good_file_is_materialized_with_its_shards_and_metadata(instance, play_files, seed_fixture):
    file_key = f"2026/11/{seed_fixture}"

    result = run_job(instance, play_files, file_key, seed_fixture)

    assert result.success
    (aggregated,) = [
        event
        for event in result.all_events
        if event.is_successful_output and event.step_key.endswith("aggregate_plays")
    ]
    assert aggregated.step_output_data.metadata["dask_workers"].value == (os.cpu_count() or 1), (
        "the aggregation runs inside a Dask worker and spreads over the whole local cluster"
    )

    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey("play_totals")]
    materialization = event.step_materialization_data.materialization
    assert materialization.partition == file_key
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert MATERIALIZATION_METADATA <= set(metadata)

    run_dir = f"{play_files.outbox}/2026/11/{seed_fixture.removesuffix('.csv')}/{result.run_id}"
    shard_uris = metadata["output_files"]
    assert shard_uris and all(uri.startswith(f"{run_dir}/part-") for uri in shard_uris)
    shards = [record.data for record in metadata["shards"].records]
    assert [shard["uri"] for shard in shards] == shard_uris
    for shard in shards:
        assert shard["bytes"] == os.path.getsize(shard["uri"])
        assert shard["rows"] == len(read_csv(shard["uri"])) - 1
    rows = [row for uri in shard_uris for row in read_csv(uri)[1:]]
    assert rows == SEED_TOTALS
    assert metadata["rows_in"] == 7
    assert metadata["rows_out"] == 4
    assert metadata["bytes_in"] == (SEED_FIXTURES / seed_fixture).stat().st_size
    assert metadata["bytes_out"] == sum(shard["bytes"] for shard in shards)
    assert metadata["seconds"] > 0
    preview = [list(record.data.values()) for record in metadata["preview"].records]
    assert [[song, date, str(total)] for song, date, total in preview] == SEED_TOTALS

    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["dagster/partition"] == tags[FILE_TAG] == file_key
    assert tags[MANIFEST_TAG] == f"{run_dir}/_SUCCESS"
    with fsspec.open(tags[MANIFEST_TAG], "rt") as stream:
        assert json.load(stream)["rows_out"] == 4
    assert ERROR_TAG not in tags
    assert files_under(play_files.scratch) == []


@pytest.mark.parametrize(
    ("seed_fixture", "failed_step", "message"),
    [
        (
            "initial_test_with_invalid_value.csv",
            "play_totals.aggregate_plays",
            "bad.csv: line 4: Number of Plays 'patata' is not a non-negative integer",
        ),
        ("initial_test_with_not_valid_headers.csv", "play_totals.validate_format", "invalid header"),
    ],
)
def test_a_bad_file_fails_the_run_with_its_message_and_leaves_no_shard(
    instance, play_files, seed_fixture, failed_step, message
):
    result = run_job(instance, play_files, "bad.csv", seed_fixture)

    assert not result.success
    assert message in instance.get_run_by_id(result.run_id).tags[ERROR_TAG]
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == failed_step
    user_failure = failure.step_failure_data.user_failure_data
    assert message in user_failure.description
    assert user_failure.metadata["error"].value == instance.get_run_by_id(result.run_id).tags[ERROR_TAG]
    assert user_failure.metadata["file"].value == "bad.csv"
    skipped = {event.step_key for event in result.all_events if event.event_type == DagsterEventType.STEP_SKIPPED}
    assert "play_totals.write_shards" in skipped
    assert result.get_asset_materialization_events() == []
    assert files_under(play_files.outbox) == []
    assert files_under(play_files.scratch) == []


def test_a_failed_rerun_leaves_the_earlier_result_alone(instance, play_files):
    good = run_job(instance, play_files, "plays.csv", "initial_test.csv")
    before = file_contents(play_files.outbox)

    bad = run_job(instance, play_files, "plays.csv", "initial_test_with_invalid_value.csv")

    assert good.success and not bad.success
    assert file_contents(play_files.outbox) == before
