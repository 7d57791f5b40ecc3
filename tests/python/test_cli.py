"""The pg-eventstore command line, run as a user runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from psycopg.conninfo import conninfo_to_dict
from rich.progress import Progress, TaskID

from pg_eventstore import schema
from pg_eventstore.cli import app
from pg_eventstore.cli import projections as cli_projections
from pg_eventstore.models import NewEvent, RecordedEvent
from pg_eventstore.store import NO_STREAM, EventStore

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINT = Path(sys.executable).parent / "pg-eventstore"
# No DATABASE_URL from the caller's environment: each test says which database it means.
ENV = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}

PLACED = {
    "orderNumber": "ORD-1",
    "customerId": "7c7c0e4e-9f6a-4d8e-8a8f-111111111111",
    "lineItems": [{"sku": "BOOK-1", "quantity": 2, "unitPrice": 10.0}],
    "subtotal": 20.0,
    "shippingCost": 4.95,
    "total": 24.95,
}


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRY_POINT), *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        check=False,
        env=ENV if env is None else env,
        timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess[str], code: str) -> None:
    """The command failed with exit code 1 and one line on stderr naming the SQLSTATE."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith(f"error: {code}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def command_paths(command: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the app with its path, groups included (typer's click command tree)."""
    yield prefix, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*prefix, name))


ALL_COMMANDS = list(command_paths(typer.main.get_command(app)))


def test_every_command_and_option_has_help() -> None:
    names = {" ".join(path) for path, _ in ALL_COMMANDS}
    assert {"status", "append", "events", "feed", "state", "stats", "demo"} <= names
    assert {"projections list", "projections status", "projections run", "projections rebuild"} <= names
    for path, command in ALL_COMMANDS:
        assert command.help, f"{' '.join(path)} has no help"
        for param in command.params:
            if param.name != "help":
                assert getattr(param, "help", None), f"{' '.join(path) or 'pg-eventstore'} {param.name} has no help"

    def show_help(path: tuple[str, ...]) -> tuple[tuple[str, ...], subprocess.CompletedProcess[str]]:
        return path, cli(*path, "--help")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(show_help, [path for path, _ in ALL_COMMANDS]))
    by_path = dict(ALL_COMMANDS)
    for path, result in results:
        assert result.returncode == 0, (path, result.stderr)
        for param in by_path[path].params:
            if param.param_type_name == "option":
                assert any(opt in result.stdout for opt in param.opts), (path, param.opts)


def test_shell_completion_is_available() -> None:
    result = cli("--show-completion", "bash")
    assert result.returncode == 0, result.stderr
    assert "complete" in result.stdout


def test_a_missing_dsn_is_a_usage_error() -> None:
    result = cli("status")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def test_dsn_comes_from_database_url(dsn: str) -> None:
    result = cli("status", env={**ENV, "DATABASE_URL": dsn})
    assert result.returncode == 0, result.stderr
    assert f"eventstore {schema.package_version()}" in result.stdout


def test_status_without_the_schema_fails_in_one_line(empty_dsn: str) -> None:
    result = cli("status", "--dsn", empty_dsn)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_status_shows_version_counts_fence_and_what_holds_it_back(dsn: str, store: EventStore) -> None:
    for _ in range(2):
        store.append(
            "Order", uuid.uuid4(), [NewEvent("OrderPlaced", {}), NewEvent("OrderShipped", {})], expected_version=-1
        )
    gid = f"cli-test-{uuid.uuid4().hex[:8]}"
    append = "SELECT count(*) FROM eventstore.append_events('Order', gen_random_uuid(), -1, %s::jsonb)"
    placed = '[{"event_type": "OrderPlaced", "payload": {}}]'
    with psycopg.connect(dsn) as bystander, psycopg.connect(dsn) as holder, psycopg.connect(dsn) as preparer:
        # Open transactions that appended (one prepared) hold the fence back; an older one that
        # only holds a transaction id does not, and is not named.
        bystander_xid = bystander.execute("SELECT pg_current_xact_id()::text").fetchone()
        holder.execute(append, (placed,))
        holder_xid = holder.execute("SELECT pg_current_xact_id()::text").fetchone()
        holder_pid = holder.info.backend_pid
        # PREPARE refuses a transaction that notifies: this one appends with notifications off.
        preparer.execute("SELECT eventstore.set_notify_mode('off')")
        preparer.commit()
        preparer.execute(append, (placed,))
        preparer.execute(f"PREPARE TRANSACTION '{gid}'")
        preparer.autocommit = True  # ROLLBACK PREPARED runs outside a transaction block
        try:
            result = cli("status", "--dsn", dsn)
        finally:
            preparer.execute(f"ROLLBACK PREPARED '{gid}'")
            holder.rollback()
            bystander.rollback()
    assert bystander_xid is not None
    assert f"xid {bystander_xid[0]}" not in result.stdout
    assert result.returncode == 0, result.stderr
    assert f"eventstore {schema.package_version()}" in result.stdout
    assert "events: 4  aggregates: 2" in result.stdout
    assert "feed fence: " in result.stdout
    assert holder_xid is not None
    assert f"pid {holder_pid}," in result.stdout
    assert f"xid {holder_xid[0]}" in result.stdout
    assert f"prepared transaction '{gid}'" in result.stdout


