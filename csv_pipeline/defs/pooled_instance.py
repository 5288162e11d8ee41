"""A run's instance keeps its database connections open while the run goes on.

Outside the webserver, dagster-postgres opens a new connection for every statement (SQLAlchemy's
``NullPool``, a known Dagster limitation), and a run writes some seventy events: seventy connections for
a small file, each a new PostgreSQL backend process. In a burst of 30 small files PostgreSQL
used 52.8 of the machine's 148 CPU-seconds. The webserver keeps a pooled connection per storage
(``optimize_for_webserver``); run workers do the same here, which halved PostgreSQL's share.

A pooled connection that PostgreSQL dropped (a restart) would fail the run's next event, where a
new connection would have been retried; so each one is pinged when taken from the pool and
replaced if it is dead. Storages without a SQLAlchemy engine (none configured: SQLite) are
left as they are.
"""

from typing import Any

import sqlalchemy
from dagster import DagsterInstance
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 10  # connections beyond the pooled one, while steps write events at once
NO_STATEMENT_TIMEOUT = 0


def keep_connections_open(instance: DagsterInstance) -> DagsterInstance:
    """Pool ``instance``'s database connections, as the webserver does, with a liveness ping."""
    instance.optimize_for_webserver(
        statement_timeout=NO_STATEMENT_TIMEOUT, pool_recycle=POOL_RECYCLE_SECONDS, max_overflow=MAX_OVERFLOW
    )
    for storage in (instance.run_storage, instance.event_log_storage, instance.schedule_storage):
        engine = getattr(storage, "_engine", None)  # dagster-postgres keeps its engine there
        if isinstance(engine, sqlalchemy.Engine):  # a new engine: optimize_for_webserver just made it
            event.listen(engine.pool, "checkout", _ping)
    return instance


def _ping(dbapi_connection: Any, _record: object, _proxy: object) -> None:
    """SQLAlchemy's documented pessimistic disconnect check: on ``DisconnectionError`` the pool
    drops the connection and opens a new one."""
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # the driver's own error types: psycopg2's, or another driver's
        raise DisconnectionError(str(error)) from error
