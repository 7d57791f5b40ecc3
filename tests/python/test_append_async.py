"""append / load_events / read_all through the client, and error mapping.

Written for AsyncEventStore; test_append.py runs the same tests on EventStore.
"""

from __future__ import annotations

import tempfile
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from pg_eventstore.async_store import ANY_VERSION, NO_STREAM, AsyncEventStore
from pg_eventstore.errors import (
    ConcurrencyError,
    EventIdConflictError,
    ImmutableEventError,
    InvalidEventError,
    RestoreNotFinishedError,
)
from pg_eventstore.models import FeedPosition, NewEvent, RecordedEvent


def placed(n: int = 0) -> NewEvent:
    return NewEvent("OrderPlaced", {"orderNumber": f"ORD-{n}"}, metadata={"user": "test"})


async def test_append_returns_stored_events_in_version_order(astore: AsyncEventStore) -> None:
    order_id = uuid.uuid4()
    stored = await astore.append(
        "Order",
        order_id,
        [placed(1), NewEvent("OrderShipped", {"carrier": "DHL"})],
        expected_version=NO_STREAM,
    )
    assert [e.event_version for e in stored] == [0, 1]
    assert [e.event_type for e in stored] == ["OrderPlaced", "OrderShipped"]
    assert stored[0].metadata == {"user": "test"}
    assert stored[1].metadata == {}
    more = await astore.append("Order", order_id, [NewEvent("OrderDelivered", {})], expected_version=1)
    assert more[0].event_version == 2
    anywhere = await astore.append("Order", order_id, [NewEvent("Note", {})], expected_version=ANY_VERSION)
    assert anywhere[0].event_version == 3
    assert [e.event_version for e in await astore.load_events(order_id)] == [0, 1, 2, 3]
    assert [e.event_version for e in await astore.load_events(order_id, from_version=2)] == [2, 3]


async def test_read_all_pages_resume_after_the_last_position(astore: AsyncEventStore) -> None:
    ids = [uuid.uuid4() for _ in range(5)]
    for n, aggregate_id in enumerate(ids):
        await astore.append("Order", aggregate_id, [placed(n)], expected_version=NO_STREAM)
    first = await astore.read_all(max_count=2)
    assert len(first) == 2
    rest = await astore.read_all(first[-1].feed_position)
    text_rest = await astore.read_all(str(first[-1].feed_position))
    assert [e.aggregate_id for e in first + rest] == ids
    assert rest == text_rest
    assert FeedPosition.parse(str(rest[0].feed_position)) == rest[0].feed_position


async def test_read_all_filters_by_event_and_aggregate_type(astore: AsyncEventStore) -> None:
    await astore.append("Order", uuid.uuid4(), [placed(), NewEvent("OrderShipped", {})], expected_version=NO_STREAM)
    await astore.append("Customer", uuid.uuid4(), [NewEvent("CustomerRegistered", {})], expected_version=NO_STREAM)
    assert [e.event_type for e in await astore.read_all(event_types=["OrderShipped"])] == ["OrderShipped"]
    assert [e.event_type for e in await astore.read_all(aggregate_types=["Customer"])] == ["CustomerRegistered"]


async def test_concurrency_error_carries_expected_and_actual_version(astore: AsyncEventStore) -> None:
    order_id = uuid.uuid4()
    await astore.append("Order", order_id, [placed(), placed()], expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError) as caught:
        await astore.append("Order", order_id, [placed()], expected_version=0)
    assert caught.value.sqlstate == "ES001"
    assert (caught.value.expected_version, caught.value.actual_version) == (0, 1)
    assert caught.value.aggregate_id == str(order_id)
    assert len(await astore.load_events(order_id)) == 2


async def test_retry_with_the_same_event_ids_returns_the_stored_events(astore: AsyncEventStore) -> None:
    order_id = uuid.uuid4()
    events = [
        NewEvent("OrderPlaced", {"n": 1}, event_id=uuid.uuid4()),
        NewEvent("OrderShipped", {"n": 2}, event_id=uuid.uuid4()),
    ]
    first = await astore.append("Order", order_id, events, expected_version=NO_STREAM)
    again = await astore.append("Order", order_id, events, expected_version=NO_STREAM)
    assert again == first
    assert len(await astore.load_events(order_id)) == 2


async def test_reused_event_id_with_other_content_is_refused(astore: AsyncEventStore) -> None:
    event_id = uuid.uuid4()
    order_id = uuid.uuid4()
    await astore.append("Order", order_id, [NewEvent("OrderPlaced", {"n": 1}, event_id=event_id)], expected_version=-1)
    with pytest.raises(EventIdConflictError):
        await astore.append(
            "Order", order_id, [NewEvent("OrderPlaced", {"n": 2}, event_id=event_id)], expected_version=0
        )
    with pytest.raises(EventIdConflictError):
        await astore.append(
            "Order", uuid.uuid4(), [NewEvent("OrderPlaced", {"n": 1}, event_id=event_id)], expected_version=-1
        )
    assert len(await astore.read_all()) == 1


