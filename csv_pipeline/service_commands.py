"""``csv-pipeline submit``, ``status`` and ``result``: the running service, seen from a script.

They touch only the inbox (through fsspec) and Dagster's GraphQL API; the daemon's inbox
sensor starts the runs. A file key is a path relative to the inbox (``2026/11/plays.csv``);
``status`` and ``result`` also take a run id. Exit status: 0 success,
1 failed, 3 not finished yet, 2 usage error (unknown file or run, unreachable service).
"""

import argparse
import contextlib
import csv
import functools
import hashlib
import heapq
import io
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from csv_pipeline.graphql_client import DagsterApiError, DagsterGraphQL, RunResult
from csv_pipeline.inbox import file_key_problem, file_version, is_csv, shown
from csv_pipeline.settings import Settings

EXIT_SUCCESS = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FINISHED = 3

# Status of a file that is in the inbox but has no run for its content yet.
PENDING = "PENDING"
RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
POLL_SECONDS = 1.0
# Files are read in blocks of this size; `result` holds one such buffer per shard, whatever their size.
READ_BLOCK_BYTES = 1 << 20


class UnknownFileOrRunError(Exception):
    """Neither the inbox nor Dagster knows the file key or run id asked about."""


def _service_command(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn an unreachable service or inbox, or an unknown target, into a sentence and exit status 2."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (DagsterApiError, UnknownFileOrRunError, OSError) as error:
            _say(str(error))
            return EXIT_USAGE

    return run


def add_submit_command(subparsers: argparse._SubParsersAction) -> None:
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
        "--timeout", type=float, default=3600.0, metavar="SECONDS", help="give up waiting after this long (default 3600)"
    )
    parser.set_defaults(command=submit)


def add_status_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="the result of a file's latest run, or of a run id, as JSON",
        description="Exit 0 success, 1 failed (the message is printed), 3 not finished.",
    )
    parser.add_argument("target", metavar="FILE_KEY_OR_RUN_ID")
    parser.set_defaults(command=status)


def add_result_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "result",
        help="stream a file's result as one CSV sorted by Song, then Date",
        description=(
            "Merge the sorted output shards of a successful run into one CSV with one header, "
            "reading them as streams. Exit codes as for status."
        ),
    )
    parser.add_argument("target", metavar="FILE_KEY_OR_RUN_ID")
    parser.add_argument("--to", metavar="PATH", help="write here (local path or fsspec URL) instead of stdout")
    parser.set_defaults(command=result)


@_service_command
def submit(args: argparse.Namespace) -> int:
    """Copy the file into the inbox unless it is there already; print (or follow) its run."""
    settings = Settings.from_env()
    file_key = args.key or os.path.basename(args.file)
    problem = _file_key_problem(file_key) or (None if os.path.isfile(args.file) else f"{args.file} is not a file.")
    if problem:
        _say(problem)
        return EXIT_USAGE
    target = f"{settings.inbox}/{file_key}"
    if _same_content(args.file, target):
        _say(f"{target} already holds this content: showing its run instead of starting another.")
        version = file_version(target)
    else:
        version = _copy_into_inbox(args.file, target)
        if not args.wait:
            return _report(RunResult(status=PENDING, run_id=None, file=file_key))
    graphql = DagsterGraphQL(settings.dagster_url)
    deadline = time.monotonic() + (args.timeout if args.wait else 0.0)
    while True:
        run = graphql.latest_run(file_key, version) or RunResult(status=PENDING, run_id=None, file=file_key)
        if run.finished or time.monotonic() >= deadline:
            return _report(run)
        time.sleep(POLL_SECONDS)


@_service_command
def status(args: argparse.Namespace) -> int:
    """Print the result of a file key's run for its current content, or of a run id."""
    return _report(_find_result(args.target, Settings.from_env()))


@_service_command
def result(args: argparse.Namespace) -> int:
    """Stream the merged shards of a successful run; otherwise say why there is nothing yet."""
    run = _find_result(args.target, Settings.from_env())
    if not run.succeeded:
        return _report(run, print_json=False)
    with _output(args.to) as output:
        rows = write_merged_csv(run.output_files, output)
    if args.to:
        _say(f"{run.file}: {rows} rows of run {run.run_id} written to {args.to}.")
    return EXIT_SUCCESS


