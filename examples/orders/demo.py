"""The Order scenario through pg_eventstore's public API, and a short report: what `make demo` runs.

    python -m examples.orders.demo [--orders N] [--history N] [--workers N] [--yes] [--dsn DSN]

Run from the repository root (`make demo` does; `pg-eventstore demo` does it from a checkout). It
lives here, with the example it demonstrates, not in the package: it needs this repository's
examples/orders and examples/inventory. Its SQL reads only the examples' own tables and the
eventstore's public functions and views.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import psycopg
import typer
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pg_eventstore import schema
from pg_eventstore.aggregate import AggregateRepository
from pg_eventstore.cli._common import (
    DsnOption,
    cell,
    connect,
    console,
    err_console,
    error_line,
    fail,
    reported_errors,
)
from pg_eventstore.cli.projections import rebuild_with_progress
from pg_eventstore.errors import ConcurrencyError, EventStoreError, wrap_errors
from pg_eventstore.models import NewEvent
from pg_eventstore.store import NO_STREAM, EventStore

try:
    from examples.orders import commands, order
except ImportError as missing:  # pydantic, which the Order example's models need
    raise SystemExit(f"error: the Order example needs {missing.name} (hint: `make demo` installs it)") from None

EXAMPLES = Path(__file__).resolve().parents[1]
ORDERS_SQL = EXAMPLES / "orders" / "orders.sql"
INVENTORY_SQL = EXAMPLES / "inventory" / "inventory.sql"
# The schemas the demo creates; a database with other schemas (or anything in public) is not the demo's.
DEMO_SCHEMAS = ("eventstore", "orders", "inventory", "public")

PROJECTION = "order_projections"
ORDER_EVENT_TYPES = ["OrderPlaced", "OrderShipped", "OrderDelivered", "OrderCancelled"]
STOCK_TYPE = "StockItem"
# Events per append when writing the long history.
STOCK_APPEND = 100
STOCK_TAIL = 30
# Loads timed per measurement (the median is reported).
LOAD_RUNS = 21

# What the demo asks the database, besides the library's calls.
DATABASE_CLOCK = "SELECT clock_timestamp()"
SCHEMA_EXISTS = "SELECT to_regnamespace(%(schema)s) IS NOT NULL"
PROJECTION_REGISTERED = "SELECT EXISTS (SELECT FROM eventstore.projection_status WHERE name = %(name)s)"
REGISTER_PROJECTION = (
    "SELECT eventstore.register_projection(%(name)s, %(handler)s::regprocedure, %(event_types)s,"
    " %(mode)s, %(reset)s::regprocedure)"
)
REBUILD_PROJECTION = "SELECT eventstore.rebuild_projection(%(name)s)"
ORDER_SUMMARY = (
    "SELECT status, count(*) AS orders, sum(total) AS revenue"
    " FROM orders.order_projections GROUP BY status ORDER BY count(*) DESC, status"
)
LATEST_SNAPSHOT = (
    "SELECT max(version) FROM eventstore.aggregate_snapshots"
    " WHERE aggregate_type = %(aggregate_type)s AND aggregate_id = %(aggregate_id)s"
)
# The schemas of the database that are not the demo's, and whether public holds anything.
FOREIGN_SCHEMAS = (
    "SELECT coalesce(array_agg(nspname::text ORDER BY nspname), '{}') FROM pg_catalog.pg_namespace"
    " WHERE nspname <> ALL(%(ours)s) AND nspname NOT LIKE 'pg\\_%%' AND nspname <> 'information_schema'"
)
PUBLIC_OBJECTS = (
    "SELECT (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace)"
    " + (SELECT count(*) FROM pg_catalog.pg_proc WHERE pronamespace = 'public'::regnamespace)"
    " + (SELECT count(*) FROM pg_catalog.pg_type WHERE typnamespace = 'public'::regnamespace AND typrelid = 0"
    "    AND typcategory <> 'A')"
)

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

T = TypeVar("T")


def _scalar(conn: psycopg.Connection[Any], query: Any, params: dict[str, Any] | None = None) -> Any:
    with wrap_errors():
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def _rows(conn: psycopg.Connection[Any], query: Any, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def set_up(conn: psycopg.Connection[Any]) -> None:
    """Install what is missing: the schema, the two examples, the inline Order projection. Idempotent."""
    change = schema.install(conn)
    said = "installed" if change.changed else "already installed"
    console.print(f"eventstore {change.after} {said} in database {conn.info.dbname}", markup=False)
    for name, script in (("orders", ORDERS_SQL), ("inventory", INVENTORY_SQL)):
        if _scalar(conn, SCHEMA_EXISTS, {"schema": name}):
            continue
        with conn.transaction(), wrap_errors():
            conn.execute(script.read_text().encode())
        console.print(f"installed the example {script.relative_to(EXAMPLES.parent)}", markup=False)
    if not _scalar(conn, PROJECTION_REGISTERED, {"name": PROJECTION}):
        try:
            with conn.transaction(), wrap_errors():
                conn.execute(
                    REGISTER_PROJECTION,
                    {
                        "name": PROJECTION,
                        "handler": "orders.project_order(eventstore.domain_events)",
                        "event_types": ORDER_EVENT_TYPES,
                        "mode": "inline",
                        "reset": "orders.reset_order_projections()",
                    },
                )
                # Order events stored before the registration reach the read model too.
                conn.execute(REBUILD_PROJECTION, {"name": PROJECTION})
        except (EventStoreError, psycopg.Error) as error:
            fail(
                f"cannot build the read model {PROJECTION} from the Order events in this database: "
                f"{error_line(error)}; run the demo on a database of its own (`make demo-clean` resets the local one)"
            )
        console.print(f"registered the projection {PROJECTION} (inline: current at every commit)", markup=False)


def _parallel(label: str, work: Callable[[T], Any], items: list[T], workers: int) -> tuple[list[Any], float]:
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

    def __init__(self, repository: AggregateRepository[Any], run_seed: int) -> None:
        self.order = order
        self.commands = commands
        self.repository = repository
        self.run_seed = run_seed
        self.customers = [uuid.UUID(int=random.Random(run_seed + n).getrandbits(128)) for n in range(200)]
        self.staff = uuid.uuid4()

    def request(self, rng: random.Random, order_id: uuid.UUID | None = None) -> Any:
        order = self.order
        items = [
            order.LineItem(product_id=product, sku=sku, name=name, quantity=rng.randint(1, 3), unit_price=price)
            for product, sku, name, price in rng.sample(CATALOGUE, rng.randint(1, 3))
        ]
        line1, city, country, postal = rng.choice(ADDRESSES)
        return self.commands.PlaceOrder(
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
                self.commands.place_order(self.repository, request, metadata={"user": "demo", "channel": "web"})
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
            self.commands.cancel_order(
                self.repository,
                order_id,
                {"reason": "customer changed their mind", "cancelled_by": self.staff},
                metadata=staff,
            )
            return "cancelled"
        if fate < 0.25:
            return "placed"
        self.commands.ship_order(
            self.repository,
            order_id,
            {"tracking_number": f"TRK{order_id.hex[:10].upper()}", "carrier": rng.choice(CARRIERS)},
            metadata=staff,
        )
        after = rng.random()
        if after < 0.75:
            self.commands.deliver_order(
                self.repository,
                order_id,
                {"delivered_at": datetime.now(UTC), "signed_by": "front desk"},
                metadata={"user": "courier"},
            )
            return "delivered"
        if after < 0.80:
            self.commands.cancel_order(
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


def _median_ms(run: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def show_snapshots(dsn: str, store: EventStore, item_id: uuid.UUID) -> None:
    """Time load_aggregate with the item's snapshots, and with them deleted in a transaction rolled back after."""
    with connect(dsn) as conn:
        snapshot = _scalar(conn, LATEST_SNAPSHOT, {"aggregate_type": STOCK_TYPE, "aggregate_id": item_id})
    with_snapshots = store.load_aggregate(STOCK_TYPE, item_id)
    assert with_snapshots is not None
    fast = _median_ms(lambda: store.load_aggregate(STOCK_TYPE, item_id), LOAD_RUNS)
    # Same function, same events, same fold: only the snapshots are gone. The
    # transaction is rolled back, so they are back afterwards.
    with connect(dsn, autocommit=False) as conn:
        scratch = EventStore(conn)
        scratch.prune_snapshots(STOCK_TYPE, keep=0)
        without_snapshots = scratch.load_aggregate(STOCK_TYPE, item_id)
        slow = _median_ms(lambda: scratch.load_aggregate(STOCK_TYPE, item_id), max(3, LOAD_RUNS // 3))
        conn.rollback()
    version = with_snapshots.version
    console.print(
        f"snapshots: StockItem {item_id} has {version + 1:,} events (receipts and picks; snapshot every 50 versions)",
        markup=False,
    )
    folded = version - snapshot if snapshot is not None else version + 1
    console.print(
        f"  load_aggregate with its snapshots:  {fast:8.2f} ms  (the snapshot at version {snapshot}, "
        f"then {folded} events folded)",
        markup=False,
    )
    console.print(
        f"  load_aggregate without snapshots:   {slow:8.2f} ms  (all {version + 1:,} events folded)", markup=False
    )
    same = without_snapshots is not None and without_snapshots == with_snapshots
    console.print(
        f"  {slow / fast if fast else 0:.0f}x faster with the snapshot; same state and version both ways: "
        f"{'yes' if same else 'NO'} (on hand {with_snapshots.state.get('onHand')})",
        markup=False,
    )
    console.print(
        "  method: the median of repeated calls of the same function on the same events; 'without' runs in a "
        "transaction that first deleted the snapshots (prune_snapshots(type, keep => 0)) and was rolled back",
        markup=False,
    )


def _counts_by_type(store: EventStore, since: datetime | None) -> Counter[str]:
    totals: Counter[str] = Counter()
    for count in store.event_counts(since, None, "year"):
        totals[count.event_type] += count.event_count
    return totals


def show_event_counts(store: EventStore, run_started: datetime) -> None:
    this_run, stored = _counts_by_type(store, run_started), _counts_by_type(store, None)
    table = Table("event type", "this run", "in the store", title="events by type (event_counts)")
    for event_type, total in stored.most_common():
        table.add_row(cell(event_type), cell(f"{this_run[event_type]:,}"), cell(f"{total:,}"))
    table.add_row(cell("all"), cell(f"{sum(this_run.values()):,}"), cell(f"{sum(stored.values()):,}"))
    console.print(table)


def order_summary(conn: psycopg.Connection[Any]) -> list[tuple[str, int, Any]]:
    return [(row["status"], row["orders"], row["revenue"]) for row in _rows(conn, ORDER_SUMMARY)]


def show_order_summary(summary: list[tuple[str, int, Any]]) -> None:
    table = Table("status", "orders", "order totals", title=f"{PROJECTION} by status")
    for status, orders, value in summary:
        table.add_row(cell(status), cell(f"{orders:,}"), cell(f"{value:,.2f}"))
    console.print(table)
    revenue = sum((value for status, _, value in summary if status == "delivered"), start=0)
    console.print(f"revenue (delivered orders): {revenue:,.2f}", markup=False)


def show_history(store: EventStore, order_id: uuid.UUID) -> None:
    history = store.aggregate_history(order_id)
    table = Table("version", "event type", "occurred at", "by", "status after", title=f"history of order {order_id}")
    for entry in history:
        table.add_row(
            cell(entry.event_version),
            cell(entry.event_type),
            cell(entry.occurred_at),
            cell(entry.metadata.get("user")),
            cell((entry.state_after or {}).get("status")),
        )
    console.print(table)
    shipped = history[1]
    earlier = store.state_at("Order", order_id, at=shipped.occurred_at)
    now = store.load_aggregate("Order", order_id)
    assert earlier is not None and now is not None
    console.print(
        f"temporal query: as of {shipped.occurred_at.isoformat()} the order was {earlier.state['status']} "
        f"(version {earlier.version}); now it is {now.state['status']} (version {now.version})",
        markup=False,
        soft_wrap=True,
    )
    console.print(
        f"  the same from the shell: pg-eventstore state Order {order_id} --at '{shipped.occurred_at.isoformat()}'",
        markup=False,
        soft_wrap=True,
    )


def check_database(conn: psycopg.Connection[Any], yes: bool) -> None:
    """Say which database the demo changes; refuse one that holds more than the demo's objects, unless yes."""
    info = conn.info
    console.print(
        f"the demo writes to database {info.dbname} on {info.host}:{info.port} as {info.user}",
        markup=False,
    )
    foreign = _scalar(conn, FOREIGN_SCHEMAS, {"ours": list(DEMO_SCHEMAS)})
    if _scalar(conn, PUBLIC_OBJECTS):
        foreign = [*foreign, "public (not empty)"]
    if foreign and not yes:
        fail(
            f"database {info.dbname} holds schemas the demo did not make ({', '.join(foreign)}); the demo adds the "
            "eventstore schema, two example schemas, a projection and thousands of events (hint: give it a database "
            "of its own, or pass --yes, e.g. make demo DEMO_ARGS=--yes, to run it there anyway)"
        )


app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


@app.command()
def main(
    dsn: DsnOption,
    orders: Annotated[int, typer.Option("--orders", min=1, help="How many orders to place.")] = 2000,
    history: Annotated[
        int, typer.Option("--history", min=100, help="Events of the long-history aggregate (the snapshot demo).")
    ] = 5000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="Threads placing and moving orders.")] = 4,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", help="Run even in a database that holds other schemas (or anything in public) than the demo's."
        ),
    ] = False,
) -> None:
    """Run the Order scenario against a database and print a short report.

    Says which database it changes, and refuses one that holds other schemas than the demo's (unless --yes).
    Installs what is missing (the schema, examples/orders with its read model registered as the inline
    projection order_projections, examples/inventory), then, through the public API: places orders with the
    Python Order aggregate and place_order on several threads; ships, delivers and cancels a share of them;
    forces one concurrency conflict and resolves it by retry; writes a StockItem with a long history.
    Reports events by type, the read model by status, one order's history and its state at an earlier moment,
    load times with and without snapshots, and rebuilds the projection with a progress bar. Running it again
    adds new orders; the report has the same shape.
    """
    started = time.monotonic()
    with connect(dsn) as conn, reported_errors():
        check_database(conn, yes=yes)
        set_up(conn)
        run_started = _scalar(conn, DATABASE_CLOCK)

    with (
        reported_errors(),
        ConnectionPool(
            dsn, min_size=workers, max_size=workers, kwargs={"autocommit": True}, open=True, name="demo"
        ) as pool,
    ):
        store = EventStore(pool)
        shop = Shop(AggregateRepository(store, order.Order), random.randrange(1 << 30))

        placed, seconds = _parallel("placing orders", shop.place, list(range(orders)), workers)
        console.print(
            f"placed {len(placed):,} orders with place_order on {workers} threads in {seconds:.1f} s "
            f"({len(placed) / seconds:,.0f} orders/s)",
            markup=False,
        )
        fates, seconds = _parallel("shipping, delivering, cancelling", shop.fulfil, placed, workers)
        moved = Counter(fates)
        outcome = ", ".join(f"{moved[fate]:,} {fate}" for fate in ("delivered", "shipped", "cancelled", "placed"))
        console.print(f"moved them on in {seconds:.1f} s: {outcome}", markup=False)
        conflict_order = shop.conflict()

        item_id = write_long_history(store, history)
        console.print()
        show_event_counts(store, run_started)
        with connect(dsn) as conn:
            before = order_summary(conn)
        show_order_summary(before)
        show_history(store, conflict_order)
        console.print()
        show_snapshots(dsn, store, item_id)

    console.print()
    with connect(dsn) as conn, reported_errors():
        replayed, seconds = rebuild_with_progress(conn, PROJECTION)
        after = order_summary(conn)
    rate = f" ({replayed / seconds:,.0f} events/s)" if seconds > 0 else ""
    console.print(
        f"rebuilt {PROJECTION}: replayed {replayed:,} events in {seconds:.2f} s{rate}; "
        f"the read model equals the one before: {'yes' if after == before else 'NO'}",
        markup=False,
    )
    console.print(f"demo finished in {time.monotonic() - started:.1f} s", markup=False)


if __name__ == "__main__":
    app()
