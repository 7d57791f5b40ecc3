"""`make demo`: install the schema and show an append / read round trip.

Uses $DATABASE_URL when set, else a local cluster kept in ./.pgdata (started
on first use, reused afterwards; `make demo-clean` removes it).
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from pg_eventstore import schema
from pg_eventstore.errors import ConcurrencyError
from pg_eventstore.models import NewEvent
from pg_eventstore.store import NO_STREAM, EventStore

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import pgcluster  # noqa: E402

console = Console()


def demo_dsn() -> str:
    dsn = os.environ.get("DATABASE_URL")
    if dsn:
        return dsn
    cluster = pgcluster.kept_cluster(ROOT / ".pgdata")
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'eventstore_demo'").fetchone() is None:
            conn.execute("CREATE DATABASE eventstore_demo")
    return f"host=127.0.0.1 port={cluster.port} user=postgres dbname=eventstore_demo"


def main() -> None:
    dsn = demo_dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        change = schema.install(conn)
        state = "installed" if change.changed else "already installed"
        console.print(f"eventstore {change.after} {state} at [bold]{conn.info.dsn}[/bold]")

        store = EventStore(conn)
        order_id = uuid.uuid4()
        store.append(
            "Order",
            order_id,
            [NewEvent("OrderPlaced", {"orderNumber": "ORD-1", "total": 42.5}, metadata={"user": "demo"})],
            expected_version=NO_STREAM,
        )
        store.append("Order", order_id, [NewEvent("OrderShipped", {"carrier": "DHL"})], expected_version=0)
        try:
            store.append("Order", order_id, [NewEvent("OrderCancelled", {"reason": "late"})], expected_version=0)
        except ConcurrencyError as error:
            console.print(
                f"a stale writer (expected version {error.expected_version}, actual {error.actual_version}) "
                f"got [yellow]ES001[/yellow], as it should"
            )

        table = Table("version", "event_type", "payload", "occurred_at", title=f"Order {order_id}")
        for event in store.load_events(order_id):
            table.add_row(str(event.event_version), event.event_type, str(event.payload), str(event.occurred_at))
        console.print(table)
        feed = store.read_all(max_count=100_000)
        console.print(f"the global feed holds {len(feed)} events; the last is at position {feed[-1].feed_position}")


if __name__ == "__main__":
    main()
