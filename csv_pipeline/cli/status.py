"""``csv-pipeline status``: the result of a file's latest run, or of a run id, as JSON.

Exit status: 0 success, 1 failed, 3 not finished, 2 unknown file or run, a path outside the
inbox, unreachable service.
"""

import argparse

from csv_pipeline.cli.run_results import add_target_argument, find_result, report, service_command
from csv_pipeline.settings import Settings


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="the result of a file's latest run, or of a run id, as JSON",
        description=(
            "Exit 0 success, 1 failed (the message is printed), 3 not finished, 2 unknown file or run, "
            "a path outside the inbox or an unreachable service."
        ),
    )
    add_target_argument(parser)
    parser.set_defaults(command=status)


@service_command
def status(args: argparse.Namespace) -> int:
    """Print the result of a file key's run for its current content, or of a run id."""
    return report(find_result(args.target, Settings.from_env()))
