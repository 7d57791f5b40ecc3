"""`pg-eventstore projections`: list, status, run, rebuild."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

import psycopg
import typer
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from pg_eventstore.cli._common import DsnOption, cell, connect, console, err_console, fail, reported_errors
from pg_eventstore.cli.admin import count, projection_status_table
from pg_eventstore.errors import UnknownTypeError
from pg_eventstore.follow import POLL_INTERVAL
from pg_eventstore.models import ProjectionStatus
from pg_eventstore.projections import Projections, ProjectionWorker

app = typer.Typer(
    help="Projections (read models): list them, see their state and lag, run async ones, rebuild them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The projection's registered name.")]


def _status(conn: psycopg.Connection[Any], name: str) -> ProjectionStatus:
    """The projection's status; an unknown name is one `error:` line that says where the names are."""
    try:
        return Projections(conn).status_of(name)
    except UnknownTypeError as error:
        hint = "`pg-eventstore projections list` shows them"
        fail(f"{error.sqlstate}: projection {name} is not registered (hint: {hint})")


@app.command("list")
def list_projections(dsn: DsnOption) -> None:
    """List the registered projections: mode, handler, reset function and event types."""
    with connect(dsn) as conn, reported_errors():
        registered = Projections(conn).registered()
    if not registered:
        err_console.print("no projection is registered")
        return
    table = Table("name", "mode", "handler", "reset", "event types", title="projections")
    for projection in registered:
        table.add_row(
            cell(projection.name),
            cell(projection.mode),
            cell(projection.handler),
            cell(projection.reset),
            cell(", ".join(projection.event_types) if projection.event_types else "all"),
        )
    console.print(table)


@app.command("status")
def status(
    dsn: DsnOption,
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Only this projection.")] = None,
) -> None:
    """Show each projection's state (running, paused, failed, rebuilding), position, lag in events and last error.

    Inline projections are current at every commit: they have no position and no lag (shown empty).
    """
    with connect(dsn) as conn, reported_errors():
        found = [_status(conn, name)] if name is not None else Projections(conn).status()
    if not found:
        err_console.print("no projection is registered")
        return
    console.print(projection_status_table(found))


@app.command("run")
def run(
    name: NameArgument,
    dsn: DsnOption,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep running: wake up on every append (LISTEN), poll as a fallback. Ctrl-C or SIGTERM stops "
            "after the current batch.",
        ),
    ] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Events per batch (one transaction each).")] = 1000,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.1, help="With --follow: seconds between polls without wake-ups.")
    ] = POLL_INTERVAL,
) -> None:
    """Run an async projection: apply batches from its checkpoint until it is caught up (or, with --follow, forever).

    Each batch and its checkpoint commit together. Exits 1 when the projection fails at an event (the event
    and the error are recorded; see `projections status`).
    """
    with connect(dsn) as conn, reported_errors():
        before = _status(conn, name)
        if before.mode != "async":
            fail(
                f"ES002: projection {name} is {before.mode}, not async "
                "(hint: inline projections run with every append; external ones in their client)"
            )
        worker = ProjectionWorker(dsn, [name], batch_size=batch, poll_interval=poll_interval)
        started = time.monotonic()
        if follow:
            err_console.print(f"running projection {name}; Ctrl-C stops after the current batch", markup=False)
            logging.basicConfig(level=logging.WARNING, format="%(message)s")
            worker.run()
        else:
            worker.run_once(conn)
        after = _status(conn, name)
    seconds = time.monotonic() - started
    console.print(
        f"projection {name}: applied {worker.applied:,} events in {seconds:.2f} s; "
        f"state {after.state}, lag {count(after.lag)} events, position {after.position}",
        markup=False,
        soft_wrap=True,
    )
    if after.state == "failed":
        fail(f"projection {name} failed at event {after.failed_event_id}: {after.last_error}")


class _RateColumn(ProgressColumn):
    """Events per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} events/s")


def rebuild_with_progress(conn: psycopg.Connection[Any], name: str) -> tuple[int, float]:
    """Rebuild a projection with a progress bar on stderr (a terminal); returns the events replayed and the seconds.

    The bar follows the progress Projections.rebuild reports (the total first, then every batch).
    conn must be in autocommit mode: the rebuild is one statement, so one transaction.
    """
    progress = Progress(
        TextColumn(f"rebuild {name}"),
        BarColumn(bar_width=24),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} events"),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        # Only on a terminal: in a pipe or a log the closing line says it all.
        disable=not err_console.is_terminal,
    )
    task = progress.add_task("rebuild", total=None)

    def on_progress(done: int, total: int) -> None:
        progress.update(task, completed=done, total=max(total, 1))

    started = time.monotonic()
    with progress:
        replayed = Projections(conn).rebuild(name, on_progress)
        progress.update(task, completed=replayed, total=max(replayed, 1))
    return replayed, time.monotonic() - started


@app.command("rebuild")
def rebuild(
    name: NameArgument,
    dsn: DsnOption,
) -> None:
    """Empty a projection's read model (its reset function) and replay the whole log through its handler.

    One transaction: readers see the old read model until it commits. Rebuilding an inline projection holds
    appends back until it is done. The progress bar (on stderr) follows the NOTICE the database sends per
    10,000 events; the last line (on stdout) gives the number of events replayed.
    """
    with connect(dsn) as conn, reported_errors():
        _status(conn, name)
        replayed, seconds = rebuild_with_progress(conn, name)
    rate = f" ({replayed / seconds:,.0f} events/s)" if seconds > 0 and replayed else ""
    console.print(f"rebuilt projection {name}: replayed {replayed:,} events in {seconds:.2f} s{rate}", markup=False)
