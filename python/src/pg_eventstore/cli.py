"""The pg-eventstore command line: a thin layer over the library."""

from __future__ import annotations

from typing import Annotated, NoReturn

import psycopg
import typer
from rich.console import Console

from pg_eventstore import schema
from pg_eventstore.errors import EventStoreError

app = typer.Typer(help="pg_eventstore: event sourcing inside PostgreSQL.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

DsnOption = Annotated[
    str,
    typer.Option("--dsn", envvar="DATABASE_URL", help="libpq connection string or URL (default: $DATABASE_URL)."),
]


def _connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(dsn)
    except psycopg.OperationalError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unknown reason"
        _fail(f"cannot connect: {first_line}")


def error_line(error: Exception) -> str:
    """One line for an error: its SQLSTATE and meaning, and the hint when there is one."""
    if isinstance(error, EventStoreError):
        code, message, hint = error.sqlstate, error.message, error.hint
    elif isinstance(error, psycopg.Error):
        code, message, hint = error.diag.sqlstate, error.diag.message_primary or str(error), error.diag.message_hint
    else:
        code, message, hint = None, str(error), None
    line = " ".join(str(message).split())
    if code:
        line = f"{code}: {line}"
    if hint:
        line += f" (hint: {' '.join(hint.split())})"
    return line


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


@app.command()
def install(dsn: DsnOption) -> None:
    """Install the eventstore schema into a database. Idempotent: when installed, reports the version."""
    with _connect(dsn) as conn:
        try:
            change = schema.install(conn)
        except (EventStoreError, psycopg.Error) as error:
            _fail(error_line(error))
    if change.changed:
        console.print(f"installed eventstore {change.after}")
    else:
        console.print(f"eventstore {change.before} is already installed; nothing changed")


@app.command()
def upgrade(dsn: DsnOption) -> None:
    """Upgrade the installed eventstore schema to this package's version."""
    with _connect(dsn) as conn:
        try:
            change = schema.upgrade(conn)
        except (EventStoreError, psycopg.Error) as error:
            _fail(error_line(error))
    if change.changed:
        console.print(f"upgraded eventstore {change.before} -> {change.after} ({', '.join(change.applied)})")
    else:
        console.print(f"eventstore {change.after} is up to date")


@app.command()
def version() -> None:
    """Print the schema version this package installs."""
    console.print(schema.package_version())
