"""``csv-pipeline process``: one file through ``process_inbox_file``, without the daemon.

The same job as the sensor launches, on the same Dask executor, recorded in the same Dagster
instance (``DAGSTER_HOME``), so the run shows in the UI too. The file's folder plays the inbox
and the output folder the outbox; the partition key is the file name. Exit status:
0 ok, 1 bad file (or a failed run), 2 usage error or unreadable input.

The only command that loads Dagster and the job, inside the functions that run it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, cast

from csv_pipeline.cli import exit_codes

if TYPE_CHECKING:
    from dagster import JobExecutionResult

    from csv_pipeline.cli.graphql_client import RunResult


class UnreadableInputError(Exception):
    """The input is not a file that can be read."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "process",
        help="run the job on one file here, without the daemon, and print the result as JSON",
        description=(
            "Run process_inbox_file on INPUT in this process (on the Dask cluster of "
            "DASK_SCHEDULER_ADDRESS, or a local one), writing the shards under DIR. "
            "Exit 0 ok, 1 bad file, 2 usage error or unreadable input."
        ),
    )
    parser.add_argument("input", metavar="INPUT", help="CSV file (local path or fsspec URL)")
    parser.add_argument("--output", required=True, metavar="DIR", help="outbox for the shards (path or fsspec URL)")
    parser.set_defaults(command=process)


def process(args: argparse.Namespace) -> int:
    """Print the run's result JSON; the error sentence also goes to stderr."""
    try:
        result = run_file(args.input, args.output)
    except UnreadableInputError as error:
        print(error, file=sys.stderr)
        return exit_codes.USAGE
    print(result.to_json(), flush=True)
    if not result.succeeded:
        print(result.error, file=sys.stderr)
        return exit_codes.FAILED
    return exit_codes.SUCCESS


def run_file(input_url: str, output_url: str) -> RunResult:
    """Process the file at ``input_url`` into ``output_url`` and say how it went.

    The other settings (shard limit, Dask cluster, ``DAGSTER_HOME``) come from the environment.
    """
    from dagster import DagsterInstance, execute_job

    from csv_pipeline.defs.jobs import PROCESS_INBOX_FILE
    from csv_pipeline.defs.partitions import INBOX_FILES
    from csv_pipeline.defs.resources.play_files import PlayFiles
    from csv_pipeline.inbox import file_key_problem, shown, symlink_problem
    from csv_pipeline.labels import FILE_TAG, VERSION_TAG
    from csv_pipeline.settings import Settings, absolute_url

    input_url = absolute_url(input_url)
    inbox, file_key = input_url.rsplit("/", 1)
    # The sensor's rule, with the file's folder as the inbox: checked before the file is opened.
    problem = file_key_problem(file_key) or symlink_problem(inbox, file_key)
    if problem:
        raise UnreadableInputError(f"{shown(file_key)}: not read: {problem}.")
    version = _version_of_readable(input_url)
    settings = Settings.from_env({**os.environ, "CSV_PIPELINE_INBOX": inbox, "CSV_PIPELINE_OUTBOX": output_url})
    _create_instance_config(Path(settings.dagster_home))
    with DagsterInstance.from_config(settings.dagster_home) as instance:
        instance.add_dynamic_partitions(INBOX_FILES, [file_key])
        result = execute_job(
            PROCESS_INBOX_FILE,
            instance,
            run_config=PlayFiles.from_settings(settings).run_config(),
            tags={"dagster/partition": file_key, FILE_TAG: file_key, VERSION_TAG: version},
        )
        run = instance.get_run_by_id(result.run_id)
        assert run is not None  # the run this process just executed
    return _run_result(result, run.status.value, run.tags)


def _create_instance_config(dagster_home: Path) -> None:
    """Give an instance folder without a ``dagster.yaml`` one: Dagster's defaults (SQLite in the
    folder), without the notice that it has none, and with telemetry off, so that a first run
    prints no usage-statistics banner either. An existing ``dagster.yaml`` is left as it is."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError), (dagster_home / "dagster.yaml").open("x") as config:
        config.write("telemetry:\n  enabled: false\n")


def _version_of_readable(url: str) -> str:
    from csv_pipeline.engine.storage import filesystem
    from csv_pipeline.inbox import file_version

    fs, path = filesystem(url)
    try:
        if not fs.isfile(path):
            raise UnreadableInputError(f"{url} is not a file.")
        with fs.open(path, "rb") as stream:
            stream.read(1)
        return file_version(url)
    except OSError as error:
        raise UnreadableInputError(f"{url} cannot be read: {error.strerror or error}.") from error


def _run_result(result: JobExecutionResult, status: str, tags: Mapping[str, str]) -> RunResult:
    from dagster import AssetKey

    from csv_pipeline.cli.graphql_client import RunResult
    from csv_pipeline.labels import ERROR_TAG, FILE_TAG, OUTPUT_FILES, ROWS_IN, ROWS_OUT

    file = tags[FILE_TAG]
    if not result.success:
        return RunResult(status, result.run_id, file, error=tags.get(ERROR_TAG) or _failure_message(result))
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey("play_totals")]
    metadata = event.step_materialization_data.materialization.metadata
    # The values play_totals records: the shards' URLs (JSON) and two row counts.
    return RunResult(
        status,
        result.run_id,
        file,
        output_files=cast(list[str], metadata[OUTPUT_FILES].value),
        rows_in=cast(int, metadata[ROWS_IN].value),
        rows_out=cast(int, metadata[ROWS_OUT].value),
    )


def _failure_message(result: JobExecutionResult) -> str | None:
    """Why a run failed that did not fail on a bad file (a crashed worker, an unreachable cluster)."""
    for event in result.all_events:
        if event.is_step_failure:
            failure = event.step_failure_data
            return (failure.user_failure_data and failure.user_failure_data.description) or (
                failure.error.message.strip() if failure.error else event.message
            )
        if event.is_run_failure:
            error = event.job_failure_data.error
            return error.message.strip() if error else event.message
    return None
