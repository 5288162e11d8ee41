"""The service end to end, over the processes production runs.

A PostgreSQL database of the session, moto's S3 server, ``dagster-webserver`` and
``dagster-daemon`` on ``deploy/dagster.yaml``: files go into the S3 inbox, the daemon's sensor
starts their runs, and the answers come back through GraphQL, the CLI and S3.
"""

import csv
import io
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from dagster._core.storage.tags import WILL_RETRY_TAG

from csv_pipeline.cli.graphql_client import NOT_FINISHED
from csv_pipeline.demo_data import write_demo_file
from csv_pipeline.labels import LARGE, SIZE_TAG, SMALL

pytest_plugins = ["csv_pipeline_tests.service_fixtures"]

SEED_FIXTURES = Path(__file__).resolve().parent / "fixtures"
RESULT_KEYS = {"status", "run_id", "file", "output_files", "rows_in", "rows_out", "error"}
OUTPUT_HEADER = ["Song", "Date", "Total Number of Plays for Date"]
CSV_PIPELINE = Path(sys.executable).parent / "csv-pipeline"
PIPE_BYTES = 1 << 16  # what a Linux pipe holds before its writer waits
SONGS = ["Umbrella", "In The End", "Hello, Goodbye", 'Say "Hi"', "Café del Mar", "Ünïcödé ♫", "Zebra", "apple"]


def plays_file(rows: int, seed: int) -> tuple[bytes, Counter]:
    """A valid CSV with quoting, non-ASCII songs and repeated (Song, Date) pairs, and its totals."""
    rng = random.Random(seed)
    songs = SONGS + [f"Song {number:03d}" for number in range(60)]
    totals: Counter = Counter()
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["Song", "Date", "Number of Plays"])
    for _ in range(rows):
        song, date, plays = (
            rng.choice(songs),
            f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            rng.randint(0, 10**6),
        )
        writer.writerow([song, date, plays])
        totals[song, date] += plays
    return text.getvalue().encode(), totals


@pytest.fixture(scope="module")
def good_file(dagster_service):
    """A multi-shard file processed through the sensor: (file key, its totals, its run)."""
    content, totals = plays_file(rows=6000, seed=7)
    dagster_service.put("e2e/good.csv", content)
    return "e2e/good.csv", totals, dagster_service.wait_for_run("e2e/good.csv")


def test_good_file_in_the_s3_inbox_succeeds_and_its_shards_hold_the_totals(dagster_service, good_file):
    file_key, totals, run = good_file
    assert (run.status, run.error, run.file) == ("SUCCESS", None, file_key)
    assert (run.rows_in, run.rows_out) == (6000, len(totals))
    run_folder = f"{dagster_service.outbox}/e2e/good/{run.run_id}"
    assert len(run.output_files) > 1, "the shard limit of the session splits this file"
    assert all(uri.startswith(f"{run_folder}/part-") for uri in run.output_files)
    assert dagster_service.s3.exists(f"{run_folder}/_SUCCESS")

    found: Counter = Counter()
    for uri in run.output_files:
        header, *rows = dagster_service.read_csv(uri)
        assert header == OUTPUT_HEADER
        assert rows == sorted(rows, key=lambda row: (row[0], row[1])), f"{uri} is not sorted by Song, then Date"
        assert dagster_service.s3.size(uri) <= dagster_service.max_shard_bytes
        for song, date, total in rows:
            assert (song, date) not in found, f"{song}, {date} is in two rows"
            found[song, date] = int(total)
    assert found == totals


def test_result_merges_the_shards_into_one_sorted_csv(dagster_service, good_file, tmp_path):
    file_key, totals, run = good_file
    merged = tmp_path / "good_result.csv"

    answer = dagster_service.cli("result", file_key, "--to", str(merged))

    assert answer.returncode == 0, answer.stderr
    with merged.open(newline="", encoding="utf-8") as result:
        header, *rows = list(csv.reader(result))
    assert header == OUTPUT_HEADER
    assert rows == [[song, date, str(totals[song, date])] for song, date in sorted(totals)]


