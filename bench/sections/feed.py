"""The feed, R2: read_all catch-up over the generated history from Python, against a keyset SELECT on the
same rows (group `feed`); and the generated history itself, which the projections use too."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from psycopg.types.string import TextLoader

from bench.config import FEED_DB
from bench.harness import Harness
from bench.measure import Result, log
from bench.workloads import R2


def generate_history(harness: Harness) -> None:
    events = harness.config.feed_events
    log(f"generating {events:,} Order events in {FEED_DB} (and the same in the ceiling table)")
    started = time.monotonic()
    harness.execute(FEED_DB, "CALL bench.generate_order_history(%s)", (events,))
    harness.vacuum(FEED_DB)
    harness.checkpoint()
    orders = harness.scalar(FEED_DB, "SELECT count(*) FROM eventstore.streams")
    harness.notes.append(
        f"Generated history: {events:,} events of {orders:,} orders"
        f" in {time.monotonic() - started:.0f} s (bench.generate_order_history)."
    )
    log(f"  {orders:,} orders in {time.monotonic() - started:.0f} s")


def read_all_pass(harness: Harness, *, ours: bool, composite: bool = False) -> float:
    """Read the whole feed in pages of 1,000, each page its own statement; returns events/s.

    jsonb is loaded as text on both sides: the figure is the database's and the wire's.
    """
    with harness.connect(FEED_DB) as conn:
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
    if total < harness.config.feed_events:
        raise RuntimeError(f"the feed pass read {total} events, expected {harness.config.feed_events}")
    return total / elapsed


def run(harness: Harness) -> None:
    """R2; with diagnostics, the other read_all overload runs in the same rotation."""
    events = harness.config.feed_events
    label = R2.label.format(events=events)
    log(label)
    composite = "read_all with the position as eventstore.feed_position (the other overload)"
    measures: dict[str, Callable[[], float]] = {
        "ours": partial(read_all_pass, harness, ours=True),
        "ceiling": partial(read_all_pass, harness, ours=False),
    }
    if harness.config.diagnostics:
        measures[composite] = partial(read_all_pass, harness, ours=True, composite=True)
    figures = harness.compare_many("R2", measures)
    if composite in figures:
        harness.diagnostics.append(
            Result(
                f"{composite}, catch-up over {events:,} events",
                "events/s",
                figures[composite],
                figures["ours"],
                "read_all with the position as text (R2, what the Python client calls)",
            )
        )
    harness.add(R2.result(figures["ours"], figures["ceiling"], events=events))
