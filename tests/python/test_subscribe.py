"""subscribe(): LISTEN for wake-ups, re-read the feed, resume from a position; and the NOTIFY it relies on."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pg_eventstore.async_store import AsyncEventStore
from pg_eventstore.models import NewEvent, RecordedEvent
from pg_eventstore.store import NO_STREAM, EventStore


def test_subscribe_delivers_events_appended_after_it_started_in_feed_order(pool: ConnectionPool[Any]) -> None:
    store = EventStore(pool)
    before = store.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced", {"n": 0})], expected_version=NO_STREAM)
    stop = threading.Event()
    received: list[RecordedEvent] = []

    def consume() -> None:
        # A long poll interval: only the NOTIFY wake-up can make this test pass in time.
        for event in store.subscribe(before[-1].feed_position, poll_interval=30, stop=stop):
            received.append(event)
            if len(received) == 6:
                stop.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.3)
    appended: list[RecordedEvent] = []
    for n in range(3):
        appended += store.append(
            "Order",
            uuid.uuid4(),
            [NewEvent("OrderPlaced", {"n": n}), NewEvent("OrderShipped", {"n": n})],
            expected_version=NO_STREAM,
        )
        time.sleep(0.05)
    consumer.join(10)
    assert not consumer.is_alive(), f"subscribe delivered only {len(received)} of 6 events"
    assert [e.event_id for e in received] == [e.event_id for e in appended]
    positions = [e.feed_position for e in received]
    assert positions == sorted(positions)


def test_subscribe_resumes_after_a_lost_connection(pool: ConnectionPool[Any], dsn: str) -> None:
    store = EventStore(pool)
    stop = threading.Event()
    received: list[RecordedEvent] = []
    store.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced", {})], expected_version=NO_STREAM)

    def consume() -> None:
        for event in store.subscribe(poll_interval=0.2, reconnect_delay=0.1, stop=stop):
            received.append(event)
            if len(received) == 2:
                stop.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%%' OR query LIKE '%%read_all%%' AND pid <> pg_backend_pid()"
        )
    store.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced", {})], expected_version=NO_STREAM)
    consumer.join(10)
    assert not consumer.is_alive()
    assert len({e.event_id for e in received}) == 2


def test_async_subscribe_delivers_new_events(dsn: str) -> None:
    async def scenario() -> list[RecordedEvent]:
        async with AsyncConnectionPool(dsn, min_size=1, max_size=4) as pool:
            store = AsyncEventStore(pool)
            stop = asyncio.Event()
            received: list[RecordedEvent] = []

            async def consume() -> None:
                async for event in store.subscribe(poll_interval=30, stop=stop):
                    received.append(event)
                    if len(received) == 3:
                        stop.set()

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.3)
            await store.append(
                "Order",
                uuid.uuid4(),
                [NewEvent("A", {}), NewEvent("B", {}), NewEvent("C", {})],
                expected_version=NO_STREAM,
            )
            await asyncio.wait_for(task, 10)
            loaded = await store.load_events(received[0].aggregate_id)
            assert loaded == received
            return received

    received = asyncio.run(scenario())
    assert [e.event_type for e in received] == ["A", "B", "C"]


def test_one_notify_per_appending_transaction(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as listener, psycopg.connect(dsn) as writer:
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
        notes = list(listener.notifies(timeout=1.0))
    assert len(notes) == 2
    assert all(n.channel == "eventstore_events" for n in notes)