def stored_lines(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.strip().splitlines()]


def test_append_with_event_options_and_from_stdin(dsn: str, store: EventStore) -> None:
    aggregate_id = uuid.uuid4()
    first = stored_lines(
        cli(
            "append", "Order", str(aggregate_id), "--expected", "new", "--dsn", dsn,
            "--event", 'OrderPlaced={"total": 10}', "-e", "OrderShipped", "--metadata", '{"user": "ann"}',
        )
    )  # fmt: skip
    assert [(line[0], line[1]) for line in first] == [("0", "OrderPlaced"), ("1", "OrderShipped")]

    event_id = uuid.uuid4()
    events = [{"event_type": "OrderDelivered", "payload": {"signedBy": "bo"}, "event_id": str(event_id)}]
    second = stored_lines(
        cli("append", "Order", str(aggregate_id), "--expected", "1", "--dsn", dsn, stdin=json.dumps(events))
    )
    assert second == [["2", "OrderDelivered", str(event_id), second[0][3]]]
    # A retry of the same call (same event id) is idempotent: same row, nothing appended.
    retry = stored_lines(
        cli("append", "Order", str(aggregate_id), "--expected", "1", "--dsn", dsn, stdin=json.dumps(events))
    )
    assert retry == second

    stored = store.load_events(aggregate_id)
    assert [(e.event_version, e.event_type, e.payload, e.metadata) for e in stored] == [
        (0, "OrderPlaced", {"total": 10}, {"user": "ann"}),
        (1, "OrderShipped", {}, {"user": "ann"}),
        (2, "OrderDelivered", {"signedBy": "bo"}, {}),
    ]
    assert [line[3] for line in first + second] == [str(e.feed_position) for e in stored]

    any_version = stored_lines(cli("append", "Order", str(aggregate_id), "--expected", "any", "-e", "X", "--dsn", dsn))
    assert any_version[0][0] == "3"


def test_append_errors(dsn: str, store: EventStore) -> None:
    aggregate_id = uuid.uuid4()
    store.append("Order", aggregate_id, [NewEvent("OrderPlaced", {})], expected_version=NO_STREAM)

    conflict = cli("append", "Order", str(aggregate_id), "--expected", "5", "-e", "OrderShipped", "--dsn", dsn)
    one_error_line(conflict, "ES001")
    assert "hint:" in conflict.stderr
    one_error_line(cli("append", "Order", str(aggregate_id), "--expected", "new", "-e", "X", "--dsn", dsn), "ES001")
    # Another type for an existing aggregate; a malformed event on stdin: ES002, nothing written.
    one_error_line(cli("append", "Invoice", str(aggregate_id), "--expected", "0", "-e", "X", "--dsn", dsn), "ES002")
    bad = json.dumps([{"event_type": "", "payload": {}}])
    one_error_line(cli("append", "Order", str(aggregate_id), "--expected", "0", "--dsn", dsn, stdin=bad), "ES002")
    assert len(store.load_events(aggregate_id)) == 1

    # Usage errors exit 2 before connecting.
    assert cli("append", "Order", str(aggregate_id), "--expected", "soon", "-e", "X", "--dsn", dsn).returncode == 2
    assert cli("append", "Order", str(aggregate_id), "--expected", "0", "-e", "X=[1]", "--dsn", dsn).returncode == 2
    assert cli("append", "Order", "not-a-uuid", "--expected", "0", "-e", "X", "--dsn", dsn).returncode == 2
    not_json = cli("append", "Order", str(aggregate_id), "--expected", "0", "--dsn", dsn, stdin="[{")
    assert not_json.returncode == 1
    assert not_json.stderr.startswith("error: stdin is not JSON")