def test_result_into_a_reader_that_stops_after_one_line_ends_quietly_with_0(dagster_service, good_file):
    file_key, totals, _ = good_file
    # More than two pipes' worth, so the command is still writing when `head` goes away.
    assert sum(len(f"{song},{date},{plays}\n".encode()) for (song, date), plays in totals.items()) > 2 * PIPE_BYTES

    result = subprocess.Popen(
        [str(CSV_PIPELINE), "result", file_key], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dagster_service.env
    )
    head = subprocess.Popen(["head", "-1"], stdin=result.stdout, stdout=subprocess.PIPE)
    result.stdout.close()  # `head` holds the pipe's only reader: when it exits, the pipe is closed
    first_line, _ = head.communicate(timeout=600)
    said = result.stderr.read()
    exit_code = result.wait(timeout=600)
    result.stderr.close()

    assert first_line == b"Song,Date,Total Number of Plays for Date\n"
    assert (exit_code, said) == (0, b"")


def test_bad_file_fails_with_the_spec_message_and_leaves_no_shard(dagster_service):
    dagster_service.put("e2e/bad.csv", (SEED_FIXTURES / "initial_test_with_invalid_value.csv").read_bytes())

    run = dagster_service.wait_for_run("e2e/bad.csv")

    message = "e2e/bad.csv: line 4: Number of Plays 'patata' is not a non-negative integer"
    assert (run.status, run.error, run.output_files) == ("FAILURE", message, [])
    assert dagster_service.s3.find(f"{dagster_service.outbox}/e2e/bad") == []
    assert dagster_service.s3.find(f"{dagster_service.outbox}/.scratch/{run.run_id}") == []
    answer = dagster_service.cli("status", "e2e/bad.csv")
    assert (answer.returncode, answer.stderr.strip()) == (1, message)
    assert json.loads(answer.stdout)["error"] == message
    # The step's own output, in the UI: Dagster's log lines, which it writes to standard error.
    captured = dagster_service.captured_logs(run.run_id)
    assert "e2e/bad.csv: 203 bytes, read in 1 blocks" in captured["play_totals.validate_format"][1], captured
    assert message in captured["play_totals.aggregate_plays"][1], captured


def test_same_file_again_starts_no_run_and_new_content_starts_exactly_one(dagster_service):
    first = (SEED_FIXTURES / "initial_test.csv").read_bytes()
    dagster_service.put("e2e/again.csv", first)
    earlier = dagster_service.wait_for_run("e2e/again.csv")

    dagster_service.put("e2e/again.csv", first)
    dagster_service.wait_for_sensor_tick()
    assert dagster_service.run_ids("e2e/again.csv") == [earlier.run_id]

    dagster_service.put("e2e/again.csv", first.replace(b"Umbrella,2020-01-01,100", b"Umbrella,2020-01-01,900"))
    dagster_service.wait_for_sensor_tick()
    dagster_service.wait_for_sensor_tick()
    run_ids = dagster_service.run_ids("e2e/again.csv")
    assert len(run_ids) == 2 and run_ids[1] == earlier.run_id
    latest = dagster_service.wait_for_run("e2e/again.csv")
    assert (latest.run_id, latest.status, latest.rows_out) == (run_ids[0], "SUCCESS", 4)


def test_status_of_a_file_still_in_flight_is_not_finished(dagster_service, tmp_path):
    big = tmp_path / "big.csv"
    write_demo_file(str(big), 30_000_000, songs=200, days=30, seed=3, progress=False)
    dagster_service.put_large(big, "e2e/big.csv")
    in_flight = dagster_service.wait_for_run("e2e/big.csv", until=lambda run: run.status == "STARTED")

    with dagster_service.run_worker_paused(in_flight.run_id):
        answer = dagster_service.cli("status", "e2e/big.csv")

    assert answer.returncode == 3, answer.stderr
    assert "not finished" in answer.stderr
    printed = json.loads(answer.stdout)
    assert printed["run_id"] == in_flight.run_id and printed["status"] in NOT_FINISHED
    finished = dagster_service.wait_for_run("e2e/big.csv", timeout=600)
    assert (finished.run_id, finished.status, finished.rows_out) == (in_flight.run_id, "SUCCESS", 200 * 30)
    assert dagster_service.cli("status", in_flight.run_id).returncode == 0


