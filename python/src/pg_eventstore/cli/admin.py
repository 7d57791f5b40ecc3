"""Schema commands: install, upgrade, version, status."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from rich.table import Table

from pg_eventstore import queries, schema
from pg_eventstore.cli._common import (
    DsnOption,
    cell,
    connect,
    console,
    err_console,
    error_line,
    reported_errors,
    require_schema,
)
from pg_eventstore.errors import from_psycopg


def install(dsn: DsnOption) -> None:
    """Install the eventstore schema into a database.

    Idempotent: when some version is installed already, nothing changes and the version is reported.
    """
    with connect(dsn, autocommit=False) as conn, reported_errors():
        change = schema.install(conn)
    if change.changed:
        console.print(f"installed eventstore {change.after}")
    else:
        console.print(f"eventstore {change.before} is already installed; nothing changed")


def upgrade(dsn: DsnOption) -> None:
    """Upgrade the installed eventstore schema to this package's version, in one transaction."""
    with connect(dsn, autocommit=False) as conn, reported_errors():
        change = schema.upgrade(conn)
    if change.changed:
        console.print(f"upgraded eventstore {change.before} -> {change.after} ({', '.join(change.applied)})")
    else:
        console.print(f"eventstore {change.after} is up to date")


def after_restore(dsn: DsnOption) -> None:
    """After restoring a dump into a new cluster: lift the feed key offset above every restored key.

    Until it runs, appends and reads of the feed fail with ES006 (the new cluster's transaction ids are
    behind the restored feed keys). Idempotent; prints the offset. Needs eventstore_admin.
    """
    with connect(dsn, autocommit=False) as conn:
        require_schema(conn)
        notes: list[str] = []
        conn.add_notice_handler(lambda notice: notes.append(str(notice.message_primary)))
        with reported_errors():
            row = conn.execute(queries.AFTER_RESTORE).fetchone()
            conn.commit()
    for note in notes:
        err_console.print(note)
    console.print(f"feed key offset: {row[0] if row else 'unknown'}")


def version() -> None:
    """Print the schema version this package installs (does not connect)."""
    console.print(schema.package_version())


def _rows(conn: psycopg.Connection[Any], query: Any, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def status(dsn: DsnOption) -> None:
    """Show the installed version, event and aggregate counts, projections with their lag, and the feed fence.

    The fence is the oldest transaction id still running (plus the restore offset): consumers of the feed
    see every event below it. The oldest open transaction, in any database of the cluster, holds it back:
    its pid, age and query are shown so an operator can end it. Prepared transactions hold it back too.
    """
    with connect(dsn) as conn:
        installed = require_schema(conn)
        with reported_errors():
            counts = _rows(conn, queries.STORE_COUNTS)[0]
            projections = _rows(conn, queries.PROJECTION_STATUS, {"name": None})
            oldest = _rows(conn, queries.OLDEST_TRANSACTIONS, {"limit": 1})
            prepared = _rows(conn, queries.PREPARED_TRANSACTIONS)

        try:
            fence_row = conn.execute(queries.FEED_FENCE).fetchone()
            fence = "unknown" if fence_row is None else str(fence_row[0])
        except psycopg.Error as error:
            # ES006 after a restore into another cluster: the rest of the status still helps.
            fence = f"unavailable: {error_line(from_psycopg(error) or error)}"

    package = schema.package_version()
    console.print(f"eventstore {installed}" + ("" if installed == package else f" (this package installs {package})"))
    console.print(
        f"events: {counts['events']:,}  aggregates: {counts['aggregates']:,}  "
        f"aggregate types: {counts['aggregate_types']:,}  snapshots: {counts['snapshots']:,}"
    )
    console.print(f"feed fence: {fence} (consumers of the feed see every event with a lower feed key)", markup=False)

    if projections:
        console.print(projection_status_table(projections))
    else:
        console.print("projections: none registered")

    if oldest:
        row = oldest[0]
        console.print(
            "oldest open transaction (holds the fence back): "
            f"pid {row['pid']}, database {row['database']}, user {row['user_name']}, xid {row['xid']}, "
            f"xid age {row['xid_age']:,}, started {row['xact_start']}, state {row['state']}",
            soft_wrap=True,
            markup=False,
        )
        console.print(f"  query: {' '.join(str(row['query'] or '').split())[:200]}", soft_wrap=True, markup=False)
    else:
        console.print("oldest open transaction: none holds a transaction id")
    for row in prepared:
        console.print(
            f"prepared transaction {row['gid']!r} (holds the fence back): database {row['database']}, "
            f"owner {row['owner']}, xid {row['xid']}, xid age {row['xid_age']:,}, prepared {row['prepared']}",
            soft_wrap=True,
            markup=False,
        )


def count(value: int | None) -> str:
    """A count with thousands separators; nothing for none (an inline projection has no lag or position)."""
    return "" if value is None else f"{value:,}"


def projection_status_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("name", "mode", "state", "position", "lag", "applied", "last error", title="projections")
    for row in rows:
        state = row["state"]
        if row["rebuild_progress"]:
            state = f"{state} {row['rebuild_progress']}"
        table.add_row(
            cell(row["name"]),
            cell(row["mode"]),
            cell(state),
            cell(row["position"]),
            cell(count(row["lag"])),
            cell(count(row["events_applied"])),
            cell(row["last_error"]),
        )
    return table
