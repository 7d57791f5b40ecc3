# Generated from test_append_async.py by tools/async_to_sync.py; do not edit (run `make generate`).
"""append / load_events / read_all through the client, and error mapping.

Written for EventStore; test_append.py runs the same tests on EventStore.
"""

from __future__ import annotations

import tempfile
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from pg_eventstore.errors import (
    ConcurrencyError,
    EventIdConflictError,
    ImmutableEventError,
    InvalidEventError,
    RestoreNotFinishedError,
)
from pg_eventstore.models import FeedPosition, NewEvent, RecordedEvent
from pg_eventstore.store import ANY_VERSION, NO_STREAM, EventStore


def placed(n: int = 0) -> NewEvent:
    return NewEvent("OrderPlaced", {"orderNumber": f"ORD-{n}"}, metadata={"user": "test"})


def test_append_returns_stored_events_in_version_order(store: EventStore) -> None:
    order_id = uuid.uuid4()
    stored = store.append(
        "Order",
        order_id,
        [placed(1), NewEvent("OrderShipped", {"carrier": "DHL"})],
        expected_version=NO_STREAM,
    )
    assert [e.event_version for e in stored] == [0, 1]
    assert [e.event_type for e in stored] == ["OrderPlaced", "OrderShipped"]
    assert stored[0].metadata == {"user": "test"}
    assert stored[1].metadata == {}
    more = store.append("Order", order_id, [NewEvent("OrderDelivered", {})], expected_version=1)
    assert more[0].event_version == 2
    anywhere = store.append("Order", order_id, [NewEvent("Note", {})], expected_version=ANY_VERSION)
    assert anywhere[0].event_version == 3
    assert [e.event_version for e in store.load_events(order_id)] == [0, 1, 2, 3]
    assert [e.event_version for e in store.load_events(order_id, from_version=2)] == [2, 3]


def test_read_all_pages_resume_after_the_last_position(store: EventStore) -> None:
    ids = [uuid.uuid4() for _ in range(5)]
    for n, aggregate_id in enumerate(ids):
        store.append("Order", aggregate_id, [placed(n)], expected_version=NO_STREAM)
    first = store.read_all(max_count=2)
    assert len(first) == 2
    rest = store.read_all(first[-1].feed_position)
    text_rest = store.read_all(str(first[-1].feed_position))
    assert [e.aggregate_id for e in first + rest] == ids
    assert rest == text_rest
    assert FeedPosition.parse(str(rest[0].feed_position)) == rest[0].feed_position


def test_read_all_filters_by_event_and_aggregate_type(store: EventStore) -> None:
    store.append("Order", uuid.uuid4(), [placed(), NewEvent("OrderShipped", {})], expected_version=NO_STREAM)
    store.append("Customer", uuid.uuid4(), [NewEvent("CustomerRegistered", {})], expected_version=NO_STREAM)
    assert [e.event_type for e in store.read_all(event_types=["OrderShipped"])] == ["OrderShipped"]
    assert [e.event_type for e in store.read_all(aggregate_types=["Customer"])] == ["CustomerRegistered"]


def test_concurrency_error_carries_expected_and_actual_version(store: EventStore) -> None:
    order_id = uuid.uuid4()
    store.append("Order", order_id, [placed(), placed()], expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError) as caught:
        store.append("Order", order_id, [placed()], expected_version=0)
    assert caught.value.sqlstate == "ES001"
    assert (caught.value.expected_version, caught.value.actual_version) == (0, 1)
    assert caught.value.aggregate_id == str(order_id)
    assert len(store.load_events(order_id)) == 2


def test_retry_with_the_same_event_ids_returns_the_stored_events(store: EventStore) -> None:
    order_id = uuid.uuid4()
    events = [
        NewEvent("OrderPlaced", {"n": 1}, event_id=uuid.uuid4()),
        NewEvent("OrderShipped", {"n": 2}, event_id=uuid.uuid4()),
    ]
    first = store.append("Order", order_id, events, expected_version=NO_STREAM)
    again = store.append("Order", order_id, events, expected_version=NO_STREAM)
    assert again == first
    assert len(store.load_events(order_id)) == 2


