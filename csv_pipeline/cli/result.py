"""``csv-pipeline result``: a successful run's shards merged into one CSV sorted by Song, then Date.

Exit status as for ``status``. A reader that stops early (``| head -1``) ends the command
quietly with 0 (see ``main.run``).
"""

import argparse
import io
import sys
from typing import cast

from csv_pipeline.cli import exit_codes
from csv_pipeline.cli.run_results import add_target_argument, find_result, report, say, service_command
from csv_pipeline.settings import Settings


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "result",
        help="stream a file's result as one CSV sorted by Song, then Date",
        description=(
            "Merge the sorted output shards of a successful run into one CSV with one header, "
            "reading them as streams. Exit codes as for status."
        ),
    )
    add_target_argument(parser)
    parser.add_argument("--to", metavar="PATH", help="write here (local path or fsspec URL) instead of stdout")
    parser.set_defaults(command=result)


@service_command
def result(args: argparse.Namespace) -> int:
    """Stream the merged shards of a successful run; otherwise say why there is nothing yet."""
    import fsspec

    from csv_pipeline.engine.merge import write_merged_csv

    run = find_result(args.target, Settings.from_env())
    if not run.succeeded:
        return report(run, print_json=False)
    if not args.to:
        # The shards are UTF-8 with their own line ends, whatever the terminal's locale.
        cast(io.TextIOWrapper, sys.stdout).reconfigure(encoding="utf-8", newline="")  # typed as a TextIO
        write_merged_csv(run.output_files, sys.stdout)
        return exit_codes.SUCCESS
    with cast(fsspec.core.OpenFile, fsspec.open(args.to, "wt", encoding="utf-8", newline="")) as output:
        rows = write_merged_csv(run.output_files, output)
    say(f"{run.file}: {rows} rows of run {run.run_id} written to {args.to}.")
    return exit_codes.SUCCESS