def write_merged_csv(shard_urls: list[str], output: IO[str]) -> int:
    """Write the rows of the shards, each sorted by Song then Date, as one sorted CSV.

    ``heapq.merge`` holds one row per shard; Python orders strings by code point, which is the
    UTF-8 byte order the shards are sorted in. Every shard starts with the same header, written
    once. Returns the number of rows written.
    """
    writer = csv.writer(output, lineterminator="\n")
    rows = 0
    with contextlib.ExitStack() as stack:
        readers = [csv.reader(stack.enter_context(_open_shard(url))) for url in shard_urls]
        headers = [next(reader) for reader in readers]
        writer.writerows(headers[:1])
        for row in heapq.merge(*readers, key=lambda row: (row[0], row[1])):
            writer.writerow(row)
            rows += 1
    return rows


def _find_result(target: str, settings: Settings) -> RunResult:
    graphql = DagsterGraphQL(settings.dagster_url)
    if RUN_ID.fullmatch(target):
        run = graphql.run(target)
        if run is None:
            raise UnknownFileOrRunError(f"Dagster at {settings.dagster_url} has no run {target}.")
        return run
    version = _inbox_version(f"{settings.inbox}/{target}")
    # While the inbox holds the file, only a run of its current content answers for it.
    run = graphql.latest_run(target, version)
    if run is not None:
        return run
    if version is not None:
        return RunResult(status=PENDING, run_id=None, file=target)
    raise UnknownFileOrRunError(f"{target} is not in the inbox {settings.inbox} and has no run in Dagster.")


def _report(run: RunResult, *, print_json: bool = True) -> int:
    """Print the result JSON and a sentence on stderr; return the exit status for it."""
    if print_json:
        print(run.to_json(), flush=True)
    if run.succeeded:
        return EXIT_SUCCESS
    if run.failed:
        _say(run.error or f"{run.file}: run {run.run_id} ended {run.status}.")
        return EXIT_FAILED
    if run.run_id is None:
        _say(f"{run.file}: not finished: waiting for the inbox sensor to start its run.")
    else:
        _say(f"{run.file}: not finished: run {run.run_id} is {run.status}.")
    return EXIT_NOT_FINISHED


def _file_key_problem(file_key: str) -> str | None:
    if not is_csv(file_key):
        return f"{shown(file_key)}: the inbox sensor only picks up .csv files; choose a --key ending in .csv."
    problem = file_key_problem(file_key)
    return f"{shown(file_key)}: the inbox sensor would skip it: {problem}; choose another --key." if problem else None


def _same_content(local_path: str, target: str) -> bool:
    """Whether ``target`` exists with the bytes of ``local_path`` (same size, same MD5)."""
    fs, path = fsspec.core.url_to_fs(target)
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
        return _md5(remote) == local_md5


def _md5(stream: IO[bytes]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    while chunk := stream.read(READ_BLOCK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()


def _copy_into_inbox(local_path: str, target: str) -> str:
    """Copy the file so that the sensor never sees it half written; return its inbox version."""
    fs, path = fsspec.core.url_to_fs(target)
    folder, name = path.rsplit("/", 1)
    fs.makedirs(folder, exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        partial = f"{folder}/.{name}.partial"  # hidden and not .csv: the sensor skips it
        fs.put_file(local_path, partial)
        fs.mv(partial, path)
    else:
        fs.put_file(local_path, path)  # an object store shows an object only once it is complete
    return file_version(target)


def _inbox_version(url: str) -> str | None:
    try:
        return file_version(url)
    except FileNotFoundError:
        return None


def _open_shard(url: str) -> IO[str]:
    fs, path = fsspec.core.url_to_fs(url)
    return fs.open(path, "rt", block_size=READ_BLOCK_BYTES, encoding="utf-8", newline="")


@contextlib.contextmanager
def _output(to: str | None) -> Iterator[IO[str]]:
    if to:
        with fsspec.open(to, "wt", encoding="utf-8", newline="") as output:
            yield output
        return
    stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    try:
        yield stdout
    finally:
        stdout.flush()
        stdout.detach()  # leaves sys.stdout open


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

