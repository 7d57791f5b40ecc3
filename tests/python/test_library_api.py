# Generated from test_library_api_async.py by tools/async_to_sync.py; do not edit (run `make generate`).
"""The library as the command line's only SQL client: Projections (register, run, rebuild with
progress, status, pause/resume/retry/skip), EventStore.status() and the operator calls, the
Python projection runner's error handling, and the 42501 mapping.

Written for the asyncio API; test_library_api.py runs the same tests on the sync one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from pg_eventstore import schema
from pg_eventstore.errors import InsufficientPrivilegeError, InvalidEventError, UnknownTypeError
from pg_eventstore.models import FeedPosition, NewEvent, RecordedEvent
from pg_eventstore.projections import (
    Projections,
    ProjectionWorker,
    PythonProjection,
    run_python_projection,
)
from pg_eventstore.store import NO_STREAM, EventStore

# A read model of the events' n, whose handler refuses n < 0 (so a projection can fail on purpose).
SEEN = b"""
CREATE TABLE public.seen (n integer NOT NULL);
CREATE FUNCTION public.see(p_event eventstore.domain_events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF (p_event.payload ->> 'n')::integer < 0 THEN
        RAISE EXCEPTION 'negative n';
    END IF;
    INSERT INTO public.seen VALUES ((p_event.payload ->> 'n')::integer);
END $$;
CREATE FUNCTION public.reset_seen() RETURNS void LANGUAGE sql AS $$ DELETE FROM public.seen $$;
"""
SEE = "public.see(eventstore.domain_events)"
RESET_SEEN = "public.reset_seen()"


@pytest.fixture
def projections(conn: psycopg.Connection[Any], pool: ConnectionPool[Any]) -> Projections:
    conn.execute(SEEN)
    return Projections(pool)


def append_n(store: EventStore, *numbers: int) -> list[RecordedEvent]:
    events = [NewEvent("Counted", {"n": n}) for n in numbers]
    return store.append("Counter", uuid.uuid4(), events, expected_version=NO_STREAM)


def seen(conn: psycopg.Connection[Any]) -> list[int]:
    rows = (conn.execute("SELECT n FROM public.seen ORDER BY n")).fetchall()
    return [row[0] for row in rows]


def test_register_run_and_status_of_async_and_inline_projections(
    store: EventStore, projections: Projections, conn: psycopg.Connection[Any]
) -> None:
    projections.register("counted", SEE, event_types=["Counted"], mode="async", reset=RESET_SEEN)
    projections.register("inline_counted", SEE, mode="inline")
    stored = append_n(store, 1, 2, 3)
    assert projections.exists("counted")
    assert not projections.exists("nope")
    assert [(p.name, p.mode, p.event_types) for p in projections.registered()] == [
        ("counted", "async", ["Counted"]),
        ("inline_counted", "inline", None),
    ]
    before = projections.status_of("counted")
    assert (before.state, before.lag, before.events_applied) == ("running", 3, 0)

    assert projections.run("counted", max_events=2) == 2
    assert projections.run("counted") == 1
    assert projections.run("counted") == 0
    after = projections.status_of("counted")
    assert (after.lag, after.events_applied, after.position) == (0, 3, stored[-1].feed_position)

    # An inline projection has no checkpoint: the status says None, not a number.
    inline = projections.status_of("inline_counted")
    assert (inline.position, inline.events_applied) == (None, None)
    assert [p.name for p in projections.status()] == ["counted", "inline_counted"]
    assert seen(conn) == [1, 1, 2, 2, 3, 3]

    with pytest.raises(UnknownTypeError):
        projections.status_of("nope")
    projections.unregister("inline_counted")
    assert not projections.exists("inline_counted")


def test_pause_resume_fail_retry_and_skip(
    store: EventStore, projections: Projections, conn: psycopg.Connection[Any]
) -> None:
    projections.register("counted", SEE, mode="async")
    append_n(store, 1)
    projections.pause("counted")
    assert projections.run("counted") == 0
    assert (projections.status_of("counted")).state == "paused"
    projections.resume("counted")
    assert projections.run("counted") == 1

    bad = append_n(store, -1)
    append_n(store, 5)
    assert projections.run("counted") == 0
    failed = projections.status_of("counted")
    assert (failed.state, failed.failed_event_id) == ("failed", bad[0].id)
    assert failed.last_error is not None
    projections.retry("counted")
    assert projections.run("counted") == 0, "the cause is not fixed: it fails again"
    assert projections.skip("counted") == bad[0].id
    assert projections.run("counted") == 1
    assert seen(conn) == [1, 5]
    with pytest.raises(InvalidEventError):
        projections.skip("counted")
    with pytest.raises(InvalidEventError):
        projections.register("inline_too", SEE, mode="sideways")


def test_rebuild_reports_progress_and_replays_everything(
    store: EventStore, projections: Projections, conn: psycopg.Connection[Any]
) -> None:
    append_n(store, *range(1, 12))
    projections.register("counted", SEE, mode="async", reset=RESET_SEEN)
    progress: list[tuple[int, int]] = []
    assert projections.rebuild("counted", lambda done, total: progress.append((done, total))) == 11
    assert progress[0] == (0, 11)
    assert progress[-1] == (11, 11)
    assert seen(conn) == list(range(1, 12))
    assert projections.rebuild("counted") == 11
    assert seen(conn) == list(range(1, 12))


def test_store_status_and_operator_calls(
    store: EventStore, projections: Projections, conn: psycopg.Connection[Any]
) -> None:
    projections.register("inline_counted", SEE, mode="inline")
    append_n(store, 1, 2)
    status = store.status()
    assert status.installed_version == schema.package_version() == store.installed_version()
    assert (status.events, status.aggregates, status.aggregate_types, status.snapshots) == (2, 1, 0, 0)
    assert status.feed_fence is not None and status.feed_fence_error is None
    assert [(p.name, p.position, p.events_applied) for p in status.projections] == [("inline_counted", None, None)]
    assert status.prepared_transactions == []
    assert isinstance(store.feed_fence(), int)
    assert (store.database_time()).utcoffset() is not None
    assert store.after_restore() >= 0
    assert store.latest_snapshot_version("Counter", uuid.uuid4()) is None


def test_status_names_only_an_open_transaction_that_appended(store: EventStore, dsn: str) -> None:
    # The older transaction holds a transaction id but appends nothing: it does not hold the fence
    # back (docs/feed.md), so status() must name the younger one that appended, and nothing once
    # that one ends.
    with psycopg.connect(dsn) as unrelated, psycopg.connect(dsn) as appender:
        unrelated.execute("SELECT pg_current_xact_id()")
        appender.execute(
            "SELECT count(*) FROM eventstore.append_events('Counter', %s, -1, %s::jsonb)",
            (uuid.uuid4(), '[{"event_type": "Counted", "payload": {"n": 1}}]'),
        )
        status = store.status()
        assert status.oldest_transaction is not None
        assert status.oldest_transaction.pid == appender.info.backend_pid
        appender.rollback()
        assert (store.status()).oldest_transaction is None
        unrelated.rollback()


def test_python_projection_records_handler_errors_but_not_database_errors(
    store: EventStore, projections: Projections, conn: psycopg.Connection[Any]
) -> None:
    applied: list[int] = []

    def handler(conn: psycopg.Connection[Any], event: RecordedEvent) -> None:
        if event.payload["n"] < 0:
            raise ValueError("negative n")
        applied.append(event.payload["n"])

    projection = PythonProjection("python_counted", handler, event_types=["Counted"])
    projections.register_python(projection)
    append_n(store, 1, -1, 2)
    assert projections.run_python(projection) == 1
    failed = projections.status_of("python_counted")
    assert failed.state == "failed"
    assert failed.last_error is not None and failed.last_error.startswith("ValueError")

    # The library's own SQL failing (here: no such projection) is not the handler's failure.
    unregistered = PythonProjection("unregistered", handler)
    with pytest.raises(UnknownTypeError):
        run_python_projection(conn, unregistered)

    worker = ProjectionWorker("unused", python_projections=[projection], batch_size=10)
    projections.skip("python_counted")
    assert worker.run_once(conn) == 1
    assert applied == [1, 1, 2]


@pytest.fixture
def stranger_dsn(dsn: str, conn: psycopg.Connection[Any]) -> Iterator[str]:
    """A login role of the cluster with none of the eventstore roles."""
    role = f"stranger_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        yield make_conninfo(dsn, user=role)
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_insufficient_privilege_names_the_roles(stranger_dsn: str) -> None:
    with psycopg.Connection.connect(stranger_dsn, autocommit=True) as conn:
        store = EventStore(conn)
        with pytest.raises(InsufficientPrivilegeError) as caught:
            store.read_all(FeedPosition(0, 0))
    assert caught.value.sqlstate == "42501"
    assert caught.value.hint is not None
    for role in ("eventstore_reader", "eventstore_writer", "eventstore_admin"):
        assert role in caught.value.hint
