"""Fixtures shared by the Dagster-level tests: a throwaway instance and a run's file locations."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, instance_for_test

from csv_pipeline.defs.resources.play_files import PlayFiles


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def play_files(tmp_path: Path) -> PlayFiles:
    """Inbox, outbox and scratch folders under the test's temporary directory."""
    return PlayFiles(
        inbox=str(tmp_path / "inbox"),
        outbox=str(tmp_path / "outbox"),
        scratch=str(tmp_path / "scratch"),
        max_shard_bytes=1_000_000,
    )
