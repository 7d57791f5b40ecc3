"""Diagnostics, not our configuration (group `diagnostics`): what append_events() pays for, one cost at a
time in plain SQL or in a bench-only copy database without the NOTIFY (notify_mode 'off'); the notify
modes side by side (also alone: group `notify`); wait events; and the time of every statement inside
append_events() from pg_stat_statements."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from bench.config import CORE_DB, EVERY_APPEND_DB, NO_NOTIFY_DB
from bench.harness import Harness
from bench.measure import Result, format_number, log
from bench.workloads import DIAGNOSTICS, NOTIFY_MODES, STATEMENT_PROFILES, WAIT_PROFILES, Script, Variant
from pg_eventstore import NewEvent
from pg_eventstore.projections import ProjectionWorker, PythonProjection
from pg_eventstore.store import EventStore


def create_mode_copies(harness: Harness) -> None:
    """The copy databases: the core database at this point, switched to notify_mode 'off' and 'every_append'."""
    for db, mode in ((NO_NOTIFY_DB, "off"), (EVERY_APPEND_DB, "every_append")):
        harness.execute(
            "postgres", sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(db), sql.Identifier(CORE_DB))
        )
        harness.execute(db, "SELECT eventstore.set_notify_mode(%s)", (mode,))


def compare_variants(harness: Harness, groups: tuple[tuple[str, tuple[Variant, ...]], ...]) -> None:
    """Each group runs its variants in rotating order, BENCH_RUNS rounds of BENCH_SECONDS / 2."""
    seconds = max(1, harness.config.seconds // 2)
    for shape, variants in groups:
        log(f"diagnostic: {shape}")
        figures = harness.compare_many(
            f"diag {shape}",
            {v.name: partial(harness.run_script, v.script, v.db, 8, seconds) for v in variants},
        )
        reference = variants[0].name
        for name, runs in figures.items():
            result = Result(f"{name}, {shape}", "events/s", runs, figures[reference], reference)
            harness.diagnostics.append(result)
            log(f"= {result.workload}: {format_number(result.figure, 'events/s')} ratio {result.ratio:.2f}")


def notify_modes(harness: Harness) -> None:
    """Group `notify` alone: the notify modes against the bare ceilings, and the followers' lag in each."""
    create_mode_copies(harness)
    compare_variants(harness, NOTIFY_MODES)
    follower_lags(harness)


def run(harness: Harness) -> None:
    """Every diagnostic; the copy databases are made from the core database as it is at this point."""
    create_mode_copies(harness)
    compare_variants(harness, DIAGNOSTICS + NOTIFY_MODES)
    follower_lags(harness)
    for variant in WAIT_PROFILES:
        wait_profile(harness, variant.name, variant.db, variant.script)
    for label, ours, ceiling in STATEMENT_PROFILES:
        statement_profile(harness, label, ours, ceiling)


