"""The ``csv-pipeline`` command: one subcommand per module that holds it."""

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from csv_pipeline.demo_command import add_demo_file_command
from csv_pipeline.history_command import add_history_command
from csv_pipeline.process_command import add_process_command
from csv_pipeline.service_commands import add_result_command, add_status_command, add_submit_command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="csv-pipeline", description="Play-count CSV files in, per-(Song, Date) totals out, on Dagster and Dask."
    )
    subparsers = parser.add_subparsers(required=True, metavar="COMMAND")
    for add_command in (
        add_process_command,
        add_submit_command,
        add_status_command,
        add_result_command,
        add_demo_file_command,
        add_history_command,
    ):
        add_command(subparsers)
    args = parser.parse_args(argv)
    return args.command(args)


def run() -> None:
    """The console script: ``main``, then exit without the interpreter's teardown.

    Tearing down the modules and objects of Dagster, Dask and Arrow takes about a second
    (measured) and does nothing for a command that has finished: its files are closed and
    its instance disposed; only the standard streams and logging need flushing.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
