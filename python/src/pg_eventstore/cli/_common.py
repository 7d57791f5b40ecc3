"""What every command shares: the consoles, the --dsn option, connecting, and one-line errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, NoReturn

import psycopg
import typer
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rich.console import Console
from rich.text import Text

from pg_eventstore import schema
from pg_eventstore.errors import EventStoreError

# Data goes to stdout; progress, notes and errors to stderr, so output can be piped.
# Lines of prose are not wrapped (soft_wrap): a terminal wraps them, a pipe gets them whole.
# In a pipe, tables are laid out for PIPE_WIDTH columns (not rich's 80), so names are not cut short.
PIPE_WIDTH = 160


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


console = _console(stderr=False)
err_console = _console(stderr=True)

DSN_HELP = (
    "a DSN is a libpq connection string ('host=db1 dbname=app user=owner'), a URL "
    "('postgresql://owner@db1/app') or a bare database name (what is left out comes from PGHOST, PGPORT, PGUSER, ...)"
)


def parse_dsn(value: str) -> str:
    """--dsn as libpq takes it: a bare database name (no '=', no URL) is dbname=NAME; a malformed one is refused."""
    text = value.strip()
    if text and "=" not in text and "://" not in text:
        return make_conninfo(dbname=text)
    try:
        conninfo_to_dict(text)
    except psycopg.ProgrammingError as error:
        raise typer.BadParameter(f"{' '.join(str(error).split())}; {DSN_HELP}") from None
    return value


DsnOption = Annotated[
    str,
    typer.Option(
        "--dsn",
        envvar="DATABASE_URL",
        show_envvar=True,
        callback=parse_dsn,
        help="libpq connection string, URL (postgresql://user@host/db) or bare database name (default: $DATABASE_URL).",
    ),
]


def error_line(error: BaseException) -> str:
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


def fail(message: str) -> NoReturn:
    """Print `error: message` on one line of stderr and exit 1."""
    err_console.print(Text.assemble(("error:", "red"), " ", " ".join(message.split())), soft_wrap=True)
    raise typer.Exit(code=1)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a database or input error into one `error:` line and exit 1."""
    try:
        yield
    except (EventStoreError, psycopg.Error, ValueError) as error:
        fail(error_line(error))


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection, or one `error: cannot connect` line and exit 1."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit)
    except psycopg.Error as error:
        text = str(error).strip()
        fail(f"cannot connect: {text.splitlines()[0] if text else 'unknown reason'}")


def require_schema(conn: psycopg.Connection[Any]) -> str:
    """The installed schema version; exit 1 when there is none."""
    with reported_errors():
        version = schema.installed_version(conn)
    if version is None:
        fail("the eventstore schema is not installed in this database; run `pg-eventstore install` first")
    return version


def to_json(value: Any) -> Any:
    """A value as JSON can hold it: uuids and times as text."""
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def json_text(value: Any, *, indent: int | None = None) -> str:
    return json.dumps(to_json(value), indent=indent, ensure_ascii=False)


def print_data(line: str) -> None:
    """Print a line of data as it is: no markup, no highlighting, no wrapping."""
    typer.echo(line)


def cell(value: Any) -> Text:
    """A table cell shown literally (JSON with brackets is not rich markup)."""
    if value is None:
        return Text("")
    if isinstance(value, Mapping | list):
        return Text(json_text(value))
    if isinstance(value, datetime):
        return Text(value.isoformat(sep=" ", timespec="milliseconds"))
    return Text(str(value))
