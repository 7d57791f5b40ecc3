"""`pg-eventstore demo`: run the repository's Order demo (examples/orders/demo.py) from a checkout.

The demo is not in the package: it runs the repository's examples, so it lives with them. This
command finds the checkout (the given folder or the current one, or a folder above it) and runs
the demo there with this interpreter, passing every option on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from pg_eventstore.cli._common import fail

DEMO_MODULE = "examples.orders.demo"
DEMO_FILE = Path("examples", "orders", "demo.py")


def find_checkout(start: Path) -> Path | None:
    """The folder at or above start that holds examples/orders/demo.py."""
    start = start.resolve()
    return next((folder for folder in (start, *start.parents) if (folder / DEMO_FILE).is_file()), None)


def demo(
    ctx: typer.Context,
    checkout: Annotated[
        Path | None,
        typer.Option(
            "--checkout",
            metavar="DIR",
            help="The repository checkout to run the demo of (default: the current folder or one above it).",
        ),
    ] = None,
) -> None:
    """Run the Order demo of a checkout of the repository (what `make demo` runs); other options go to the demo.

    It runs examples/orders/demo.py, which is not part of the package, so it needs a checkout. The demo's own
    options (--orders N, --history N, --workers N, --yes, --dsn DSN) are passed on: see
    `python -m examples.orders.demo --help` in the checkout, or docs/cli.md.
    """
    start = checkout if checkout is not None else Path.cwd()
    root = find_checkout(start)
    if root is None:
        fail(
            f"the demo runs {DEMO_FILE} of a checkout of the pg_eventstore repository, and {start} is not in one "
            "(hint: clone the repository and run `make demo` there, or pass --checkout DIR)"
        )
    result = subprocess.run([sys.executable, "-m", DEMO_MODULE, *ctx.args], cwd=root, check=False)
    raise typer.Exit(result.returncode)
