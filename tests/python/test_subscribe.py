# Generated from test_subscribe_async.py by tools/async_to_sync.py; do not edit (run `make generate`).
"""subscribe(): LISTEN for wake-ups, re-read the feed, resume from a position; and the NOTIFY it relies on.

Written for the asyncio API; test_subscribe.py runs the same tests on the sync one. The subscriber
runs in the test itself; what must happen while it waits is done by a thread of plain sync code
(the same in both files), and a watchdog timer sets the stop event if the events never come.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from pg_eventstore._acompat import Event
from pg_eventstore.models import NewEvent, RecordedEvent
from pg_eventstore.store import NO_STREAM, EventStore

# How long a test waits for its events; far less than the 30 s poll interval of the NOTIFY test.
PATIENCE = 10.0


@contextmanager
def watchdog(stop: Event) -> Iterator[None]:
    """Set stop after PATIENCE seconds, so a subscriber whose events never come ends and its test fails.

    Setting the stop event from the timer's thread is safe with asyncio too: nothing awaits the
    event, the follower only reads is_set() between its short waits.
    """
    timer = threading.Timer(PATIENCE, stop.set)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def append_while_it_waits(dsn: str, appended: list[RecordedEvent]) -> None:
    """Another client: three appends of two events each, once the subscriber is waiting."""
    time.sleep(0.3)
    with psycopg.connect(dsn, autocommit=True) as connection:
        store = EventStore(connection)
        for n in range(3):
            appended += store.append(
                "Order",
                uuid.uuid4(),
                [NewEvent("OrderPlaced", {"n": n}), NewEvent("OrderShipped", {"n": n})],
                expected_version=NO_STREAM,
            )
            time.sleep(0.05)


def test_subscribe_delivers_events_appended_after_it_started_in_feed_order(store: EventStore, dsn: str) -> None:
    before = store.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced", {"n": 0})], expected_version=NO_STREAM)
    stop = Event()
    received: list[RecordedEvent] = []
    appended: list[RecordedEvent] = []
    appender = threading.Thread(target=append_while_it_waits, args=(dsn, appended))
    appender.start()
    started = time.monotonic()
    with watchdog(stop):
        # A long poll interval: only the NOTIFY wake-up can make this test pass in time.
        for event in store.subscribe(before[-1].feed_position, poll_interval=30, stop=stop):
            received.append(event)
            if len(received) == 6:
                stop.set()
    appender.join()
    assert time.monotonic() - started < PATIENCE, f"subscribe delivered only {len(received)} of 6 events"
    assert [e.event_id for e in received] == [e.event_id for e in appended]
    positions = [e.feed_position for e in received]
    assert positions == sorted(positions)


def test_subscribe_resumes_after_a_lost_connection(store: EventStore, conn: psycopg.Connection[Any]) -> None:
    stop = Event()
    received: list[RecordedEvent] = []
    store.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced", {})], expected_version=NO_STREAM)
    started = time.monotonic()
    with watchdog(stop):
        for event in store.subscribe(poll_interval=0.2, reconnect_delay=0.1, stop=stop):
            received.append(event)
            if len(received) == 1:
                # Cut the subscriber's connection, then append: it must reconnect and read on.
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%%' OR query LIKE '%%read_all%%' AND pid <> pg_backend_pid()"
                )
                store.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced", {})], expected_version=NO_STREAM)
            if len(received) == 2:
                stop.set()
    assert time.monotonic() - started < PATIENCE, "subscribe did not resume after the lost connection"
    assert len({e.event_id for e in received}) == 2


def test_subscribe_yields_what_load_events_returns(store: EventStore) -> None:
    store.append(
        "Order",
        uuid.uuid4(),
        [NewEvent("A", {}), NewEvent("B", {}), NewEvent("C", {})],
        expected_version=NO_STREAM,
    )
    stop = Event()
    received: list[RecordedEvent] = []
    with watchdog(stop):
        for event in store.subscribe(poll_interval=30, stop=stop):
            received.append(event)
            if len(received) == 3:
                stop.set()
    assert store.load_events(received[0].aggregate_id) == received
    assert [e.event_type for e in received] == ["A", "B", "C"]


def test_one_notify_per_appending_transaction(dsn: str) -> None:
    with (
        psycopg.Connection.connect(dsn, autocommit=True) as listener,
        psycopg.Connection.connect(dsn) as writer,
    ):
        listener.execute("LISTEN eventstore_events")
        store = EventStore(writer)
        for _ in range(3):
            store.append(
                "Order",
                uuid.uuid4(),
                [NewEvent("OrderPlaced", {}), NewEvent("OrderShipped", {})],
                expected_version=NO_STREAM,
            )
        writer.commit()
        store.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced", {})], expected_version=NO_STREAM)
        writer.commit()
        notes = [note for note in listener.notifies(timeout=1.0)]
    assert len(notes) == 2
    assert all(n.channel == "eventstore_events" for n in notes)
