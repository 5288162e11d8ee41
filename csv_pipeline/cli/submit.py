"""``csv-pipeline submit``: copy a file into the inbox, where the daemon's inbox sensor starts its run.

The copy is never seen half written, and a file the inbox already holds with the same
content is not copied again: its run is shown instead. Exit status: 0 succeeded, 1 failed,
3 still running (which a new file is, without ``--wait``), 2 usage error or unreachable service.
"""

import argparse
import hashlib
import os
import re
import time
from typing import IO, cast

from csv_pipeline.cli import exit_codes
from csv_pipeline.cli.graphql_client import DagsterGraphQL, RunResult
from csv_pipeline.cli.run_results import PENDING, report, say, service_command
from csv_pipeline.settings import Settings

POLL_SECONDS = 1.0
READ_BLOCK_BYTES = 1 << 20  # of a file whose MD5 is computed


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="copy a file into the inbox, where the sensor starts its run",
        description=(
            "Copy FILE into the inbox under its name (or --key); the inbox sensor starts its run. If the "
            "inbox already holds that key with the same content, nothing is copied and the earlier run "
            "is shown instead. Prints the result JSON. Exit 0 succeeded, 1 failed, 3 still running "
            "(which a new file is, without --wait)."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="local CSV file to submit")
    parser.add_argument("--key", help="file key in the inbox, e.g. 2026/11/plays.csv (default: FILE's name)")
    parser.add_argument("--wait", action="store_true", help="follow the run until it ends and print its result")
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="give up waiting after this long (default 3600)",
    )
    parser.set_defaults(command=submit)


@service_command
def submit(args: argparse.Namespace) -> int:
    """Copy the file into the inbox unless it is there already; print (or follow) its run."""
    from csv_pipeline.inbox import file_version

    settings = Settings.from_env()
    file_key = args.key or os.path.basename(args.file)
    problem = _file_key_problem(file_key) or (None if os.path.isfile(args.file) else f"{args.file} is not a file.")
    if problem:
        say(problem)
        return exit_codes.USAGE
    target = f"{settings.inbox}/{file_key}"
    if _same_content(args.file, target):
        say(f"{target} already holds this content: showing its run instead of starting another.")
        version = file_version(target)
    else:
        version = _copy_into_inbox(args.file, target)
        if not args.wait:
            return report(RunResult(status=PENDING, run_id=None, file=file_key))
    graphql = DagsterGraphQL(settings.dagster_url)
    deadline = time.monotonic() + (args.timeout if args.wait else 0.0)
    while True:
        run = graphql.latest_run(file_key, version) or RunResult(status=PENDING, run_id=None, file=file_key)
        if run.finished or time.monotonic() >= deadline:
            return report(run)
        time.sleep(POLL_SECONDS)


def _file_key_problem(file_key: str) -> str | None:
    from csv_pipeline.inbox import file_key_problem, is_csv, shown

    if not is_csv(file_key):
        return f"{shown(file_key)}: the inbox sensor only picks up .csv files; choose a --key ending in .csv."
    problem = file_key_problem(file_key)
    return f"{shown(file_key)}: the inbox sensor would skip it: {problem}; choose another --key." if problem else None


def _same_content(local_path: str, target: str) -> bool:
    """Whether ``target`` exists with the bytes of ``local_path`` (same size, same MD5)."""
    from csv_pipeline.engine.storage import filesystem

    fs, path = filesystem(target)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return False
    if info["size"] != os.path.getsize(local_path):
        return False
    with open(local_path, "rb") as local:
        local_md5 = _md5(local)
    etag = str(info.get("ETag", "")).strip('"')
    if re.fullmatch(r"[0-9a-f]{32}", etag):
        # The ETag of an object uploaded in one part (without KMS) is the MD5 of its bytes.
        return etag == local_md5
    with fs.open(path, "rb") as remote:
        return _md5(cast(IO[bytes], remote)) == local_md5


def _md5(stream: IO[bytes]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    while chunk := stream.read(READ_BLOCK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()


def _copy_into_inbox(local_path: str, target: str) -> str:
    """Copy the file so that the sensor never sees it half written; return its inbox version."""
    from fsspec.implementations.local import LocalFileSystem

    from csv_pipeline.engine.storage import filesystem
    from csv_pipeline.inbox import file_version

    fs, path = filesystem(target)
    folder, name = path.rsplit("/", 1)
    fs.makedirs(folder, exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        partial = f"{folder}/.{name}.partial"  # hidden and not .csv: the sensor skips it
        fs.put_file(local_path, partial)
        fs.mv(partial, path)
    else:
        fs.put_file(local_path, path)  # an object store shows an object only once it is complete
    return file_version(target)
