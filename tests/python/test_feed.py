"""The global feed under adversarial concurrency: never skips, never repeats, keeps each aggregate in order.

The writers mix what breaks the naive designs: a BIGSERIAL order skips
events that commit late (transactions held open), and a plain transaction-id
order inverts an aggregate when a transaction takes its id early (it writes
another table first) and then waits for that aggregate behind a younger one.
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

from pg_eventstore.models import FeedPosition, NewEvent
from pg_eventstore.store import EventStore

DURATION = float(os.environ.get("FEED_TEST_SECONDS", "10"))
WRITERS = 8
HOT_AGGREGATES = [uuid.uuid4() for _ in range(4)]


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    committed: dict[uuid.UUID, tuple[uuid.UUID, int]] = field(default_factory=dict)
    rollbacks: int = 0

    def record(self, events: list[Any]) -> None:
        with self.lock:
            for e in events:
                self.committed[e.event_id] = (e.aggregate_id, e.event_version)


def writer(dsn: str, seed: int, deadline: float, ledger: Ledger) -> None:
    rng = random.Random(seed)
    with psycopg.connect(dsn) as conn:
        store = EventStore(conn)
        while time.monotonic() < deadline:
            mode = rng.choice(["plain", "plain", "other_table_first", "held_open", "rollback"])
            target = rng.choice(HOT_AGGREGATES) if rng.random() < 0.7 else uuid.uuid4()
            events = [NewEvent("Tick", {"writer": seed, "mode": mode}) for _ in range(rng.randint(1, 3))]
            if mode == "other_table_first":
                # Take a transaction id now, then queue up for a hot aggregate.
                conn.execute("INSERT INTO public.side_effects (note) VALUES ('before append')")
                time.sleep(rng.uniform(0, 0.02))
            stored = store.append("Ticker", target, events, expected_version=None)
            if mode == "held_open":
                time.sleep(rng.uniform(0.05, 0.2))
            if mode == "rollback":
                conn.rollback()
                with ledger.lock:
                    ledger.rollbacks += 1
                continue
            conn.commit()
            ledger.record(stored)


def test_feed_is_gap_free_and_ordered_under_adversarial_writers(dsn: str, report: Any) -> None:
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE public.side_effects (id bigserial PRIMARY KEY, note text)")

    ledger = Ledger()
    deadline = time.monotonic() + DURATION
    threads = [threading.Thread(target=writer, args=(dsn, n, deadline, ledger)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()

    seen: list[tuple[uuid.UUID, uuid.UUID, int]] = []
    position: FeedPosition | None = None
    reads = 0
    with psycopg.connect(dsn, autocommit=True) as reader_conn:
        reader = EventStore(reader_conn)
        while True:
            writing = any(t.is_alive() for t in threads)
            page = reader.read_all(position, 200)
            reads += 1
            for event in page:
                seen.append((event.event_id, event.aggregate_id, event.event_version))
                position = event.feed_position
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
        f"skipped {len(skipped)}, repeated {repeated}, reordered {reordered}"
    )
    assert len(ledger.committed) > 500, "too little traffic to prove anything"
    assert ledger.rollbacks > 0
    assert repeated == 0
    assert not skipped
    assert not phantom, "rolled-back events must never be read"
    assert reordered == 0