@pytest.mark.parametrize(
    "events",
    [
        [],
        [{"payload": {}}],
        [{"event_type": "", "payload": {}}],
        [{"event_type": "X", "payload": [1]}],
        [{"event_type": "X", "payload": {}, "metadata": "user"}],
        [{"event_type": "X", "payload": {}, "event_id": "not-a-uuid"}],
        [{"event_type": "X", "payload": {}, "eventType": "typo"}],
    ],
)
async def test_malformed_events_raise_invalid_event_error_and_write_nothing(
    astore: AsyncEventStore, events: list[dict[str, Any]]
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        await astore.append("Order", uuid.uuid4(), events, expected_version=NO_STREAM)
    assert caught.value.sqlstate == "ES002"
    assert await astore.read_all() == []


async def test_changing_an_aggregate_type_is_refused(astore: AsyncEventStore) -> None:
    order_id = uuid.uuid4()
    await astore.append("Order", order_id, [placed()], expected_version=NO_STREAM)
    with pytest.raises(InvalidEventError):
        await astore.append("Invoice", order_id, [placed()], expected_version=ANY_VERSION)


async def test_update_and_delete_raise_immutable_event_error(
    astore: AsyncEventStore, aconn: psycopg.AsyncConnection[Any]
) -> None:
    await astore.append("Order", uuid.uuid4(), [placed()], expected_version=NO_STREAM)
    from pg_eventstore.errors import wrap_errors

    for statement in (
        "UPDATE eventstore.domain_events SET payload = '{}'",
        "DELETE FROM eventstore.domain_events",
        "TRUNCATE eventstore.domain_events",
    ):
        with pytest.raises(ImmutableEventError), wrap_errors():
            await aconn.execute(statement)


async def test_restored_keys_ahead_of_the_cluster_raise_until_after_restore(
    astore: AsyncEventStore, aconn: psycopg.AsyncConnection[Any]
) -> None:
    await astore.append("Order", uuid.uuid4(), [placed()], expected_version=NO_STREAM)
    # What a restore into a young cluster looks like: a stored key far above its transaction ids.
    await aconn.execute(
        "INSERT INTO eventstore.domain_events (event_id, aggregate_type, aggregate_id, event_type,"
        " event_version, payload, feed_key) VALUES (gen_random_uuid(), 'Order', gen_random_uuid(), 'X', 0, '{}',"
        " 10000000000)"
    )
    with pytest.raises(RestoreNotFinishedError):
        await astore.append("Order", uuid.uuid4(), [placed()], expected_version=NO_STREAM)
    with pytest.raises(RestoreNotFinishedError):
        await astore.read_all()
    await aconn.execute("SELECT eventstore.after_restore()")
    new = await astore.append("Order", uuid.uuid4(), [placed()], expected_version=NO_STREAM)
    feed = await astore.read_all()
    assert len(feed) == 3
    assert feed[-1].event_id == new[0].event_id, "new events sort after the restored ones"


async def test_a_pooled_call_is_one_round_trip_and_gives_its_connection_back_as_it_came(dsn: str) -> None:
    async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
        store = AsyncEventStore(pool)
        order_id = uuid.uuid4()
        with tempfile.TemporaryFile() as trace:
            async with pool.connection() as conn:
                conn.pgconn.trace(trace.fileno())
            await store.append("Order", order_id, [placed()], expected_version=NO_STREAM)
            with pytest.raises(ConcurrencyError):
                await store.append("Order", order_id, [placed()], expected_version=NO_STREAM)
            async with pool.connection() as conn:
                conn.pgconn.untrace()
                assert conn.autocommit is False
                assert conn.info.transaction_status == TransactionStatus.IDLE
            trace.seek(0)
            messages = trace.read().decode()
    # Each call is its statement alone, its own transaction: no BEGIN, no COMMIT, one wait for the server.
    assert messages.count("ReadyForQuery") == 2
    assert "BEGIN" not in messages
    assert "COMMIT" not in messages


async def test_a_pooled_call_runs_in_the_transactions_its_pool_configures(dsn: str, astore: AsyncEventStore) -> None:
    async def read_only(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.set_read_only(True)

    order_id = uuid.uuid4()
    async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False, configure=read_only) as pool:
        read_only_store = AsyncEventStore(pool)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await read_only_store.append("Order", order_id, [placed()], expected_version=NO_STREAM)
    assert await astore.load_events(order_id) == []


async def test_a_pool_of_autocommit_connections_keeps_them_so(dsn: str) -> None:
    async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}) as pool:
        stored = await AsyncEventStore(pool).append("Order", uuid.uuid4(), [placed()], expected_version=NO_STREAM)
        assert [event.event_version for event in stored] == [0]
        async with pool.connection() as conn:
            assert conn.autocommit is True


async def test_the_row_factory_takes_columns_in_any_order_and_refuses_missing_ones(
    astore: AsyncEventStore, aconn: psycopg.AsyncConnection[Any]
) -> None:
    order_id = uuid.uuid4()
    stored = await astore.append("Order", order_id, [placed(1), placed(2)], expected_version=NO_STREAM)
    async with aconn.cursor(row_factory=RecordedEvent.rows) as cur:
        await cur.execute(
            "SELECT 'ignored' AS extra, feed_key, occurred_at, metadata, payload, event_version, event_type,"
            " aggregate_id, aggregate_type, event_id, id FROM eventstore.load_events(%s)",
            (order_id,),
        )
        assert await cur.fetchall() == stored
        with pytest.raises(KeyError, match="event_id"):
            await cur.execute("SELECT id FROM eventstore.load_events(%s)", (order_id,))
