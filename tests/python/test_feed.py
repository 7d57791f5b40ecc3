"""The global feed under adversarial concurrency: never skips, never repeats, keeps each aggregate in order.

The writers mix what breaks the naive designs: a BIGSERIAL order skips
events that commit late (transactions held open), and a plain transaction-id
order inverts an aggregate when a transaction takes its id early (it writes
another table first) and then waits for that aggregate behind a younger one.
Since only appending transactions hold the fence, they also break a fence
that forgets one: transactions that write elsewhere and append only later
(in READ COMMITTED and in REPEATABLE READ), appends inside savepoints that
are rolled back or released, and a long unrelated
transaction, open for most of the run, which must not stop the reader.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from pg_eventstore.models import FeedPosition, NewEvent
from pg_eventstore.store import EventStore

DURATION = float(os.environ.get("FEED_TEST_SECONDS", "10"))
WRITERS = 8
HOT_AGGREGATES = [uuid.uuid4() for _ in range(4)]
MODES = [
    "plain",
    "plain",
    "other_table_first",
    "elsewhere_then_later",
    "repeatable_read_elsewhere_first",
    "held_open",
    "rollback",
    "savepoint_rolled_back",
    "savepoint_released",
]


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    committed: dict[uuid.UUID, tuple[uuid.UUID, int]] = field(default_factory=dict)
    rollbacks: int = 0
    modes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def record(self, events: list[Any]) -> None:
        with self.lock:
            for e in events:
                self.committed[e.event_id] = (e.aggregate_id, e.event_version)


def writer(dsn: str, seed: int, deadline: float, ledger: Ledger) -> None:
    rng = random.Random(seed)
    with psycopg.connect(dsn) as conn:
        store = EventStore(conn)
        while time.monotonic() < deadline:
            mode = rng.choice(MODES)
            target = rng.choice(HOT_AGGREGATES) if rng.random() < 0.7 else uuid.uuid4()

            def events(mode: str = mode) -> list[NewEvent]:
                return [NewEvent("Tick", {"writer": seed, "mode": mode}) for _ in range(rng.randint(1, 3))]

            try:
                stored = write_once(conn, store, rng, mode, target, events)
            except pg_errors.SerializationFailure:
                conn.rollback()  # REPEATABLE READ lost the race for a hot aggregate: nothing stored
                stored = None
            if stored is None:
                with ledger.lock:
                    ledger.rollbacks += 1
                continue
            ledger.record(stored)
            with ledger.lock:
                ledger.modes[mode] += 1


def write_once(
    conn: psycopg.Connection[Any],
    store: EventStore,
    rng: random.Random,
    mode: str,
    target: uuid.UUID,
    events: Any,
) -> list[Any] | None:
    """One transaction of the given mode; the events it committed, None when it rolled back."""
    if mode == "repeatable_read_elsewhere_first":
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    if mode in ("other_table_first", "elsewhere_then_later", "repeatable_read_elsewhere_first"):
        # Take a transaction id now, then append (later, or after queueing for a hot aggregate).
        conn.execute("INSERT INTO public.side_effects (note) VALUES ('before append')")
        time.sleep(rng.uniform(0.02, 0.15) if mode != "other_table_first" else rng.uniform(0, 0.02))
    if mode == "savepoint_rolled_back":
        conn.execute("SAVEPOINT attempt")
        store.append("Ticker", target, events(), expected_version=None)
        time.sleep(rng.uniform(0, 0.05))
        conn.execute("ROLLBACK TO SAVEPOINT attempt")
        time.sleep(rng.uniform(0, 0.05))  # no append of ours is live now, and the lock is gone
    if mode == "savepoint_released":
        conn.execute("SAVEPOINT attempt")
        stored = store.append("Ticker", target, events(), expected_version=None)
        conn.execute("RELEASE SAVEPOINT attempt")
    else:
        stored = store.append("Ticker", target, events(), expected_version=None)
    if mode in ("held_open", "savepoint_released"):
        time.sleep(rng.uniform(0.05, 0.2))
    if mode == "rollback":
        conn.rollback()
        return None
    conn.commit()
    return stored


@dataclass
class Unrelated:
    """A long transaction that never appends: open (with a transaction id) from `opened` to `closed`."""

    opened: float = 0.0
    closed: float = float("inf")


def unrelated_transaction(dsn: str, start: float, end: float, window: Unrelated) -> None:
    with psycopg.connect(dsn) as conn:
        time.sleep(max(0.0, start - time.monotonic()))
        conn.execute("INSERT INTO public.side_effects (note) VALUES ('unrelated, long')")
        window.opened = time.monotonic()
        time.sleep(max(0.0, end - time.monotonic()))
        window.closed = time.monotonic()
        conn.commit()


def test_feed_is_gap_free_and_ordered_under_adversarial_writers(dsn: str, report: Any) -> None:
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE public.side_effects (id bigserial PRIMARY KEY, note text)")

    ledger = Ledger()
    start = time.monotonic()
    deadline = start + DURATION
    threads = [threading.Thread(target=writer, args=(dsn, n, deadline, ledger)) for n in range(WRITERS)]
    window = Unrelated()
    threads.append(
        threading.Thread(
            target=unrelated_transaction, args=(dsn, start + DURATION * 0.1, start + DURATION * 0.9, window)
        )
    )
    for thread in threads:
        thread.start()

    seen: list[tuple[uuid.UUID, uuid.UUID, int]] = []
    read_while_unrelated_open = 0
    position: FeedPosition | None = None
    reads = 0
    with psycopg.connect(dsn, autocommit=True) as reader_conn:
        reader = EventStore(reader_conn)
        while True:
            writing = any(t.is_alive() for t in threads)
            page = reader.read_all(position, 200)
            read_at = time.monotonic()
            reads += 1
            for event in page:
                seen.append((event.event_id, event.aggregate_id, event.event_version))
                position = event.feed_position
            if window.opened + 0.5 < read_at < window.closed:
                read_while_unrelated_open += len(page)
            if not page and not writing:
                break  # every writer has ended, so the fence has passed everything
    for thread in threads:
        thread.join()

    ids = [event_id for event_id, _, _ in seen]
    repeated = len(ids) - len(set(ids))
    skipped = set(ledger.committed) - set(ids)
    phantom = set(ids) - set(ledger.committed)
    reordered = 0
    last_version: dict[uuid.UUID, int] = defaultdict(lambda: -1)
    for _, aggregate_id, version in seen:
        if version != last_version[aggregate_id] + 1:
            reordered += 1
        last_version[aggregate_id] = max(version, last_version[aggregate_id])

    report(
        f"feed under {WRITERS} adversarial writers for {DURATION:.0f}s: {len(ledger.committed)} committed events, "
        f"{len(seen)} read in {reads} pages, {ledger.rollbacks} rollbacks; "
        f"{read_while_unrelated_open} read while an unrelated transaction was open "
        f"({window.closed - window.opened:.1f}s); "
        f"skipped {len(skipped)}, repeated {repeated}, reordered {reordered}; "
        f"committed per mode {dict(sorted(ledger.modes.items()))}"
    )
    assert len(ledger.committed) > 500, "too little traffic to prove anything"
    assert ledger.rollbacks > 0
    assert all(ledger.modes[mode] > 0 for mode in MODES if mode != "rollback"), "every kind of writer committed"
    # The events appended while it was open, less what a reader may lag (held-open writers).
    assert read_while_unrelated_open > 100, "an unrelated transaction must not stop consumers"
    assert repeated == 0
    assert not skipped
    assert not phantom, "rolled-back events must never be read"
    assert reordered == 0
