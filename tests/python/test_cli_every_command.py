"""Every pg-eventstore command, as docs/cli.md and --help list them, against a database with every kind of
projection (inline, async, external; running, failed, paused) and snapshots, with valid and invalid input.

Each case pins its exit code (0 success, 1 a reported failure, 2 a usage error); none may print a traceback,
and a failure is one `error:` line. A command added without cases here fails the coverage test.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from test_cli import ALL_COMMANDS, ENTRY_POINT, ENV, PLACED, ROOT

from pg_eventstore.cli import app
from pg_eventstore.models import NewEvent
from pg_eventstore.store import NO_STREAM, EventStore

RICH_SETUP = """
CREATE SCHEMA rich;
CREATE TABLE rich.counts (event_type text PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION rich.count_event(p_event eventstore.domain_events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO rich.counts VALUES (p_event.event_type, 1)
    ON CONFLICT (event_type) DO UPDATE SET n = rich.counts.n + 1
$$;
CREATE FUNCTION rich.reset_counts() RETURNS void LANGUAGE sql AS $$ DELETE FROM rich.counts $$;
CREATE FUNCTION rich.refuse_shipped(p_event eventstore.domain_events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_event.event_type = 'OrderShipped' THEN
        RAISE EXCEPTION 'cannot handle %', p_event.event_type USING ERRCODE = '22023';
    END IF;
END $$;
SELECT eventstore.register_projection('order_projections', 'orders.project_order(eventstore.domain_events)',
    ARRAY['OrderPlaced', 'OrderShipped', 'OrderDelivered', 'OrderCancelled'], 'inline',
    'orders.reset_order_projections()');
SELECT eventstore.register_projection('counter_async', 'rich.count_event(eventstore.domain_events)', NULL, 'async',
    'rich.reset_counts()');
SELECT eventstore.register_projection('failing_async', 'rich.refuse_shipped(eventstore.domain_events)', NULL,
    'async');
SELECT eventstore.register_projection('paused_async', 'rich.count_event(eventstore.domain_events)', NULL, 'async');
SELECT eventstore.pause_projection('paused_async');
SELECT eventstore.register_external_projection('mailer', ARRAY['OrderShipped']);
"""

PROJECTIONS = ["counter_async", "failing_async", "mailer", "order_projections", "paused_async"]


@dataclass(frozen=True)
class RichDatabase:
    dsn: str
    order_id: uuid.UUID
    position: str
    placed_at: str


@pytest.fixture(scope="module")
def rich(module_dsn: str) -> Iterator[RichDatabase]:
    with psycopg.connect(module_dsn, autocommit=True) as conn:
        conn.execute((ROOT / "examples" / "orders" / "orders.sql").read_text().encode())
        conn.execute(RICH_SETUP.encode())
        store = EventStore(conn)
        order_id = uuid.uuid4()
        placed = store.append("Order", order_id, [NewEvent("OrderPlaced", PLACED)], expected_version=NO_STREAM)[0]
        store.append("Order", order_id, [NewEvent("OrderShipped", {"carrier": "DHL"})], expected_version=0)
        assert store.take_snapshot("Order", order_id) is not None
        conn.execute("SELECT eventstore.run_projection('failing_async', 100)")
        failed = conn.execute("SELECT state FROM eventstore.projection_status WHERE name = 'failing_async'").fetchone()
        assert failed == ("failed",)
        assert conn.execute("SELECT count(*) FROM eventstore.aggregate_snapshots").fetchone() == (1,)
    yield RichDatabase(module_dsn, order_id, str(placed.feed_position), placed.occurred_at.isoformat())


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    stdin: str = ""
    # Text the output must hold.
    shows: tuple[str, ...] = ()


def cases(db: RichDatabase, tmp: Path) -> list[Case]:
    dsn = ("--dsn", db.dsn)
    order = str(db.order_id)
    fresh = str(uuid.uuid4())
    unknown_key = json.dumps([{"eventType": "X", "payload": {}}])
    dbname = conninfo_to_dict(db.dsn)["dbname"]
    help_cases = [Case((*path, "--help"), 0) for path, _ in ALL_COMMANDS]
    return [
        *help_cases,
        Case((), 2),
        Case(("nope",), 2),
        Case(("status", "--nope", *dsn), 2),
        Case(("install", *dsn), 0, shows=("already installed",)),
        Case(("install", "--dsn", "host=127.0.0.1 port=1 connect_timeout=2"), 1),
        Case(("upgrade", *dsn), 0, shows=("up to date",)),
        Case(("upgrade",), 2),
        Case(("version",), 0),
        Case(("version", "extra"), 2),
        Case(("status", *dsn), 0, shows=("snapshots: 1", *PROJECTIONS, "failed", "paused", "inline", "external")),
        Case(("status", "--dsn", str(dbname)), 0, shows=("events: ",)),
        Case(("status", "--dsn", "host=a b"), 2, shows=("a DSN is",)),
        Case(("after-restore", *dsn), 0, shows=("feed key offset",)),
        Case(("after-restore",), 2),
        Case(("append", "Order", fresh, "--expected", "new", "-e", "Noted", *dsn), 0),
        Case(("append", "Order", order, "--expected", "0", "-e", "OrderDelivered", *dsn), 1, shows=("ES001",)),
        Case(("append", "Order", order, "--expected", "soon", "-e", "X", *dsn), 2),
        Case(("append", "Order", "not-a-uuid", "--expected", "new", "-e", "X", *dsn), 2),
        Case(("append", "Order", str(uuid.uuid4()), "--expected", "new", *dsn), 1, stdin=unknown_key),
        Case(("append", "Order", str(uuid.uuid4()), "--expected", "new", *dsn), 1, stdin="[{"),
        Case(("append", "Order", str(uuid.uuid4()), "--expected", "new", *dsn), 1, stdin="[]"),
        # The inline Order projection refuses an OrderPlaced without its fields.
        Case(("append", "Order", str(uuid.uuid4()), "--expected", "new", "-e", "OrderPlaced", *dsn), 1),
        Case(("events", order, *dsn), 0, shows=("OrderShipped",)),
        Case(("events", order, "--json", "--from-version", "1", *dsn), 0, shows=('"OrderShipped"',)),
        Case(("events", "not-a-uuid", *dsn), 2),
        Case(("events", order, "--from-version", "-1", *dsn), 2),
        Case(("feed", "-n", "5", *dsn), 0, shows=("OrderPlaced",)),
        Case(("feed", "--from", db.position, "--json", "--type", "OrderShipped", *dsn), 0, shows=("OrderShipped",)),
        Case(("feed", "--from", "nowhere", *dsn), 2),
        Case(("feed", "--limit", "0", *dsn), 2),
        Case(("state", "Order", order, *dsn), 0, shows=('"shipped"',)),
        Case(("state", "Order", order, "--version", "0", *dsn), 0, shows=('"placed"',)),
        Case(("state", "Order", order, "--at", db.placed_at, *dsn), 0, shows=('"placed"',)),
        Case(("state", "Order", str(uuid.uuid4()), *dsn), 1),
        Case(("state", "Nope", order, *dsn), 1, shows=("ES003",)),
        Case(("state", "Order", order, "--at", "yesterday", *dsn), 2),
        Case(("stats", "--bucket", "hour", *dsn), 0, shows=("total: ",)),
        Case(("stats", "--bucket", "fortnight", *dsn), 2),
        Case(("stats", "--from", "soon", *dsn), 2),
        Case(("projections",), 2),
        Case(("projections", "list", *dsn), 0, shows=tuple(PROJECTIONS)),
        Case(("projections", "list", "--dsn", "host=127.0.0.1 port=1 connect_timeout=2"), 1),
        Case(("projections", "status", *dsn), 0, shows=tuple(PROJECTIONS)),
        *[Case(("projections", "status", name, *dsn), 0, shows=(name,)) for name in PROJECTIONS],
        Case(("projections", "status", "nope", *dsn), 1, shows=("ES003",)),
        Case(("projections", "run", "counter_async", "--batch", "1", *dsn), 0, shows=("applied",)),
        Case(("projections", "run", "paused_async", *dsn), 0, shows=("paused",)),
        Case(("projections", "run", "failing_async", *dsn), 1),
        Case(("projections", "run", "order_projections", *dsn), 1, shows=("ES002",)),
        Case(("projections", "run", "mailer", *dsn), 1, shows=("ES002",)),
        Case(("projections", "run", "nope", *dsn), 1, shows=("ES003",)),
        Case(("projections", "run", "counter_async", "--batch", "0", *dsn), 2),
        Case(("projections", "rebuild", "order_projections", *dsn), 0, shows=("rebuilt",)),
        Case(("projections", "rebuild", "mailer", *dsn), 1, shows=("ES002",)),
        Case(("projections", "rebuild", "paused_async", *dsn), 1, shows=("ES002",)),
        Case(("projections", "rebuild", "nope", *dsn), 1, shows=("ES003",)),
        Case(("projections", "rebuild", *dsn), 2),
        # Not a checkout; a database that holds another schema (rich) than the demo's.
        Case(("demo", "--checkout", str(tmp), *dsn), 1, shows=("checkout",)),
        Case(("demo", "--checkout", str(ROOT), "--orders", "3", *dsn), 1, shows=("rich",)),
        Case(("demo", "--checkout", str(ROOT), "--orders", "zero", *dsn), 2),
    ]


def run(case: Case, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRY_POINT), *case.args],
        input=case.stdin,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )


def command_path(args: tuple[str, ...]) -> tuple[str, ...]:
    """The command an argument list names: its leading words that are commands."""
    paths = {path for path, _ in ALL_COMMANDS}
    path: tuple[str, ...] = ()
    for word in args:
        if (*path, word) not in paths:
            break
        path = (*path, word)
    return path


def documented_commands() -> set[tuple[str, ...]]:
    """The commands docs/cli.md shows a usage line of (`pg-eventstore WORD ...` at the start of a line)."""
    text = (ROOT / "docs" / "cli.md").read_text()
    return {command_path(tuple(line.split()[1:])) for line in re.findall(r"^pg-eventstore .*$", text, re.M)}


def test_every_command_has_valid_and_invalid_cases(tmp_path: Path) -> None:
    db = RichDatabase("host=127.0.0.1 dbname=x", uuid.uuid4(), "(1,1)", "2026-01-01T00:00:00+00:00")
    covered: dict[tuple[str, ...], set[int]] = {}
    for case in cases(db, tmp_path):
        if "--help" not in case.args:
            covered.setdefault(command_path(case.args), set()).add(case.code)
    documented = documented_commands()
    listed = {path for path, command in ALL_COMMANDS if not getattr(command, "commands", None)}
    assert documented - {()} <= listed, "docs/cli.md shows commands the CLI does not have"
    assert listed <= documented, "commands without a usage line in docs/cli.md"
    for path in listed:
        codes = covered.get(path, set())
        assert codes & {0, 1} and codes & {1, 2}, f"{' '.join(path)} needs a case that works and one that fails"


def test_every_command_ends_with_an_exit_code_and_never_a_traceback(rich: RichDatabase, tmp_path: Path) -> None:
    server = conninfo_to_dict(rich.dsn)
    # For the bare-name case: what a DSN leaves out comes from the environment.
    env = {**ENV, "PGHOST": str(server.get("host", "")), "PGPORT": str(server.get("port", "")), "PGUSER": "postgres"}
    all_cases = cases(rich, tmp_path)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda case: run(case, env), all_cases))
    problems = []
    for case, result in zip(all_cases, results, strict=True):
        output = result.stdout + result.stderr
        wrong = [
            *(["exit code"] if result.returncode != case.code else []),
            *(["traceback"] if "Traceback" in output else []),
            *(f"no {text!r}" for text in case.shows if text not in output),
        ]
        if result.returncode == 1:
            lines = result.stderr.strip().splitlines()
            if len(lines) != 1 or not lines[0].startswith("error: "):
                wrong.append("not one error line")
        if wrong:
            problems.append(f"{' '.join(case.args)} -> {result.returncode} ({', '.join(wrong)}):\n{output}")
    assert not problems, "\n\n".join(problems)


def test_an_unexpected_exception_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> Any:
        raise RuntimeError("boom\non two lines")

    monkeypatch.setattr("pg_eventstore.schema.package_version", broken)
    with pytest.raises(SystemExit) as exit_info:
        app(["version"])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "error: unexpected RuntimeError: boom on two lines (a bug in pg-eventstore: please report it)"
    )
    assert exit_info.value.__suppress_context__
