"""Peers (group `peers`): W1-W3 on Message DB and on Python's eventsourcing, next to pg_eventstore and the bare
ceiling, alternating in the same run, each column's ratio to the same ceiling.

Both peers come from their registries at bench time (`make bench`, nothing of theirs is in this repository):
Message DB (npm @eventide/message-db) is installed by its own database/install.sh into a database of the
bench's cluster; eventsourcing (PyPI) is imported from the venv. Two levels, because the peers' public
interfaces differ (bench/README.md, "Peers"):

- SQL (pgbench): the bare INSERT, append_events(), Message DB's write_message();
- Python (threads over a pool, the client's CPU included): a plain psycopg INSERT, EventStore.append,
  write_message() through psycopg, eventsourcing's PostgresApplicationRecorder.insert_events().
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from bench.config import CORE_DB, EVENTSOURCING_DB, MESSAGE_DB_DB
from bench.harness import Harness
from bench.measure import PeerResult, log
from bench.sections.python_client import PythonClientWorkloads, threaded
from bench.workloads import (
    CEILING,
    CEILING_COLUMNS,
    EVENTSOURCING,
    MESSAGE_DB,
    OURS,
    PEERS,
    PLACED_PAYLOAD,
    PeerWorkload,
)

# A call's setup per thread: returns the call the thread repeats.
Setup = Callable[[], Callable[[], None]]


def install_message_db(harness: Harness) -> None:
    """Message DB's own installer, as its README says, against the bench's cluster as postgres.

    It creates the role `message_store`, the database and, in it, the schema `message_store` with the
    table, indexes, functions and grants. Its functions name their objects without a schema, so the
    schema goes on the database's search_path.
    """
    folder = harness.config.message_db
    assert folder is not None  # Config refuses the peers group without it
    cluster = harness.cluster
    env = {
        **os.environ,
        "PATH": f"{cluster.bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(cluster.port),
        "PGUSER": "postgres",
        "DATABASE_NAME": MESSAGE_DB_DB,
    }
    done = subprocess.run(
        ["bash", str(folder / "database" / "install.sh")], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"Message DB's install.sh failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    harness.execute(
        "postgres",
        sql.SQL("ALTER DATABASE {} SET search_path = message_store, public").format(sql.Identifier(MESSAGE_DB_DB)),
    )
    installed = harness.scalar(MESSAGE_DB_DB, "SELECT message_store.message_store_version()")
    package = json.loads((folder / "package.json").read_text())["version"]
    harness.peer_versions[MESSAGE_DB] = f"npm @eventide/message-db {package} (message_store_version() {installed})"


# --- the Python level ---------------------------------------------------------------------------------------


class MessageDbCalls:
    """write_message() through psycopg over a pool, as a Python client of Message DB would call it."""

    WRITE = "SELECT message_store.write_message(%s, %s, %s, %s, %s, %s)"

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def _write(self, stream: str, message_type: str, expected: list[int]) -> int:
        """One message per expected version, in one transaction; returns the stream's last position."""
        rows = [(str(uuid.uuid4()), stream, message_type, Jsonb(PLACED_PAYLOAD), Jsonb({}), e) for e in expected]
        with self.pool.connection() as conn, conn.cursor() as cur:
            if len(rows) == 1:
                position = cur.execute(self.WRITE, rows[0]).fetchone()
                return int(position[0]) if position else -1
            cur.executemany(self.WRITE, rows)
        return expected[-1] + 1

    def new(self) -> Callable[[], None]:
        def call() -> None:
            self._write(f"order-{uuid.uuid4()}", "OrderPlaced", [-1])

        return call

    def next(self) -> Callable[[], None]:
        stream = f"order-{uuid.uuid4()}"
        position = self._write(stream, "OrderPlaced", [-1])

        def call() -> None:
            nonlocal position
            position = self._write(stream, "OrderShipped", [position])

        return call

    def ten(self) -> Callable[[], None]:
        def call() -> None:
            self._write(f"order-{uuid.uuid4()}", "OrderPlaced", list(range(-1, 9)))

        return call


class EventsourcingCalls:
    """eventsourcing's PostgresApplicationRecorder.insert_events(), the call its applications end in.

    The payload is encoded per call, as its mapper would transcode the event (the other columns turn the
    same dict into their stored form per call too); versions start at 1, as its aggregates' do.
    """

    TOPIC = "orders.domain:Order.Placed"

    def __init__(self, recorder: Any) -> None:
        from eventsourcing.persistence import StoredEvent  # type: ignore[import-not-found, unused-ignore]

        self.recorder = recorder
        self.stored_event = StoredEvent

    def _insert(self, originator: uuid.UUID, first: int, count: int) -> int:
        state = json.dumps(PLACED_PAYLOAD, separators=(",", ":")).encode()
        events = [self.stored_event(originator, first + i, self.TOPIC, state) for i in range(count)]
        self.recorder.insert_events(events)
        return first + count - 1

    def new(self) -> Callable[[], None]:
        def call() -> None:
            self._insert(uuid.uuid4(), 1, 1)

        return call

    def next(self) -> Callable[[], None]:
        originator = uuid.uuid4()
        last = self._insert(originator, 1, 1)

        def call() -> None:
            nonlocal last
            last = self._insert(originator, last + 1, 1)

        return call

    def ten(self) -> Callable[[], None]:
        def call() -> None:
            self._insert(uuid.uuid4(), 1, 10)

        return call


