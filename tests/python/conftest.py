"""The pytest harness: a real PostgreSQL cluster, a template database with the
schema installed once per run, and a fresh database cloned from it per test.

The cluster is the one named by EVENTSTORE_TEST_DSN (make test starts one with
scripts/pgcluster.py), or a throwaway cluster started here when it is unset.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pg_eventstore import schema
from pg_eventstore.async_store import AsyncEventStore
from pg_eventstore.store import EventStore

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import pgcluster  # noqa: E402

TEMPLATE = "eventstore_template"


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """A DSN of the cluster's maintenance database, as a superuser."""
    dsn = os.environ.get("EVENTSTORE_TEST_DSN")
    if dsn:
        yield dsn
        return
    with pgcluster.throwaway_cluster() as cluster:
        yield cluster.dsn


@pytest.fixture(scope="session")
def template_database(server_dsn: str) -> str:
    """A database with the schema installed through the package, cloned by every test."""
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    with psycopg.connect(make_conninfo(server_dsn, dbname=TEMPLATE)) as conn:
        schema.install(conn)
    return TEMPLATE


@contextmanager
def cloned_database(server_dsn: str, template: str) -> Iterator[str]:
    """The DSN of a new database made from template, dropped on the way out."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    try:
        yield make_conninfo(server_dsn, dbname=name)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def dsn(server_dsn: str, template_database: str) -> Iterator[str]:
    """A fresh database with the schema installed, dropped after the test."""
    with cloned_database(server_dsn, template_database) as database:
        yield database


@pytest.fixture(scope="module")
def module_dsn(server_dsn: str, template_database: str) -> Iterator[str]:
    """Like dsn, shared by the tests of one module (e.g. hypothesis tests, which run many examples)."""
    with cloned_database(server_dsn, template_database) as database:
        yield database


@pytest.fixture
def empty_dsn(server_dsn: str) -> Iterator[str]:
    """A fresh database without the schema."""
    with cloned_database(server_dsn, "template1") as database:
        yield database


@pytest.fixture
def orders_dsn(dsn: str) -> str:
    """`dsn` with the example Order domain (examples/orders/orders.sql) installed."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute((ROOT / "examples" / "orders" / "orders.sql").read_text().encode())
    return dsn


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def pool(dsn: str) -> Iterator[ConnectionPool[Any]]:
    with ConnectionPool(dsn, min_size=1, max_size=20, open=True) as connection_pool:
        yield connection_pool


@pytest.fixture
def store(pool: ConnectionPool[Any]) -> EventStore:
    return EventStore(pool)


# The async twins of conn, pool and store: the *_async.py tests use them, and the sync tests
# generated from those (tools/async_to_sync.py maps aconn, apool, astore to conn, pool, store).
@pytest.fixture
async def aconn(dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
async def apool(dsn: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with AsyncConnectionPool(dsn, min_size=1, max_size=20, open=False) as connection_pool:
        yield connection_pool


@pytest.fixture
def astore(apool: AsyncConnectionPool[Any]) -> AsyncEventStore:
    return AsyncEventStore(apool)


_REPORT: list[str] = []


@pytest.fixture
def report() -> Any:
    """Figures a test reports; printed in pytest's closing summary."""
    return _REPORT.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORT:
        terminalreporter.section("pg_eventstore figures")
        for line in _REPORT:
            terminalreporter.write_line(line)
