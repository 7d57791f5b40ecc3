"""pg_eventstore benchmarks: every figure next to a ceiling measured in the same run.

    .venv/bin/python bench/run.py          (what `make bench` runs)

Starts its own throwaway cluster with fixed, durable settings (SETTINGS), installs
build/eventstore.sql, examples/orders/orders.sql and bench/setup.sql, runs every
workload BENCH_RUNS times for BENCH_SECONDS each (pgbench for SQL-level workloads,
Python threads for client-level ones), alternating with its ceiling, and writes the
medians to bench/results/<date>.md and bench/results/latest.md.

Environment:
    BENCH_SECONDS      seconds per timed run of a write workload (default 10)
    BENCH_RUNS         runs per workload, the median is reported (default 3)
    BENCH_QUICK=1      smoke run: 1 s, 1 run, small data; writes bench/results/quick.md
    BENCH_ONLY         comma-separated groups to run (default all): core, reads,
                       python, feed, projections, diagnostics
    BENCH_DIAGNOSTICS  0 skips the diagnostic measurements (default 1)

What each workload measures and how to read the table: bench/README.md.
"""

from __future__ import annotations

import bisect
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool

from pg_eventstore.models import NewEvent
from pg_eventstore.store import EventStore

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
sys.path.insert(0, str(ROOT / "scripts"))

import pgcluster  # noqa: E402

# Durable settings, the same for every workload and its ceiling. Checkpoints are
# spaced out (and forced before every timed run) so none lands inside a run;
# JIT is off so a plan's cost estimate cannot switch compilation on mid-series.
SETTINGS = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "wal_sync_method": "fdatasync",
    "shared_buffers": "512MB",
    "max_connections": "100",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "256MB",
    "jit": "off",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "none",
    "log_min_messages": "warning",
}

# The settings shown with the results.
REPORTED_SETTINGS = (
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_sync_method",
    "shared_buffers",
    "max_connections",
    "max_wal_size",
    "checkpoint_timeout",
    "work_mem",
    "wal_buffers",
    "jit",
    "autovacuum",
)

CORE_DB = "bench_core"
FEED_DB = "bench_feed"
NO_NOTIFY_DB = "bench_diag_no_notify"
GROUPS = ("core", "reads", "python", "feed", "projections", "diagnostics")

# An OrderPlaced payload as the seed's place_order writes it: 354 bytes of compact JSON.
PLACED_PAYLOAD: dict[str, Any] = {
    "orderNumber": "ORD-20250101-4F2A9C1B",
    "customerId": "6f1c2b7e-3d4a-4f8b-9c2d-1e5f6a7b8c9d",
    "lineItems": [
        {"productId": "p-1001", "sku": "SKU-1001", "name": "Espresso beans 1kg", "quantity": 2, "unitPrice": 24.5},
    ],
    "shippingAddress": {"line1": "12 Harbour Road", "city": "Lisbon", "country": "PT", "postalCode": "1100-001"},
    "subtotal": 49.0,
    "shippingCost": 4.95,
    "total": 53.95,
}
# JSON text goes into pgbench scripts as literals: json.dumps' ": " separator keeps
# pgbench from reading ":2" as a variable, and there is no quote to escape.
PAYLOAD_JSON = json.dumps(PLACED_PAYLOAD)
assert "'" not in PAYLOAD_JSON and not re.search(r":\w", PAYLOAD_JSON)


def events_json(event_type: str, count: int) -> str:
    """count events of one type with the payload, as append_events() takes them (a JSON array)."""
    return json.dumps([{"event_type": event_type, "payload": PLACED_PAYLOAD}] * count)


CEILING_COLUMNS = (
    "event_id, aggregate_type, aggregate_id, event_type, event_version, payload, metadata, occurred_at, feed_key"
)


def ceiling_values(aggregate_id: str, event_type: str, version: str) -> str:
    """One VALUES row of the ceiling INSERT: what append_events() stores, computed the plain way."""
    return (
        f"(gen_random_uuid(), 'Order', {aggregate_id}, '{event_type}', {version}, '{PAYLOAD_JSON}'::jsonb,"
        " '{}'::jsonb, clock_timestamp(), pg_current_xact_id()::text::bigint)"
    )


# The pgbench scripts. Variables: :client_id (pgbench's), :run (a tag per timed
# run, so every run has its own aggregates) and :v (the version a client last wrote).
W1_OURS = (
    f"SELECT * FROM eventstore.append_events('Order', gen_random_uuid(), -1, '{events_json('OrderPlaced', 1)}');\n"
)
W1_CEILING = (
    f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})\n"
    f"VALUES {ceiling_values('gen_random_uuid()', 'OrderPlaced', '0')}\nRETURNING *;\n"
)
CLIENT_AGGREGATE = "md5(:run::text || '-' || :client_id::text)::uuid"
W2_OURS = (
    f"SELECT event_version AS v FROM eventstore.append_events('Order', {CLIENT_AGGREGATE}, :v,"
    f" '{events_json('OrderShipped', 1)}') \\gset\n"
)
W2_CEILING = (
    f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})\n"
    f"VALUES {ceiling_values(CLIENT_AGGREGATE, 'OrderShipped', ':v + 1')}\nRETURNING event_version AS v \\gset\n"
)
W3_OURS = (
    f"SELECT * FROM eventstore.append_events('Order', gen_random_uuid(), -1, '{events_json('OrderPlaced', 10)}');\n"
)
W3_CEILING = (
    f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})\n"
    "SELECT e.* FROM (SELECT gen_random_uuid() AS id) AS a CROSS JOIN LATERAL (VALUES\n"
    + ",\n".join(ceiling_values("a.id", "OrderPlaced", str(v)) for v in range(10))
    + "\n) AS e\nRETURNING *;\n"
)
CONTENDED_AGGREGATE = "md5(:run::text || '-w4-' || :a::text)::uuid"
W4_OURS = (
    "\\set a random(1, 4)\n"
    f"SELECT s.version AS v FROM eventstore.streams AS s WHERE s.aggregate_id = {CONTENDED_AGGREGATE} \\gset\n"
    f"SELECT bench.try_append('Order', {CONTENDED_AGGREGATE}, :v, '{events_json('OrderShipped', 1)}');\n"
)
W4_CEILING = (
    "\\set a random(1, 4)\n"
    "SELECT max(c.event_version) AS v FROM bench.ceiling_events AS c"
    f" WHERE c.aggregate_id = {CONTENDED_AGGREGATE} \\gset\n"
    f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})\n"
    f"VALUES {ceiling_values(CONTENDED_AGGREGATE, 'OrderShipped', ':v + 1')}\n"
    "ON CONFLICT (aggregate_id, event_version) DO NOTHING;\n"
)
# New orders with unique order numbers (the read model requires them), for
# the inline-projection overhead: the same script with and without the projection.
INLINE_APPEND = (
    "SELECT e.* FROM (SELECT gen_random_uuid() AS id) AS o CROSS JOIN LATERAL eventstore.append_events(\n"
    "    'Order', o.id, -1,\n"
    "    jsonb_build_array(jsonb_build_object('event_type', 'OrderPlaced', 'payload',\n"
    f"        '{PAYLOAD_JSON}'::jsonb || jsonb_build_object('orderNumber', 'ORD-' || o.id::text)))\n"
    ") AS e;\n"
)
# Diagnostics: the ceiling plus one cost of append_events() at a time, in plain SQL.
CEILING_WITH_NOTIFY = (
    f"WITH e AS (INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})\n"
    f"VALUES {ceiling_values('gen_random_uuid()', 'OrderPlaced', '0')} RETURNING *)\n"
    "SELECT e.*, pg_notify('bench_events', pg_current_xact_id()::text) FROM e;\n"
)
CEILING_WITH_STREAM = (
    "WITH s AS (INSERT INTO bench.ceiling_streams (aggregate_id, aggregate_type, version, last_feed_key,"
    " last_occurred_at)\n"
    "    VALUES (gen_random_uuid(), 'Order', 0, pg_current_xact_id()::text::bigint, clock_timestamp())"
    " RETURNING aggregate_id)\n"
    f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})\n"
    f"SELECT v.* FROM s CROSS JOIN LATERAL (VALUES {ceiling_values('s.aggregate_id', 'OrderPlaced', '0')}) AS v\n"
    "RETURNING *;\n"
)
# The contract ceilings: what DESIGN.md makes every append transaction do, in
# one plain SQL statement with no function: the event rows, the stream row
# (created, or moved on from the expected version) and one NOTIFY.
CONTRACT_NOTIFY = "pg_notify('bench_events', pg_current_xact_id()::text)"
NEW_STREAM = (
    "s AS (INSERT INTO bench.ceiling_streams (aggregate_id, aggregate_type, version, last_feed_key,"
    " last_occurred_at)\n"
    "    VALUES (gen_random_uuid(), 'Order', {last}, pg_current_xact_id()::text::bigint, clock_timestamp())"
    " RETURNING aggregate_id)"
)
W1_CONTRACT_CEILING = (
    f"WITH {NEW_STREAM.format(last=0)},\n"
    f"e AS (INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})\n"
    f"    SELECT v.* FROM s CROSS JOIN LATERAL (VALUES {ceiling_values('s.aggregate_id', 'OrderPlaced', '0')}) AS v\n"
    "    RETURNING *)\n"
    f"SELECT e.*, {CONTRACT_NOTIFY} FROM e;\n"
)
W3_CONTRACT_CEILING = (
    f"WITH {NEW_STREAM.format(last=9)},\n"
    f"e AS (INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})\n"
    "    SELECT v.* FROM s CROSS JOIN LATERAL (VALUES\n"
    + ",\n".join(ceiling_values("s.aggregate_id", "OrderPlaced", str(v)) for v in range(10))
    + "\n    ) AS v\n    RETURNING *)\n"
    f"SELECT e.*, {CONTRACT_NOTIFY} FROM e;\n"
)
W2_CONTRACT_CEILING = (
    "WITH s AS (UPDATE bench.ceiling_streams AS s SET version = :v + 1,"
    " last_feed_key = greatest(s.last_feed_key, pg_current_xact_id()::text::bigint),"
    " last_occurred_at = greatest(s.last_occurred_at, clock_timestamp())\n"
    f"    WHERE s.aggregate_id = {CLIENT_AGGREGATE} AND s.version = :v RETURNING s.aggregate_id),\n"
    f"e AS (INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})\n"
    f"    SELECT v.* FROM s CROSS JOIN LATERAL (VALUES {ceiling_values('s.aggregate_id', 'OrderShipped', ':v + 1')})"
    " AS v\n    RETURNING *)\n"
    f"SELECT e.event_version AS v, {CONTRACT_NOTIFY} AS notified FROM e \\gset\n"
)
W2_CEILING_WITH_STREAM = (
    "WITH s AS (UPDATE bench.ceiling_streams AS s SET version = :v + 1,"
    " last_feed_key = greatest(s.last_feed_key, pg_current_xact_id()::text::bigint),"
    " last_occurred_at = greatest(s.last_occurred_at, clock_timestamp())\n"
    f"    WHERE s.aggregate_id = {CLIENT_AGGREGATE} AND s.version = :v RETURNING s.aggregate_id)\n"
    f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})\n"
    f"SELECT v.* FROM s CROSS JOIN LATERAL (VALUES {ceiling_values('s.aggregate_id', 'OrderShipped', ':v + 1')})"
    " AS v\nRETURNING event_version AS v \\gset\n"
)


