"""A file's or a run's result, found through Dagster's GraphQL API and reported as the
commands ``submit``, ``status`` and ``result`` print it.

A file key is a path relative to the inbox (``2026/11/plays.csv``); a run id is Dagster's.
A file may also be named by its path or URL in the inbox (``data/inbox/2026/11/plays.csv``).
"""

import argparse
import functools
import os
import re
import sys
from collections.abc import Callable

from csv_pipeline.cli import exit_codes
from csv_pipeline.cli.graphql_client import DagsterApiError, DagsterGraphQL, RunResult
from csv_pipeline.settings import Settings, absolute_url

# Status of a file that is in the inbox but has no run for its content yet.
PENDING = "PENDING"
RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class UnknownFileOrRunError(Exception):
    """Neither the inbox nor Dagster knows the file key or run id asked about."""


class OutsideInboxError(Exception):
    """A path or URL asked about that does not lie inside the inbox."""


def add_target_argument(parser: argparse.ArgumentParser) -> None:
    """The file or run that ``status`` and ``result`` ask about."""
    parser.add_argument(
        "target",
        metavar="FILE_OR_RUN_ID",
        help="a file key (2026/11/plays.csv), the file's path or URL inside the inbox, or a run id",
    )


def service_command(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn an unreachable service or inbox, or an unknown target, into a sentence and exit status 2.

    A closed standard output is not one of them: ``main.run`` ends quietly on it.
    """

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except BrokenPipeError:
            raise
        except (DagsterApiError, UnknownFileOrRunError, OutsideInboxError, OSError) as error:
            say(str(error))
            return exit_codes.USAGE

    return run


def find_result(target: str, settings: Settings) -> RunResult:
    """The result of a run id, or of a file's run for the content the inbox holds now."""
    graphql = DagsterGraphQL(settings.dagster_url)
    if RUN_ID.fullmatch(target):
        run = graphql.run(target)
        if run is None:
            raise UnknownFileOrRunError(f"Dagster at {settings.dagster_url} has no run {target}.")
        return run
    target = file_key_of(target, settings.inbox)
    version = _inbox_version(f"{settings.inbox}/{target}")
    # While the inbox holds the file, only a run of its current content answers for it.
    run = graphql.latest_run(target, version)
    if run is not None:
        return run
    if version is not None:
        return RunResult(status=PENDING, run_id=None, file=target)
    raise UnknownFileOrRunError(f"{target} is not in the inbox {settings.inbox} and has no run in Dagster.")


def file_key_of(target: str, inbox: str) -> str:
    """The file key ``target`` names: itself, or the key of a path or URL inside ``inbox``.

    A relative ``target`` is a file key unless, taken as a path from the current directory, it
    lies inside the inbox (``data/inbox/plays.csv``), or it has a ``.`` or ``..`` part, which no
    file key has. An absolute path or a URL must lie inside the inbox.
    """
    location = absolute_url(target)
    if location.startswith(f"{inbox}/"):
        return location[len(inbox) + 1 :]
    is_path = "://" in target or os.path.isabs(target) or any(part in (".", "..") for part in target.split("/"))
    if is_path:
        raise OutsideInboxError(
            f"{target} is not inside the inbox {inbox}: name a file by its path in the inbox, its file key or a run id."
        )
    return target


def report(run: RunResult, *, print_json: bool = True) -> int:
    """Print the result JSON and a sentence on stderr; return the exit status for it."""
    if print_json:
        print(run.to_json(), flush=True)
    if run.succeeded:
        return exit_codes.SUCCESS
    if run.failed:
        say(run.error or f"{run.file}: run {run.run_id} ended {run.status}.")
        return exit_codes.FAILED
    if run.run_id is None:
        say(f"{run.file}: not finished: waiting for the inbox sensor to start its run.")
    else:
        say(f"{run.file}: not finished: run {run.run_id} is {run.status}.")
    return exit_codes.NOT_FINISHED


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _inbox_version(url: str) -> str | None:
    from csv_pipeline.inbox import file_version

    try:
        return file_version(url)
    except FileNotFoundError:
        return None
