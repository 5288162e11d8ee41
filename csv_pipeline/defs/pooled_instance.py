"""Instances that keep their database connections open, in every process of the service.

Outside the webserver, dagster-postgres opens a new connection for every statement (SQLAlchemy's
``NullPool``, a known Dagster limitation): each one a new PostgreSQL backend process, forked,
authenticated and warmed up, then thrown away. The daemon's loops (run queue, sensors, run
monitoring, retries) open about fifteen a second when idle; a run writes some seventy events. In
a burst of 30 small files that was 3,151 sessions and 44 of the machine's 128 CPU-seconds.

``PooledInstance`` is the ``instance_class`` of ``deploy/dagster.yaml``: the daemon, the code
servers and the run workers (which rebuild the instance from its reference, class included) each
keep a pooled connection per storage, as the webserver does (``optimize_for_webserver``). Run
workers also pool an instance of the plain class (another ``dagster.yaml``), as
``keep_connections_open``.

A pooled connection that PostgreSQL dropped (a restart) would fail the next statement, where a
new connection would have been retried; so each one is pinged when taken from the pool and
replaced if it is dead. Storages without a SQLAlchemy engine (none configured: SQLite) are
left as they are.

The storages also remember what they learnt of the schema. Dagster's SQL storages ask
PostgreSQL's catalog whether a migration's table or column exists on every call that depends
on it: every run status event and every run listing asks whether the runs table has its start
and end columns, every partition lookup whether the partitions table exists, about 4 ms of
catalog query each. dagster-postgres already remembers two such answers (built indexes,
secondary indexes); the others are remembered here once they are yes: a migration adds tables
and columns, it never takes them away, and a no is asked again.

``open_instance`` keeps one instance per process for a reference: a run worker's run and its
steps share it, and the fork server opens it before its first fork so that run workers inherit
it opened (``close_connections`` first: a child must not share its parent's connections).
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef
from dagster._serdes import deserialize_value
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 10  # connections beyond the pooled one, while threads write at once
NO_STATEMENT_TIMEOUT = 0
# Each storage's schema checks that query the catalog on every call (Dagster 1.13).
SCHEMA_CHECKS = {
    "run_storage": ("has_run_stats_index_cols", "has_bulk_actions_selector_cols", "has_backfill_id_column"),
    "event_log_storage": ("has_table", "has_asset_key_col"),
    "schedule_storage": ("has_instigators_table", "has_secondary_index_table"),
}


class PooledInstance(DagsterInstance):
    """A ``DagsterInstance`` whose storages keep their connections open (``keep_connections_open``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _pool(self)

    @classmethod
    def config_schema(cls) -> dict:
        """No settings of its own: ``instance_class`` needs the method."""
        return {}

    @classmethod
    def config_defaults(cls, base_dir: str) -> Mapping[str, Any]:
        """Dagster's own defaults for everything ``dagster.yaml`` leaves out."""
        return InstanceRef.config_defaults(base_dir)


def keep_connections_open(instance: DagsterInstance) -> DagsterInstance:
    """Pool ``instance``'s database connections, unless it is a ``PooledInstance`` already."""
    if not isinstance(instance, PooledInstance):
        _pool(instance)
    return instance


@functools.cache
def open_instance(instance_ref: str) -> DagsterInstance:
    """The instance behind a serialized reference, opened once per process and kept open, its
    connections pooled. Opening one costs its storages' table checks, about 0.1 s of CPU and a
    PostgreSQL session each; a run worker opened two (the run's and its steps'), and a worker of
    an existing cluster serves many runs' steps.

    Dagster calls ``logging.config.dictConfig`` for every step it starts on an instance with
    settings, even when they configure no Python log handlers. That closes every handler of the
    process while holding ``logging``'s module lock, and deadlocks with another step of the run
    logging an event in another worker thread at that moment (the checks and ``play_history``
    run at once). With no handlers configured there is nothing to set up, so it is skipped.
    """
    instance = keep_connections_open(DagsterInstance.from_ref(deserialize_value(instance_ref, InstanceRef)))
    if not instance.get_python_log_dagster_handler_config():
        instance.get_yaml_python_handlers = list  # type: ignore[method-assign]  # no handlers: []
    return instance


def close_connections(instance: DagsterInstance) -> None:
    """Close the instance's pooled connections; its pools open new ones when next asked."""
    for _, _, engine in _engines(instance):
        engine.dispose()


def _engines(instance: DagsterInstance) -> list[tuple[str, Any, sqlalchemy.Engine]]:
    """The instance's storages that have a SQLAlchemy engine, by attribute, with it:
    dagster-postgres keeps it as ``_engine``; SQLite storages (none configured) have none."""
    storages = ((attribute, getattr(instance, attribute)) for attribute in SCHEMA_CHECKS)
    return [
        (attribute, storage, engine)
        for attribute, storage in storages
        if isinstance(engine := getattr(storage, "_engine", None), sqlalchemy.Engine)
    ]


def _pool(instance: DagsterInstance) -> None:
    """Pool the connections as the webserver does, with a liveness ping, and remember the schema."""
    instance.optimize_for_webserver(
        statement_timeout=NO_STATEMENT_TIMEOUT, pool_recycle=POOL_RECYCLE_SECONDS, max_overflow=MAX_OVERFLOW
    )
    for attribute, storage, engine in _engines(instance):
        event.listen(engine.pool, "checkout", _ping)  # a new engine: optimize_for_webserver just made it
        for name in SCHEMA_CHECKS[attribute]:
            setattr(storage, name, _remembering_yes(getattr(storage, name)))


def _remembering_yes(check: Callable[..., bool]) -> Callable[..., bool]:
    """``check``, asked again only for the arguments it has not said yes to yet."""
    said_yes: set[tuple] = set()

    @functools.wraps(check)
    def remembered(*args: object) -> bool:
        if args in said_yes:
            return True
        if check(*args):
            said_yes.add(args)
            return True
        return False

    return remembered


def _ping(dbapi_connection: Any, _record: object, _proxy: object) -> None:
    """SQLAlchemy's documented pessimistic disconnect check: on ``DisconnectionError`` the pool
    drops the connection and opens a new one."""
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # the driver's own error types: psycopg2's, or another driver's
        raise DisconnectionError(str(error)) from error
