"""Optimistic concurrency with real connections and threads."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from pg_eventstore.errors import ConcurrencyError
from pg_eventstore.models import NewEvent
from pg_eventstore.store import NO_STREAM, EventStore


def test_two_writers_with_the_same_expected_version_exactly_one_wins(dsn: str) -> None:
    order_id = uuid.uuid4()
    with psycopg.connect(dsn, autocommit=True) as setup:
        EventStore(setup).append("Order", order_id, [NewEvent("OrderPlaced", {})], expected_version=NO_STREAM)

    # Force the interleaving: A appends in an open transaction and holds the
    # aggregate; B appends with the same expected version and must wait;
    # A commits; B must then fail with ES001, not a unique violation.
    with psycopg.connect(dsn) as first, psycopg.connect(dsn, autocommit=True) as second:
        EventStore(first).append("Order", order_id, [NewEvent("OrderShipped", {"by": "A"})], expected_version=0)
        outcome: dict[str, Any] = {}
        second_pid = second.info.backend_pid

        def write_second() -> None:
            try:
                EventStore(second).append(
                    "Order", order_id, [NewEvent("OrderShipped", {"by": "B"})], expected_version=0
                )
                outcome["result"] = "appended"
            except Exception as error:  # the assertion below names what was expected
                outcome["result"] = error

        thread = threading.Thread(target=write_second)
        thread.start()
        with psycopg.connect(dsn, autocommit=True) as observer:
            for _ in range(500):
                row = observer.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [second_pid]
                ).fetchone()
                if row and row[0] == "Lock":
                    break
                threading.Event().wait(0.01)
            else:
                pytest.fail("the second writer never waited for the first")
        first.commit()
        thread.join(10)

    assert isinstance(outcome["result"], ConcurrencyError)
    assert (outcome["result"].expected_version, outcome["result"].actual_version) == (0, 1)
    with psycopg.connect(dsn) as check:
        events = EventStore(check).load_events(order_id)
    assert [(e.event_version, e.payload.get("by")) for e in events] == [(0, None), (1, "A")]


def test_writers_racing_to_create_one_aggregate_exactly_one_wins(pool: ConnectionPool[Any]) -> None:
    store = EventStore(pool)
    order_id = uuid.uuid4()
    barrier = threading.Barrier(8)

    def create(n: int) -> str:
        barrier.wait()
        try:
            store.append("Order", order_id, [NewEvent("OrderPlaced", {"n": n})], expected_version=NO_STREAM)
            return "created"
        except ConcurrencyError:
            return "conflict"

    with ThreadPoolExecutor(8) as executor:
        results = list(executor.map(create, range(8)))
    assert sorted(results) == ["conflict"] * 7 + ["created"]
    assert len(store.load_events(order_id)) == 1


def test_many_threads_on_one_aggregate_keep_versions_dense(pool: ConnectionPool[Any]) -> None:
    """12 threads, reload-and-retry: every acknowledged event stored once, versions 0..N-1, only ES001 seen."""
    store = EventStore(pool)
    order_id = uuid.uuid4()
    store.append("Order", order_id, [NewEvent("OrderPlaced", {})], expected_version=NO_STREAM)
    appends_per_thread = 25
    conflicts = 0
    lock = threading.Lock()
    acknowledged: list[uuid.UUID] = []

    def hammer(worker: int) -> None:
        nonlocal conflicts
        for n in range(appends_per_thread):
            while True:
                version = store.load_events(order_id)[-1].event_version
                try:
                    stored = store.append(
                        "Order",
                        order_id,
                        [NewEvent("ItemAdded", {"worker": worker, "n": n})],
                        expected_version=version,
                    )
                except ConcurrencyError:
                    with lock:
                        conflicts += 1
                    continue
                with lock:
                    acknowledged.append(stored[0].event_id)
                break

    with ThreadPoolExecutor(12) as executor:
        list(executor.map(hammer, range(12)))

    events = store.load_events(order_id)
    assert [e.event_version for e in events] == list(range(1 + 12 * appends_per_thread))
    assert sorted(e.event_id for e in events[1:]) == sorted(acknowledged)
    assert conflicts > 0, "the threads never collided, so the test proved nothing"


def test_writers_on_different_aggregates_do_not_wait_for_each_other(dsn: str) -> None:
    """An open append transaction on one aggregate must not block appends to others."""
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as other:
        held = uuid.uuid4()
        EventStore(holder).append("Order", held, [NewEvent("OrderPlaced", {})], expected_version=NO_STREAM)
        other.execute("SET lock_timeout = '2s'")
        free = EventStore(other)
        for _ in range(20):
            free.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced", {})], expected_version=NO_STREAM)
        existing = uuid.uuid4()
        free.append("Order", existing, [NewEvent("OrderPlaced", {})], expected_version=NO_STREAM)
        free.append("Order", existing, [NewEvent("OrderShipped", {})], expected_version=0)
        holder.commit()
