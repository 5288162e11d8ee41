"""Quiet Dask's report of its own connections closing when a local cluster shuts down.

When a run's in-process ``LocalCluster`` closes, a worker's batched stream sometimes still has
a message to send (in 6-15 % of runs) and ``distributed.batched`` logs ``Batched Comm Closed``
at INFO *with the CommClosedError traceback*: a successful run's log then shows a stack trace
that means nothing went wrong. The record is kept only when that logger is set to DEBUG.
"""

import logging

_LOGGER = "distributed.batched"


class _NormalCloseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        closing = record.getMessage().startswith("Batched Comm Closed")
        return not closing or logging.getLogger(_LOGGER).isEnabledFor(logging.DEBUG)


def quiet_normal_shutdown() -> None:
    """Install the filter once (importing the code location calls this in every process)."""
    logger = logging.getLogger(_LOGGER)
    if not any(isinstance(f, _NormalCloseFilter) for f in logger.filters):
        logger.addFilter(_NormalCloseFilter())
