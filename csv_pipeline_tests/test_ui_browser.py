"""What support staff see in the Dagster UI, checked in a real browser.

A good and a bad file go through ``csv-pipeline process`` (its ``run_file``, in this process)
into a throwaway SQLite ``DAGSTER_HOME``; then a real ``dagster-webserver`` serves that
instance on a free loopback port and Debian's Chromium, driven by Playwright, opens the pages a
user would: the good file's partition (materialized, rows_out, shard paths, preview), the bad
file's partition and run (the one-sentence reason), and the Checks tab (both checks passed
for the good file). Screenshots go to a temporary folder, or to ``CSV_PIPELINE_UI_SCREENSHOTS``.
"""

import json
import os
import re
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from csv_pipeline.cli.process import run_file
from csv_pipeline.defs.assets.checks import ACCOUNTED_FOR
from csv_pipeline_tests.service_fixtures import free_port, start_process, stop_process, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous: on a loaded machine the UI's scripts and its GraphQL answers can take a minute or more.
PAGE_TIMEOUT_MS = 180_000
GOOD = (
    "Song,Date,Number of Plays\n"
    "Umbrella,2020-01-01,50\nIn The End,2020-01-01,500\nUmbrella,2020-01-02,250\n"
    "In The End,2020-01-01,1000\nUmbrella,2020-01-01,100\nIn The End,2020-01-02,500\n"
)
BAD = "Song,Date,Number of Plays\nUmbrella,2020-01-01,50\nIn The End,2020-01-01,500\nUmbrella,2020-01-02,patata\n"
SENTENCE = "plays.csv: line 4: Number of Plays 'patata' is not a non-negative integer"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CSV_PIPELINE_UI_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def processed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A good and a bad file processed into a fresh instance, as ``csv-pipeline process`` does."""
    home, inbox = tmp_path / "dagster_home", tmp_path / "inbox"
    home.mkdir()
    inbox.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    (inbox / "demo.csv").write_text(GOOD)
    (inbox / "plays.csv").write_text(BAD)
    good = run_file(str(inbox / "demo.csv"), str(tmp_path / "outbox"))
    bad = run_file(str(inbox / "plays.csv"), str(tmp_path / "outbox"))
    assert (good.status, bad.status, bad.error) == ("SUCCESS", "FAILURE", SENTENCE)
    return {"home": home, "good": good, "bad": bad}


@pytest.fixture
def webserver(processed: dict, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_process(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "csv_pipeline.definitions",
        ],
        env={**os.environ, "DAGSTER_HOME": str(processed["home"])},
        cwd=tmp_path,
        log=tmp_path / "webserver.log",
    )
    try:
        wait_until(lambda: _answers(f"{url}/server_info"), 120, "the webserver", tmp_path)
        yield url
    finally:
        stop_process(process)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the browser test needs Chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _answers(url: str) -> bool | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return True if response.status == 200 else None
    except OSError:
        return None


def test_support_staff_see_each_files_story(processed, webserver, browser, screenshots):
    """In the UI; then the deploy README's GraphQL queries, as pasted, against the same server."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    good, bad = processed["good"], processed["bad"]

    # The good file's partition: materialized, with its counts, shard paths and preview.
    page.goto(f"{webserver}/assets/play_totals?view=partitions&partition=demo.csv")
    dismiss_first_visit_dialog(page)
    details = page.get_by_text("Latest materialization").locator(
        "xpath=ancestor::*[.//text()[contains(., 'rows_out')]][1]"
    )
    expect(page.get_by_text("Materialized", exact=True).first).to_be_visible()
    expect(details.get_by_text("rows_out", exact=True)).to_be_visible()
    expect(details.get_by_text(good.output_files[0]).first).to_be_visible()
    expect(details.get_by_text("Total Number of Plays for Date")).to_be_visible()
    expect(details.get_by_text("1500", exact=True)).to_be_visible()
    expect(details.get_by_text("top_songs", exact=True)).to_be_visible()
    page.screenshot(path=screenshots / "good-partition.png", full_page=True)

    # The bad file's partition: failed; its run's step log and the partition's event say why.
    page.goto(f"{webserver}/assets/play_totals?view=partitions&partition=plays.csv")
    expect(page.get_by_text(f"Run {bad.run_id[:8]} failed, and did not materialize this asset.")).to_be_visible()
    page.get_by_role("button", name="View logs").click()
    expect(page.get_by_role("dialog").get_by_text(SENTENCE).first).to_be_visible()
    page.screenshot(path=screenshots / "bad-partition-logs.png")
    page.goto(f"{webserver}/assets/play_totals?view=events&partition=plays.csv")
    expect(page.get_by_text("Partition plays.csv observed in run")).to_be_visible()
    expect(page.get_by_text(SENTENCE, exact=True).first).to_be_visible()
    page.screenshot(path=screenshots / "bad-partition-events.png")

    # The bad file's run.
    page.goto(f"{webserver}/runs/{bad.run_id}")
    expect(page.get_by_text(SENTENCE).first).to_be_visible()
    page.screenshot(path=screenshots / "bad-run.png")

    # The Checks tab: both checks passed on the good file's partition, with their figures.
    page.goto(f"{webserver}/assets/play_totals?view=checks&checkDetail={ACCOUNTED_FOR}")
    expect(page.get_by_role("tab", name="Execution history")).to_be_visible()  # the check's own tabs
    page.get_by_role("tab", name="Partitions").last.click()  # the check's, after the asset's
    demo = page.get_by_text("demo.csv", exact=True).filter(visible=True)
    expect(demo).to_have_count(2)  # the selection's chip, then the list of partitions to click
    demo.last.click()
    expect(page.get_by_text("Passed").first).to_be_visible()
    expect(page.get_by_text("plays_out (read back)")).to_be_visible()
    page.screenshot(path=screenshots / "checks.png")

    # The deploy README's queries, exactly as written there, default to the key demo.csv.
    latest_run, story = (_graphql(webserver, query) for query in _readme_queries())
    (run,) = latest_run["runsOrError"]["results"]
    assert run["runId"] == good.run_id
    (materialization,) = story["assetOrError"]["assetMaterializations"]
    values = {entry["label"]: entry for entry in materialization["metadataEntries"]}
    assert values["rows_out"]["intValue"] == 4 and values["rows_out"]["intRepr"] == "4"
    assert values["plays_in"]["intRepr"] == "2400"
    assert values["result"]["path"] == str(Path(good.output_files[0]).parent)
    assert values["seconds"]["floatValue"] > 0
    assert values["first_date"]["text"] == "2020-01-01"
    assert len(values["preview"]["table"]["records"]) == 4
    assert [json.loads(record) for record in values["top_songs"]["table"]["records"]] == [
        {"Song": "In The End", "Plays": 2000},
        {"Song": "Umbrella", "Plays": 400},
    ]
    checks = story["assetCheckExecutions"]
    assert [(check["partition"], check["status"]) for check in checks] == [
        ("plays.csv", "EXECUTION_FAILED"),
        ("demo.csv", "SUCCEEDED"),
    ]


def _readme_queries() -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "deploy" / "README.md").read_text()
    blocks = re.findall(r"```graphql\n(.*?)```", text, re.S)
    return [textwrap.dedent(block) for block in blocks]


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql", json.dumps({"query": query}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer
    return answer["data"]


def dismiss_first_visit_dialog(page: Page) -> None:
    """A fresh instance greets the first visitor with a community dialog; skip it as a user would."""
    page.get_by_role("dialog").get_by_role("button", name="Skip").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
