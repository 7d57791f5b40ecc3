"""The pg-eventstore command line: a thin layer over the library.

Every command that connects takes --dsn (default: $DATABASE_URL), prints data
on stdout and progress and notes on stderr, and reports a failure as one
`error:` line (the SQLSTATE, its meaning, the hint) with exit code 1. Usage
errors exit 2. Shell completion: `pg-eventstore --install-completion`.
"""

import typer

from pg_eventstore.cli import admin, demo, events, projections
from pg_eventstore.cli._common import error_line

app = typer.Typer(
    help="pg_eventstore: event sourcing inside PostgreSQL. Every command has --help.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

# In the order `--help` lists them: set-up, writing and reading, operations, the demo.
app.command()(admin.install)
app.command()(admin.upgrade)
app.command()(admin.version)
app.command()(admin.status)
app.command("after-restore")(admin.after_restore)
app.command()(events.append)
app.command()(events.events)
app.command()(events.feed)
app.command()(events.state)
app.command()(events.stats)
app.add_typer(projections.app, name="projections")
app.command()(demo.demo)

__all__ = ["app", "error_line"]
