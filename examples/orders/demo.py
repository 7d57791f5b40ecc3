"""The Order scenario through pg_eventstore's public API, and a short report: what `make demo` runs.

    python -m examples.orders.demo [--orders N] [--history N] [--workers N] [--yes] [--dsn DSN]

Run from the repository root (`make demo` does; `pg-eventstore demo` does it from a checkout). It
lives here, with the example it demonstrates, not in the package: it needs this repository's
examples/orders and examples/inventory. The scenario itself (the shop, the long history) is in
scenario.py; this file sets up, runs it and reports. The event store is reached through the
library (EventStore, Projections); the SQL here reads only the examples' own tables and the
catalog (to see whether the database is the demo's).
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from rich.table import Table

from examples.orders.scenario import STOCK_TYPE, Shop, run_in_parallel, write_long_history
from pg_eventstore import schema
from pg_eventstore.cli._common import (
    DsnOption,
    cell,
    connect,
    console,
    error_line,
    fail,
    reported_errors,
)
from pg_eventstore.cli.projections import rebuild_with_progress
from pg_eventstore.errors import EventStoreError, wrap_errors
from pg_eventstore.projections import Projections
from pg_eventstore.store import EventStore

EXAMPLES = Path(__file__).resolve().parents[1]
ORDERS_SQL = EXAMPLES / "orders" / "orders.sql"
INVENTORY_SQL = EXAMPLES / "inventory" / "inventory.sql"
# The schemas the demo creates; a database with other schemas (or anything in public) is not the demo's.
DEMO_SCHEMAS = ("eventstore", "orders", "inventory", "public")

PROJECTION = "order_projections"
ORDER_EVENT_TYPES = ["OrderPlaced", "OrderShipped", "OrderDelivered", "OrderCancelled"]
# Loads timed per measurement (the median is reported).
LOAD_RUNS = 21

# What the demo asks the database besides the library's calls: about the examples' schemas and
# read model, and about the database (is it the demo's?).
SCHEMA_EXISTS = "SELECT to_regnamespace(%(schema)s) IS NOT NULL"
ORDER_SUMMARY = (
    "SELECT status, count(*) AS orders, sum(total) AS revenue"
    " FROM orders.order_projections GROUP BY status ORDER BY count(*) DESC, status"
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
    projections = Projections(conn)
    if not projections.exists(PROJECTION):
        try:
            with conn.transaction():
                projections.register(
                    PROJECTION,
                    "orders.project_order(eventstore.domain_events)",
                    event_types=ORDER_EVENT_TYPES,
                    mode="inline",
                    reset="orders.reset_order_projections()",
                )
                # Order events stored before the registration reach the read model too.
                projections.rebuild(PROJECTION)
        except (EventStoreError, psycopg.Error) as error:
            fail(
                f"cannot build the read model {PROJECTION} from the Order events in this database: "
                f"{error_line(error)}; run the demo on a database of its own (`make demo-clean` resets the local one)"
            )
        console.print(f"registered the projection {PROJECTION} (inline: current at every commit)", markup=False)


def _median_ms(run: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def show_snapshots(dsn: str, store: EventStore, item_id: uuid.UUID) -> None:
    """Time load_aggregate with the item's snapshots, and with them deleted in a transaction rolled back after."""
    snapshot = store.latest_snapshot_version(STOCK_TYPE, item_id)
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
        run_started = EventStore(conn).database_time()

    with (
        reported_errors(),
        ConnectionPool(
            dsn, min_size=workers, max_size=workers, kwargs={"autocommit": True}, open=True, name="demo"
        ) as pool,
    ):
        store = EventStore(pool)
        shop = Shop(store, random.randrange(1 << 30))

        placed, seconds = run_in_parallel("placing orders", shop.place, list(range(orders)), workers)
        console.print(
            f"placed {len(placed):,} orders with place_order on {workers} threads in {seconds:.1f} s "
            f"({len(placed) / seconds:,.0f} orders/s)",
            markup=False,
        )
        fates, seconds = run_in_parallel("shipping, delivering, cancelling", shop.fulfil, placed, workers)
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
