"""The asset checks of ``play_totals`` and what the UI shows of a file: run through ``execute_job`` on
the real dagster-dask executor (a local Dask cluster per run), as the sensor's runs are.

A good file passes both checks; a shard changed after the run fails them when they run again,
with the figures that show why; a bad file's reason is on its partition as an observation.
"""

from pathlib import Path

from dagster import AssetCheckKey, AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance, execute_job

from csv_pipeline.defs.assets.checks import ACCOUNTED_FOR, SORTED_AND_BOUNDED
from csv_pipeline.defs.jobs import PROCESS_INBOX_FILE
from csv_pipeline.defs.partitions import inbox_files
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.inbox import file_version
from csv_pipeline.labels import FILE_TAG, VERSION_TAG

PLAY_TOTALS = AssetKey("play_totals")
GOOD = (
    "Song,Date,Number of Plays\n"
    "Umbrella,2020-01-01,50\nIn The End,2020-01-01,500\nUmbrella,2020-01-02,250\n"
    "In The End,2020-01-01,1000\nUmbrella,2020-01-01,100\nIn The End,2020-01-02,500\n"
    "Numb,2019-12-31,7\n"
)
BAD = "Song,Date,Number of Plays\nUmbrella,2020-01-01,50\nIn The End,2020-01-01,500\nUmbrella,2020-01-02,patata\n"


def run_file(instance: DagsterInstance, play_files: PlayFiles, file_key: str, text: str, **selection):
    path = Path(play_files.inbox, file_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    instance.add_dynamic_partitions(inbox_files.name, [file_key])
    return execute_job(
        PROCESS_INBOX_FILE.get_subset(**selection) if selection else PROCESS_INBOX_FILE,
        instance,
        run_config=play_files.run_config(),
        tags={"dagster/partition": file_key, FILE_TAG: file_key, VERSION_TAG: file_version(str(path))},
    )


def check_results(result) -> dict:
    evaluations = [
        event.event_specific_data
        for event in result.all_events
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    return {evaluation.check_name: evaluation for evaluation in evaluations}


def figures(evaluation) -> dict:
    return {label: value.value for label, value in evaluation.metadata.items()}


def test_a_good_file_passes_both_checks_and_is_described_by_its_materialization(instance, play_files):
    result = run_file(instance, play_files, "demo.csv", GOOD)

    assert result.success
    checks = check_results(result)
    assert set(checks) == {ACCOUNTED_FOR, SORTED_AND_BOUNDED}
    assert all(check.passed for check in checks.values())
    assert all(check.partition == "demo.csv" for check in checks.values())
    accounted = figures(checks[ACCOUNTED_FOR])
    assert accounted["rows_in"] == 7
    assert accounted["rows_out (manifest)"] == accounted["rows_out (read back)"] == 5
    assert accounted["plays_in"] == accounted["plays_out (read back)"] == 2407
    assert songs_of(accounted["top_songs (read back)"]) == [("In The End", 2000), ("Umbrella", 400), ("Numb", 7)]
    assert figures(checks[SORTED_AND_BOUNDED])["shards_out_of_order"] == 0

    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey("play_totals")]
    metadata = {label: value for label, value in event.step_materialization_data.materialization.metadata.items()}
    assert "path" not in metadata, "the pickled step output is not the result"
    (shard,) = metadata["output_files"].value
    assert metadata[f"shard {Path(shard).name}"].value == shard
    assert metadata["result"].value == str(Path(shard).parent)
    assert (metadata["first_date"].value, metadata["last_date"].value) == ("2019-12-31", "2020-01-02")
    assert metadata["plays_in"].value == 2407
    assert metadata["dagster/row_count"].value == 5
    assert songs_of(metadata["top_songs"]) == [("In The End", 2000), ("Umbrella", 400), ("Numb", 7)]


def test_checks_pass_on_many_buckets_and_a_song_cut_across_shards(instance, play_files):
    """Shards follow the hash buckets (songs sorted within a shard only), and a song larger than a
    shard goes on in the next one: both are right, and the top songs add its pieces back up."""
    plays = {f"song {n:02d}": {f"2020-01-{day:02d}": n * day for day in range(1, 29)} for n in range(1, 30)}
    plays["Long Song"] = {f"2020-02-{day:02d}": 1000 + day for day in range(1, 29)}
    text = "Song,Date,Number of Plays\n" + "".join(
        f"{song},{day},{count}\n" for song, days in plays.items() for day, count in days.items()
    )
    small = play_files.model_copy(update={"bucket_bytes": 4096, "max_shard_bytes": 700})

    result = run_file(instance, small, "many.csv", text)

    assert result.success
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey("play_totals")]
    metadata = event.step_materialization_data.materialization.metadata
    assert metadata["shard_count"].value > 5
    checks = check_results(result)
    assert all(check.passed for check in checks.values()), {k: c.description for k, c in checks.items()}
    totals = sorted(((sum(days.values()), song) for song, days in plays.items()), key=lambda t: (-t[0], t[1]))
    top = songs_of(figures(checks[ACCOUNTED_FOR])["top_songs (read back)"])
    assert top == songs_of(metadata["top_songs"]) == [(song, total) for total, song in totals[:10]]
    assert top[0] == ("Long Song", sum(plays["Long Song"].values()))


