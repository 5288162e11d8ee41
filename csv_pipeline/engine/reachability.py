"""Do all Dask workers see the run's files? Asked of every worker before the first task.

On an existing cluster the workers may run on other machines. An ``s3://`` URL reads the same
everywhere, but a local path only does on a filesystem mounted at the same path on every
machine. Without this check a path that only the caller sees fails deep inside a map task with
a bare ``FileNotFoundError``, or worse, a per-machine scratch directory loses the blocks that the
reduce tasks need. Here every worker (``Client.run``, which reaches each worker even when its
threads are busy) confirms that it sees the input file with the size the caller saw, and that
it reads a token the caller wrote into each shared directory and can write there itself.
"""

import asyncio
import uuid
from collections.abc import Mapping, Sequence

from distributed import Client

from csv_pipeline.engine import storage
from csv_pipeline.engine.cluster import run_on_workers

SHARED_FILESYSTEM_ADVICE = (
    "every worker must see the run's files at the same URL: on a cluster of several machines use "
    "s3:// URLs, or mount one shared filesystem at the same path on every machine"
)


class UnreachablePathError(Exception):
    """Some Dask workers do not reach a path of the run as the client does.

    ``problems`` maps ``(url, problem)`` to the addresses of the workers that have it.
    """

    def __init__(self, problems: Mapping[tuple[str, str], Sequence[str]]) -> None:
        self.problems = {key: tuple(workers) for key, workers in problems.items()}
        clauses = [
            f"{url} {problem} on Dask worker{'s' if len(workers) > 1 else ''} {', '.join(workers)}"
            for (url, problem), workers in self.problems.items()
        ]
        self.message = f"{'; '.join(clauses)}: {SHARED_FILESYSTEM_ADVICE}."
        super().__init__(self.message)


def check_workers_reach(
    client: Client,
    *,
    reads: Mapping[str, int] | None = None,
    writes: Sequence[str] = (),
    storage_options: dict | None = None,
) -> None:
    """Raise ``UnreachablePathError`` unless every worker of ``client``'s cluster reaches the paths.

    ``reads`` maps each input URL to its size as this process sees it; a worker must find a file
    of that size there. Each of ``writes`` is a directory this process and the workers share: a
    worker must read the token this process writes there and write one of its own. The tokens
    are removed again; the directories stay.

    This process's own token write is also the run's first write to each directory, so a full
    or read-only directory fails here, in one sentence, before any task. Workers in this very
    process (an in-process ``LocalCluster``, whose workers have ``inproc://`` addresses) see what
    it sees, so they are not asked: on S3 that saves a small file's run some twenty requests.
    """
    tokens = {directory: storage.join(directory, f".reachability-{uuid.uuid4().hex}") for directory in writes}
    for token in tokens.values():
        storage.write_bytes(token, [b"written by the Dask client"], storage_options)
    try:
        if all(address.startswith("inproc://") for address in client.scheduler_info()["workers"]):
            return
        problems_by_worker = run_on_workers(client, _probe, dict(reads or {}), tokens, storage_options or {})
    finally:
        for token in tokens.values():
            fs, path = storage.filesystem(token, storage_options)
            fs.rm_file(path)  # one file: a DELETE, not remove_tree's listing
    workers_by_problem: dict[tuple[str, str], list[str]] = {}
    for worker, problems in sorted(problems_by_worker.items()):
        for url_and_problem in problems:
            workers_by_problem.setdefault(url_and_problem, []).append(worker)
    if workers_by_problem:
        raise UnreachablePathError(workers_by_problem)


async def _probe(reads: dict[str, int], tokens: dict[str, str], storage_options: dict) -> list[tuple[str, str]]:
    """Run on each worker, off its event loop so that slow storage does not stall its heartbeats."""
    return await asyncio.to_thread(_problems_here, reads, tokens, storage_options)


def _problems_here(reads: dict[str, int], tokens: dict[str, str], storage_options: dict) -> list[tuple[str, str]]:
    """``(url, problem)`` for each path this worker does not reach as the client does."""
    problems = []
    for url, size in reads.items():
        fs, path = storage.filesystem(url, storage_options)
        try:
            found = fs.size(path)
        except FileNotFoundError:
            problems.append((url, "does not exist"))
        except OSError as error:
            problems.append((url, f"cannot be read ({_reason(error)})"))
        else:
            if found != size:
                problems.append((url, f"is a different file ({found} bytes, not {size})"))
    for directory, token in tokens.items():
        fs, path = storage.filesystem(token, storage_options)
        try:
            fs.cat_file(path)
        except FileNotFoundError:
            problems.append(
                (directory, "is not shared with the Dask client (a file the client wrote there is missing)")
            )
            continue
        except OSError as error:
            problems.append((directory, f"cannot be read ({_reason(error)})"))
            continue
        own_path = f"{path}-{uuid.uuid4().hex}"
        try:
            fs.pipe_file(own_path, b"written by a Dask worker")
            fs.rm_file(own_path)
        except OSError as error:
            problems.append((directory, f"is not writable ({_reason(error)})"))
    return problems


def _reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__