class TenEvents:
    """W3 for the Python level's own columns: 10 events to a new aggregate per call."""

    INSERT_TEN = (
        f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS}) SELECT gen_random_uuid(), 'Order', %s, 'OrderPlaced',"
        " v, %s, '{}', clock_timestamp(), pg_current_xact_id()::text::bigint FROM generate_series(0, 9) AS v"
        " RETURNING *"
    )

    def __init__(self, client: PythonClientWorkloads) -> None:
        self.client = client

    def append(self) -> Callable[[], None]:
        events = [self.client.placed] * 10

        def call() -> None:
            self.client.store.append("Order", uuid.uuid4(), events, expected_version=-1)

        return call

    def insert(self) -> Callable[[], None]:
        def call() -> None:
            with self.client.pool.connection() as conn:
                conn.execute(self.INSERT_TEN, (uuid.uuid4(), Jsonb(PLACED_PAYLOAD))).fetchall()

        return call


@dataclass
class PythonColumns:
    """Every column's setup per shape, over pools of `threads` connections."""

    client: PythonClientWorkloads
    message_db: MessageDbCalls
    eventsourcing: EventsourcingCalls

    def setups(self, shape: str) -> dict[str, Setup]:
        ten = TenEvents(self.client)
        return {
            "new": {
                CEILING: self.client.insert_new,
                OURS: self.client.append_new,
                MESSAGE_DB: self.message_db.new,
                EVENTSOURCING: self.eventsourcing.new,
            },
            "next": {
                CEILING: self.client.insert_next,
                OURS: self.client.append_next,
                MESSAGE_DB: self.message_db.next,
                EVENTSOURCING: self.eventsourcing.next,
            },
            "ten": {
                CEILING: ten.insert,
                OURS: ten.append,
                MESSAGE_DB: self.message_db.ten,
                EVENTSOURCING: self.eventsourcing.ten,
            },
        }[shape]


@contextmanager
def python_columns(harness: Harness, threads: int) -> Iterator[PythonColumns]:
    """The pools: ours and the ceiling's in the core database, Message DB's as `message_store` in its database,
    eventsourcing's own datastore (a psycopg pool of its making) in its database, each of `threads` connections."""
    from eventsourcing.postgres import (  # type: ignore[import-not-found, unused-ignore]
        PostgresApplicationRecorder,
        PostgresDatastore,
    )

    with ExitStack() as stack:
        ours = stack.enter_context(ConnectionPool(harness.dsn(CORE_DB), min_size=threads, max_size=threads, open=True))
        message_db_dsn = f"host=127.0.0.1 port={harness.cluster.port} user=message_store dbname={MESSAGE_DB_DB}"
        message_db = stack.enter_context(ConnectionPool(message_db_dsn, min_size=threads, max_size=threads, open=True))
        datastore = PostgresDatastore(
            EVENTSOURCING_DB, "127.0.0.1", harness.cluster.port, "postgres", "", pool_size=threads
        )
        stack.callback(datastore.close)
        recorder = PostgresApplicationRecorder(datastore)
        recorder.create_table()
        for pool in (ours, message_db):
            pool.wait()
        yield PythonColumns(PythonClientWorkloads(ours), MessageDbCalls(message_db), EventsourcingCalls(recorder))


def events_per_second(workload: PeerWorkload, seconds: int, setup: Setup, cpu: list[float]) -> float:
    return workload.events * threaded(seconds, workload.clients, setup, cpu)


# --- the section --------------------------------------------------------------------------------------------


def run(harness: Harness) -> None:
    log("peers: installing Message DB with its install.sh")
    install_message_db(harness)
    harness.execute("postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EVENTSOURCING_DB)))
    recorder = "eventsourcing.postgres.PostgresApplicationRecorder"
    harness.peer_versions[EVENTSOURCING] = f"PyPI eventsourcing {version('eventsourcing')} ({recorder})"
    seconds = harness.config.seconds

    for workload in PEERS:
        label = f"peers SQL: {workload.label}"
        log(label)
        measures = {
            name: partial(harness.run_script, side.script, side.db, workload.clients, seconds)
            for name, side in workload.sql.items()
        }
        harness.add_peer(PeerResult(workload.label, "SQL (pgbench)", harness.compare_many(label, measures)))

    for threads in sorted({workload.clients for workload in PEERS}):
        with python_columns(harness, threads) as columns:
            for workload in (w for w in PEERS if w.clients == threads):
                label = f"peers Python: {workload.label}"
                log(label)
                cpu: dict[str, list[float]] = {}
                measures = {
                    name: partial(events_per_second, workload, seconds, setup, cpu.setdefault(name, []))
                    for name, setup in columns.setups(workload.shape).items()
                }
                harness.add_peer(PeerResult(workload.label, "Python (threads)", harness.compare_many(label, measures)))
                per_call = ", ".join(f"{name} {statistics.median(runs):.0f}" for name, runs in cpu.items())
                harness.notes.append(
                    f"Peers, Python, {workload.label}: client CPU per call in µs (median of the runs): {per_call}."
                )