def test_events_json_round_trip(dsn: str, store: EventStore) -> None:
    aggregate_id = uuid.uuid4()
    stored = store.append(
        "Order",
        aggregate_id,
        [NewEvent("OrderPlaced", {"total": 10.5, "items": [{"sku": "A"}]}, {"user": "ann"}), NewEvent("OrderShipped")],
        expected_version=NO_STREAM,
    )
    result = cli("events", str(aggregate_id), "--json", "--dsn", dsn)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [
        (
            uuid.UUID(line["event_id"]),
            line["event_version"],
            line["event_type"],
            line["payload"],
            line["metadata"],
            line["feed_position"],
            datetime.fromisoformat(line["occurred_at"]),
        )
        for line in lines
    ] == [
        (
            e.event_id,
            e.event_version,
            e.event_type,
            e.payload,
            e.metadata,
            str(e.feed_position),
            e.occurred_at,
        )
        for e in stored
    ]
    from_one = cli("events", str(aggregate_id), "--json", "--from-version", "1", "--dsn", dsn)
    assert [json.loads(line)["event_version"] for line in from_one.stdout.splitlines()] == [1]

    table = cli("events", str(aggregate_id), "--dsn", dsn)
    assert table.returncode == 0, table.stderr
    assert "OrderPlaced" in table.stdout and "OrderShipped" in table.stdout

    unknown = cli("events", str(uuid.uuid4()), "--json", "--dsn", dsn)
    assert (unknown.returncode, unknown.stdout) == (0, "")


def test_state_now_at_a_time_and_at_a_version(orders_dsn: str) -> None:
    with psycopg.connect(orders_dsn, autocommit=True) as conn:
        store = EventStore(conn)
        order_id = uuid.uuid4()
        placed = store.append("Order", order_id, [NewEvent("OrderPlaced", PLACED)], expected_version=NO_STREAM)[0]
        shipped = store.append("Order", order_id, [NewEvent("OrderShipped", {"carrier": "DHL"})], expected_version=0)[0]

    def state(*options: str) -> dict[str, Any]:
        result = cli("state", "Order", str(order_id), *options, "--dsn", orders_dsn)
        assert result.returncode == 0, result.stderr
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    now = state()
    assert (now["version"], now["state"]["status"], now["state"]["carrier"]) == (1, "shipped", "DHL")
    assert now["aggregate_id"] == str(order_id)
    at_placing = state("--at", placed.occurred_at.isoformat())
    assert (at_placing["version"], at_placing["state"]["status"]) == (0, "placed")
    assert state("--at", shipped.occurred_at.isoformat())["version"] == 1
    assert state("--version", "0")["state"]["status"] == "placed"
    assert state("--version", "1") == now

    before = (placed.occurred_at - timedelta(seconds=1)).isoformat()
    no_state = cli("state", "Order", str(order_id), "--at", before, "--dsn", orders_dsn)
    assert no_state.returncode == 1
    assert no_state.stderr.startswith("error: ")
    assert cli("state", "Order", str(order_id), "--version", "2", "--dsn", orders_dsn).returncode == 1
    one_error_line(cli("state", "Nope", str(order_id), "--dsn", orders_dsn), "ES003")
    both = cli("state", "Order", str(order_id), "--at", before, "--version", "0", "--dsn", orders_dsn)
    assert both.returncode == 2
    assert cli("state", "Order", str(order_id), "--at", "yesterday", "--dsn", orders_dsn).returncode == 2


