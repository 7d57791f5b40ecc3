"""The example Order domain (examples/orders): lifecycle, rules, payload validation, place_order's
arithmetic, and the SQL fold checked against an independent Python computation on random orders.

Written for the asyncio API; test_orders.py runs the same tests on the sync one.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from examples.orders.async_commands import (
    FLAT_SHIPPING,
    PlaceOrder,
    cancel_order,
    deliver_order,
    order_number,
    place_order,
    ship_order,
)
from examples.orders.order import Order, OrderPlaced
from pg_eventstore.aggregate import AsyncAggregateRepository, DomainError
from pg_eventstore.async_store import NO_STREAM, AsyncEventStore
from pg_eventstore.models import RecordedEvent

CUSTOMER = "6a1b7c34-9d3e-4f8a-8b2c-1d2e3f4a5b6c"
ADDRESS = {"line1": "1 Main St", "city": "Lyon", "country": "FR", "postalCode": "69001"}
KETTLE = {"productId": "p-1", "sku": "SKU-1", "name": "Kettle", "quantity": 2, "unitPrice": 24.5}
LAMP = {"productId": "p-2", "sku": "SKU-2", "name": "Lamp", "quantity": 1, "unitPrice": 60.0}
SHIP = {"trackingNumber": "TRK-1", "carrier": "DHL", "estimatedDelivery": "2024-05-03T12:00:00+02:00"}
DELIVER = {"deliveredAt": "2024-05-02T18:30:00.123456+02:00", "signedBy": "Ada"}
# A valid OrderPlaced payload.
PLACED = {
    "orderNumber": "ORD-1",
    "customerId": CUSTOMER,
    "lineItems": [KETTLE],
    "shippingAddress": ADDRESS,
    "subtotal": 49.0,
    "shippingCost": 4.95,
    "total": 53.95,
}
CANCEL = {"reason": "changed mind", "cancelledBy": "0b7f6a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b", "refundAmount": 49.0}

# The Order fold's initial state, written out here rather than imported, so the
# Python computation below is independent of examples/orders.
INITIAL_STATE: dict[str, Any] = {
    "status": "pending",
    "orderNumber": None,
    "customerId": None,
    "lineItems": [],
    "shippingAddress": None,
    "subtotal": 0,
    "shippingCost": 0,
    "total": 0,
    "placedAt": None,
    "shippedAt": None,
    "deliveredAt": None,
    "cancelledAt": None,
}


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expected_order_state(events: Sequence[RecordedEvent]) -> dict[str, Any] | None:
    """An order's state computed in Python from its stored events, as orders.order_fold should compute it."""
    if not events:
        return None
    state = dict(INITIAL_STATE)
    for event in events:
        payload = event.payload
        if event.event_type == "OrderPlaced":
            state |= {
                "status": "placed",
                "orderNumber": payload.get("orderNumber"),
                "customerId": payload.get("customerId"),
                "lineItems": payload.get("lineItems", []),
                "shippingAddress": payload.get("shippingAddress"),
                "subtotal": payload.get("subtotal"),
                "shippingCost": payload.get("shippingCost"),
                "total": payload.get("total"),
                "placedAt": utc_text(event.occurred_at),
            }
        elif event.event_type == "OrderShipped":
            state |= {
                "status": "shipped",
                "carrier": payload.get("carrier"),
                "trackingNumber": payload.get("trackingNumber"),
                "shippedAt": utc_text(event.occurred_at),
            }
        elif event.event_type == "OrderDelivered":
            delivered = payload.get("deliveredAt")
            moment = event.occurred_at if delivered is None else datetime.fromisoformat(delivered)
            state |= {"status": "delivered", "deliveredAt": utc_text(moment)}
        elif event.event_type == "OrderCancelled":
            state |= {
                "status": "cancelled",
                "cancelReason": payload.get("reason"),
                "cancelledAt": utc_text(event.occurred_at),
            }
    return state


@pytest.fixture
def orders(orders_dsn: str, astore: AsyncEventStore) -> AsyncAggregateRepository[Order]:
    return AsyncAggregateRepository(astore, Order)


async def place(orders: AsyncAggregateRepository[Order], *items: dict[str, Any], now: datetime | None = None) -> Order:
    command = {"customerId": CUSTOMER, "lineItems": list(items or [KETTLE]), "shippingAddress": ADDRESS}
    return await place_order(orders, command, now=now)


async def test_order_initial_state_is_the_registered_one(orders_dsn: str, aconn: psycopg.AsyncConnection[Any]) -> None:
    cursor = await aconn.execute("SELECT initial_state FROM eventstore.aggregate_types WHERE aggregate_type = 'Order'")
    row = await cursor.fetchone()
    assert row is not None
    assert row[0] == dict(Order.initial_state) == INITIAL_STATE


