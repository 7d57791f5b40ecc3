"""Aggregates through the client: load_aggregate, state_at, history, event counts, snapshots,
and the Aggregate / AggregateRepository pattern (save with the loaded version, retry on conflict).

Most tests use the test-only aggregate type Counter (counters.py), whose SQL fold counts events and
sums their payload's n, so a Python fold of the stored events says exactly what the state must be.

Written for the asyncio API; test_aggregates.py runs the same tests on the sync one. A command is
a plain function in both APIs, so "another writer" inside a command is the sync `writer` fixture.
The test with threads is test_aggregates_threads.py.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from counters import (
    COUNTER_FOLD,
    COUNTER_FOLDS,
    COUNTER_START,
    TALLY_FOLD,
    TALLY_START,
    Counter,
    added,
    counter_fold,
    tally_fold,
)

from examples.orders import commands
from examples.orders.async_commands import PlaceOrder, place_order
from examples.orders.order import Order
from pg_eventstore.aggregate import Aggregate, AggregateRepository, AsyncAggregateRepository, DomainError
from pg_eventstore.async_store import NO_STREAM, AsyncEventStore
from pg_eventstore.errors import ConcurrencyError, InvalidEventError, UnknownTypeError
from pg_eventstore.models import AggregateState, NewEvent
from pg_eventstore.store import EventStore


@pytest.fixture
async def counters(aconn: psycopg.AsyncConnection[Any], astore: AsyncEventStore) -> AsyncEventStore:
    """The store, with the Counter type registered (snapshot every 50 events)."""
    await aconn.execute(COUNTER_FOLDS)
    await astore.register_aggregate_type("Counter", COUNTER_FOLD, COUNTER_START, snapshot_every=50)
    return astore


@pytest.fixture
def orders(orders_dsn: str, astore: AsyncEventStore) -> AsyncAggregateRepository[Order]:
    return AsyncAggregateRepository(astore, Order)


@pytest.fixture
def writer(dsn: str) -> Iterator[EventStore]:
    """Another client, on a connection of its own: it appends from inside a command."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield EventStore(connection)


async def snapshot_versions(aconn: psycopg.AsyncConnection[Any], aggregate_id: uuid.UUID) -> list[int]:
    cursor = await aconn.execute(
        "SELECT version FROM eventstore.aggregate_snapshots WHERE aggregate_id = %s ORDER BY version", [aggregate_id]
    )
    return [row[0] for row in await cursor.fetchall()]


PLACE = {
    "customerId": "6a1b7c34-9d3e-4f8a-8b2c-1d2e3f4a5b6c",
    "lineItems": [{"productId": "p-1", "sku": "SKU-1", "name": "Kettle", "quantity": 2, "unitPrice": 24.5}],
    "shippingAddress": {"line1": "1 Main St", "city": "Lyon", "country": "FR", "postalCode": "69001"},
}
SHIP = {"trackingNumber": "TRK-1", "carrier": "DHL"}
CANCEL = {"reason": "changed mind", "cancelledBy": "0b7f6a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"}


# -- the client ------------------------------------------------------------------------------


async def test_load_aggregate_returns_the_folded_state_and_version(counters: AsyncEventStore) -> None:
    counter_id = uuid.uuid4()
    assert await counters.load_aggregate("Counter", counter_id) is None
    await counters.append("Counter", counter_id, added(3, 4), expected_version=NO_STREAM)
    await counters.append("Counter", counter_id, added(5), expected_version=1)
    assert await counters.load_aggregate("Counter", counter_id) == AggregateState({"count": 3, "sum": 12, "last": 2}, 2)


async def test_an_unregistered_type_raises_unknown_type_error(counters: AsyncEventStore) -> None:
    counter_id = uuid.uuid4()
    await counters.append("Counter", counter_id, added(1), expected_version=NO_STREAM)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: counters.load_aggregate("Nope", counter_id),
        lambda: counters.state_at("Nope", counter_id, version=0),
        lambda: counters.state_at("Nope", counter_id, at=datetime.now(UTC)),
        lambda: counters.take_snapshot("Nope", counter_id),
        lambda: counters.prune_snapshots("Nope"),
    ]
    for call in calls:
        with pytest.raises(UnknownTypeError) as caught:
            await call()
        assert caught.value.sqlstate == "ES003"