def test_stats_counts_events_per_type(dsn: str, store: EventStore) -> None:
    for _ in range(3):
        store.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced"), NewEvent("OrderShipped")], expected_version=-1)
    store.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced")], expected_version=-1)
    result = cli("stats", "--bucket", "hour", "--dsn", dsn)
    assert result.returncode == 0, result.stderr
    rows: Counter[str] = Counter()
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")]  # '', bucket, event type, events, ''
        if len(cells) == 5 and cells[3].replace(",", "").isdigit():
            rows[cells[2]] += int(cells[3].replace(",", ""))
    assert rows == {"OrderPlaced": 4, "OrderShipped": 3}
    assert "total: 7 events" in result.stdout

    future = cli("stats", "--from", "2999-01-01T00:00:00+00:00", "--dsn", dsn)
    assert future.returncode == 0
    assert "total: 0 events" in future.stdout
    assert cli("stats", "--bucket", "fortnight", "--dsn", dsn).returncode == 2


def test_feed_pages_with_a_limit_and_resumes_from_a_printed_position(dsn: str, store: EventStore) -> None:
    stored = [
        event
        for _ in range(3)
        for event in store.append(
            "Order", uuid.uuid4(), [NewEvent("OrderPlaced"), NewEvent("OrderShipped")], expected_version=-1
        )
    ]
    first = cli("feed", "--limit", "2", "--dsn", dsn)
    assert first.returncode == 0, first.stderr
    positions = [line.split("\t")[0] for line in first.stdout.splitlines()]
    assert positions == [str(e.feed_position) for e in stored[:2]]
    assert f"--from '{positions[-1]}'" in first.stderr

    rest = cli("feed", "--from", positions[-1], "--json", "--dsn", dsn)
    assert rest.returncode == 0, rest.stderr
    assert [json.loads(line)["feed_position"] for line in rest.stdout.splitlines()] == [
        str(e.feed_position) for e in stored[2:]
    ]
    shipped = cli("feed", "--type", "OrderShipped", "--dsn", dsn)
    assert [line.split("\t")[5] for line in shipped.stdout.splitlines()] == ["OrderShipped"] * 3
    assert cli("feed", "--from", "nowhere", "--dsn", dsn).returncode == 2
    assert cli("feed", "--aggregate-type", "Invoice", "--dsn", dsn).stdout == ""


