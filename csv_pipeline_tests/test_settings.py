"""The environment variables: embedded defaults, overrides, a clear error."""

import os

import pytest

from csv_pipeline.settings import Settings


def test_nothing_set_gives_the_local_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    settings = Settings.from_env({})

    assert settings == Settings(
        inbox=str(tmp_path / "data" / "inbox"),
        outbox=str(tmp_path / "data" / "outbox"),
        scratch=str(tmp_path / "data" / "outbox" / ".scratch"),
        max_shard_bytes=500_000_000,
        block_bytes=32 << 20,
        bucket_bytes=32 << 20,
        dask_scheduler_address=None,
        dask_dashboard=None,
        dagster_url="http://127.0.0.1:3000",
        dagster_home=str(tmp_path / ".dagster_home"),
        step_outputs=None,
    )


def test_production_values_are_taken_as_given():
    settings = Settings.from_env(
        {
            "CSV_PIPELINE_INBOX": "s3://plays/inbox/",
            "CSV_PIPELINE_OUTBOX": "s3://plays/outbox",
            "CSV_PIPELINE_MAX_SHARD_BYTES": "1000",
            "DASK_SCHEDULER_ADDRESS": "tcp://dask-scheduler:8786",
            "CSV_PIPELINE_DAGSTER_URL": "http://dagster:3000/",
            "DAGSTER_HOME": "/opt/dagster",
            "CSV_PIPELINE_STEP_OUTPUTS": "s3://plays/dagster-steps/",
            "CSV_PIPELINE_DASK_DASHBOARD": "127.0.0.1:8787",
            "CSV_PIPELINE_INBOX_QUEUE": "https://sqs.eu-west-1.amazonaws.com/123456789012/plays-inbox",
            "CSV_PIPELINE_INBOX_LISTING_SECONDS": "1800",
        }
    )

    assert (settings.inbox, settings.outbox, settings.scratch) == (
        "s3://plays/inbox",
        "s3://plays/outbox",
        "s3://plays/outbox/.scratch",
    )
    assert settings.max_shard_bytes == 1000
    assert settings.dask_scheduler_address == "tcp://dask-scheduler:8786"
    assert settings.dagster_url == "http://dagster:3000"
    assert settings.dagster_home == os.path.abspath("/opt/dagster")
    assert settings.step_outputs == "s3://plays/dagster-steps"
    assert settings.dask_dashboard == "127.0.0.1:8787"
    assert settings.inbox_queue == "https://sqs.eu-west-1.amazonaws.com/123456789012/plays-inbox"
    assert settings.inbox_listing_seconds == 1800


def test_the_scratch_root_can_be_moved():
    settings = Settings.from_env({"CSV_PIPELINE_OUTBOX": "s3://plays/outbox", "CSV_PIPELINE_SCRATCH": "/fast/disk"})

    assert settings.scratch == "/fast/disk"


@pytest.mark.parametrize("value", ["0", "-5", "1e9", "lots"])
def test_a_shard_limit_that_is_not_a_positive_number_is_refused(value):
    with pytest.raises(
        ValueError, match=f"CSV_PIPELINE_MAX_SHARD_BYTES must be a positive whole number of bytes, not '{value}'"
    ):
        Settings.from_env({"CSV_PIPELINE_MAX_SHARD_BYTES": value})


def test_the_upload_window_is_whole_seconds():
    assert Settings.from_env({}).upload_window_seconds == 900
    assert Settings.from_env({"CSV_PIPELINE_UPLOAD_WINDOW_SECONDS": "3600"}).upload_window_seconds == 3600
    with pytest.raises(
        ValueError, match="CSV_PIPELINE_UPLOAD_WINDOW_SECONDS must be a positive whole number of seconds, not '15m'"
    ):
        Settings.from_env({"CSV_PIPELINE_UPLOAD_WINDOW_SECONDS": "15m"})