async def test_place_ship_deliver(orders: AsyncAggregateRepository[Order]) -> None:
    store = orders.store
    order = await place(orders, KETTLE, now=datetime(2024, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=-3))))
    await ship_order(orders, order.id, SHIP, metadata={"user": "clerk"})
    delivered = await deliver_order(orders, order.id, DELIVER)
    assert (delivered.version, delivered.status) == (2, "delivered")

    events = await store.load_events(order.id)
    assert [e.event_type for e in events] == ["OrderPlaced", "OrderShipped", "OrderDelivered"]
    assert events[1].metadata == {"user": "clerk"}
    loaded = await store.load_aggregate("Order", order.id)
    assert loaded is not None and loaded.version == 2
    assert loaded.state == INITIAL_STATE | {
        "status": "delivered",
        "orderNumber": f"ORD-20240502-{order.id.hex[:8].upper()}",
        "customerId": CUSTOMER,
        "lineItems": [KETTLE],
        "shippingAddress": ADDRESS,
        "subtotal": 49.0,
        "shippingCost": FLAT_SHIPPING,
        "total": 53.95,
        "placedAt": utc_text(events[0].occurred_at),
        "carrier": "DHL",
        "trackingNumber": "TRK-1",
        "shippedAt": utc_text(events[1].occurred_at),
        "deliveredAt": "2024-05-02T16:30:00.123456Z",
    }
    assert events[1].payload["estimatedDelivery"] == "2024-05-03T12:00:00+02:00"
    assert events[2].payload == {"deliveredAt": "2024-05-02T18:30:00.123456+02:00", "signedBy": "Ada"}


async def test_place_cancel(orders: AsyncAggregateRepository[Order]) -> None:
    order = await place(orders, KETTLE, LAMP)
    cancelled = await cancel_order(orders, order.id, CANCEL)
    assert (cancelled.version, cancelled.status) == (1, "cancelled")
    events = await orders.store.load_events(order.id)
    assert events[1].payload == CANCEL
    loaded = await orders.store.load_aggregate("Order", order.id)
    assert loaded is not None
    assert (loaded.state["status"], loaded.state["cancelReason"]) == ("cancelled", "changed mind")
    assert loaded.state["cancelledAt"] == utc_text(events[1].occurred_at)
    assert (loaded.state["subtotal"], loaded.state["shippingCost"], loaded.state["total"]) == (109.0, 0.0, 109.0)


async def test_place_order_computes_amounts_and_the_order_number(orders: AsyncAggregateRepository[Order]) -> None:
    now = datetime(2024, 12, 31, 23, 59, tzinfo=UTC)
    cases = [
        ([KETTLE], 49.0, FLAT_SHIPPING, 53.95),
        ([KETTLE | {"quantity": 3, "unitPrice": 33.33}], 99.99, FLAT_SHIPPING, 104.94),
        ([KETTLE | {"quantity": 4, "unitPrice": 25.0}], 100.0, 0.0, 100.0),
        ([KETTLE | {"quantity": 3, "unitPrice": 0.1}, LAMP | {"unitPrice": 0.2}], 0.5, FLAT_SHIPPING, 5.45),
    ]
    for items, subtotal, shipping, total in cases:
        order = await place(orders, *items, now=now)
        [event] = await orders.store.load_events(order.id)
        amounts = (event.payload["subtotal"], event.payload["shippingCost"], event.payload["total"])
        assert amounts == (subtotal, shipping, total)
        assert event.payload["orderNumber"] == f"ORD-20241231-{order.id.hex[:8].upper()}"
    assert re.fullmatch(r"ORD-\d{8}-[0-9A-F]{8}", order_number(uuid.uuid4(), now.date()))


async def test_placing_an_order_twice_is_refused(orders: AsyncAggregateRepository[Order]) -> None:
    order = await place(orders)
    again = PlaceOrder.model_validate(
        {"orderId": str(order.id), "customerId": CUSTOMER, "lineItems": [LAMP], "shippingAddress": ADDRESS}
    )
    with pytest.raises(DomainError):
        await place_order(orders, again)
    assert len(await orders.store.load_events(order.id)) == 1


# One valid call of each command.
COMMANDS: dict[str, Callable[[Order], None]] = {
    "place": lambda order: order.place(OrderPlaced.model_validate(PLACED)),
    "ship": lambda order: order.ship(SHIP),
    "deliver": lambda order: order.deliver(DELIVER),
    "cancel": lambda order: order.cancel(CANCEL),
}
# What each status allows: command -> the status it leads to.
ALLOWED = {
    "pending": {"place": "placed"},
    "placed": {"ship": "shipped", "cancel": "cancelled"},
    "shipped": {"deliver": "delivered", "cancel": "cancelled"},
    "delivered": {},
    "cancelled": {},
}
PATH_TO = {
    "pending": [],
    "placed": ["place"],
    "shipped": ["place", "ship"],
    "delivered": ["place", "ship", "deliver"],
    "cancelled": ["place", "cancel"],
}


