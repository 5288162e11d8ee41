"""``DaskClient``: the Dask client an op hands the engine's work to.

Under the job's Dask executor an op runs inside a Dask worker, and the client is
``worker_client()``: it secedes from the worker's thread pool, so single-threaded workers cannot
deadlock while the op waits for its tasks. Anywhere else (``dagster.materialize()`` in a test,
an in-process executor) the op runs in the calling process, and the client connects to
``scheduler_address``: a test points it at its own in-process ``LocalCluster``.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import ConfigurableResource
from distributed import Client, get_worker, worker_client


class DaskClient(ConfigurableResource):
    """Inside a Dask worker, that worker's cluster; elsewhere, the scheduler at ``scheduler_address``."""

    scheduler_address: str = ""

    @contextmanager
    def client(self) -> Iterator[Client]:
        if _in_a_dask_worker():
            with worker_client() as client:
                yield client
            return
        if not self.scheduler_address:
            raise RuntimeError(
                "This op runs outside a Dask worker and the dask resource has no scheduler_address: "
                "run the job on its Dask executor, or give the resource the address of a cluster."
            )
        with Client(self.scheduler_address) as client:
            yield client


def _in_a_dask_worker() -> bool:
    try:
        get_worker()
    except ValueError:
        return False
    return True