def statement_profile(harness: Harness, label: str, ours: Script, ceiling: Script) -> None:
    """pg_stat_statements over one run of a script at 1 client, nested statements included.

    At one client no statement waits for another, so the times are what each statement
    costs. The ceiling's statement is profiled in the same way for comparison.
    """
    database = sql.Identifier(CORE_DB)
    harness.execute("postgres", sql.SQL("ALTER DATABASE {} SET pg_stat_statements.track = 'all'").format(database))
    try:
        rows: list[tuple[str, int, float, float]] = []
        for name, script in (("ours", ours), ("ceiling", ceiling)):
            variables, _ = harness.prepare(script, CORE_DB, 1)
            harness.checkpoint()
            harness.execute(CORE_DB, "SELECT pg_stat_statements_reset()")
            transactions, _, _ = harness.pgbench(CORE_DB, script, 1, harness.config.seconds, variables)
            found = harness.execute(
                CORE_DB,
                "SELECT regexp_replace(left(s.query, 100), '\\s+', ' ', 'g'), s.calls, s.total_exec_time,"
                " s.mean_exec_time FROM pg_stat_statements AS s JOIN pg_database AS d ON d.oid = s.dbid"
                " WHERE d.datname = current_database() AND s.calls >= %s AND s.query !~* 'pg_stat_statements'"
                " ORDER BY s.total_exec_time DESC LIMIT %s",
                (max(1, transactions // 60), 14 if name == "ours" else 1),
            )
            rows += [(f"{name}: {q}", int(c), float(t) / transactions, float(m)) for q, c, t, m in found]
        harness.statements[label] = rows
    finally:
        harness.execute("postgres", sql.SQL("ALTER DATABASE {} RESET pg_stat_statements.track").format(database))


def wait_profile(harness: Harness, label: str, db: str, script: Script, clients: int = 8) -> None:
    """What the clients' backends are doing during a run: pg_stat_activity sampled every 5 ms."""
    samples: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        with harness.connect(db) as conn:
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

    harness.checkpoint()
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        harness.run_script(script, db, clients, harness.config.seconds)
    finally:
        stop.set()
        sampler.join()
    total = sum(samples.values()) or 1
    harness.waits[label] = sorted(((k, 100.0 * v / total) for k, v in samples.items()), key=lambda kv: -kv[1])


# The followers' lag under concurrent appends: 8 writer threads, each appending one event per call at
# WRITER_RATE calls/s, so that commits overlap and, in the default mode, most of them skip the NOTIFY.
WRITERS = 8
WRITER_RATE = 50.0


def follower_lags(harness: Harness) -> None:
    """Commit-to-handler lag of a ProjectionWorker (the library's follow loop, default intervals) in each mode."""
    seconds = max(2, harness.config.seconds)
    for db, mode in ((CORE_DB, "uncontended"), (EVERY_APPEND_DB, "every_append"), (NO_NOTIFY_DB, "off")):
        log(f"follower lag: {WRITERS} writers at {WRITER_RATE:.0f} appends/s each, {seconds} s, notify_mode {mode}")
        harness.checkpoint()
        lags, appends = follower_lag(harness, db, seconds)
        lags.sort()
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        note = (
            f"Follower lag, notify_mode {mode}: {appends:,} appends from {WRITERS} writers in {seconds} s;"
            f" commit to a ProjectionWorker's Python handler (default intervals): p50"
            f" {statistics.median(lags):.1f} ms, p99 {p99:.1f} ms, max {lags[-1]:.1f} ms"
        )
        harness.notes.append(note + ".")
        log(f"= {note}")


def follower_lag(harness: Harness, db: str, seconds: int) -> tuple[list[float], int]:
    """The lag of every append of one run, in ms, and the number of appends."""
    dsn = harness.dsn(db)
    name = f"lag_probe_{uuid.uuid4().hex[:8]}"
    seen: dict[uuid.UUID, float] = {}
    committed: dict[uuid.UUID, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT eventstore.register_external_projection(%s)", (name,))
        # Start the probe at the head, so that it reads only the appends of this run.
        with conn.transaction():
            conn.execute("SELECT eventstore.lock_projection(%s)", (name,))
            conn.execute(
                "SELECT eventstore.save_projection_checkpoint(%s, coalesce((SELECT (d.feed_key, d.id)::"
                "eventstore.feed_position FROM eventstore.domain_events AS d ORDER BY d.feed_key DESC, d.id DESC"
                " LIMIT 1), '(-1,0)'), 0)",
                (name,),
            )

    def handler(conn: psycopg.Connection[Any], event: Any) -> None:
        seen.setdefault(event.aggregate_id, time.monotonic())

    worker = ProjectionWorker(dsn, python_projections=[PythonProjection(name, handler)])
    following = threading.Thread(target=worker.run, kwargs={"install_signal_handlers": False})
    following.start()
    time.sleep(0.5)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                store = EventStore(conn)
                started = time.monotonic()
                calls = int(seconds * WRITER_RATE)
                for index in range(calls):
                    pause = started + index / WRITER_RATE - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    aggregate = uuid.uuid4()
                    store.append("Order", aggregate, [NewEvent("LagProbe", {})], expected_version=-1)
                    committed[aggregate] = time.monotonic()
        except BaseException as error:
            errors.append(error)

    writers = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    deadline = time.monotonic() + 30
    while len(seen) < len(committed) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    following.join()
    if errors:
        raise errors[0]
    missing = len(committed) - len(seen.keys() & committed.keys())
    if missing:
        raise RuntimeError(f"the follower never saw {missing} of {len(committed)} appends")
    return [max(0.0, seen[a] - at) * 1000 for a, at in committed.items()], len(committed)