def test_feed_follow_prints_new_events_as_they_commit(dsn: str, store: EventStore) -> None:
    def append_one() -> RecordedEvent:
        return store.append("Order", uuid.uuid4(), [NewEvent("OrderPlaced")], expected_version=-1)[0]

    earlier = append_one()
    with subprocess.Popen(
        [str(ENTRY_POINT), "feed", "--follow", "--limit", "2", "--from", str(earlier.feed_position), "--dsn", dsn],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as follower:
        assert follower.stdout is not None
        first = append_one()
        # Once it printed the first event it has read the feed to its end and waits for a wake-up.
        first_line = follower.stdout.readline()
        second = append_one()
        rest, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert [line.split("\t")[0] for line in [first_line, *rest.splitlines()]] == [
        str(first.feed_position),
        str(second.feed_position),
    ]
    assert f"--from '{second.feed_position}'" in err


def register_async_orders(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute(
        "SELECT eventstore.register_projection(%s, 'orders.project_order(eventstore.domain_events)', NULL, 'async',"
        " 'orders.reset_order_projections()')",
        [name],
    )


def place_orders(conn: psycopg.Connection[Any], count: int) -> None:
    store = EventStore(conn)
    for n in range(count):
        order_id = uuid.uuid4()
        placed = {**PLACED, "orderNumber": f"ORD-{n}-{order_id.hex[:6]}"}
        store.append("Order", order_id, [NewEvent("OrderPlaced", placed)], expected_version=NO_STREAM)
        store.append("Order", order_id, [NewEvent("OrderShipped", {"carrier": "DHL"})], expected_version=0)


def test_projections_list_status_run_and_rebuild(orders_dsn: str) -> None:
    with psycopg.connect(orders_dsn, autocommit=True) as conn:
        register_async_orders(conn, "orders_async")
        place_orders(conn, 30)

        listed = cli("projections", "list", "--dsn", orders_dsn)
        assert listed.returncode == 0, listed.stderr
        assert "orders_async" in listed.stdout and "async" in listed.stdout

        status = cli("projections", "status", "orders_async", "--dsn", orders_dsn)
        assert status.returncode == 0, status.stderr
        assert status_row(status.stdout, "orders_async")[:2] == ["async", "running"]
        assert status_row(status.stdout, "orders_async")[3] == "60"  # lag

        run = cli("projections", "run", "orders_async", "--batch", "7", "--dsn", orders_dsn)
        assert run.returncode == 0, run.stderr
        assert "applied 60 events" in run.stdout
        assert conn.execute("SELECT count(*) FROM orders.order_projections WHERE status = 'shipped'").fetchone() == (
            30,
        )
        after = status_row(cli("projections", "status", "--dsn", orders_dsn).stdout, "orders_async")
        assert (after[3], after[4]) == ("0", "60")  # lag, applied
        rows_before = conn.execute("SELECT * FROM orders.order_projections ORDER BY aggregate_id").fetchall()

        rebuilt = cli("projections", "rebuild", "orders_async", "--dsn", orders_dsn)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "replayed 60 events" in rebuilt.stdout
        assert conn.execute("SELECT * FROM orders.order_projections ORDER BY aggregate_id").fetchall() == rows_before

        one_error_line(cli("projections", "run", "nope", "--dsn", orders_dsn), "ES003")
        one_error_line(cli("projections", "rebuild", "nope", "--dsn", orders_dsn), "ES003")
        conn.execute(
            "SELECT eventstore.register_projection('orders_inline', 'orders.project_order(eventstore.domain_events)')"
        )
        one_error_line(cli("projections", "run", "orders_inline", "--dsn", orders_dsn), "ES002")
        # No reset function: the database refuses the rebuild.
        one_error_line(cli("projections", "rebuild", "orders_inline", "--dsn", orders_dsn), "ES002")


def status_row(table: str, name: str) -> list[str]:
    """The cells after the name in the status table's row of a projection."""
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) > 2 and cells[1] == name:
            return cells[2:]
    raise AssertionError(f"no row for {name} in:\n{table}")


def test_projections_rebuild_follows_the_progress_notices(orders_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(orders_dsn, autocommit=True) as conn:
        register_async_orders(conn, "orders_async")
        conn.execute(
            """
            SELECT eventstore.append_events('Order', gen_random_uuid(), -1, jsonb_build_array(jsonb_build_object(
                'event_type', 'OrderPlaced', 'payload', %s::jsonb || jsonb_build_object('orderNumber', 'N' || n))))
            FROM generate_series(1, 10500) AS n
            """,
            [json.dumps(PLACED)],
        )
        # In-process, to see the bar move: the total before the replay, 10,000 of 10,500 after the first batch.
        updates: list[tuple[Any, Any]] = []

        class RecordingProgress(Progress):
            def update(self, task_id: TaskID, **fields: Any) -> None:
                updates.append((fields.get("completed"), fields.get("total")))
                super().update(task_id, **fields)

        monkeypatch.setattr(cli_projections, "Progress", RecordingProgress)
        replayed, _ = cli_projections.rebuild_with_progress(conn, "orders_async")
    assert replayed == 10500
    assert updates[:2] == [(0, 10500), (10000, 10500)]
    assert updates[-1] == (10500, 10500)

    rebuilt = cli("projections", "rebuild", "orders_async", "--dsn", orders_dsn)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "replayed 10,500 events" in rebuilt.stdout


def test_projections_run_follow_stops_cleanly_on_sigint(orders_dsn: str) -> None:
    with psycopg.connect(orders_dsn, autocommit=True) as conn:
        register_async_orders(conn, "orders_async")
        with subprocess.Popen(
            [str(ENTRY_POINT), "projections", "run", "orders_async", "--follow", "--dsn", orders_dsn],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        ) as worker:
            place_orders(conn, 5)
            deadline = time.monotonic() + 30
            while conn.execute("SELECT count(*) FROM orders.order_projections WHERE status = 'shipped'").fetchone() != (
                5,
            ):
                assert time.monotonic() < deadline, "the worker did not apply the events"
                time.sleep(0.1)
            worker.send_signal(signal.SIGINT)
            out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "applied 10 events" in out


REPORT_SECTIONS = [
    "placed 30 orders",
    "conflict:",
    "events by type",
    "order_projections by status",
    "revenue (delivered orders): ",
    "history of order",
    "temporal query: ",
    "snapshots: StockItem",
    "load_aggregate without snapshots",
    "rebuilt order_projections: replayed",
    "the read model equals the one before: yes",
    "same state and version both ways: yes",
]


def test_demo_on_a_fresh_database_and_again(empty_dsn: str) -> None:
    # The command runs examples/orders/demo.py of the checkout, passing the demo's options on.
    args = ("demo", "--checkout", str(ROOT), "--orders", "30", "--history", "200", "--workers", "2")
    first = cli(*args, "--dsn", empty_dsn)
    assert first.returncode == 0, first.stderr
    assert "ES001" in first.stdout
    assert f"the demo writes to database {conninfo_to_dict(empty_dsn)['dbname']} on " in first.stdout
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        assert schema.installed_version(conn) == schema.package_version()
        # 30 orders and the one of the conflict, all in the read model, which agrees with the fold.
        assert conn.execute("SELECT count(*) FROM orders.order_projections").fetchone() == (31,)
        mismatches = conn.execute(
            """
            SELECT count(*) FROM orders.order_projections AS o
            CROSS JOIN LATERAL eventstore.load_aggregate('Order', o.aggregate_id) AS a
            WHERE o.status <> a.state ->> 'status' OR o.version <> a.version
            """
        ).fetchone()
        assert mismatches == (0,)
        assert conn.execute(
            "SELECT array_agg(event_type ORDER BY event_version) FROM eventstore.domain_events"
            " WHERE aggregate_id = (SELECT aggregate_id FROM eventstore.domain_events"
            "                       WHERE metadata ->> 'user' = 'clerk B')"
        ).fetchone() == (["OrderPlaced", "OrderShipped", "OrderCancelled"],)
        assert conn.execute(
            "SELECT count(*) FROM eventstore.domain_events WHERE aggregate_type = 'StockItem'"
        ).fetchone() == (200,)
        # The StockItem fold agrees with a plain sum over the item's events.
        row = conn.execute(
            """
            SELECT (a.state ->> 'onHand')::integer, a.version, (
                SELECT sum(
                    (d.payload ->> 'quantity')::integer * CASE d.event_type WHEN 'StockPicked' THEN -1 ELSE 1 END
                )
                FROM eventstore.domain_events AS d
                WHERE d.aggregate_id = s.aggregate_id
            )::integer
            FROM eventstore.streams AS s
            CROSS JOIN LATERAL eventstore.load_aggregate('StockItem', s.aggregate_id) AS a
            WHERE s.aggregate_type = 'StockItem'
            """
        ).fetchone()
        assert row is not None and (row[0], row[1]) == (row[2], 199)
        assert conn.execute("SELECT count(*) FROM eventstore.projection_status").fetchone() == (1,)

    again = cli(*args, "--dsn", empty_dsn)
    assert again.returncode == 0, again.stderr
    assert "already installed" in again.stdout
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM orders.order_projections").fetchone() == (62,)
    # The same report: every section again.
    for section in REPORT_SECTIONS:
        assert section in first.stdout and section in again.stdout, section


def test_demo_outside_a_checkout_says_where_it_runs(dsn: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ENTRY_POINT), "demo", "--dsn", dsn], capture_output=True, text=True, env=ENV, cwd=tmp_path, check=False
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: the demo runs examples/orders/demo.py of a checkout")
    assert len(result.stderr.strip().splitlines()) == 1


def test_demo_finds_the_checkout_above_the_current_folder(empty_dsn: str) -> None:
    result = subprocess.run(
        [str(ENTRY_POINT), "demo", "--help-of-the-demo-is-not-this", "--dsn", empty_dsn],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT / "docs",
        check=False,
    )
    # The checkout was found: the demo itself (not the command) refused the unknown option.
    assert result.returncode == 2, result.stderr
    assert "No such option: --help-of-the-demo-is-not-this" in result.stderr


@pytest.mark.parametrize("command", [("events", str(uuid.UUID(int=1))), ("feed",), ("stats",), ("projections", "list")])
def test_a_bad_dsn_is_one_line(command: tuple[str, ...]) -> None:
    result = cli(*command, "--dsn", "host=127.0.0.1 port=1 connect_timeout=2")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect")
    assert len(result.stderr.strip().splitlines()) == 1
