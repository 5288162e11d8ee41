"""``csv-pipeline history``: the play totals summed over every processed file, as CSV.

Reads the history table at ``CSV_PIPELINE_HISTORY`` (default ``<outbox>/_history``). The table
libraries (deltalake, pyarrow, DuckDB) are imported only when the command runs. Exit 0, or 2
on a bad argument.
"""

import argparse
import datetime
import re
import sys
from typing import cast

from csv_pipeline.cli import exit_codes


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history",
        help="print Song,Date,Total Number of Plays for Date summed over all processed files",
        description=(
            "Print the plays per (Song, Date) summed over every file processed so far, sorted by "
            "Song then Date, from the play history table (CSV_PIPELINE_HISTORY, default "
            "<outbox>/_history). Exit 0, or 2 on a bad argument."
        ),
    )
    parser.add_argument("--song", metavar="S", help="only this song (exact match)")
    parser.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", type=_date, help="only dates on or after")
    parser.add_argument("--until", dest="date_until", metavar="YYYY-MM-DD", type=_date, help="only dates on or before")
    parser.add_argument("--to", metavar="PATH", help="write the CSV here (path or fsspec URL) instead of stdout")
    parser.set_defaults(command=history)


def _date(text: str) -> datetime.date:
    """A calendar date written exactly as YYYY-MM-DD (as in the files), else a usage error."""
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return datetime.date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a date as YYYY-MM-DD")


def history(args: argparse.Namespace) -> int:
    import fsspec

    from csv_pipeline.engine import history as table
    from csv_pipeline.settings import Settings

    url = Settings.from_env().history_url
    query = {"song": args.song, "date_from": args.date_from, "date_until": args.date_until}
    if args.to is None:
        table.write_totals(url, sys.stdout.buffer, **query)
        sys.stdout.buffer.flush()
    else:
        with cast(fsspec.core.OpenFile, fsspec.open(args.to, "wb")) as out:  # typed as one file or a list
            table.write_totals(url, out, **query)
    return exit_codes.SUCCESS
