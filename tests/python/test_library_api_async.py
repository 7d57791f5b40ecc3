"""The library as the command line's only SQL client: Projections (register, run, rebuild with
progress, status, pause/resume/retry/skip), EventStore.status() and the operator calls, the
Python projection runner's error handling, and the 42501 mapping.

Written for the asyncio API; test_library_api.py runs the same tests on the sync one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from pg_eventstore import schema
from pg_eventstore.async_projections import (
    AsyncProjections,
    AsyncProjectionWorker,
    AsyncPythonProjection,
    run_python_projection,
)
from pg_eventstore.async_store import NO_STREAM, AsyncEventStore
from pg_eventstore.errors import InsufficientPrivilegeError, InvalidEventError, UnknownTypeError
from pg_eventstore.models import FeedPosition, NewEvent, RecordedEvent

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
async def aprojections(aconn: psycopg.AsyncConnection[Any], apool: AsyncConnectionPool[Any]) -> AsyncProjections:
    await aconn.execute(SEEN)
    return AsyncProjections(apool)


async def append_n(astore: AsyncEventStore, *numbers: int) -> list[RecordedEvent]:
    events = [NewEvent("Counted", {"n": n}) for n in numbers]
    return await astore.append("Counter", uuid.uuid4(), events, expected_version=NO_STREAM)


async def seen(aconn: psycopg.AsyncConnection[Any]) -> list[int]:
    rows = await (await aconn.execute("SELECT n FROM public.seen ORDER BY n")).fetchall()
    return [row[0] for row in rows]


async def test_register_run_and_status_of_async_and_inline_projections(
    astore: AsyncEventStore, aprojections: AsyncProjections, aconn: psycopg.AsyncConnection[Any]
) -> None:
    await aprojections.register("counted", SEE, event_types=["Counted"], mode="async", reset=RESET_SEEN)
    await aprojections.register("inline_counted", SEE, mode="inline")
    stored = await append_n(astore, 1, 2, 3)
    assert await aprojections.exists("counted")
    assert not await aprojections.exists("nope")
    assert [(p.name, p.mode, p.event_types) for p in await aprojections.registered()] == [
        ("counted", "async", ["Counted"]),
        ("inline_counted", "inline", None),
    ]
    before = await aprojections.status_of("counted")
    assert (before.state, before.lag, before.events_applied) == ("running", 3, 0)

    assert await aprojections.run("counted", max_events=2) == 2
    assert await aprojections.run("counted") == 1
    assert await aprojections.run("counted") == 0
    after = await aprojections.status_of("counted")
    assert (after.lag, after.events_applied, after.position) == (0, 3, stored[-1].feed_position)

    # An inline projection has no checkpoint: the status says None, not a number.
    inline = await aprojections.status_of("inline_counted")
    assert (inline.position, inline.events_applied) == (None, None)
    assert [p.name for p in await aprojections.status()] == ["counted", "inline_counted"]
    assert await seen(aconn) == [1, 1, 2, 2, 3, 3]

    with pytest.raises(UnknownTypeError):
        await aprojections.status_of("nope")
    await aprojections.unregister("inline_counted")
    assert not await aprojections.exists("inline_counted")


async def test_pause_resume_fail_retry_and_skip(
    astore: AsyncEventStore, aprojections: AsyncProjections, aconn: psycopg.AsyncConnection[Any]
) -> None:
    await aprojections.register("counted", SEE, mode="async")
    await append_n(astore, 1)
    await aprojections.pause("counted")
    assert await aprojections.run("counted") == 0
    assert (await aprojections.status_of("counted")).state == "paused"
    await aprojections.resume("counted")
    assert await aprojections.run("counted") == 1

    bad = await append_n(astore, -1)
    await append_n(astore, 5)
    assert await aprojections.run("counted") == 0
    failed = await aprojections.status_of("counted")
    assert (failed.state, failed.failed_event_id) == ("failed", bad[0].id)
    assert failed.last_error is not None
    await aprojections.retry("counted")
    assert await aprojections.run("counted") == 0, "the cause is not fixed: it fails again"
    assert await aprojections.skip("counted") == bad[0].id
    assert await aprojections.run("counted") == 1
    assert await seen(aconn) == [1, 5]
    with pytest.raises(InvalidEventError):
        await aprojections.skip("counted")
    with pytest.raises(InvalidEventError):
        await aprojections.register("inline_too", SEE, mode="sideways")


async def test_rebuild_reports_progress_and_replays_everything(
    astore: AsyncEventStore, aprojections: AsyncProjections, aconn: psycopg.AsyncConnection[Any]
) -> None:
    await append_n(astore, *range(1, 12))
    await aprojections.register("counted", SEE, mode="async", reset=RESET_SEEN)
    progress: list[tuple[int, int]] = []
    assert await aprojections.rebuild("counted", lambda done, total: progress.append((done, total))) == 11
    assert progress[0] == (0, 11)
    assert progress[-1] == (11, 11)
    assert await seen(aconn) == list(range(1, 12))
    assert await aprojections.rebuild("counted") == 11
    assert await seen(aconn) == list(range(1, 12))


async def test_store_status_and_operator_calls(
    astore: AsyncEventStore, aprojections: AsyncProjections, aconn: psycopg.AsyncConnection[Any]
) -> None:
    await aprojections.register("inline_counted", SEE, mode="inline")
    await append_n(astore, 1, 2)
    status = await astore.status()
    assert status.installed_version == schema.package_version() == await astore.installed_version()
    assert (status.events, status.aggregates, status.aggregate_types, status.snapshots) == (2, 1, 0, 0)
    assert status.feed_fence is not None and status.feed_fence_error is None
    assert [(p.name, p.position, p.events_applied) for p in status.projections] == [("inline_counted", None, None)]
    assert status.prepared_transactions == []
    assert isinstance(await astore.feed_fence(), int)
    assert (await astore.database_time()).utcoffset() is not None
    assert await astore.after_restore() >= 0
    assert await astore.latest_snapshot_version("Counter", uuid.uuid4()) is None


async def test_status_names_only_an_open_transaction_that_appended(astore: AsyncEventStore, dsn: str) -> None:
    # The older transaction holds a transaction id but appends nothing: it does not hold the fence
    # back (docs/feed.md), so status() must name the younger one that appended, and nothing once
    # that one ends.
    with psycopg.connect(dsn) as unrelated, psycopg.connect(dsn) as appender:
        unrelated.execute("SELECT pg_current_xact_id()")
        appender.execute(
            "SELECT count(*) FROM eventstore.append_events('Counter', %s, -1, %s::jsonb)",
            (uuid.uuid4(), '[{"event_type": "Counted", "payload": {"n": 1}}]'),
        )
        status = await astore.status()
        assert status.oldest_transaction is not None
        assert status.oldest_transaction.pid == appender.info.backend_pid
        appender.rollback()
        assert (await astore.status()).oldest_transaction is None
        unrelated.rollback()


async def test_python_projection_records_handler_errors_but_not_database_errors(
    astore: AsyncEventStore, aprojections: AsyncProjections, aconn: psycopg.AsyncConnection[Any]
) -> None:
    applied: list[int] = []

    async def handler(conn: psycopg.AsyncConnection[Any], event: RecordedEvent) -> None:
        if event.payload["n"] < 0:
            raise ValueError("negative n")
        applied.append(event.payload["n"])

    projection = AsyncPythonProjection("python_counted", handler, event_types=["Counted"])
    await aprojections.register_python(projection)
    await append_n(astore, 1, -1, 2)
    assert await aprojections.run_python(projection) == 1
    failed = await aprojections.status_of("python_counted")
    assert failed.state == "failed"
    assert failed.last_error is not None and failed.last_error.startswith("ValueError")

    # The library's own SQL failing (here: no such projection) is not the handler's failure.
    unregistered = AsyncPythonProjection("unregistered", handler)
    with pytest.raises(UnknownTypeError):
        await run_python_projection(aconn, unregistered)

    worker = AsyncProjectionWorker("unused", python_projections=[projection], batch_size=10)
    await aprojections.skip("python_counted")
    assert await worker.run_once(aconn) == 1
    assert applied == [1, 1, 2]


@pytest.fixture
async def stranger_dsn(dsn: str, aconn: psycopg.AsyncConnection[Any]) -> AsyncIterator[str]:
    """A login role of the cluster with none of the eventstore roles."""
    role = f"stranger_{uuid.uuid4().hex[:8]}"
    await aconn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        yield make_conninfo(dsn, user=role)
    finally:
        await aconn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        await aconn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def test_insufficient_privilege_names_the_roles(stranger_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(stranger_dsn, autocommit=True) as conn:
        store = AsyncEventStore(conn)
        with pytest.raises(InsufficientPrivilegeError) as caught:
            await store.read_all(FeedPosition(0, 0))
    assert caught.value.sqlstate == "42501"
    assert caught.value.hint is not None
    for role in ("eventstore_reader", "eventstore_writer", "eventstore_admin"):
        assert role in caught.value.hint
