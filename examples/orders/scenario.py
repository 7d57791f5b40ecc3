"""The demo's scenario: a shop that places and moves orders through the Order example's command
handlers, and a stock item with a long history (for the snapshot measurement).

demo.py runs it and reports on what it wrote; everything here goes through pg_eventstore's public API.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pg_eventstore.aggregate import AggregateRepository
from pg_eventstore.cli._common import console, err_console, fail
from pg_eventstore.errors import ConcurrencyError
from pg_eventstore.models import NewEvent
from pg_eventstore.store import NO_STREAM, EventStore

try:
    from examples.orders import commands, order
except ImportError as missing:  # pydantic, which the Order example's models need
    raise SystemExit(f"error: the Order example needs {missing.name} (hint: `make demo` installs it)") from None

STOCK_TYPE = "StockItem"
# Events per append when writing the long history.
STOCK_APPEND = 100
STOCK_TAIL = 30

T = TypeVar("T")

# The shop: what customers buy, and where they live.
CATALOGUE = [
    ("p-001", "BOOK-DDIA", "Designing Data-Intensive Applications", 39.90),
    ("p-002", "BOOK-PGIN", "PostgreSQL Internals", 29.50),
    ("p-003", "MUG-ELEPH", "Elephant mug", 12.00),
    ("p-004", "TEE-SQL-M", "SELECT * FROM shirts (M)", 19.95),
    ("p-005", "STICK-PK", "Sticker pack", 4.50),
    ("p-006", "KB-MECH", "Mechanical keyboard", 89.00),
]
ADDRESSES = [
    ("Storgata 1", "Oslo", "NO", "0155"),
    ("Rue de Rivoli 10", "Paris", "FR", "75001"),
    ("Calle Mayor 5", "Madrid", "ES", "28013"),
    ("Karl-Marx-Allee 3", "Berlin", "DE", "10178"),
    ("Via Roma 12", "Torino", "IT", "10121"),
]
CARRIERS = ["DHL", "UPS", "PostNord", "La Poste"]


def run_in_parallel(label: str, work: Callable[[T], Any], items: list[T], workers: int) -> tuple[list[Any], float]:
    """Run work over items on a thread pool, with a progress bar on stderr; results in order, and seconds."""
    progress = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    task = progress.add_task(label, total=len(items))
    started = time.monotonic()

    def step(item: T) -> Any:
        result = work(item)
        progress.advance(task)
        return result

    with progress, ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(step, items))
    return results, time.monotonic() - started


class Shop:
    """The scenario's moves, through the Order example's command handlers."""

    def __init__(self, store: EventStore, run_seed: int) -> None:
        self.repository = AggregateRepository(store, order.Order)
        self.run_seed = run_seed
        self.customers = [uuid.UUID(int=random.Random(run_seed + n).getrandbits(128)) for n in range(200)]
        self.staff = uuid.uuid4()

    def request(self, rng: random.Random, order_id: uuid.UUID | None = None) -> Any:
        items = [
            order.LineItem(product_id=product, sku=sku, name=name, quantity=rng.randint(1, 3), unit_price=price)
            for product, sku, name, price in rng.sample(CATALOGUE, rng.randint(1, 3))
        ]
        line1, city, country, postal = rng.choice(ADDRESSES)
        return commands.PlaceOrder(
            order_id=order_id or uuid.uuid4(),
            customer_id=rng.choice(self.customers),
            line_items=items,
            shipping_address=order.ShippingAddress(line1=line1, city=city, country=country, postal_code=postal),
        )

    def place(self, number: int) -> uuid.UUID:
        """Place one order; returns its id."""
        rng = random.Random(self.run_seed * 1_000_003 + number)
        while True:
            request = self.request(rng)
            try:
                commands.place_order(self.repository, request, metadata={"user": "demo", "channel": "web"})
            except psycopg.errors.UniqueViolation:
                # Two orders of one day drew the same order number (the first 8 hex
                # digits of their ids; see commands.py): place it again under a new id.
                continue
            return request.order_id  # type: ignore[no-any-return]

    def fulfil(self, order_id: uuid.UUID) -> str:
        """Move a placed order on: cancel it, leave it, or ship it (then deliver, cancel or leave it in transit)."""
        rng = random.Random(order_id.int)
        fate = rng.random()
        staff = {"user": "warehouse"}
        if fate < 0.10:
            commands.cancel_order(
                self.repository,
                order_id,
                {"reason": "customer changed their mind", "cancelled_by": self.staff},
                metadata=staff,
            )
            return "cancelled"
        if fate < 0.25:
            return "placed"
        commands.ship_order(
            self.repository,
            order_id,
            {"tracking_number": f"TRK{order_id.hex[:10].upper()}", "carrier": rng.choice(CARRIERS)},
            metadata=staff,
        )
        after = rng.random()
        if after < 0.75:
            commands.deliver_order(
                self.repository,
                order_id,
                {"delivered_at": datetime.now(UTC), "signed_by": "front desk"},
                metadata={"user": "courier"},
            )
            return "delivered"
        if after < 0.80:
            commands.cancel_order(
                self.repository,
                order_id,
                {"reason": "lost in transit", "cancelled_by": self.staff, "refund_amount": 0},
                metadata=staff,
            )
            return "cancelled"
        return "shipped"

    def conflict(self) -> uuid.UUID:
        """Two clerks change one order at once: the second save gets ES001, reloads, and succeeds on retry."""
        order_id = self.place(-1)
        clerk_a = self.repository.load(order_id)
        clerk_b = self.repository.load(order_id)
        assert clerk_a is not None and clerk_b is not None
        number = clerk_a.state["orderNumber"]
        console.print(
            f"conflict: clerks A and B both load order {number} at version {clerk_a.version} (placed)", markup=False
        )
        clerk_a.ship({"tracking_number": "TRK-CONFLICT", "carrier": "DHL"}, {"user": "clerk A"})
        self.repository.save(clerk_a)
        console.print(f"  A ships it and saves: version {clerk_a.version}", markup=False)
        cancel = {"reason": "customer called to cancel", "cancelled_by": self.staff}
        clerk_b.cancel(cancel, {"user": "clerk B"})
        try:
            self.repository.save(clerk_b)
        except ConcurrencyError as error:
            console.print(
                f"  B cancels it and saves with expected version {error.expected_version}: "
                f"{error.sqlstate} concurrency conflict (actual version {error.actual_version}); nothing was written",
                markup=False,
            )
        else:
            fail("the deliberate conflict did not happen: the event store accepted a stale expected version")
        retried = self.repository.run_command(order_id, lambda order: order.cancel(cancel, {"user": "clerk B"}))
        console.print(
            f"  B retries: reloads version {retried.version - 1} (shipped; cancelling is still allowed), runs the "
            f"command again and saves version {retried.version}",
            markup=False,
        )
        return order_id


def write_long_history(store: EventStore, events: int) -> uuid.UUID:
    """One StockItem with `events` receipts and picks, appended STOCK_APPEND at a time.

    The last STOCK_TAIL events go in an append of their own that reaches no
    multiple of 50, so a load starts from the latest snapshot and folds them.
    """
    item_id = uuid.uuid4()
    sku = f"BOOK-DDIA-{item_id.hex[:4]}"
    rng = random.Random(item_id.int)
    expected = NO_STREAM
    start = 0
    while start < events:
        remaining = events - start
        size = min(STOCK_APPEND, remaining - STOCK_TAIL) if remaining > STOCK_TAIL else remaining
        batch = [
            NewEvent(
                "StockReceived" if version % 3 == 0 else "StockPicked",
                {"sku": sku, "quantity": rng.randint(20, 40) if version % 3 == 0 else rng.randint(1, 15)},
            )
            for version in range(start, start + size)
        ]
        stored = store.append(STOCK_TYPE, item_id, batch, expected_version=expected)
        expected = stored[-1].event_version
        start += size
    return item_id
