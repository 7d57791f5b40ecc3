"""The pg-eventstore command line: a thin layer over the library.

Every command that connects takes --dsn (default: $DATABASE_URL), prints data
on stdout and progress and notes on stderr, and reports a failure as one
`error:` line (the SQLSTATE, its meaning, the hint) with exit code 1. Usage
errors exit 2. Shell completion: `pg-eventstore --install-completion`.
Whatever goes wrong, the command ends in one `error:` line, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from pg_eventstore.cli import admin, demo, events, projections
from pg_eventstore.cli._common import err_console, error_line


class GuardedTyper(typer.Typer):
    """A Typer app whose every run ends in output and an exit code, never in a traceback.

    The commands report the errors they expect themselves (one `error:` line, exit 1); this guard is
    the last line of defence: anything else is one line naming the exception, and exit 1.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit:
            raise
        except BrokenPipeError:
            # The reader went away (`| head`): nothing more to say, and nobody to say it to.
            sys.stderr.close()
            raise SystemExit(1) from None
        except Exception as error:  # the guard: see the docstring
            detail = error_line(error) or "no message"
            err_console.print(
                f"error: unexpected {type(error).__name__}: {detail} (a bug in pg-eventstore: please report it)",
                markup=False,
                soft_wrap=True,
            )
            raise SystemExit(1) from None


app = GuardedTyper(
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
app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    options_metavar="[--checkout DIR] [DEMO OPTIONS]...",
)(demo.demo)

__all__ = ["GuardedTyper", "app", "error_line"]