async def test_state_at_takes_exactly_one_timezone_aware_moment_or_version(counters: AsyncEventStore) -> None:
    counter_id = uuid.uuid4()
    with pytest.raises(ValueError):
        await counters.state_at("Counter", counter_id)
    with pytest.raises(ValueError):
        await counters.state_at("Counter", counter_id, at=datetime.now(UTC), version=0)
    with pytest.raises(ValueError):
        await counters.state_at("Counter", counter_id, at=datetime(2024, 1, 1, 12, 0))
    with pytest.raises(ValueError):
        await counters.event_counts(datetime(2024, 1, 1), None)


async def test_state_at_a_version_and_at_a_moment(counters: AsyncEventStore) -> None:
    counter_id = uuid.uuid4()
    first = await counters.append("Counter", counter_id, added(10), expected_version=NO_STREAM)
    second = await counters.append("Counter", counter_id, added(20, 30), expected_version=0)
    assert await counters.state_at("Counter", counter_id, version=0) == AggregateState(
        {"count": 1, "sum": 10, "last": 0}, 0
    )
    assert await counters.state_at("Counter", counter_id, version=1) == AggregateState(
        {"count": 2, "sum": 30, "last": 1}, 1
    )
    assert await counters.state_at("Counter", counter_id, version=3) is None
    assert await counters.state_at("Counter", counter_id, at=first[0].occurred_at) == AggregateState(
        {"count": 1, "sum": 10, "last": 0}, 0
    )
    # The two events of one append occurred at the same moment.
    assert await counters.state_at("Counter", counter_id, at=second[0].occurred_at) == AggregateState(
        {"count": 3, "sum": 60, "last": 2}, 2
    )
    before = first[0].occurred_at - timedelta(microseconds=1)
    assert await counters.state_at("Counter", counter_id, at=before) is None
    assert await counters.state_at("Counter", uuid.uuid4(), version=0) is None


async def test_aggregate_history_shows_each_event_with_the_state_after_it(counters: AsyncEventStore) -> None:
    counter_id = uuid.uuid4()
    stored = await counters.append("Counter", counter_id, added(1, 2, 3), expected_version=NO_STREAM)
    history = await counters.aggregate_history(counter_id)
    assert [(h.event_version, h.event_type, h.payload, h.occurred_at) for h in history] == [
        (e.event_version, e.event_type, e.payload, e.occurred_at) for e in stored
    ]
    assert [h.state_after for h in history] == [counter_fold(stored[: n + 1]) for n in range(3)]

    untyped_id = uuid.uuid4()
    await counters.append(
        "Unregistered", untyped_id, [NewEvent("Noted", {}, metadata={"user": "u"})], expected_version=-1
    )
    [entry] = await counters.aggregate_history(untyped_id)
    assert (entry.event_type, entry.metadata, entry.state_after) == ("Noted", {"user": "u"}, None)
    assert await counters.aggregate_history(uuid.uuid4()) == []


async def test_event_counts_by_bucket_and_type(counters: AsyncEventStore) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    await counters.append("Counter", uuid.uuid4(), added(1, 2, 3), expected_version=NO_STREAM)
    await counters.append("Other", uuid.uuid4(), [NewEvent("Noted", {})], expected_version=NO_STREAM)
    end = datetime.now(UTC) + timedelta(seconds=1)

    counts = await counters.event_counts(start, end, bucket="minute")
    totals: dict[str, int] = {}
    for count in counts:
        assert start - timedelta(minutes=1) < count.bucket <= end
        totals[count.event_type] = totals.get(count.event_type, 0) + count.event_count
    assert totals == {"Added": 3, "Noted": 1}
    assert await counters.event_counts(start - timedelta(days=2), start - timedelta(days=1)) == []
    assert sum(c.event_count for c in await counters.event_counts(None, None, bucket="year")) == 4
    with pytest.raises(InvalidEventError):
        await counters.event_counts(start, end, bucket="fortnight")