@dataclass(frozen=True)
class Config:
    seconds: int
    runs: int
    quick: bool
    read_seconds: int
    feed_events: int
    aggregate_sizes: tuple[int, ...]
    r1_size: int
    lag_appends: int
    lag_rate: float
    groups: frozenset[str]
    diagnostics: bool

    @classmethod
    def from_environment(cls) -> Config:
        quick = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
        seconds = int(os.environ.get("BENCH_SECONDS", "1" if quick else "10"))
        runs = int(os.environ.get("BENCH_RUNS", "1" if quick else "3"))
        only = os.environ.get("BENCH_ONLY", "")
        groups = frozenset(g.strip() for g in only.split(",") if g.strip()) or frozenset(GROUPS)
        unknown = groups - set(GROUPS)
        if unknown:
            raise SystemExit(f"BENCH_ONLY: unknown groups {sorted(unknown)}; known: {', '.join(GROUPS)}")
        if seconds < 1 or runs < 1:
            raise SystemExit("BENCH_SECONDS and BENCH_RUNS must be at least 1")
        return cls(
            seconds=seconds,
            runs=runs,
            quick=quick,
            read_seconds=1 if quick else max(2, seconds // 4),
            feed_events=20_000 if quick else 1_000_000,
            aggregate_sizes=(100, 1_000, 10_000) if quick else (100, 1_000, 10_000, 100_000),
            r1_size=10_000,
            lag_appends=300 if quick else 10_000,
            lag_rate=500.0,
            groups=groups,
            diagnostics=os.environ.get("BENCH_DIAGNOSTICS", "1") not in ("", "0"),
        )


@dataclass(frozen=True)
class Goal:
    """A goal on the ratio to the ceiling (ratio_at_least / ratio_at_most) or on the figure (at_most / at_least)."""

    kind: str
    threshold: float

    def text(self, unit: str) -> str:
        return {
            "ratio_at_least": f"ratio ≥ {self.threshold:.2f}",
            "ratio_at_most": f"ratio ≤ {self.threshold:.2f}",
            "at_most": f"≤ {format_number(self.threshold, unit)} {unit}",
            "at_least": f"≥ {format_number(self.threshold, unit)} {unit}",
        }[self.kind]

    def met(self, figure: float, ratio: float | None) -> bool | None:
        if self.kind == "at_most":
            return figure <= self.threshold
        if self.kind == "at_least":
            return figure >= self.threshold
        if ratio is None:
            return None
        return ratio >= self.threshold if self.kind == "ratio_at_least" else ratio <= self.threshold


@dataclass
class Result:
    """One line of the table: the median of the runs, next to the ceiling's median."""

    workload: str
    unit: str
    runs: list[float]
    ceiling_runs: list[float] | None = None
    ceiling: str = ""
    goal: Goal | None = None
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def figure(self) -> float:
        return statistics.median(self.runs)

    @property
    def ceiling_figure(self) -> float | None:
        return statistics.median(self.ceiling_runs) if self.ceiling_runs else None

    @property
    def ratio(self) -> float | None:
        ceiling = self.ceiling_figure
        return None if ceiling is None or ceiling == 0 else self.figure / ceiling


def format_number(value: float, unit: str) -> str:
    if unit in ("events/s", "calls/s"):
        return f"{value:,.0f}"
    if unit == "x":
        return f"{value:.2f}"
    if unit == "%":
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class PythonClientWorkloads:
    """The Python-client workloads: each method sets up one thread and returns the call it repeats."""

    INSERT = (
        f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS}) VALUES (gen_random_uuid(), 'Order', %s, %s, %s, %s,"
        " '{}', clock_timestamp(), pg_current_xact_id()::text::bigint) RETURNING *"
    )

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool
        self.store = EventStore(pool)
        self.placed = NewEvent("OrderPlaced", PLACED_PAYLOAD)
        self.shipped = NewEvent("OrderShipped", PLACED_PAYLOAD)

    def _insert(self, aggregate: uuid.UUID, event_type: str, version: int) -> int:
        with self.pool.connection() as conn:
            rows = conn.execute(self.INSERT, (aggregate, event_type, version, Jsonb(PLACED_PAYLOAD))).fetchall()
        return int(rows[-1][5])

    def append_new(self) -> Callable[[], None]:
        def call() -> None:
            self.store.append("Order", uuid.uuid4(), [self.placed], expected_version=-1)

        return call

    def insert_new(self) -> Callable[[], None]:
        def call() -> None:
            self._insert(uuid.uuid4(), "OrderPlaced", 0)

        return call

    def append_next(self) -> Callable[[], None]:
        aggregate = uuid.uuid4()
        version = self.store.append("Order", aggregate, [self.placed], expected_version=-1)[-1].event_version

        def call() -> None:
            nonlocal version
            version = self.store.append("Order", aggregate, [self.shipped], expected_version=version)[-1].event_version

        return call

    def insert_next(self) -> Callable[[], None]:
        aggregate = uuid.uuid4()
        version = self._insert(aggregate, "OrderPlaced", 0)

        def call() -> None:
            nonlocal version
            version = self._insert(aggregate, "OrderShipped", version + 1)

        return call


