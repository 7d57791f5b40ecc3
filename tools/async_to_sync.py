"""Generate the synchronous modules from their asyncio sources (psycopg's way: async is written once).

Each pair in PAIRS is (async source, sync output). The source is rewritten token
by token: `async` and `await` go, names in NAMES become their sync twins
(AsyncEventStore -> EventStore, AEvent -> threading's Event, ...), and
`Awaitable[X]` becomes `X`. Names in strings and comments are renamed too, so
docstrings read right. The result gets a do-not-edit header and passes
ruff's fixes and ruff format, so `make lint` holds it to the same rules.

    python tools/async_to_sync.py           write every output
    python tools/async_to_sync.py --check   exit 1 (with a diff) when an output is stale

Write async sources so that this mapping is all they need: sleep and stop
events through pg_eventstore._acompat, no asyncio-only constructs (tasks,
gather) in code that has a sync twin.
"""

from __future__ import annotations

import argparse
import difflib
import io
import re
import subprocess
import sys
import tempfile
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path("python/src/pg_eventstore")
TESTS = Path("tests/python")
EXAMPLES = Path("examples/orders")

PAIRS: list[tuple[Path, Path]] = [
    (PACKAGE / "async_follow.py", PACKAGE / "follow.py"),
    (PACKAGE / "async_store.py", PACKAGE / "store.py"),
    (PACKAGE / "async_repository.py", PACKAGE / "repository.py"),
    (PACKAGE / "async_projections.py", PACKAGE / "projections.py"),
    (EXAMPLES / "async_commands.py", EXAMPLES / "commands.py"),
    (TESTS / "test_append_async.py", TESTS / "test_append.py"),
    (TESTS / "test_library_api_async.py", TESTS / "test_library_api.py"),
    (TESTS / "test_aggregates_async.py", TESTS / "test_aggregates.py"),
    (TESTS / "test_subscribe_async.py", TESTS / "test_subscribe.py"),
    (TESTS / "test_projection_runners_async.py", TESTS / "test_projection_runners.py"),
    (TESTS / "test_orders_async.py", TESTS / "test_orders.py"),
]

NAMES = {
    # the package's own modules and classes
    "async_follow": "follow",
    "async_store": "store",
    "async_repository": "repository",
    "async_projections": "projections",
    "async_commands": "commands",
    "AsyncEventStore": "EventStore",
    "AsyncClientBase": "ClientBase",
    "AsyncAggregateRepository": "AggregateRepository",
    "AsyncProjections": "Projections",
    "AsyncProjectionWorker": "ProjectionWorker",
    "AsyncPythonProjection": "PythonProjection",
    "AsyncHandler": "Handler",
    "AsyncSource": "Source",
    # pg_eventstore._acompat
    "AEvent": "Event",
    "asleep": "sleep",
    # psycopg and the standard library
    "AsyncConnection": "Connection",
    "AsyncCursor": "Cursor",
    "AsyncConnectionPool": "ConnectionPool",
    "AsyncIterator": "Iterator",
    "AsyncGenerator": "Generator",
    "asynccontextmanager": "contextmanager",
    "aclose": "close",
    # tests: fixtures and helpers
    "apool": "pool",
    "astore": "store",
    "aconn": "conn",
    "aprojections": "projections",
}
_NAME_IN_TEXT = re.compile(r"\b(" + "|".join(sorted(NAMES, key=len, reverse=True)) + r")\b")


def header(source: Path) -> str:
    return f"# Generated from {source.name} by tools/async_to_sync.py; do not edit (run `make generate`).\n"


def _offsets(text: str) -> list[int]:
    """The offset in text of each line's start (1-based line numbers, as tokenize counts)."""
    starts = [0, 0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def rewrite(text: str) -> str:
    """The sync twin of an async module's source (before formatting)."""
    starts = _offsets(text)
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in text offsets
    open_awaitables: list[int] = []  # bracket depths at which an `Awaitable[` was opened
    depth = 0

    def span(token: tokenize.TokenInfo) -> tuple[int, int]:
        return starts[token.start[0]] + token.start[1], starts[token.end[0]] + token.end[1]

    for index, token in enumerate(tokens):
        start, end = span(token)
        if token.type == tokenize.NAME and token.string in ("async", "await"):
            following = tokens[index + 1]
            if token.string == "await" or following.string in ("def", "with", "for"):
                # the keyword and the space after it
                edits.append((start, span(following)[0], ""))
                continue
        if token.type == tokenize.NAME and token.string == "Awaitable" and tokens[index + 1].string == "[":
            edits.append((start, span(tokens[index + 1])[1], ""))
            open_awaitables.append(depth)
            depth += 1
            continue
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
            if open_awaitables and open_awaitables[-1] == depth:
                open_awaitables.pop()
                edits.append((start, end, ""))
        if token.type == tokenize.NAME and token.string in NAMES:
            edits.append((start, end, NAMES[token.string]))
        elif token.type in (tokenize.STRING, tokenize.COMMENT):
            renamed = _NAME_IN_TEXT.sub(lambda match: NAMES[match[1]], token.string)
            if renamed != token.string:
                edits.append((start, end, renamed))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _ruff(arguments: list[str], text: str, filename: Path) -> str:
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run(
        [str(ruff), *arguments, "--stdin-filename", str(ROOT / filename), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if result.returncode not in (0, 1) or not result.stdout:
        raise SystemExit(f"ruff {' '.join(arguments)} failed on {filename}:\n{result.stderr}")
    return result.stdout


def generate(source: Path, target: Path) -> str:
    """The text the sync module `target` must have, made from `source`."""
    text = header(source) + rewrite((ROOT / source).read_text())
    # ruff's fixes under the project's rules: imports only the async side used (Awaitable) go, renamed
    # ones are sorted again, and nested `with`s that were `async with` and `with` are merged.
    text = _ruff(["check", "--fix", "--unsafe-fixes", "--exit-zero", "--quiet"], text, target)
    return _ruff(["format", "--quiet"], text, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when an output is stale")
    arguments = parser.parse_args()
    stale = 0
    with tempfile.TemporaryDirectory() as scratch:
        for source, target in PAIRS:
            fresh = Path(scratch) / target.name
            fresh.write_text(generate(source, target))
            current = ROOT / target
            if not arguments.check:
                current.write_text(fresh.read_text())
                continue
            old = current.read_text() if current.exists() else ""
            if old != fresh.read_text():
                stale += 1
                sys.stdout.writelines(
                    difflib.unified_diff(
                        old.splitlines(keepends=True),
                        fresh.read_text().splitlines(keepends=True),
                        str(target),
                        f"{target} (generated from {source})",
                    )
                )
    if stale:
        print(f"{stale} generated file(s) are stale or edited by hand: run `make generate`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