@pytest.mark.parametrize("status", list(ALLOWED))
async def test_each_status_allows_exactly_its_transitions(orders: AsyncAggregateRepository[Order], status: str) -> None:
    order_id = uuid.uuid4()
    for step in PATH_TO[status]:
        await orders.run_command(order_id, COMMANDS[step])
    before = await orders.store.load_events(order_id)
    for name, command in COMMANDS.items():
        order = await orders.load(order_id) or orders.new(order_id)
        assert order.status == status
        if name in ALLOWED[status]:
            command(order)
            assert order.status == ALLOWED[status][name]
            assert len(order.uncommitted_events) == 1
        else:
            with pytest.raises(DomainError):
                command(order)
            assert (order.status, order.uncommitted_events) == (status, [])
            with pytest.raises(DomainError):
                await orders.run_command(order_id, command)
    assert await orders.store.load_events(order_id) == before


@pytest.mark.parametrize(
    "change",
    [
        {"lineItems": [KETTLE | {"quantity": -1}]},
        {"lineItems": [KETTLE | {"quantity": 0}]},
        {"lineItems": [KETTLE | {"quantity": 1.5}]},
        {"lineItems": [KETTLE | {"quantity": "2"}]},
        {"lineItems": [KETTLE | {"unitPrice": 0}]},
        {"lineItems": [KETTLE | {"unitPrice": -3.5}]},
        {"lineItems": [KETTLE | {"unitPrice": 1.005}]},
        {"lineItems": [KETTLE | {"unitPrice": float("nan")}]},
        {"lineItems": []},
        {"lineItems": [{k: v for k, v in KETTLE.items() if k != "sku"}]},
        {"customerId": "not-a-uuid"},
        {"customerId": "6a1b7c34-9d3e-4f8a-8b2c"},
        {"shippingAddress": {"line1": "1 Main St", "city": "Lyon", "country": "FR"}},
        {"couponCode": "FREE"},
    ],
)
async def test_invalid_order_input_is_refused_and_appends_nothing(
    orders: AsyncAggregateRepository[Order], change: dict[str, Any]
) -> None:
    command = {"customerId": CUSTOMER, "lineItems": [KETTLE], "shippingAddress": ADDRESS} | change
    with pytest.raises(ValidationError):
        await place_order(orders, command)
    placed = PLACED | change
    order = orders.new()
    with pytest.raises(ValidationError):
        order.place(placed)
    assert (order.status, order.uncommitted_events) == ("pending", [])
    assert await orders.store.read_all() == []


@pytest.mark.parametrize(
    ("command", "payload"),
    [
        ("place", {"subtotal": 50.0}),
        ("place", {"total": 49.0}),
        ("place", {"shippingCost": -4.95, "total": 44.05}),
        ("ship", {"trackingNumber": ""}),
        ("ship", {"estimatedDelivery": "2024-05-03T12:00:00"}),
        ("ship", {"estimatedDelivery": "next week"}),
        ("deliver", {"deliveredAt": "2024-05-02T18:30:00"}),
        ("deliver", {"deliveredAt": None}),
        ("cancel", {"cancelledBy": "nobody"}),
        ("cancel", {"refundAmount": -1}),
    ],
)
async def test_invalid_payloads_are_refused(
    orders: AsyncAggregateRepository[Order], command: str, payload: dict[str, Any]
) -> None:
    valid: dict[str, dict[str, Any]] = {
        "place": PLACED,
        "ship": SHIP,
        "deliver": DELIVER,
        "cancel": CANCEL,
    }
    order_id = uuid.uuid4()
    for step in {"place": [], "ship": ["place"], "deliver": ["place", "ship"], "cancel": ["place"]}[command]:
        await orders.run_command(order_id, COMMANDS[step])
    order = await orders.load(order_id) or orders.new(order_id)
    with pytest.raises(ValidationError):
        getattr(order, command)(valid[command] | payload)
    assert order.uncommitted_events == []
    getattr(order, command)(valid[command])  # the valid payload is accepted: the change was the fault
    assert len(order.uncommitted_events) == 1