def test_reused_event_id_with_other_content_is_refused(store: EventStore) -> None:
    event_id = uuid.uuid4()
    order_id = uuid.uuid4()
    store.append("Order", order_id, [NewEvent("OrderPlaced", {"n": 1}, event_id=event_id)], expected_version=-1)
    with pytest.raises(EventIdConflictError):
        store.append("Order", order_id, [NewEvent("OrderPlaced", {"n": 2}, event_id=event_id)], expected_version=0)
    with pytest.raises(EventIdConflictError):
        store.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced", {"n": 1}, event_id=event_id)], expected_version=-1)
    assert len(store.read_all()) == 1


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
def test_malformed_events_raise_invalid_event_error_and_write_nothing(
    store: EventStore, events: list[dict[str, Any]]
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        store.append("Order", uuid.uuid4(), events, expected_version=NO_STREAM)
    assert caught.value.sqlstate == "ES002"
    assert store.read_all() == []


def test_changing_an_aggregate_type_is_refused(store: EventStore) -> None:
    order_id = uuid.uuid4()
    store.append("Order", order_id, [placed()], expected_version=NO_STREAM)
    with pytest.raises(InvalidEventError):
        store.append("Invoice", order_id, [placed()], expected_version=ANY_VERSION)


def test_update_and_delete_raise_immutable_event_error(store: EventStore, conn: psycopg.Connection[Any]) -> None:
    store.append("Order", uuid.uuid4(), [placed()], expected_version=NO_STREAM)
    from pg_eventstore.errors import wrap_errors

    for statement in (
        "UPDATE eventstore.domain_events SET payload = '{}'",
        "DELETE FROM eventstore.domain_events",
        "TRUNCATE eventstore.domain_events",
    ):
        with pytest.raises(ImmutableEventError), wrap_errors():
            conn.execute(statement)


def test_restored_keys_ahead_of_the_cluster_raise_until_after_restore(
    store: EventStore, conn: psycopg.Connection[Any]
) -> None:
    store.append("Order", uuid.uuid4(), [placed()], expected_version=NO_STREAM)
    # What a restore into a young cluster looks like: a stored key far above its transaction ids.
    conn.execute(
        "INSERT INTO eventstore.domain_events (event_id, aggregate_type, aggregate_id, event_type,"
        " event_version, payload, feed_key) VALUES (gen_random_uuid(), 'Order', gen_random_uuid(), 'X', 0, '{}',"
        " 10000000000)"
    )
    with pytest.raises(RestoreNotFinishedError):
        store.append("Order", uuid.uuid4(), [placed()], expected_version=NO_STREAM)
    with pytest.raises(RestoreNotFinishedError):
        store.read_all()
    conn.execute("SELECT eventstore.after_restore()")
    new = store.append("Order", uuid.uuid4(), [placed()], expected_version=NO_STREAM)
    feed = store.read_all()
    assert len(feed) == 3
    assert feed[-1].event_id == new[0].event_id, "new events sort after the restored ones"


def test_a_pooled_call_is_one_round_trip_and_gives_its_connection_back_as_it_came(dsn: str) -> None:
    with ConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
        store = EventStore(pool)
        order_id = uuid.uuid4()
        with tempfile.TemporaryFile() as trace:
            with pool.connection() as conn:
                conn.pgconn.trace(trace.fileno())
            store.append("Order", order_id, [placed()], expected_version=NO_STREAM)
            with pytest.raises(ConcurrencyError):
                store.append("Order", order_id, [placed()], expected_version=NO_STREAM)
            with pool.connection() as conn:
                conn.pgconn.untrace()
                assert conn.autocommit is False
                assert conn.info.transaction_status == TransactionStatus.IDLE
            trace.seek(0)
            messages = trace.read().decode()
    # Each call is its statement alone, its own transaction: no BEGIN, no COMMIT, one wait for the server.
    assert messages.count("ReadyForQuery") == 2
    assert "BEGIN" not in messages
    assert "COMMIT" not in messages


def test_a_pooled_call_runs_in_the_transactions_its_pool_configures(dsn: str, store: EventStore) -> None:
    def read_only(conn: psycopg.Connection[Any]) -> None:
        conn.set_read_only(True)

    order_id = uuid.uuid4()
    with ConnectionPool(dsn, min_size=1, max_size=1, open=False, configure=read_only) as pool:
        read_only_store = EventStore(pool)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            read_only_store.append("Order", order_id, [placed()], expected_version=NO_STREAM)
    assert store.load_events(order_id) == []


def test_a_pool_of_autocommit_connections_keeps_them_so(dsn: str) -> None:
    with ConnectionPool(dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}) as pool:
        stored = EventStore(pool).append("Order", uuid.uuid4(), [placed()], expected_version=NO_STREAM)
        assert [event.event_version for event in stored] == [0]
        with pool.connection() as conn:
            assert conn.autocommit is True


def test_the_row_factory_takes_columns_in_any_order_and_refuses_missing_ones(
    store: EventStore, conn: psycopg.Connection[Any]
) -> None:
    order_id = uuid.uuid4()
    stored = store.append("Order", order_id, [placed(1), placed(2)], expected_version=NO_STREAM)
    with conn.cursor(row_factory=RecordedEvent.rows) as cur:
        cur.execute(
            "SELECT 'ignored' AS extra, feed_key, occurred_at, metadata, payload, event_version, event_type,"
            " aggregate_id, aggregate_type, event_id, id FROM eventstore.load_events(%s)",
            (order_id,),
        )
        assert cur.fetchall() == stored
        with pytest.raises(KeyError, match="event_id"):
            cur.execute("SELECT id FROM eventstore.load_events(%s)", (order_id,))
