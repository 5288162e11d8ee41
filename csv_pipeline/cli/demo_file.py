"""``csv-pipeline demo-file``: the replaced system's demo-data command. Exit 0, or 2 on a bad argument."""

import argparse
import sys

from csv_pipeline.cli import exit_codes


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo-file",
        help="write a realistic random play-count CSV",
        description=(
            "Write a random CSV of Song,Date,Number of Plays: by default 4-letter songs, dates from "
            "1994-08-08 to today and 1..100000 plays, as the replaced system's demo data."
        ),
    )
    parser.add_argument("--total-size", required=True, type=_size, help="e.g. 100MB, 1GB, 1.5GiB")
    parser.add_argument("--file-name", required=True, help="local path or fsspec URL (s3://...)")
    parser.add_argument("--songs", type=_positive, help="distinct songs (low-cardinality files)")
    parser.add_argument("--days", type=_positive, help="distinct days (low-cardinality files)")
    parser.add_argument("--seed", type=int, help="same seed, same file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(command=_demo_file)


def _demo_file(args: argparse.Namespace) -> int:
    from csv_pipeline.demo_data import write_demo_file

    try:
        write_demo_file(
            args.file_name,
            args.total_size,
            songs=args.songs,
            days=args.days,
            seed=args.seed,
            progress=not args.no_progress,
        )
    except ValueError as error:
        print(f"csv-pipeline demo-file: {error}", file=sys.stderr)
        return exit_codes.USAGE
    return exit_codes.SUCCESS


def _size(text: str) -> int:
    from csv_pipeline.demo_data import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)
