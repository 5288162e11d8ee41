"""Dask's report of a connection closed by a normal local-cluster shutdown stays out of the logs."""

import logging

import pytest
from distributed.comm.core import CommClosedError

from csv_pipeline.defs.dask_logging import quiet_normal_shutdown


@pytest.fixture
def batched_records():
    """What the ``distributed.batched`` logger passes on to its handlers, at its usual INFO level."""
    logger = logging.getLogger("distributed.batched")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield logger, records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_normal_close_is_not_logged_but_other_messages_are(batched_records):
    logger, records = batched_records
    quiet_normal_shutdown()
    quiet_normal_shutdown()  # importing the code location twice installs one filter

    try:
        raise CommClosedError("in <closed InProc>: Batched Comm Closed")
    except CommClosedError:
        logger.info("Batched Comm Closed %r", "<InProc (closed)>", exc_info=True)
    logger.info("another message")

    assert [record.getMessage() for record in records] == ["another message"]
    assert len(logger.filters) == 1


def test_it_is_logged_when_the_logger_is_set_to_debug(batched_records):
    logger, records = batched_records
    quiet_normal_shutdown()
    logger.setLevel(logging.DEBUG)

    logger.info("Batched Comm Closed %r", "<InProc (closed)>")

    assert [record.getMessage() for record in records] == ["Batched Comm Closed '<InProc (closed)>'"]