def test_submit_wait_prints_the_result_and_a_second_submit_prints_the_same_run(dagster_service, tmp_path):
    local = tmp_path / "plays.csv"
    local.write_bytes((SEED_FIXTURES / "initial_test.csv").read_bytes())

    answer = dagster_service.cli("submit", str(local), "--key", "e2e/submitted.csv", "--wait", "--timeout", "300")

    assert answer.returncode == 0, answer.stderr
    printed = json.loads(answer.stdout)
    assert set(printed) == RESULT_KEYS
    assert {key: printed[key] for key in ("status", "file", "rows_in", "rows_out", "error")} == {
        "status": "SUCCESS",
        "file": "e2e/submitted.csv",
        "rows_in": 7,
        "rows_out": 4,
        "error": None,
    }
    assert printed["output_files"] and all(
        uri.startswith(f"{dagster_service.outbox}/e2e/submitted/{printed['run_id']}/")
        for uri in printed["output_files"]
    )

    again = dagster_service.cli("submit", str(local), "--key", "e2e/submitted.csv")

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == printed
    assert "already holds this content" in again.stderr
    dagster_service.wait_for_sensor_tick()
    assert dagster_service.run_ids("e2e/submitted.csv") == [printed["run_id"]]
    merged = dagster_service.cli("result", printed["run_id"])
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout == (
        "Song,Date,Total Number of Plays for Date\n"
        "In The End,2020-01-01,1500\n"
        "In The End,2020-01-02,500\n"
        "Umbrella,2020-01-01,150\n"
        "Umbrella,2020-01-02,250\n"
    )


def test_runs_are_rows_of_the_sessions_postgres_database(dagster_service, good_file):
    _, _, run = good_file
    rows = dict(dagster_service.runs_in_database())
    assert rows[run.run_id] == "SUCCESS"
    assert sorted(rows) == sorted(dagster_service.run_ids())


def test_a_burst_of_files_waits_in_the_queue_and_each_file_gets_exactly_one_result(dagster_service):
    limit = dagster_service.max_concurrent_runs()
    good = (SEED_FIXTURES / "initial_test.csv").read_bytes()
    bad = (SEED_FIXTURES / "initial_test_with_invalid_value.csv").read_bytes()
    keys = [f"e2e/burst/{number}.csv" for number in range(3 * limit)]
    bad_key = keys[limit]
    for key in keys:
        dagster_service.put(key, bad if key == bad_key else good)

    seen = dagster_service.watch_statuses(keys)

    assert seen[-1] == ["FAILURE" if key == bad_key else "SUCCESS" for key in keys]
    assert {key: len(dagster_service.run_ids(key)) for key in keys} == dict.fromkeys(keys, 1)
    [bad_run] = dagster_service.runs(bad_key)
    assert {"key": WILL_RETRY_TAG, "value": "false"} in bad_run["tags"], "a bad file's run is not retried"
    failed = dagster_service.graphql.latest_run(bad_key)
    assert failed is not None
    assert failed.error == f"{bad_key}: line 4: Number of Plays 'patata' is not a non-negative integer"
    assert max(sum(status in ("STARTING", "STARTED") for status in statuses) for statuses in seen) <= limit
    assert any("QUEUED" in statuses for statuses in seen), "the burst never had to queue"
    # Small files' runs fill the queue's slots; at most two large runs at once.
    assert dagster_service.tag_concurrency_limits() == [{"key": SIZE_TAG, "value": LARGE, "limit": 2}]
    assert all({"key": SIZE_TAG, "value": SMALL} in run["tags"] for key in keys for run in dagster_service.runs(key))


def test_a_run_whose_worker_dies_is_retried_and_status_follows_the_retry(dagster_service, tmp_path):
    big = tmp_path / "crash.csv"
    write_demo_file(str(big), 30_000_000, songs=100, days=10, seed=5, progress=False)
    dagster_service.put_large(big, "e2e/crash.csv")
    crashed = dagster_service.wait_for_run("e2e/crash.csv", until=lambda run: run.status == "STARTED")

    dagster_service.kill_run_worker(crashed.run_id)

    retry = dagster_service.wait_for_run(
        "e2e/crash.csv", until=lambda run: run.run_id != crashed.run_id and run.finished
    )
    assert (retry.status, retry.rows_out) == ("SUCCESS", 100 * 10)
    assert dagster_service.parent_run_id(retry.run_id) == crashed.run_id, dagster_service.runs_told("e2e/crash.csv")
    answer = dagster_service.cli("status", "e2e/crash.csv")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["run_id"] == retry.run_id
    crashed = dagster_service.graphql.run(crashed.run_id)
    assert crashed.status == "FAILURE" and crashed.error, "a crash without a csv_pipeline/error tag still says why"
    answer = dagster_service.cli("status", crashed.run_id)
    assert (answer.returncode, answer.stderr.strip()) == (1, crashed.error)


def test_status_of_a_file_nobody_submitted_is_a_usage_error(dagster_service):
    answer = dagster_service.cli("status", "e2e/never-submitted.csv")

    assert answer.returncode == 2
    assert answer.stderr.strip() == (
        f"e2e/never-submitted.csv is not in the inbox {dagster_service.inbox} and has no run in Dagster."
    )
