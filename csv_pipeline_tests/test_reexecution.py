"""Re-executions of ``process_inbox_file`` that start after steps done by the parent run.

``execute_job`` with ``ReexecutionOptions`` on a SQLite instance and a real local Dask cluster:
the executor runs a plan whose first step takes its input from the parent run through the IO
manager, and ``write_shards`` re-executed on its own aggregates the file again into its own
scratch, since a run never reuses another run's scratch files.
"""

from pathlib import Path

import pytest
from dagster import ReexecutionOptions, execute_job

from csv_pipeline.defs.jobs import PROCESS_INBOX_FILE
from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.inbox import file_version
from csv_pipeline.labels import FILE_TAG, MANIFEST_TAG, VERSION_TAG
from csv_pipeline_tests.test_process_inbox_file_job import file_contents, files_under, read_csv

PLAYS = b"Song,Date,Number of Plays\nUmbrella,2020-01-01,100\nIn The End,2020-01-02,500\nUmbrella,2020-01-01,50\n"
TOTALS = [["In The End", "2020-01-02", "500"], ["Umbrella", "2020-01-01", "150"]]


def shards_of(outbox: str, run_id: str) -> dict[str, bytes]:
    """The shard files of a run's output directory, by name (``_SUCCESS`` names the run id)."""
    (run_dir,) = [path for path in Path(outbox).rglob(run_id) if path.is_dir()]
    return {name: data for name, data in file_contents(str(run_dir)).items() if name.startswith("part-")}


@pytest.mark.parametrize(
    "step_selection",
    [["play_totals.write_shards"], ["play_totals.aggregate_plays", "play_totals.write_shards"]],
    ids=["from write_shards", "from aggregate_plays"],
)
def test_a_reexecution_from_a_step_writes_the_parent_runs_output_again(instance, play_files, step_selection):
    inbox_file = Path(play_files.inbox) / "plays.csv"
    inbox_file.parent.mkdir(parents=True)
    inbox_file.write_bytes(PLAYS)
    instance.add_dynamic_partitions(inbox_files.name, ["plays.csv"])
    tags = {"dagster/partition": "plays.csv", FILE_TAG: "plays.csv", VERSION_TAG: file_version(str(inbox_file))}
    parent = execute_job(PROCESS_INBOX_FILE, instance, run_config=play_files.run_config(), tags=tags)
    assert parent.success

    with execute_job(
        PROCESS_INBOX_FILE,
        instance,
        run_config=play_files.run_config(),
        tags=tags,  # as the UI's re-execution: the parent's partition and file
        reexecution_options=ReexecutionOptions(parent_run_id=parent.run_id, step_selection=step_selection),
    ) as child:
        assert child.success, [event.message for event in child.all_events if event.is_failure]
        executed = {event.step_key for event in child.all_events if event.is_step_success}
        child_run_id = child.run_id

    assert executed == set(step_selection)
    assert shards_of(play_files.outbox, child_run_id) == shards_of(play_files.outbox, parent.run_id)
    manifest = instance.get_run_by_id(child_run_id).tags[MANIFEST_TAG]
    assert manifest.endswith(f"/{child_run_id}/_SUCCESS")
    rows = [
        row
        for name in sorted(shards_of(play_files.outbox, child_run_id))
        for row in read_csv(str(Path(manifest).parent / name))[1:]
    ]
    assert rows == TOTALS
    assert files_under(play_files.scratch) == []