async def test_delivered_without_a_payload_time_takes_the_events_time(orders: AsyncAggregateRepository[Order]) -> None:
    store = orders.store
    order_id = uuid.uuid4()
    await store.append(
        "Order", order_id, [{"event_type": "OrderPlaced", "payload": PLACED}], expected_version=NO_STREAM
    )
    [delivered] = await store.append(
        "Order", order_id, [{"event_type": "OrderDelivered", "payload": {}}], expected_version=0
    )
    loaded = await store.load_aggregate("Order", order_id)
    assert loaded is not None and loaded.state["deliveredAt"] == utc_text(delivered.occurred_at)
    assert loaded.state == expected_order_state(await store.load_events(order_id))


# -- the fold against a Python computation ----------------------------------------------------


def random_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def random_text(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-{rng.getrandbits(32):08x}"


def random_moment(rng: random.Random) -> datetime:
    zone = timezone(timedelta(minutes=15 * rng.randint(-48, 56)))
    base = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 5 * 365 * 86400))
    return (base + timedelta(microseconds=rng.randint(0, 999_999))).astimezone(zone)


def random_command(rng: random.Random, name: str) -> Callable[[Order], None]:
    if name == "place":
        items: list[dict[str, Any]] = [
            {
                "productId": random_text(rng, "p"),
                "sku": random_text(rng, "SKU"),
                "name": random_text(rng, "item"),
                "quantity": rng.randint(1, 5),
                "unitPrice": rng.randint(1, 9_999) / 100,
            }
            for _ in range(rng.randint(1, 4))
        ]
        address = {"line1": random_text(rng, "street"), "city": "Lyon", "country": "FR", "postalCode": "69001"}
        subtotal = round(sum(item["quantity"] * item["unitPrice"] for item in items), 2)
        shipping = 0.0 if subtotal >= 100 else 4.95
        details = {
            "orderNumber": order_number(random_uuid(rng), random_moment(rng).date()),
            "customerId": str(random_uuid(rng)),
            "lineItems": items,
            "shippingAddress": address,
            "subtotal": subtotal,
            "shippingCost": shipping,
            "total": round(subtotal + shipping, 2),
        }
        return lambda order: order.place(details)
    if name == "ship":
        ship = {"trackingNumber": random_text(rng, "TRK"), "carrier": rng.choice(["DHL", "UPS", "La Poste"])}
        if rng.random() < 0.5:
            ship["estimatedDelivery"] = random_moment(rng).isoformat()
        return lambda order: order.ship(ship)
    if name == "deliver":
        deliver: dict[str, Any] = {"deliveredAt": random_moment(rng).isoformat()}
        if rng.random() < 0.5:
            deliver["signedBy"] = random_text(rng, "person")
        return lambda order: order.deliver(deliver)
    cancel: dict[str, Any] = {"reason": random_text(rng, "reason"), "cancelledBy": str(random_uuid(rng))}
    if rng.random() < 0.5:
        cancel["refundAmount"] = rng.randint(0, 10_000) / 100
    return lambda order: order.cancel(cancel)


async def test_the_sql_fold_matches_a_python_computation_on_1000_random_orders(
    orders: AsyncAggregateRepository[Order],
) -> None:
    store = orders.store
    rng = random.Random(1000)
    outcomes = {"recorded": 0, "refused": 0, "empty": 0}
    for _ in range(1000):
        order = orders.new(random_uuid(rng))
        names = ["place" if rng.random() < 0.9 else rng.choice(list(COMMANDS))]
        names += [rng.choice(list(COMMANDS)) for _ in range(rng.randint(0, 4))]
        for name in names:
            status, pending = order.status, len(order.uncommitted_events)
            try:
                random_command(rng, name)(order)
                outcomes["recorded"] += 1
            except DomainError:
                outcomes["refused"] += 1
                assert (order.status, len(order.uncommitted_events)) == (status, pending)
            if rng.random() < 0.5:
                await orders.save(order)
        await orders.save(order)

        events = await store.load_events(order.id)
        loaded = await store.load_aggregate("Order", order.id)
        expected = expected_order_state(events)
        if expected is None:
            outcomes["empty"] += 1
            assert loaded is None
            continue
        assert loaded is not None
        assert (loaded.state, loaded.version) == (expected, order.version)
        assert loaded.state["status"] == order.status  # Python's apply and the SQL fold agree on the status
        items = loaded.state["lineItems"]
        subtotal_cents = sum(item["quantity"] * round(item["unitPrice"] * 100) for item in items)
        assert round(loaded.state["subtotal"] * 100) == subtotal_cents
        assert loaded.state["shippingCost"] == (0 if subtotal_cents >= 10_000 else 4.95)
        assert round(loaded.state["total"] * 100) == subtotal_cents + round(loaded.state["shippingCost"] * 100)
    assert min(outcomes.values()) > 10, outcomes  # the mix exercised every path