async def test_register_take_snapshot_and_prune_through_the_client(
    aconn: psycopg.AsyncConnection[Any], counters: AsyncEventStore
) -> None:
    await counters.register_aggregate_type("Counter", COUNTER_FOLD, COUNTER_START, snapshot_every=0)
    counter_id = uuid.uuid4()
    await counters.append("Counter", counter_id, added(1, 2, 3), expected_version=NO_STREAM)
    assert await snapshot_versions(aconn, counter_id) == []
    assert await counters.take_snapshot("Counter", counter_id) == 2
    await counters.append("Counter", counter_id, added(4), expected_version=2)
    assert await counters.take_snapshot("Counter", counter_id) == 3
    assert await snapshot_versions(aconn, counter_id) == [2, 3]
    assert await counters.prune_snapshots("Counter", keep=1) == 1
    assert await snapshot_versions(aconn, counter_id) == [3]
    assert await counters.prune_snapshots(keep=0) == 1
    assert await snapshot_versions(aconn, counter_id) == []
    with pytest.raises(InvalidEventError):
        await counters.take_snapshot("Counter", uuid.uuid4())
    with pytest.raises(InvalidEventError):
        await counters.register_aggregate_type("Counter", "pg_catalog.lower(text)")
    with pytest.raises(InvalidEventError):
        await counters.register_aggregate_type("Counter", COUNTER_FOLD, snapshot_every=-1)


async def test_the_store_and_the_repository_with_a_snapshot_every_two_events(
    counters: AsyncEventStore, writer: EventStore
) -> None:
    await counters.register_aggregate_type("Counter", COUNTER_FOLD, COUNTER_START, snapshot_every=2)
    repository = AsyncAggregateRepository(counters, Counter)
    counter = repository.new()
    counter.add(1)
    counter.add(2)
    stored = await repository.save(counter)
    assert (counter.version, [e.event_version for e in stored]) == (1, [0, 1])

    loaded = await repository.load(counter.id)
    assert loaded is not None and (loaded.version, loaded.state["sum"]) == (1, 3)
    loaded.add(3)
    counter.add(4)
    await repository.save(loaded)
    with pytest.raises(ConcurrencyError):
        await repository.save(counter)
    calls = 0

    def add_once_conflicting(c: Counter) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            writer.append("Counter", c.id, added(10), expected_version=None)
        c.add(4)

    saved = await repository.run_command(counter.id, add_once_conflicting)
    assert (calls, saved.version) == (2, 4)
    assert await repository.load(uuid.uuid4()) is None

    expected = {"count": 5, "sum": 20, "last": 4}
    assert await counters.load_aggregate("Counter", counter.id) == AggregateState(expected, 4)
    assert await counters.state_at("Counter", counter.id, version=0) == AggregateState(
        {"count": 1, "sum": 1, "last": 0}, 0
    )
    events = await counters.load_events(counter.id)
    at_last = await counters.state_at("Counter", counter.id, at=events[-1].occurred_at)
    assert at_last == AggregateState(expected, 4)
    history = await counters.aggregate_history(counter.id)
    assert [h.state_after for h in history][-1] == expected
    counts = await counters.event_counts(None, None, bucket="year")
    assert sum(c.event_count for c in counts) == 5
    assert await counters.take_snapshot("Counter", counter.id) == 4
    assert await counters.prune_snapshots("Counter", keep=1) >= 1
    with pytest.raises(UnknownTypeError):
        await counters.load_aggregate("Nope", counter.id)
    with pytest.raises(ValueError):
        await counters.state_at("Counter", counter.id)


# -- snapshots -------------------------------------------------------------------------------


async def test_snapshots_at_the_boundaries_and_load_equals_a_fold_from_scratch(
    aconn: psycopg.AsyncConnection[Any], counters: AsyncEventStore
) -> None:
    rng = random.Random(120)
    counter_id = uuid.uuid4()
    for version in range(120):
        await counters.append("Counter", counter_id, added(rng.randint(1, 1000)), expected_version=version - 1)
    events = await counters.load_events(counter_id)
    assert await snapshot_versions(aconn, counter_id) == [50, 100]
    states = dict(await (await aconn.execute("SELECT version, state FROM eventstore.aggregate_snapshots")).fetchall())
    assert states == {50: counter_fold(events[:51]), 100: counter_fold(events[:101])}

    with_snapshots = await counters.load_aggregate("Counter", counter_id)
    await aconn.execute("DELETE FROM eventstore.aggregate_snapshots")
    from_scratch = await counters.load_aggregate("Counter", counter_id)
    assert with_snapshots == from_scratch == AggregateState(counter_fold(events), 119)


