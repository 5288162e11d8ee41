"""Typed results of a ``distributed.Client``'s calls.

The client's ``gather``, ``run`` and ``nthreads`` are typed to return either the results or, for an
asynchronous client, a coroutine of them. The engine's clients are synchronous, so these
helpers return the results with their types; every engine step calls the cluster through them.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from distributed import Client, Future

T = TypeVar("T")


def gather(client: Client, futures: Sequence[Future[T]]) -> list[T]:
    """The results of ``futures``, in order; the first task's error is raised here."""
    return cast(list[T], client.gather(futures))


def run_on_workers(client: Client, function: Callable[..., Awaitable[T]], *args: Any) -> dict[str, T]:
    """``await function(*args)`` once in every worker process, by worker address."""
    return cast(dict[str, T], client.run(function, *args))


def thread_counts(client: Client) -> dict[str, int]:
    """Each worker's thread count, by worker address."""
    return cast(dict[str, int], client.nthreads())
