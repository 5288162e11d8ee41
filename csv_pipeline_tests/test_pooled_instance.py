"""The production instance keeps one PostgreSQL connection per storage open, and replaces a dead one.

Measured against the machine's PostgreSQL: the backend process serving each statement, as
PostgreSQL itself reports it (``pg_backend_pid()``).
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy
import yaml
from dagster import DagsterInstance
from dagster._serdes import serialize_value

from csv_pipeline.defs.pooled_instance import PooledInstance, close_connections, keep_connections_open, open_instance
from csv_pipeline_tests.service_fixtures import (
    PRODUCTION_INSTANCE_YAML,
    fresh_database,
    postgres_environment,
    wait_until,
)

Connect = Callable[[], AbstractContextManager[sqlalchemy.Connection]]


@pytest.fixture
def production_instance(tmp_path: Path, monkeypatch) -> Iterator[DagsterInstance]:
    """The instance of ``deploy/dagster.yaml``'s storage and instance class, on a fresh database."""
    config = yaml.safe_load(PRODUCTION_INSTANCE_YAML.read_text())
    (tmp_path / "dagster.yaml").write_text(
        yaml.safe_dump({key: config[key] for key in ("storage", "instance_class", "telemetry")})
    )
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with fresh_database() as dsn:
        for name, value in postgres_environment(dsn).items():
            monkeypatch.setenv(name, value)
        with DagsterInstance.get() as instance:
            yield instance


def storage_connections(instance: DagsterInstance) -> dict[str, Connect]:
    return {
        "runs": instance.run_storage.connect,  # type: ignore[attr-defined]  # dagster-postgres's storages
        "events": instance.event_log_storage._connect,  # type: ignore[attr-defined]
        "schedules": instance.schedule_storage.connect,  # type: ignore[union-attr]
    }


def backend_pid(connect: Connect) -> int:
    with connect() as connection:
        return connection.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar_one()


def test_every_process_of_the_service_gets_the_pooled_instance(production_instance):
    # The daemon and the webserver load it from dagster.yaml; code servers and run workers
    # rebuild it from its reference.
    assert isinstance(production_instance, PooledInstance)
    with DagsterInstance.from_ref(production_instance.get_ref()) as rebuilt:
        assert isinstance(rebuilt, PooledInstance)


def test_each_storage_serves_its_statements_on_one_open_connection(production_instance):
    for name, connect in storage_connections(production_instance).items():
        pids = {backend_pid(connect) for _ in range(5)}
        assert len(pids) == 1, f"{name}: a new PostgreSQL session per statement ({len(pids)} backends)"


def test_a_connection_postgresql_dropped_is_replaced_before_it_fails_a_statement(production_instance):
    for name, connect in storage_connections(production_instance).items():
        dead = backend_pid(connect)
        with psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres") as admin:
            with admin.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", (dead,))
        assert backend_pid(connect) != dead, name


def test_pooling_a_pooled_instance_again_keeps_its_connections(production_instance):
    engine = production_instance.run_storage._engine  # type: ignore[attr-defined]
    assert keep_connections_open(production_instance) is production_instance
    assert production_instance.run_storage._engine is engine  # type: ignore[attr-defined]


def catalog_queries(instance: DagsterInstance, work: Callable[[], object]) -> int:
    """How many statements ``work`` sent to PostgreSQL's catalog (schema checks), over every storage."""
    statements: list[str] = []

    def record(_connection, _cursor, statement: str, *_args) -> None:
        if "pg_catalog" in statement:
            statements.append(statement)

    engines = {storage._engine for storage in (instance.run_storage, instance.event_log_storage)}  # type: ignore[attr-defined]
    for engine in engines:
        sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        for engine in engines:
            sqlalchemy.event.remove(engine, "before_cursor_execute", record)
    return len(statements)


def test_schema_checks_ask_the_catalog_once_per_process(production_instance):
    def list_runs_and_partitions() -> None:
        production_instance.get_run_records(limit=5)
        production_instance.has_dynamic_partition("inbox_files", "a.csv")

    first = catalog_queries(production_instance, list_runs_and_partitions)
    assert first > 0  # the columns of the runs table, the partitions table: asked once
    assert catalog_queries(production_instance, lambda: [list_runs_and_partitions() for _ in range(5)]) == 0


def test_a_schema_check_that_said_no_is_asked_again(production_instance):
    storage = production_instance.event_log_storage
    assert not storage.has_table("added_by_a_migration")  # type: ignore[attr-defined]
    with storage._connect() as connection:  # type: ignore[attr-defined]
        connection.execute(sqlalchemy.text("CREATE TABLE added_by_a_migration (id integer)"))
        connection.commit()
    assert storage.has_table("added_by_a_migration")  # type: ignore[attr-defined]
    assert catalog_queries(production_instance, lambda: storage.has_table("added_by_a_migration")) == 0  # type: ignore[attr-defined]


def test_a_process_keeps_one_instance_per_reference_and_can_close_its_connections(production_instance):
    # The fork server opens the run workers' instance once, then closes its connections before it forks.
    reference = serialize_value(production_instance.get_ref())
    instance = open_instance(reference)
    try:
        assert open_instance(reference) is instance
        backends = [backend_pid(connect) for connect in storage_connections(instance).values()]
        close_connections(instance)
        with psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres") as admin:
            with admin.cursor() as cursor:

                def all_ended() -> bool | None:
                    cursor.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (backends,))
                    return True if not cursor.fetchall() else None

                wait_until(all_ended, timeout=10, what="the closed connections' backends to end")
        reopened = [backend_pid(connect) for connect in storage_connections(instance).values()]
        assert not set(reopened) & set(backends)
    finally:
        open_instance.cache_clear()
        instance.dispose()