async def test_load_starts_from_the_latest_snapshot(
    aconn: psycopg.AsyncConnection[Any], counters: AsyncEventStore
) -> None:
    counter_id = uuid.uuid4()
    for version in range(60):
        await counters.append("Counter", counter_id, added(1), expected_version=version - 1)
    # Mark the snapshot: a load that starts from it shows the mark plus 9 events.
    await aconn.execute(
        'UPDATE eventstore.aggregate_snapshots SET state = \'{"count": 1000, "sum": 0, "last": 50}\''
        " WHERE aggregate_id = %s AND version = 50",
        [counter_id],
    )
    assert await counters.load_aggregate("Counter", counter_id) == AggregateState(
        {"count": 1009, "sum": 9, "last": 59}, 59
    )
    assert await counters.state_at("Counter", counter_id, version=55) == AggregateState(
        {"count": 1005, "sum": 5, "last": 55}, 55
    )
    assert await counters.state_at("Counter", counter_id, version=49) == AggregateState(
        {"count": 50, "sum": 50, "last": 49}, 49
    )


async def test_an_append_that_crosses_a_boundary_snapshots_its_last_version(
    aconn: psycopg.AsyncConnection[Any], counters: AsyncEventStore
) -> None:
    counter_id = uuid.uuid4()
    await counters.append("Counter", counter_id, added(*[1] * 48), expected_version=NO_STREAM)
    assert await snapshot_versions(aconn, counter_id) == []
    await counters.append("Counter", counter_id, added(*[1] * 10), expected_version=47)
    assert await snapshot_versions(aconn, counter_id) == [57]
    await counters.append("Counter", counter_id, added(*[1] * 60), expected_version=57)
    assert await snapshot_versions(aconn, counter_id) == [57, 117]
    assert await counters.load_aggregate("Counter", counter_id) == AggregateState(
        {"count": 118, "sum": 118, "last": 117}, 117
    )


async def test_a_changed_fold_never_sees_old_snapshots(
    aconn: psycopg.AsyncConnection[Any], counters: AsyncEventStore
) -> None:
    counter_id = uuid.uuid4()
    for version in range(120):
        await counters.append("Counter", counter_id, added(version + 1), expected_version=version - 1)
    events = await counters.load_events(counter_id)
    assert await snapshot_versions(aconn, counter_id) == [50, 100]

    # Another function.
    await counters.register_aggregate_type("Counter", TALLY_FOLD, TALLY_START, snapshot_every=50)
    assert await counters.load_aggregate("Counter", counter_id) == AggregateState(tally_fold(events), 119)
    assert await counters.state_at("Counter", counter_id, version=100) == AggregateState(tally_fold(events[:101]), 100)
    await counters.append("Counter", counter_id, added(*[1] * 31), expected_version=119)
    events = await counters.load_events(counter_id)
    assert await snapshot_versions(aconn, counter_id) == [50, 100, 150]
    assert await counters.load_aggregate("Counter", counter_id) == AggregateState(tally_fold(events), 150)

    # Back to the first function: its own snapshots are valid again, the other's are not.
    await counters.register_aggregate_type("Counter", COUNTER_FOLD, COUNTER_START, snapshot_every=50)
    assert await counters.load_aggregate("Counter", counter_id) == AggregateState(counter_fold(events), 150)

    # The same function with a new body.
    await aconn.execute(
        """
        CREATE OR REPLACE FUNCTION test_folds.counter(p_state jsonb, p_event eventstore.domain_events)
        RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
            SELECT jsonb_build_object(
                'count', (p_state ->> 'count')::integer + 1,
                'sum', (p_state ->> 'sum')::bigint + 10 * (p_event.payload ->> 'n')::bigint,
                'last', p_event.event_version
            )
        $$
        """
    )
    expected = counter_fold(events)
    expected["sum"] *= 10
    assert await counters.load_aggregate("Counter", counter_id) == AggregateState(expected, 150)
    # A new initial state is a new fold too.
    await counters.register_aggregate_type("Counter", COUNTER_FOLD, {"count": 1000, "sum": 0, "last": None})
    expected["count"] += 1000
    assert await counters.load_aggregate("Counter", counter_id) == AggregateState(expected, 150)