class Bench:
    """The cluster, the configuration and the results collected so far."""

    def __init__(self, cluster: pgcluster.Cluster, config: Config, workdir: Path) -> None:
        self.cluster = cluster
        self.config = config
        self.workdir = workdir
        self.results: list[Result] = []
        self.diagnostics: list[Result] = []
        self.statements: dict[str, list[tuple[str, int, float, float]]] = {}
        self.waits: dict[str, list[tuple[str, float]]] = {}
        self.notes: list[str] = []
        self._run_counter = 0
        # The code measured: the checkout when the run starts (the install scripts are read then).
        self.commit = _git_commit()
        # Python workloads: the client process's CPU time per call, in microseconds.
        self.client_cpu: dict[str, list[float]] = {}

    # --- plumbing -------------------------------------------------------------------------------------

    def dsn(self, db: str) -> str:
        return f"host=127.0.0.1 port={self.cluster.port} user=postgres dbname={db}"

    @contextmanager
    def connect(self, db: str) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.dsn(db), autocommit=True) as conn:
            yield conn

    def execute(self, db: str, query: sql.SQL | sql.Composed | str, params: Sequence[Any] | None = None) -> list[Any]:
        with self.connect(db) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def scalar(self, db: str, query: sql.SQL | sql.Composed | str, params: Sequence[Any] | None = None) -> Any:
        rows = self.execute(db, query, params)
        return rows[0][0] if rows else None

    def psql_file(self, db: str, path: Path) -> None:
        subprocess.run(
            [
                str(self.cluster.bindir / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.dsn(db),
                "-f",
                str(path),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def checkpoint(self) -> None:
        """Before every timed run: no checkpoint lands inside it."""
        self.execute("postgres", "CHECKPOINT")

    def run_tag(self) -> str:
        self._run_counter += 1
        return f"r{self._run_counter}-{uuid.uuid4().hex[:8]}"

    def pgbench(
        self,
        db: str,
        script: str,
        clients: int,
        seconds: int,
        variables: dict[str, str] | None = None,
    ) -> tuple[int, float, float]:
        """Run one pgbench script; returns (transactions, transactions/s, average latency in ms)."""
        self._run_counter += 1
        path = self.workdir / f"script-{self._run_counter}.sql"
        path.write_text(script)
        command = [
            str(self.cluster.bindir / "pgbench"),
            "--no-vacuum",
            "--protocol=prepared",
            f"--client={clients}",
            f"--jobs={min(clients, 2)}",
            f"--time={seconds}",
            f"--file={path}",
            "--host=127.0.0.1",
            f"--port={self.cluster.port}",
            "--username=postgres",
        ]
        for name, value in (variables or {}).items():
            command.append(f"--define={name}={value}")
        command.append(db)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        output = done.stdout + done.stderr
        if done.returncode != 0 or "aborted" in output:
            raise RuntimeError(f"pgbench failed ({done.returncode}):\n{output}\nscript:\n{script}")
        transactions = int(_search(r"number of transactions actually processed: (\d+)", output))
        tps = float(_search(r"tps = ([0-9.]+) \(without initial connection time\)", output))
        latency = float(_search(r"latency average = ([0-9.]+) ms", output))
        return transactions, tps, latency

    def throughput(self, db: str, script: str, clients: int, *, events_per_call: int = 1) -> float:
        """Events/s of a pgbench script run for BENCH_SECONDS."""
        return self.pgbench(db, script, clients, self.config.seconds)[1] * events_per_call

    def pgbench_tps(self, db: str, script: str, clients: int, seconds: int) -> float:
        return self.pgbench(db, script, clients, seconds)[1]

    def compare(
        self,
        label: str,
        ours: Callable[[], float],
        ceiling: Callable[[], float] | None,
    ) -> tuple[list[float], list[float] | None]:
        """Timed runs of a workload and its ceiling, alternating which goes first; returns both lists of figures."""
        if ceiling is None:
            return self.compare_many(label, {"ours": ours})["ours"], None
        figures = self.compare_many(label, {"ours": ours, "ceiling": ceiling})
        return figures["ours"], figures["ceiling"]

    def compare_many(self, label: str, measures: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
        """BENCH_RUNS rounds of every measure, the order rotating by one each round; a checkpoint before each."""
        figures: dict[str, list[float]] = {name: [] for name in measures}
        names = list(measures)
        for index in range(self.config.runs):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                self.checkpoint()
                figures[name].append(measures[name]())
                log(f"  {label} run {index + 1} {name}: {figures[name][-1]:,.3f}")
        return figures

    def add(self, result: Result) -> None:
        self.results.append(result)
        ratio = f" ratio {result.ratio:.2f}" if result.ratio is not None else ""
        log(f"= {result.workload}: {format_number(result.figure, result.unit)} {result.unit}{ratio}")

    # --- databases ------------------------------------------------------------------------------------

    def create_database(self, name: str) -> None:
        self.execute("postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.psql_file(name, ROOT / "build" / "eventstore.sql")
        self.psql_file(name, ROOT / "examples" / "orders" / "orders.sql")
        self.psql_file(name, BENCH / "setup.sql")
        # The Order fold once more without snapshots, for loads that fold every event.
        self.execute(
            name,
            "SELECT eventstore.register_aggregate_type('OrderNoSnapshots', t.fold, t.initial_state, 0)"
            " FROM eventstore.aggregate_types AS t WHERE t.aggregate_type = 'Order'",
        )
        self.execute(name, "CREATE EXTENSION pg_stat_statements")

    def vacuum(self, db: str) -> None:
        self.execute(db, "VACUUM (ANALYZE)")

    # --- core writes: W1-W4 -------------------------------------------------------------------------

    def core_writes(self) -> None:
        db = CORE_DB
        log("W1: append one event to a new aggregate")
        for clients in (1, 8):
            ours, ceiling = self.compare(
                f"W1 {clients}c",
                partial(self.throughput, db, W1_OURS, clients),
                partial(self.throughput, db, W1_CEILING, clients),
            )
            self.add(
                Result(
                    f"W1 append 1 event, new aggregate, {clients} client{'s' if clients > 1 else ''}",
                    "events/s",
                    ours,
                    ceiling,
                    "INSERT of the same row",
                    Goal("ratio_at_least", 0.8) if clients == 8 else None,
                )
            )
        ours, ceiling = self.compare(
            "W1 8c contract",
            partial(self.throughput, db, W1_OURS, 8),
            partial(self.throughput, db, W1_CONTRACT_CEILING, 8),
        )
        self.add(
            Result(
                "W1 at 8 clients against the contract ceiling",
                "events/s",
                ours,
                ceiling,
                "one statement: INSERT of the stream row and the event, pg_notify()",
            )
        )

        log("W2: append one event to an existing aggregate with its expected version")
        ours, ceiling = self.compare(
            "W2 8c",
            lambda: self.own_aggregates_run(W2_OURS, ours=True),
            lambda: self.own_aggregates_run(W2_CEILING, ours=False),
        )
        self.add(
            Result(
                "W2 append 1 event, expected version, 8 clients on their own aggregates",
                "events/s",
                ours,
                ceiling,
                "INSERT of the next version",
                Goal("ratio_at_least", 0.8),
            )
        )
        ours, ceiling = self.compare(
            "W2 8c contract",
            lambda: self.own_aggregates_run(W2_OURS, ours=True),
            lambda: self.own_aggregates_run(W2_CONTRACT_CEILING, ours=False, with_stream=True),
        )
        self.add(
            Result(
                "W2 against the contract ceiling",
                "events/s",
                ours,
                ceiling,
                "one statement: UPDATE of the stream row from the expected version, INSERT of the event, pg_notify()",
            )
        )

        log("W3: append 10 events per call")
        ours, ceiling = self.compare(
            "W3 8c",
            partial(self.throughput, db, W3_OURS, 8, events_per_call=10),
            partial(self.throughput, db, W3_CEILING, 8, events_per_call=10),
        )
        self.add(
            Result(
                "W3 append 10 events per call, new aggregate, 8 clients",
                "events/s",
                ours,
                ceiling,
                "one 10-row INSERT",
                Goal("ratio_at_least", 0.7),
            )
        )
        ours, ceiling = self.compare(
            "W3 8c contract",
            partial(self.throughput, db, W3_OURS, 8, events_per_call=10),
            partial(self.throughput, db, W3_CONTRACT_CEILING, 8, events_per_call=10),
        )
        self.add(
            Result(
                "W3 against the contract ceiling",
                "events/s",
                ours,
                ceiling,
                "one statement: INSERT of the stream row and the 10 events, pg_notify()",
            )
        )

        log("W4: 8 clients contending on 4 aggregates")
        conflict_rates: dict[str, list[float]] = {"ours": [], "ceiling": []}
        ours, ceiling = self.compare(
            "W4 8c",
            lambda: self.contended_run(ours=True, conflict_rates=conflict_rates["ours"]),
            lambda: self.contended_run(ours=False, conflict_rates=conflict_rates["ceiling"]),
        )
        self.add(
            Result(
                "W4 8 clients contending on 4 aggregates (successful appends)",
                "events/s",
                ours,
                ceiling,
                "INSERT ... ON CONFLICT DO NOTHING",
                None,
                note="",
            )
        )
        self.add(
            Result(
                "W4 conflict rate (ES001 / attempts)",
                "%",
                conflict_rates["ours"],
                conflict_rates["ceiling"],
                "unique violations avoided by ON CONFLICT / attempts",
            )
        )

    def own_aggregates_run(
        self,
        script: str,
        *,
        ours: bool,
        db: str = CORE_DB,
        clients: int = 8,
        with_stream: bool = False,
        seconds: int | None = None,
    ) -> float:
        """W2: every client appends to its own aggregate, created at version 0 before the run."""
        tag = self.run_tag()
        with self.connect(db) as conn:
            for client in range(clients):
                aggregate = _md5_uuid(f"{tag}-{client}")
                if ours:
                    conn.execute(
                        "SELECT eventstore.append_events('Order', %s, -1, %s)",
                        (aggregate, events_json("OrderPlaced", 1)),
                    )
                else:
                    conn.execute(
                        f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})"
                        f" VALUES {ceiling_values('%s', 'OrderPlaced', '0')}",
                        (aggregate,),
                    )
                    if with_stream:
                        conn.execute(
                            "INSERT INTO bench.ceiling_streams (aggregate_id, aggregate_type, version, last_feed_key,"
                            " last_occurred_at) VALUES (%s, 'Order', 0, 0, clock_timestamp())",
                            (aggregate,),
                        )
        return self.pgbench(db, script, clients, seconds or self.config.seconds, {"run": tag, "v": "0"})[1]

    def contended_run(self, *, ours: bool, conflict_rates: list[float]) -> float:
        """W4: 8 clients on 4 aggregates; returns successful events/s and appends the conflict rate in %."""
        tag = self.run_tag()
        aggregates = [_md5_uuid(f"{tag}-w4-{a}") for a in range(1, 5)]
        with self.connect(CORE_DB) as conn:
            for aggregate in aggregates:
                if ours:
                    conn.execute(
                        "SELECT eventstore.append_events('Order', %s, -1, %s)",
                        (aggregate, events_json("OrderPlaced", 1)),
                    )
                else:
                    conn.execute(
                        f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})"
                        f" VALUES {ceiling_values('%s', 'OrderPlaced', '0')}",
                        (aggregate,),
                    )
        transactions, _, _ = self.pgbench(
            CORE_DB, W4_OURS if ours else W4_CEILING, 8, self.config.seconds, {"run": tag}
        )
        with self.connect(CORE_DB) as conn:
            if ours:
                row = conn.execute(
                    "SELECT sum(s.version) FROM eventstore.streams AS s WHERE s.aggregate_id = ANY(%s)", (aggregates,)
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT sum(m.v) FROM (SELECT max(c.event_version) AS v FROM bench.ceiling_events AS c"
                    " WHERE c.aggregate_id = ANY(%s) GROUP BY c.aggregate_id) AS m",
                    (aggregates,),
                ).fetchone()
        successes = int(row[0]) if row and row[0] is not None else 0
        conflict_rates.append(100.0 * (transactions - successes) / transactions if transactions else 0.0)
        return successes / self.config.seconds

    # --- reads: R1 and aggregate loads ------------------------------------------------------------------

    def build_aggregate(self, db: str, aggregate_type: str, size: int) -> uuid.UUID:
        """An Order-like aggregate of `size` events: placed, then shipped/delivered-like events.

        Appended in calls of up to 1,000 events, then the last 25 one by one, so that
        with snapshots every 50 versions the latest snapshot lies 25 events behind the
        head (the middle case between two snapshots).
        """
        aggregate = uuid.uuid4()
        types = ("OrderShipped", "OrderDelivered", "OrderCancelled", "OrderPlaced")
        tail = 25 if size >= 100 else 0
        with self.connect(db) as conn:
            version = -1
            while version + 1 < size - tail:
                count = min(1000, size - tail - version - 1)
                batch = [
                    {
                        "event_type": "OrderPlaced" if version + 1 + i == 0 else types[(version + 1 + i) % 4],
                        "payload": PLACED_PAYLOAD,
                    }
                    for i in range(count)
                ]
                conn.execute(
                    "SELECT count(*) FROM eventstore.append_events(%s, %s, %s, %s)",
                    (aggregate_type, aggregate, version, Jsonb(batch)),
                )
                version += count
            while version + 1 < size:
                conn.execute(
                    "SELECT count(*) FROM eventstore.append_events(%s, %s, %s, %s)",
                    (
                        aggregate_type,
                        aggregate,
                        version,
                        Jsonb([{"event_type": types[(version + 1) % 4], "payload": PLACED_PAYLOAD}]),
                    ),
                )
                version += 1
        return aggregate

    def reads(self) -> None:
        db, seconds = CORE_DB, self.config.read_seconds
        log("building the aggregates for R1 and the aggregate loads")
        with_snapshots = {size: self.build_aggregate(db, "Order", size) for size in self.config.aggregate_sizes}
        without = {size: self.build_aggregate(db, "OrderNoSnapshots", size) for size in self.config.aggregate_sizes}
        r1 = with_snapshots[self.config.r1_size]
        # The same events in the ceiling table, for the plain SELECT.
        for aggregate in [*with_snapshots.values(), *without.values()]:
            self.execute(
                db,
                f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})"
                f" SELECT {CEILING_COLUMNS} FROM eventstore.domain_events WHERE aggregate_id = %s ORDER BY id",
                (aggregate,),
            )
        self.vacuum(db)

        def latency(script: str) -> Callable[[], float]:
            return lambda: self.pgbench(db, script, 1, seconds)[2]

        def plain_select(aggregate: uuid.UUID) -> str:
            return f"SELECT * FROM bench.ceiling_events WHERE aggregate_id = '{aggregate}' ORDER BY event_version;\n"

        log(f"R1: load_events of one {self.config.r1_size:,}-event aggregate")
        ours, ceiling = self.compare(
            "R1 load_events",
            latency(f"SELECT * FROM eventstore.load_events('{r1}');\n"),
            latency(plain_select(r1)),
        )
        self.add(
            Result(
                f"R1 load_events, one {self.config.r1_size:,}-event aggregate",
                "ms",
                ours,
                ceiling,
                "SELECT ... WHERE aggregate_id ORDER BY event_version",
                Goal("ratio_at_most", 1.2),
            )
        )

        log("aggregate loads with and without snapshots")
        loads: dict[int, float] = {}
        for size in self.config.aggregate_sizes:
            aggregate = with_snapshots[size]
            inputs = (
                "SELECT s.version, s.state, ARRAY(SELECT d FROM eventstore.domain_events AS d\n"
                "    WHERE d.aggregate_id = s.aggregate_id AND d.event_version > s.version ORDER BY d.event_version)\n"
                "FROM (SELECT * FROM eventstore.aggregate_snapshots AS a\n"
                f"    WHERE a.aggregate_type = 'Order' AND a.aggregate_id = '{aggregate}'\n"
                "    ORDER BY a.version DESC LIMIT 1) AS s;\n"
            )
            ours, ceiling = self.compare(
                f"load {size} snapshots",
                latency(f"SELECT * FROM eventstore.load_aggregate('Order', '{aggregate}');\n"),
                latency(inputs),
            )
            loads[size] = statistics.median(ours)
            self.add(
                Result(
                    f"load_aggregate, {size:,} events, snapshots every 50",
                    "ms",
                    ours,
                    ceiling,
                    "plain SELECT of the latest snapshot and the events after it",
                    Goal("at_most", 2.0) if size == 10_000 else None,
                )
            )
        for size in self.config.aggregate_sizes:
            aggregate = without[size]
            ours, ceiling = self.compare(
                f"load {size} no snapshots",
                latency(f"SELECT * FROM eventstore.load_aggregate('OrderNoSnapshots', '{aggregate}');\n"),
                latency(plain_select(aggregate)),
            )
            self.add(
                Result(
                    f"load_aggregate, {size:,} events, no snapshots",
                    "ms",
                    ours,
                    ceiling,
                    "plain SELECT of all the aggregate's events",
                )
            )
        if self.config.diagnostics:
            self.fold_diagnostic(without[self.config.r1_size])
        largest = max(self.config.aggregate_sizes)
        if 1_000 in loads and largest > 1_000:
            self.add(
                Result(
                    f"load_aggregate flatness: {largest:,} / 1,000 events, snapshots",
                    "x",
                    [loads[largest] / loads[1_000]],
                    goal=Goal("at_most", 1.5),
                    note="ratio of the medians above",
                )
            )

    def fold_diagnostic(self, aggregate: uuid.UUID) -> None:
        """The Order fold's SQL functions with and without a SET search_path clause (bench-only change).

        A SET clause keeps the planner from inlining a LANGUAGE sql function, so every call
        starts and ends an executor (examples/orders dropped the clause for that reason).
        The fold's identity, and so its snapshots, does not depend on the clause. The
        functions' settings are put back as installed afterwards.
        """
        functions = ("orders.utc_text(timestamptz)", "orders.order_fold(jsonb, eventstore.domain_events)")
        installed = {
            function: self.scalar(
                CORE_DB, "SELECT proconfig IS NOT NULL FROM pg_proc WHERE oid = %s::regprocedure", (function,)
            )
            for function in functions
        }
        script = f"SELECT * FROM eventstore.load_aggregate('OrderNoSnapshots', '{aggregate}');\n"

        def set_clause(function: str, with_set: bool) -> None:
            clause = "SET search_path = pg_catalog, pg_temp" if with_set else "RESET search_path"
            self.execute(CORE_DB, f"ALTER FUNCTION {function} {clause}")

        def load(with_set: bool) -> float:
            for function in functions:
                set_clause(function, with_set)
            return self.pgbench(CORE_DB, script, 1, self.config.read_seconds)[2]

        with_set = f"load_aggregate, {self.config.r1_size:,} events, no snapshots, fold functions with SET search_path"
        log("diagnostic: the Order fold with and without SET search_path")
        try:
            figures = self.compare_many(
                "fold",
                {
                    with_set: partial(load, True),
                    "the same with the fold's SQL functions inlinable (no SET search_path)": partial(load, False),
                },
            )
        finally:
            for function, had_set in installed.items():
                set_clause(function, bool(had_set))
        for name, runs in figures.items():
            self.diagnostics.append(Result(name, "ms", runs, figures[with_set], with_set))

    # --- Python client ------------------------------------------------------------------------------------

    def threaded(self, threads: int, setup: Callable[[], Callable[[], None]]) -> float:
        """Each thread calls setup() once, then the call it returns in a loop for BENCH_SECONDS; returns calls/s."""
        counts = [0] * threads
        deadline: list[float] = []
        # The barrier's action runs once every thread is set up, before any is released.
        barrier = threading.Barrier(threads + 1, action=lambda: deadline.append(time.monotonic() + self.config.seconds))
        errors: list[BaseException] = []

        def worker(index: int) -> None:
            try:
                call = setup()
                barrier.wait()
                end = deadline[0]
                done = 0
                while time.monotonic() < end:
                    call()
                    done += 1
                counts[index] = done
            except BaseException as error:
                errors.append(error)
                barrier.abort()

        workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for thread in workers:
            thread.start()
        with suppress(threading.BrokenBarrierError):
            barrier.wait()
        cpu_started = time.process_time()
        for thread in workers:
            thread.join()
        cpu = time.process_time() - cpu_started
        if errors:
            raise errors[0]
        self.client_cpu.setdefault(setup.__name__, []).append(1e6 * cpu / max(1, sum(counts)))
        return sum(counts) / self.config.seconds

    def python_client(self) -> None:
        """W1 and W2 through EventStore over a ConnectionPool, against plain psycopg INSERTs over the same pool."""
        for threads in (1, 8):
            plural = "s" if threads > 1 else ""
            with ConnectionPool(self.dsn(CORE_DB), min_size=threads, max_size=threads, open=True) as pool:
                pool.wait()
                log(f"Python client, {threads} thread{plural}")
                client = PythonClientWorkloads(pool)
                ours, ceiling = self.compare(
                    f"py W1 {threads}t",
                    partial(self.threaded, threads, client.append_new),
                    partial(self.threaded, threads, client.insert_new),
                )
                self.add(
                    Result(
                        f"Python EventStore.append, new aggregate, {threads} thread{plural}",
                        "events/s",
                        ours,
                        ceiling,
                        "psycopg INSERT ... RETURNING * over the same pool",
                        Goal("ratio_at_least", 0.8),
                    )
                )
                self.client_cpu_note(threads, "append_new", "insert_new")
                ours, ceiling = self.compare(
                    f"py W2 {threads}t",
                    partial(self.threaded, threads, client.append_next),
                    partial(self.threaded, threads, client.insert_next),
                )
                self.add(
                    Result(
                        f"Python EventStore.append, expected version, {threads} thread{plural}, own aggregates",
                        "events/s",
                        ours,
                        ceiling,
                        "psycopg INSERT ... RETURNING * of the next version over the same pool",
                        Goal("ratio_at_least", 0.8),
                    )
                )
                self.client_cpu_note(threads, "append_next", "insert_next")

    def client_cpu_note(self, threads: int, ours: str, plain: str) -> None:
        """The Python process's CPU per call (all threads), EventStore against plain psycopg: the client's share."""
        ours_cpu = statistics.median(self.client_cpu.pop(ours))
        plain_cpu = statistics.median(self.client_cpu.pop(plain))
        self.notes.append(
            f"Python client, {threads} thread(s), {ours} vs {plain}: client CPU {ours_cpu:.0f} µs vs"
            f" {plain_cpu:.0f} µs per call (process CPU time / calls, median of the runs)."
        )

    # --- the feed: generated history, R2 ------------------------------------------------------------------

    def generate_feed(self) -> None:
        log(f"generating {self.config.feed_events:,} Order events in {FEED_DB} (and the same in the ceiling table)")
        started = time.monotonic()
        self.execute(FEED_DB, "CALL bench.generate_order_history(%s)", (self.config.feed_events,))
        self.vacuum(FEED_DB)
        self.checkpoint()
        orders = self.scalar(FEED_DB, "SELECT count(*) FROM eventstore.streams")
        self.notes.append(
            f"Generated history: {self.config.feed_events:,} events of {orders:,} orders"
            f" in {time.monotonic() - started:.0f} s (bench.generate_order_history)."
        )
        log(f"  {orders:,} orders in {time.monotonic() - started:.0f} s")

    def read_all_pass(self, *, ours: bool, composite: bool = False) -> float:
        """R2: read the whole feed in pages of 1,000, each page its own statement; returns events/s."""
        with self.connect(FEED_DB) as conn:
            conn.adapters.register_loader("jsonb", TextLoader)
            total = 0
            started = time.monotonic()
            if ours:
                after: str | None = None
                while True:
                    rows = conn.execute(
                        "SELECT * FROM eventstore.read_all(%s::eventstore.feed_position, 1000)"
                        if composite
                        else "SELECT * FROM eventstore.read_all(%s::text, 1000)",
                        (after,),
                    ).fetchall()
                    total += len(rows)
                    if len(rows) < 1000:
                        break
                    after = rows[-1][-1]
            else:
                key, last = -1, 0
                while True:
                    rows = conn.execute(
                        "SELECT * FROM bench.ceiling_events WHERE (feed_key, id) > (%s, %s)"
                        " ORDER BY feed_key, id LIMIT 1000",
                        (key, last),
                    ).fetchall()
                    total += len(rows)
                    if len(rows) < 1000:
                        break
                    key, last = rows[-1][-1], rows[-1][0]
            elapsed = time.monotonic() - started
        if total < self.config.feed_events:
            raise RuntimeError(f"the feed pass read {total} events, expected {self.config.feed_events}")
        return total / elapsed

    def feed(self) -> None:
        log(f"R2: read_all catch-up over {self.config.feed_events:,} events")
        composite = "read_all with the position as eventstore.feed_position (the other overload)"
        measures: dict[str, Callable[[], float]] = {
            "ours": partial(self.read_all_pass, ours=True),
            "ceiling": partial(self.read_all_pass, ours=False),
        }
        if self.config.diagnostics:
            measures[composite] = partial(self.read_all_pass, ours=True, composite=True)
        figures = self.compare_many("R2", measures)
        ours, ceiling = figures["ours"], figures["ceiling"]
        if composite in figures:
            self.diagnostics.append(
                Result(
                    f"{composite}, catch-up over {self.config.feed_events:,} events",
                    "events/s",
                    figures[composite],
                    ours,
                    "read_all with the position as text (R2, what the Python client calls)",
                )
            )
        self.add(
            Result(
                f"R2 read_all catch-up, {self.config.feed_events:,} events, pages of 1,000",
                "events/s",
                ours,
                ceiling,
                "keyset SELECT ... WHERE (feed_key, id) > ... ORDER BY feed_key, id LIMIT 1000",
                Goal("ratio_at_least", 0.8),
            )
        )

    # --- projections: rebuild, inline overhead, async lag --------------------------------------------------

    def register_orders_projection(self, name: str, mode: str) -> None:
        self.execute(
            FEED_DB,
            "SELECT eventstore.register_projection(%s, 'orders.project_order(eventstore.domain_events)',"
            " NULL, %s, 'bench.reset_order_projections()')",
            (name, mode),
        )

    def rebuild_run(self, *, ours: bool) -> float:
        with self.connect(FEED_DB) as conn:
            started = time.monotonic()
            if ours:
                row = conn.execute("SELECT eventstore.rebuild_projection('orders')").fetchone()
            else:
                with conn.transaction():
                    conn.execute("TRUNCATE orders.order_projections")
                    row = conn.execute(
                        "SELECT count(*) FROM (SELECT orders.project_order(d) FROM eventstore.domain_events AS d"
                        " ORDER BY d.feed_key, d.id) AS s"
                    ).fetchone()
            assert row is not None
            replayed = int(row[0])
            elapsed = time.monotonic() - started
        return replayed / elapsed

    def projections(self) -> None:
        self.register_orders_projection("orders", "async")
        log(f"projection rebuild over {self.config.feed_events:,} events")
        ours, ceiling = self.compare(
            "rebuild", lambda: self.rebuild_run(ours=True), lambda: self.rebuild_run(ours=False)
        )
        self.add(
            Result(
                f"rebuild_projection of the Order projection, {self.config.feed_events:,} events",
                "events/s",
                ours,
                ceiling,
                "the handler called straight over one ordered SELECT of the log",
                Goal("at_least", 50_000),
            )
        )
        log("inline projection overhead on append (8 clients)")

        # A second projection of the same handler, registered inline for the runs that
        # measure it and unregistered (no inline projection, no trigger) for the others.
        def appends(inline: bool) -> float:
            registered = self.scalar(
                FEED_DB, "SELECT count(*) FROM eventstore.projections WHERE name = 'orders_inline'"
            )
            if inline and not registered:
                self.register_orders_projection("orders_inline", "inline")
            if registered and not inline:
                self.execute(FEED_DB, "SELECT eventstore.unregister_projection('orders_inline')")
            return self.pgbench(FEED_DB, INLINE_APPEND, 8, self.config.seconds)[1]

        ours, ceiling = self.compare("inline", partial(appends, True), partial(appends, False))
        self.execute(
            FEED_DB,
            "SELECT eventstore.unregister_projection('orders_inline')"
            " FROM eventstore.projections WHERE name = 'orders_inline'",
        )
        self.add(
            Result(
                "append 1 event with the Order projection inline, 8 clients",
                "events/s",
                ours,
                ceiling,
                "the same appends with no inline projection",
                Goal("ratio_at_least", 0.7),
                note="overhead = 1 - ratio",
            )
        )
        self.async_lag()

    def async_lag(self) -> None:
        """Commit-to-projection lag: one appender at a fixed rate, one worker on NOTIFY wake-ups."""
        with self.connect(FEED_DB) as conn:
            while conn.execute("SELECT eventstore.run_projection('orders', 10000)").fetchone() != (0,):
                pass
        self.checkpoint()
        appends, rate = self.config.lag_appends, self.config.lag_rate
        log(f"async lag: {appends:,} appends at up to {rate:.0f}/s, a worker running run_projection on NOTIFY")

        covered: list[tuple[int, int]] = []
        commit_times: list[float] = []
        stop = threading.Event()
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                with self.connect(FEED_DB) as conn:
                    conn.execute("LISTEN eventstore_events")
                    ready.set()
                    while not stop.is_set():
                        while True:
                            row = conn.execute(
                                "SELECT * FROM bench.run_projection_reporting('orders', 1000)"
                            ).fetchone()
                            now = time.monotonic()
                            assert row is not None
                            applied, key, last = row
                            if applied:
                                covered.append((key, last))
                                commit_times.append(now)
                            if applied < 1000:
                                break
                        # Wait for the next wake-up; poll every 0.25 s as ProjectionWorker does.
                        for _ in conn.notifies(timeout=0.25, stop_after=1):
                            pass
            except BaseException as error:
                errors.append(error)

        ready = threading.Event()
        thread = threading.Thread(target=worker)
        thread.start()
        ready.wait(10)
        positions: list[tuple[int, int]] = []
        appended_at: list[float] = []
        with self.connect(FEED_DB) as conn:
            store = EventStore(conn)
            started = time.monotonic()
            for index in range(appends):
                due = started + index / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                order = uuid.uuid4()
                payload = {**PLACED_PAYLOAD, "orderNumber": f"ORD-LAG-{order.hex}"}
                stored = store.append("Order", order, [NewEvent("OrderPlaced", payload)], expected_version=-1)
                appended_at.append(time.monotonic())
                positions.append((stored[-1].feed_key, stored[-1].id))
            elapsed = time.monotonic() - started
        deadline = time.monotonic() + 60
        while (not covered or covered[-1] < positions[-1]) and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        stop.set()
        thread.join()
        if errors:
            raise errors[0]
        lags: list[float] = []
        for position, at in zip(positions, appended_at, strict=True):
            index = bisect.bisect_left(covered, position)
            if index == len(covered):
                raise RuntimeError(f"the worker never covered the event at {position}")
            lags.append(max(0.0, commit_times[index] - at) * 1000)
        lags.sort()
        p50 = statistics.median(lags)
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        note = (
            f"{appends:,} appends in {elapsed:.1f} s ({appends / elapsed:,.0f}/s); "
            f"{len(commit_times):,} projection commits; max {lags[-1]:.1f} ms"
        )
        self.notes.append(f"Async lag: {note}.")
        self.add(Result("async projection lag p50, commit to projection commit", "ms", [p50], note=note))
        self.add(
            Result("async projection lag p99, commit to projection commit", "ms", [p99], goal=Goal("at_most", 20.0))
        )

    # --- diagnostics ---------------------------------------------------------------------------------------

    def run_diagnostics(self) -> None:
        """What append_events() pays for, one cost at a time, at 8 clients (not our configuration).

        Each group runs its variants in rotating order, BENCH_RUNS rounds of BENCH_SECONDS / 2.
        The copy database is the core database at this point with the NOTIFY trigger dropped.
        """
        seconds = max(1, self.config.seconds // 2)
        self.execute(
            "postgres",
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(NO_NOTIFY_DB), sql.Identifier(CORE_DB)),
        )
        self.execute(NO_NOTIFY_DB, "DROP TRIGGER domain_events_notify ON eventstore.domain_events")

        log("diagnostic: new aggregate (W1 shape), 8 clients")
        plain = "plain INSERT (the W1 ceiling)"
        figures = self.compare_many(
            "diag W1",
            {
                plain: partial(self.pgbench_tps, CORE_DB, W1_CEILING, 8, seconds),
                "plain INSERT + pg_notify() in the same transaction": partial(
                    self.pgbench_tps, CORE_DB, CEILING_WITH_NOTIFY, 8, seconds
                ),
                "plain INSERT + a streams row INSERT": partial(
                    self.pgbench_tps, CORE_DB, CEILING_WITH_STREAM, 8, seconds
                ),
                "append_events (W1)": partial(self.pgbench_tps, CORE_DB, W1_OURS, 8, seconds),
                "append_events without the NOTIFY trigger (copy database)": partial(
                    self.pgbench_tps, NO_NOTIFY_DB, W1_OURS, 8, seconds
                ),
            },
        )
        self.add_diagnostics("new aggregate, 8 clients", figures, plain)

        log("diagnostic: expected version on own aggregates (W2 shape), 8 clients")
        plain = "plain INSERT of the next version (the W2 ceiling)"
        figures = self.compare_many(
            "diag W2",
            {
                plain: partial(self.own_aggregates_run, W2_CEILING, ours=False, seconds=seconds),
                "plain INSERT + the streams row UPDATE": partial(
                    self.own_aggregates_run, W2_CEILING_WITH_STREAM, ours=False, with_stream=True, seconds=seconds
                ),
                "append_events (W2)": partial(self.own_aggregates_run, W2_OURS, ours=True, seconds=seconds),
                "append_events without the NOTIFY trigger (copy database)": partial(
                    self.own_aggregates_run, W2_OURS, ours=True, db=NO_NOTIFY_DB, seconds=seconds
                ),
            },
        )
        self.add_diagnostics("own aggregates, 8 clients", figures, plain)

        self.wait_profile("append_events, W1 at 8 clients", CORE_DB, W1_OURS)
        self.wait_profile("plain INSERT + pg_notify(), W1 at 8 clients", CORE_DB, CEILING_WITH_NOTIFY)
        self.wait_profile("plain INSERT (ceiling), W1 at 8 clients", CORE_DB, W1_CEILING)
        self.wait_profile("append_events without the NOTIFY trigger (copy), W1 at 8 clients", NO_NOTIFY_DB, W1_OURS)
        self.statement_profile("W1 (new aggregate), 1 client", W1_OURS, W1_CEILING)
        self.statement_profile("W2 (expected version), 1 client", W2_OURS, W2_CEILING)

    def add_diagnostics(self, shape: str, figures: dict[str, list[float]], reference: str) -> None:
        for name, runs in figures.items():
            result = Result(f"{name}, {shape}", "events/s", runs, figures[reference], reference)
            self.diagnostics.append(result)
            log(f"= {result.workload}: {format_number(result.figure, 'events/s')} ratio {result.ratio:.2f}")

    def statement_profile(self, label: str, script: str, ceiling: str) -> None:
        """pg_stat_statements over one run of a script at 1 client, nested statements included.

        At one client no statement waits for another, so the times are what each statement
        costs. The ceiling's statement is profiled in the same way for comparison.
        """
        self.execute(
            "postgres",
            sql.SQL("ALTER DATABASE {} SET pg_stat_statements.track = 'all'").format(sql.Identifier(CORE_DB)),
        )
        try:
            rows: list[tuple[str, int, float, float]] = []
            for name, text in (("ours", script), ("ceiling", ceiling)):
                tag = self.run_tag()
                self.execute(
                    CORE_DB,
                    "SELECT eventstore.append_events('Order', %s, -1, %s)",
                    (_md5_uuid(f"{tag}-0"), events_json("OrderPlaced", 1)),
                )
                if "ceiling" in name:
                    self.execute(
                        CORE_DB,
                        f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})"
                        f" VALUES {ceiling_values('%s', 'OrderPlaced', '0')}",
                        (_md5_uuid(f"{tag}-0"),),
                    )
                self.checkpoint()
                self.execute(CORE_DB, "SELECT pg_stat_statements_reset()")
                transactions, _, _ = self.pgbench(CORE_DB, text, 1, self.config.seconds, {"run": tag, "v": "0"})
                found = self.execute(
                    CORE_DB,
                    "SELECT regexp_replace(left(s.query, 100), '\\s+', ' ', 'g'), s.calls, s.total_exec_time,"
                    " s.mean_exec_time FROM pg_stat_statements AS s JOIN pg_database AS d ON d.oid = s.dbid"
                    " WHERE d.datname = current_database() AND s.calls >= %s AND s.query !~* 'pg_stat_statements'"
                    " ORDER BY s.total_exec_time DESC LIMIT %s",
                    (max(1, transactions // 60), 14 if name == "ours" else 1),
                )
                rows += [(f"{name}: {q}", int(c), float(t) / transactions, float(m)) for q, c, t, m in found]
            self.statements[label] = rows
        finally:
            self.execute(
                "postgres",
                sql.SQL("ALTER DATABASE {} RESET pg_stat_statements.track").format(sql.Identifier(CORE_DB)),
            )

    def wait_profile(self, label: str, db: str, script: str, clients: int = 8) -> None:
        """What the clients' backends are doing during a run: pg_stat_activity sampled every 5 ms."""
        samples: dict[str, int] = {}
        stop = threading.Event()

        def sample() -> None:
            with self.connect(db) as conn:
                while not stop.is_set():
                    for (state,) in conn.execute(
                        "SELECT CASE WHEN a.state = 'active' AND a.wait_event IS NULL THEN 'CPU (running)'"
                        " ELSE coalesce(a.wait_event_type || ': ' || a.wait_event, 'between states: ' || a.state) END"
                        " FROM pg_stat_activity AS a"
                        " WHERE a.datname = current_database() AND a.backend_type = 'client backend'"
                        " AND a.pid <> pg_backend_pid() AND a.application_name = 'pgbench'"
                    ).fetchall():
                        samples[str(state)] = samples.get(str(state), 0) + 1
                    time.sleep(0.005)

        self.checkpoint()
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            self.pgbench(db, script, clients, self.config.seconds)
        finally:
            stop.set()
            sampler.join()
        total = sum(samples.values()) or 1
        self.waits[label] = sorted(((k, 100.0 * v / total) for k, v in samples.items()), key=lambda kv: -kv[1])

    # --- results -------------------------------------------------------------------------------------------

    def machine_facts(self) -> list[tuple[str, str]]:
        cpu = "unknown"
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        memory = "unknown"
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal"):
                    memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
        version = self.scalar("postgres", "SELECT version()")
        settings = self.execute(
            "postgres",
            "SELECT name, setting, coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
            (list(REPORTED_SETTINGS),),
        )
        return [
            ("CPU", f"{cpu}, {os.cpu_count()} cores (nproc)"),
            ("Memory", memory),
            ("Kernel", platform.release()),
            ("PostgreSQL", str(version)),
            ("Settings", ", ".join(f"{n}={_setting(s, u)}" for n, s, u in settings)),
            ("Commit", self.commit),
        ]

    def write(self, started: datetime, elapsed: float, load: tuple[float, float, float]) -> Path:
        facts = self.machine_facts()
        lines = [
            f"# pg_eventstore benchmarks, {started:%Y-%m-%d}",
            "",
            f"Run by `make bench` (bench/run.py) on {started:%Y-%m-%d %H:%M} UTC in {elapsed / 60:.1f} min.",
            f"Each figure is the median of {self.config.runs} run(s) of {self.config.seconds} s"
            f" (reads: {self.config.read_seconds} s), alternating with its ceiling in the same cluster."
            + (" **Quick smoke run: sizes and times are reduced; not a result.**" if self.config.quick else ""),
            "",
            *[f"- {name}: {value}" for name, value in facts],
            f"- Load average (1 min) before / after: {load[0]:.2f} / {os.getloadavg()[0]:.2f}",
            "",
            "| workload | figure | unit | ceiling | ratio | goal | met? |",
            "|---|---:|---|---:|---:|---|---|",
        ]
        for result in self.results:
            lines.append(_table_row(result))
        lines += ["", "Ratio: figure / ceiling (for ms, a time ratio: lower is better).", "", "## Ceilings", ""]
        for result in self.results:
            if result.ceiling:
                lines.append(f"- {result.workload}: {result.ceiling}.")
        lines += ["", "## All runs", "", "| workload | runs | ceiling runs |", "|---|---|---|"]
        for result in [*self.results, *self.diagnostics]:
            runs = ", ".join(format_number(v, result.unit) for v in result.runs)
            ceiling_runs = ", ".join(format_number(v, result.unit) for v in result.ceiling_runs or [])
            lines.append(f"| {result.workload} | {runs} | {ceiling_runs} |")
        if self.diagnostics:
            lines += [
                "",
                "## Diagnostics (not our configuration)",
                "",
                "Each line adds one cost of append_events() to a plain statement, or removes one from",
                "append_events() in a bench-only copy database, to price it. See bench/README.md.",
                "",
                "| diagnostic | figure | unit | compared with | that figure | ratio |",
                "|---|---:|---|---|---:|---:|",
            ]
            for result in self.diagnostics:
                lines.append(
                    f"| {result.workload} | {format_number(result.figure, result.unit)} | {result.unit} |"
                    f" {result.ceiling} | {format_number(result.ceiling_figure or 0, result.unit)} |"
                    f" {result.ratio or 0:.2f} |"
                )
        for label, statements in self.statements.items():
            lines += [
                "",
                f"## Where append_events() spends its time: {label} (pg_stat_statements, nested statements)",
                "",
                "| statement | calls | ms per transaction | mean ms |",
                "|---|---:|---:|---:|",
            ]
            for query, calls, per_call, mean in statements:
                lines.append(f"| `{query.replace('|', '¦')}` | {calls:,} | {per_call:.4f} | {mean:.4f} |")
        for label, waits in self.waits.items():
            lines += [
                "",
                f"## Wait events: {label} (pg_stat_activity sampled every 5 ms)",
                "",
                "| backend state | share of samples |",
                "|---|---:|",
                *[f"| {state} | {share:.1f}% |" for state, share in waits],
            ]
        if self.notes:
            lines += ["", "## Notes", "", *[f"- {note}" for note in self.notes]]
        text = "\n".join(lines) + "\n"
        RESULTS.mkdir(parents=True, exist_ok=True)
        if self.config.quick:
            target = RESULTS / "quick.md"
            target.write_text(text)
            return target
        target = RESULTS / f"{started:%Y-%m-%d}.md"
        target.write_text(text)
        (RESULTS / "latest.md").write_text(text)
        return target


def _table_row(result: Result) -> str:
    ceiling = result.ceiling_figure
    ratio = result.ratio
    met = result.goal.met(result.figure, ratio) if result.goal else None
    return (
        f"| {result.workload} | {format_number(result.figure, result.unit)} | {result.unit} | "
        f"{format_number(ceiling, result.unit) if ceiling is not None else '—'} | "
        f"{f'{ratio:.2f}' if ratio is not None else '—'} | "
        f"{result.goal.text(result.unit) if result.goal else '—'} | "
        f"{'—' if met is None else ('yes' if met else '**no**')} |"
    )


def _search(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"pgbench output without {pattern!r}:\n{text}")
    return match[1]


def _md5_uuid(text: str) -> uuid.UUID:
    """The uuid md5(text)::uuid gives in SQL, so pgbench scripts and Python agree on aggregate ids."""
    import hashlib

    return uuid.UUID(hashlib.md5(text.encode()).hexdigest())


def _setting(value: str, unit: str) -> str:
    units = {"8kB": 8, "kB": 1, "MB": 1024}
    if unit in units and value.lstrip("-").isdigit() and int(value) > 0:
        kib = int(value) * units[unit]
        return f"{kib // 1024}MB" if kib >= 1024 else f"{kib}kB"
    return f"{value}{unit}"


def _git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "sql", "python/src", "examples"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}{' + uncommitted changes in sql/, python/src or examples/' if dirty else ''}"


def main() -> int:
    config = Config.from_environment()
    if not (ROOT / "build" / "eventstore.sql").exists():
        raise SystemExit("build/eventstore.sql is missing: run `make sql` (make bench does)")
    started_at = datetime.now(UTC)
    started = time.monotonic()
    load = os.getloadavg()
    log(
        f"pg_eventstore benchmarks: {config.runs} run(s) of {config.seconds} s,"
        f" groups {','.join(sorted(config.groups))}"
    )
    if load[0] > 0.5:
        log(f"load average is {load[0]:.2f}: other work on this machine will show in the figures")
    with (
        tempfile.TemporaryDirectory(prefix="pg_eventstore-bench-") as workdir,
        pgcluster.throwaway_cluster(settings=SETTINGS) as cluster,
    ):
        bench = Bench(cluster, config, Path(workdir))
        bench.create_database(CORE_DB)
        if config.groups & {"core", "reads", "python", "diagnostics"}:
            if "core" in config.groups:
                bench.core_writes()
            if "reads" in config.groups:
                bench.reads()
            if "python" in config.groups:
                bench.python_client()
        if config.groups & {"feed", "projections"}:
            bench.create_database(FEED_DB)
            bench.generate_feed()
            if "feed" in config.groups:
                bench.feed()
            if "projections" in config.groups:
                bench.projections()
        if "diagnostics" in config.groups and config.diagnostics:
            bench.run_diagnostics()
        elapsed = time.monotonic() - started
        target = bench.write(started_at, elapsed, load)
    log(f"done in {elapsed / 60:.1f} min: {target.relative_to(ROOT)}")
    print(target.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