def test_a_shard_changed_after_the_run_fails_both_checks_with_their_figures(instance, play_files):
    shard_path = first_shard_of_a_good_run(instance, play_files)
    lines = shard_path.read_text().splitlines(keepends=True)
    assert lines[1] == "In The End,2020-01-01,1500\n"
    lines[1] = "Umbrella,2020-01-01,1501\n"  # one play more, and now out of order
    shard_path.write_text("".join(lines))

    checks = check_results(rerun_checks(instance, play_files))
    assert not checks[ACCOUNTED_FOR].passed
    accounted = figures(checks[ACCOUNTED_FOR])
    assert (accounted["plays_in"], accounted["plays_out (read back)"]) == (2407, 2408)
    assert "2407 plays in 7 input rows, 2408 plays" in checks[ACCOUNTED_FOR].description
    assert not checks[SORTED_AND_BOUNDED].passed
    assert figures(checks[SORTED_AND_BOUNDED])["shards_out_of_order"] == 1
    assert "part-00000.csv: line 3 is out of order" in checks[SORTED_AND_BOUNDED].description


def test_shards_whose_most_played_songs_differ_from_the_materializations_fail_the_check(instance, play_files):
    """Plays moved from one song to another keep every count right; only the top songs tell."""
    shard_path = first_shard_of_a_good_run(instance, play_files)
    text = shard_path.read_text()
    assert "In The End,2020-01-01,1500\n" in text and "Numb,2019-12-31,7\n" in text
    shard_path.write_text(
        text.replace("In The End,2020-01-01,1500", "In The End,2020-01-01,1000").replace(
            "Numb,2019-12-31,7", "Numb,2019-12-31,507"
        )
    )

    checks = check_results(rerun_checks(instance, play_files))
    assert checks[SORTED_AND_BOUNDED].passed
    accounted = checks[ACCOUNTED_FOR]
    assert not accounted.passed
    assert figures(accounted)["plays_in"] == figures(accounted)["plays_out (read back)"] == 2407
    assert accounted.description == "the most played songs read back are not the ones the materialization shows"
    assert songs_of(figures(accounted)["top_songs (read back)"]) == [
        ("In The End", 1500),
        ("Numb", 507),
        ("Umbrella", 400),
    ]


def test_a_bad_file_puts_its_reason_on_its_partition(instance, play_files):
    result = run_file(instance, play_files, "bad.csv", BAD)

    assert not result.success
    (observation,) = instance.fetch_observations(
        AssetRecordsFilter(asset_key=PLAY_TOTALS, asset_partitions=["bad.csv"]), limit=10
    ).records
    observed = observation.asset_observation
    sentence = "bad.csv: line 4: Number of Plays 'patata' is not a non-negative integer"
    assert observed.description == sentence
    assert observed.metadata["error"].value == sentence
    assert observed.metadata["line"].value == 4


def songs_of(table) -> list[tuple[str, int]]:
    """The (Song, Plays) rows of a top songs table."""
    return [(record.data["Song"], record.data["Plays"]) for record in table.records]


def first_shard_of_a_good_run(instance: DagsterInstance, play_files: PlayFiles) -> Path:
    """Run GOOD as demo.csv; the path of its one shard, for a test to change."""
    result = run_file(instance, play_files, "demo.csv", GOOD)
    output = instance.get_run_by_id(result.run_id).tags["csv_pipeline/manifest"].rsplit("/", 1)[0]
    return Path(output, "part-00000.csv")


def rerun_checks(instance: DagsterInstance, play_files: PlayFiles):
    """Both checks of demo.csv again, alone, on the shards as they are now."""
    return run_file(
        instance,
        play_files,
        "demo.csv",
        GOOD,
        asset_check_selection={
            AssetCheckKey(PLAY_TOTALS, ACCOUNTED_FOR),
            AssetCheckKey(PLAY_TOTALS, SORTED_AND_BOUNDED),
        },
        asset_selection=set(),
    )