# -- temporal --------------------------------------------------------------------------------


async def append_in_random_batches(
    store: AsyncEventStore, aggregate_id: uuid.UUID, count: int, rng: random.Random
) -> None:
    version = -1
    while version < count - 1:
        size = min(rng.randint(1, 4), count - 1 - version)
        await store.append(
            "Counter", aggregate_id, added(*[rng.randint(1, 100) for _ in range(size)]), expected_version=version
        )
        version += size


async def test_state_at_each_events_moment_is_the_fold_of_the_events_up_to_it(counters: AsyncEventStore) -> None:
    await counters.register_aggregate_type("Counter", COUNTER_FOLD, COUNTER_START, snapshot_every=7)
    counter_id = uuid.uuid4()
    await append_in_random_batches(counters, counter_id, 60, random.Random(7))
    events = await counters.load_events(counter_id)
    for event in events:
        up_to = [e for e in events if e.occurred_at <= event.occurred_at]
        assert await counters.state_at("Counter", counter_id, at=event.occurred_at) == AggregateState(
            counter_fold(up_to), up_to[-1].event_version
        )
    for earlier, later in itertools.pairwise(events):
        if earlier.occurred_at < later.occurred_at:
            between = earlier.occurred_at + (later.occurred_at - earlier.occurred_at) / 2
            state = await counters.state_at("Counter", counter_id, at=between)
            assert state is not None and state.version == earlier.event_version
    before_the_first = events[0].occurred_at - timedelta(microseconds=1)
    assert await counters.state_at("Counter", counter_id, at=before_the_first) is None


async def test_state_at_every_version_of_a_130_event_aggregate(
    aconn: psycopg.AsyncConnection[Any], counters: AsyncEventStore
) -> None:
    counter_id = uuid.uuid4()
    await append_in_random_batches(counters, counter_id, 130, random.Random(130))
    events = await counters.load_events(counter_id)
    assert len(events) == 130
    assert await snapshot_versions(aconn, counter_id)  # the versions lie where the batches crossed 50 and 100
    for version in range(130):
        assert await counters.state_at("Counter", counter_id, version=version) == AggregateState(
            counter_fold(events[: version + 1]), version
        )
    assert await counters.state_at("Counter", counter_id, version=130) is None


# -- Aggregate and AggregateRepository --------------------------------------------------------


async def test_an_aggregate_class_without_a_type_is_refused(counters: AsyncEventStore) -> None:
    class Untyped(Aggregate):
        def apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
            pass

    with pytest.raises(TypeError):
        AsyncAggregateRepository(counters, Untyped)


async def test_record_applies_at_once_and_keeps_the_event_for_the_save(counters: AsyncEventStore) -> None:
    repository = AsyncAggregateRepository(counters, Counter)
    counter = repository.new()
    assert (counter.version, counter.is_new, counter.state) == (NO_STREAM, True, COUNTER_START)
    counter.add(2)
    counter.add(3)
    assert counter.state["sum"] == 5
    assert [(e.event_type, e.payload) for e in counter.uncommitted_events] == [("Added", {"n": 2}), ("Added", {"n": 3})]
    assert len({e.event_id for e in counter.uncommitted_events}) == 2
    assert Counter.initial_state == COUNTER_START  # the class's initial state is not changed by an instance


async def test_repository_save_and_load_round_trip(counters: AsyncEventStore) -> None:
    repository = AsyncAggregateRepository(counters, Counter)
    counter = repository.new()
    assert await repository.save(counter) == []
    counter.add(4)
    stored = await repository.save(counter)
    assert [e.event_version for e in stored] == [0]
    assert (counter.version, counter.uncommitted_events) == (0, [])

    loaded = await repository.load(counter.id)
    assert loaded is not None
    assert (loaded.id, loaded.version, loaded.state) == (counter.id, 0, {"count": 1, "sum": 4, "last": 0})
    loaded.add(5)
    loaded.add(6)
    await repository.save(loaded)
    assert loaded.version == 2
    reloaded = await repository.load(counter.id)
    assert reloaded is not None
    assert (reloaded.version, reloaded.state) == (2, {"count": 3, "sum": 15, "last": 2})
    assert await repository.load(uuid.uuid4()) is None


