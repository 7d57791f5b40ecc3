"""Projections over the generated history (group `projections`): the rebuild against the handler called
over one plain SELECT, the inline-projection overhead on appends, and the async lag."""

from __future__ import annotations

import bisect
import statistics
import threading
import time
import uuid

import psycopg

from bench.config import FEED_DB
from bench.harness import Harness
from bench.measure import log
from bench.workloads import INLINE_OVERHEAD, LAG_P50, LAG_P99, LAG_P99_UNRELATED, PLACED_PAYLOAD, REBUILD
from pg_eventstore.models import NewEvent
from pg_eventstore.store import EventStore


def register_orders_projection(harness: Harness, name: str, mode: str) -> None:
    harness.execute(
        FEED_DB,
        "SELECT eventstore.register_projection(%s, 'orders.project_order(eventstore.domain_events)',"
        " NULL, %s, 'bench.reset_order_projections()')",
        (name, mode),
    )


def rebuild_run(harness: Harness, *, ours: bool) -> float:
    """Events/s of rebuild_projection, or of the handler over one ordered SELECT after a TRUNCATE."""
    with harness.connect(FEED_DB) as conn:
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


def appends(harness: Harness, *, inline: bool) -> float:
    """The inline-overhead script, with a second projection of the same handler registered inline for
    the runs that measure it and unregistered (no inline projection, no trigger) for the others."""
    registered = harness.scalar(FEED_DB, "SELECT count(*) FROM eventstore.projections WHERE name = 'orders_inline'")
    if inline and not registered:
        register_orders_projection(harness, "orders_inline", "inline")
    if registered and not inline:
        harness.execute(FEED_DB, "SELECT eventstore.unregister_projection('orders_inline')")
    assert INLINE_OVERHEAD.ours is not None
    return harness.run_script(INLINE_OVERHEAD.ours, FEED_DB, INLINE_OVERHEAD.clients, harness.config.seconds)


def run(harness: Harness) -> None:
    events = harness.config.feed_events
    register_orders_projection(harness, "orders", "async")
    harness.measure(
        REBUILD,
        ours=lambda: rebuild_run(harness, ours=True),
        ceiling=lambda: rebuild_run(harness, ours=False),
        events=events,
    )
    harness.measure(
        INLINE_OVERHEAD,
        ours=lambda: appends(harness, inline=True),
        ceiling=lambda: appends(harness, inline=False),
    )
    harness.execute(
        FEED_DB,
        "SELECT eventstore.unregister_projection('orders_inline')"
        " FROM eventstore.projections WHERE name = 'orders_inline'",
    )
    async_lag(harness)


# How long the unrelated transaction of the second lag run stays open, at least (issue 13).
UNRELATED_SECONDS = 30.0


def async_lag(harness: Harness) -> None:
    """Commit-to-projection lag, then the same with an unrelated transaction open throughout."""
    p50, p99, note = lag_run(harness, unrelated=False)
    harness.notes.append(f"Async lag: {note}.")
    harness.add(LAG_P50.result([p50], note=note))
    harness.add(LAG_P99.result([p99]))
    _, p99_unrelated, note = lag_run(harness, unrelated=True)
    harness.notes.append(f"Async lag with an unrelated transaction open: {note}.")
    harness.add(LAG_P99_UNRELATED.result([p99_unrelated], [p99], note=note))


def lag_run(harness: Harness, *, unrelated: bool) -> tuple[float, float, str]:
    """One appender at a fixed rate, one worker on NOTIFY wake-ups: (p50, p99, note).

    unrelated: a transaction that wrote elsewhere (so it has a transaction id) and never appends
    stays open from before the first append until the last is projected, and at least
    UNRELATED_SECONDS outside a quick run: before 0.4.0 it held every consumer back.
    """
    with harness.connect(FEED_DB) as conn:
        while conn.execute("SELECT eventstore.run_projection('orders', 10000)").fetchone() != (0,):
            pass
    harness.checkpoint()
    appends, rate = harness.config.lag_appends, harness.config.lag_rate
    log(f"async lag: {appends:,} appends at up to {rate:.0f}/s, a worker running run_projection on NOTIFY")

    covered: list[tuple[int, int]] = []
    commit_times: list[float] = []
    stop = threading.Event()
    ready = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with harness.connect(FEED_DB) as conn:
                conn.execute("LISTEN eventstore_events")
                ready.set()
                while not stop.is_set():
                    while True:
                        row = conn.execute("SELECT * FROM bench.run_projection_reporting('orders', 1000)").fetchone()
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

    thread = threading.Thread(target=worker)
    thread.start()
    ready.wait(10)
    holder = psycopg.connect(harness.dsn(FEED_DB)) if unrelated else None
    if holder is not None:
        holder.execute("CREATE TABLE IF NOT EXISTS bench.unrelated (note text)")
        holder.commit()
        holder.execute("INSERT INTO bench.unrelated VALUES ('open throughout the lag run')")
    held_from = time.monotonic()
    positions: list[tuple[int, int]] = []
    appended_at: list[float] = []
    with harness.connect(FEED_DB) as conn:
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
    held = time.monotonic() - held_from
    if holder is not None:
        minimum = 0.0 if harness.config.quick else UNRELATED_SECONDS
        time.sleep(max(0.0, minimum - held))
        held = time.monotonic() - held_from
        holder.commit()
        holder.close()
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
    if holder is not None:
        note += f"; the unrelated transaction was open {held:.1f} s"
    return p50, p99, note
