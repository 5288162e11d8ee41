"""Both ways Dagster documents to name the PostgreSQL instance storage work.

``deploy/dagster.yaml`` as shipped (the ``postgres_db`` block read from ``DAGSTER_PG_*``), and
the same file with a plain ``postgres_url: postgresql://...``: the webserver and the daemon
start on it and the daemon runs a file from the inbox, ``csv-pipeline process`` records its
runs in it, and ``csv-pipeline status`` reads them back through the webserver.
"""

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from csv_pipeline.cli.graphql_client import DagsterGraphQL
from csv_pipeline_tests.private_services import local_service
from csv_pipeline_tests.service_fixtures import PRODUCTION_INSTANCE_YAML, fresh_database, wait_until

CSV_PIPELINE = Path(sys.executable).parent / "csv-pipeline"
GOOD = "Song,Date,Number of Plays\nUmbrella,2020-01-01,100\nUmbrella,2020-01-01,50\nIn The End,2020-01-02,500\n"
BAD = "Song,Date,Number of Plays\nUmbrella,2020-01-01,-3\n"
BAD_SENTENCE = "bad.csv: line 2: Number of Plays '-3' is not a non-negative integer"
URL_STORAGE = "storage:\n  postgres:\n    postgres_url:\n      env: DAGSTER_PG_URL\n"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as dsn:
        yield dsn


def instance_yaml(form: str) -> str:
    shipped = PRODUCTION_INSTANCE_YAML.read_text()
    if form == "postgres_db":
        assert "postgres_db:" in shipped
        return shipped
    with_url = re.sub(r"^storage:\n(  .*\n)+", URL_STORAGE, shipped, flags=re.MULTILINE)
    assert "postgres_db:" not in with_url and URL_STORAGE in with_url
    return with_url


@pytest.mark.parametrize("form", ["postgres_db", "postgres_url"])
def test_the_instance_storage_works_in_both_documented_forms(form, database, tmp_path):
    # A plain postgresql:// URL, no driver named: what the Dagster docs show.
    with local_service(tmp_path, database, instance_yaml(form), DAGSTER_PG_URL=database) as service:
        (service.inbox / ".daemon.csv.partial").write_text(GOOD)
        (service.inbox / ".daemon.csv.partial").rename(service.inbox / "daemon.csv")
        for name, content in (("good.csv", GOOD), ("bad.csv", BAD)):
            (tmp_path / name).write_text(content)
        good, bad = (
            subprocess.run(
                [str(CSV_PIPELINE), "process", str(tmp_path / name), "--output", str(tmp_path / "cli_out")],
                env=service.env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            for name in ("good.csv", "bad.csv")
        )
        assert good.returncode == 0 and good.stdout.strip(), good.stderr
        assert json.loads(good.stdout)["rows_out"] == 2
        assert bad.returncode == 1 and json.loads(bad.stdout)["error"] == BAD_SENTENCE

        graphql = DagsterGraphQL(service.url)
        daemon_run = wait_until(
            lambda: run if (run := graphql.latest_run("daemon.csv")) and run.finished else None,
            300,
            "the daemon's run of daemon.csv",
            service.logs,
        )
        status = subprocess.run(
            [str(CSV_PIPELINE), "status", json.loads(bad.stdout)["run_id"]],
            env=service.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert (daemon_run.status, daemon_run.rows_out) == ("SUCCESS", 2)
    assert status.returncode == 1 and json.loads(status.stdout)["error"] == BAD_SENTENCE
    assert status.stderr == BAD_SENTENCE + "\n"
    with psycopg2.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT status FROM runs ORDER BY create_timestamp")
        assert sorted(row[0] for row in cursor.fetchall()) == ["FAILURE", "SUCCESS", "SUCCESS"]