async def test_a_saved_aggregate_saved_again_appends_nothing_more(counters: AsyncEventStore) -> None:
    repository = AsyncAggregateRepository(counters, Counter)
    counter = repository.new()
    counter.add(1)
    events = counter.uncommitted_events
    stored = await repository.save(counter)
    # A retry after a lost acknowledgement sends the same events with the same ids.
    assert await counters.append("Counter", counter.id, events, expected_version=NO_STREAM) == stored
    assert len(await counters.load_events(counter.id)) == 1


async def test_a_stale_save_raises_concurrency_error_and_appends_nothing(counters: AsyncEventStore) -> None:
    repository = AsyncAggregateRepository(counters, Counter)
    counter = repository.new()
    counter.add(1)
    await repository.save(counter)
    first, second = await repository.load(counter.id), await repository.load(counter.id)
    assert first is not None and second is not None
    first.add(10)
    second.add(20)
    await repository.save(first)
    with pytest.raises(ConcurrencyError) as caught:
        await repository.save(second)
    assert (caught.value.expected_version, caught.value.actual_version) == (0, 1)
    assert (second.version, len(second.uncommitted_events)) == (0, 1)
    assert [e.payload["n"] for e in await counters.load_events(counter.id)] == [1, 10]

    racing = repository.new(counter.id)
    racing.add(1)
    with pytest.raises(ConcurrencyError):
        await repository.save(racing)


async def test_run_command_reloads_and_reruns_the_command_after_a_conflict(
    orders: AsyncAggregateRepository[Order], writer: EventStore
) -> None:
    other = AggregateRepository(writer, Order)
    order_id = (await place_order(orders, PlaceOrder.model_validate(PLACE))).id
    seen_versions: list[int] = []

    def cancel(order: Order) -> None:
        seen_versions.append(order.version)
        if len(seen_versions) == 1:
            # Another repository ships the order between this command's load and its save.
            commands.ship_order(other, order_id, SHIP)
        order.cancel(CANCEL)

    saved = await orders.run_command(order_id, cancel)
    assert seen_versions == [0, 1]
    assert (saved.version, saved.status, saved.uncommitted_events) == (2, "cancelled", [])
    assert [e.event_type for e in await orders.store.load_events(order_id)] == [
        "OrderPlaced",
        "OrderShipped",
        "OrderCancelled",
    ]
    loaded = await orders.store.load_aggregate("Order", order_id)
    assert loaded is not None and loaded.state["status"] == "cancelled"


async def test_run_command_gives_up_after_its_retries(counters: AsyncEventStore, writer: EventStore) -> None:
    repository = AsyncAggregateRepository(counters, Counter)
    counter_id = uuid.uuid4()
    await counters.append("Counter", counter_id, added(1), expected_version=NO_STREAM)
    calls = 0

    def add_while_another_writer_adds(counter: Counter) -> None:
        nonlocal calls
        calls += 1
        writer.append("Counter", counter_id, added(100), expected_version=None)
        counter.add(1)

    with pytest.raises(ConcurrencyError):
        await repository.run_command(counter_id, add_while_another_writer_adds, retries=2)
    assert calls == 3
    assert [e.payload["n"] for e in await counters.load_events(counter_id)] == [1, 100, 100, 100]
    with pytest.raises(ValueError):
        await repository.run_command(counter_id, add_while_another_writer_adds, retries=-1)


async def test_a_domain_error_appends_nothing(counters: AsyncEventStore) -> None:
    repository = AsyncAggregateRepository(counters, Counter)
    counter = await repository.run_command(uuid.uuid4(), lambda c: c.add(1))

    def add_then_break_a_rule(c: Counter) -> None:
        c.add(5)
        c.add(-1)

    with pytest.raises(DomainError):
        await repository.run_command(counter.id, add_then_break_a_rule)
    with pytest.raises(DomainError):
        await repository.run_command(uuid.uuid4(), lambda c: c.add(0))
    assert [e.payload["n"] for e in await counters.load_events(counter.id)] == [1]
    assert len(await counters.read_all()) == 1
