"""Schema commands: install, upgrade, version, status, after-restore."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from rich.table import Table

from pg_eventstore import schema
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
from pg_eventstore.models import ProjectionStatus
from pg_eventstore.store import EventStore

# What install and upgrade print when they changed the schema, and when they did not: str.format
# templates over the change's before, after and applied.
INSTALL_REPORT = ("installed eventstore {after}", "eventstore {before} is already installed; nothing changed")
UPGRADE_REPORT = ("upgraded eventstore {before} -> {after} ({applied})", "eventstore {after} is up to date")


def _change_schema(
    dsn: str, apply: Callable[[psycopg.Connection[Any]], schema.SchemaChange], report: tuple[str, str]
) -> None:
    """Run schema.install or schema.upgrade (each commits its own transaction) and say what it did."""
    with connect(dsn, autocommit=False) as conn, reported_errors():
        change = apply(conn)
    template = report[0] if change.changed else report[1]
    console.print(template.format(before=change.before, after=change.after, applied=", ".join(change.applied)))


def install(dsn: DsnOption) -> None:
    """Install the eventstore schema into a database.

    Idempotent: when some version is installed already, nothing changes and the version is reported.
    """
    _change_schema(dsn, schema.install, INSTALL_REPORT)


def upgrade(dsn: DsnOption) -> None:
    """Upgrade the installed eventstore schema to this package's version, in one transaction."""
    _change_schema(dsn, schema.upgrade, UPGRADE_REPORT)


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
            offset = EventStore(conn).after_restore()
            conn.commit()
    for note in notes:
        err_console.print(note)
    console.print(f"feed key offset: {offset}")


def version() -> None:
    """Print the schema version this package installs (does not connect)."""
    console.print(schema.package_version())


def status(dsn: DsnOption) -> None:
    """Show the installed version, event and aggregate counts, projections with their lag, and the feed fence.

    The fence is the oldest transaction id of an open transaction that appended events (plus the restore
    offset): consumers of the feed see every event below it. The oldest such transaction is shown with its
    pid, age and query so an operator can end it; prepared transactions that appended hold it back too.
    """
    with connect(dsn) as conn:
        installed = require_schema(conn)
        with reported_errors():
            found = EventStore(conn).status()
    # ES006 after a restore into another cluster: the rest of the status still helps.
    if found.feed_fence_error is not None:
        fence = f"unavailable: {error_line(found.feed_fence_error)}"
    else:
        fence = "unknown" if found.feed_fence is None else str(found.feed_fence)

    package = schema.package_version()
    console.print(f"eventstore {installed}" + ("" if installed == package else f" (this package installs {package})"))
    console.print(
        f"events: {found.events:,}  aggregates: {found.aggregates:,}  "
        f"aggregate types: {found.aggregate_types:,}  snapshots: {found.snapshots:,}"
    )
    console.print(f"feed fence: {fence} (consumers of the feed see every event with a lower feed key)", markup=False)

    if found.projections:
        console.print(projection_status_table(found.projections))
    else:
        console.print("projections: none registered")

    oldest = found.oldest_transaction
    if oldest is not None:
        console.print(
            "oldest open append transaction (holds the fence back): "
            f"pid {oldest.pid}, database {oldest.database}, user {oldest.user_name}, xid {oldest.xid}, "
            f"xid age {oldest.xid_age:,}, started {oldest.xact_start}, state {oldest.state}",
            soft_wrap=True,
            markup=False,
        )
        console.print(f"  query: {' '.join(str(oldest.query or '').split())[:200]}", soft_wrap=True, markup=False)
    else:
        console.print("open append transactions: none (nothing holds the fence back)")
    for prepared in found.prepared_transactions:
        console.print(
            f"prepared transaction {prepared.gid!r} (holds the fence back): database {prepared.database}, "
            f"owner {prepared.owner}, xid {prepared.xid}, xid age {prepared.xid_age:,}, prepared {prepared.prepared}",
            soft_wrap=True,
            markup=False,
        )


def count(value: int | None) -> str:
    """A count with thousands separators; nothing for none (an inline projection has no lag or position)."""
    return "" if value is None else f"{value:,}"


def projection_status_table(projections: list[ProjectionStatus]) -> Table:
    table = Table("name", "mode", "state", "position", "lag", "applied", "last error", title="projections")
    for projection in projections:
        state = projection.state
        if projection.rebuild_progress:
            state = f"{state} {projection.rebuild_progress}"
        table.add_row(
            cell(projection.name),
            cell(projection.mode),
            cell(state),
            cell(projection.position),
            cell(count(projection.lag)),
            cell(count(projection.events_applied)),
            cell(projection.last_error),
        )
    return table
