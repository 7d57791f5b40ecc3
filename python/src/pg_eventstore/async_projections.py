"""Projections from Python: the admin API, Python handlers, and the worker that runs them.

- AsyncProjections registers projections, runs and rebuilds them (with a
  progress callback), shows their status, and pauses, resumes, retries or
  skips them: everything an operator (or the command line) does.
- AsyncPythonProjection is a handler written in Python with its checkpoint
  in the database (eventstore.projections, mode 'external'). Each batch runs
  in one transaction that also moves the checkpoint, so database side
  effects made on the given connection happen exactly once per event;
  effects outside the database (HTTP calls, queues) happen at least once: a
  batch that fails or is cut off is applied again. Only what the handler
  raises is a handler failure; an error of the library's own SQL propagates.
- AsyncProjectionWorker runs async projections (handlers in the database)
  and Python projections continuously on the one follow loop (async_follow.py):
  it wakes up on appends, runs batches until every projection is caught up,
  polls as a fallback, reconnects, and stops after the current batch on
  SIGINT/SIGTERM or when its stop event is set.

This module is the source of projections.py (Projections, PythonProjection,
ProjectionWorker), generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pg_eventstore import queries
from pg_eventstore._acompat import AEvent
from pg_eventstore.async_follow import POLL_INTERVAL, RECHECK_DELAY, AsyncSource, follow
from pg_eventstore.async_store import AsyncClientBase
from pg_eventstore.errors import UnknownTypeError, wrap_errors
from pg_eventstore.models import ProjectionInfo, ProjectionStatus, RecordedEvent
from pg_eventstore.params import read_all_params

log = logging.getLogger(__name__)

AsyncHandler = Callable[[psycopg.AsyncConnection[Any], RecordedEvent], Awaitable[None]]

# A rebuild's progress: (events replayed so far, events to replay).
Progress = Callable[[int, int], None]

# rebuild_projection() reports progress in a NOTICE per batch: DETAIL 'done=N total=M'.
_PROGRESS = re.compile(r"done=(?P<done>\d+) total=(?P<total>\d+)")


@dataclass(frozen=True)
class AsyncPythonProjection:
    """A projection whose handler runs here: handler(conn, event) is called inside the batch's transaction."""

    name: str
    handler: AsyncHandler
    event_types: Sequence[str] | None = None


class _HandlerFailed(Exception):
    """Carries a handler's error out of the batch's transaction (rolling it back)."""

    def __init__(self, failure: str) -> None:
        super().__init__(failure)
        self.failure = failure


class AsyncProjections(AsyncClientBase):
    """The projections of one database: register, run, rebuild, status, and an operator's controls.

    Over a connection (calls run in your transaction) or a pool (each call is
    its own transaction). Registration and rebuild need eventstore_admin;
    running needs eventstore_writer; status needs eventstore_reader.
    """

    async def register(
        self,
        name: str,
        handler: str,
        *,
        event_types: Sequence[str] | None = None,
        mode: str = "inline",
        reset: str | None = None,
    ) -> None:
        """Register (or re-register) a projection with a handler in the database.

        handler and reset are regprocedure text, e.g. 'orders.project_order(eventstore.domain_events)'
        and 'orders.reset_order_projections()'. mode 'inline' runs it in every appending transaction;
        'async' runs it through run() or a worker. Raises InvalidEventError (ES002) for a bad argument.
        """
        params = {"name": name, "handler": handler, "event_types": _types(event_types), "mode": mode, "reset": reset}
        await self._rows(queries.REGISTER_PROJECTION, params)

    async def register_python(self, projection: AsyncPythonProjection) -> None:
        """Register (idempotently) a Python projection's checkpoint: an admin's step, done once before
        workers (eventstore_writer is enough for those) run it."""
        params = {"name": projection.name, "event_types": _types(projection.event_types)}
        await self._rows(queries.REGISTER_EXTERNAL_PROJECTION, params)

    async def unregister(self, name: str) -> None:
        """Remove a projection (its read model is left as it is). Raises UnknownTypeError (ES003)."""
        await self._rows(queries.UNREGISTER_PROJECTION, {"name": name})

    async def registered(self) -> list[ProjectionInfo]:
        """Every registered projection, by name."""
        return [ProjectionInfo.from_row(row) for row in await self._rows(queries.LIST_PROJECTIONS, {})]

    async def exists(self, name: str) -> bool:
        """Whether a projection of this name is registered."""
        return bool(await self._scalar(queries.PROJECTION_REGISTERED, {"name": name}))

    async def status(self) -> list[ProjectionStatus]:
        """Every projection at work: state, position, lag, last error, rebuild progress; by name."""
        return [ProjectionStatus.from_row(row) for row in await self._rows(queries.PROJECTION_STATUS, {"name": None})]

    async def status_of(self, name: str) -> ProjectionStatus:
        """One projection's status. Raises UnknownTypeError (ES003) when it is not registered."""
        rows = await self._rows(queries.PROJECTION_STATUS, {"name": name})
        if not rows:
            raise UnknownTypeError(f"projection {name} is not registered", hint="Projections.registered() shows them.")
        return ProjectionStatus.from_row(rows[0])

    async def run(self, name: str, max_events: int = 1000) -> int:
        """Apply the next batch of an async projection; returns the events applied.

        0 when it is caught up, paused, failed, or another runner holds it. The
        batch and the checkpoint commit together (with a pool; with a
        connection, in your transaction).
        """
        return int(await self._scalar(queries.RUN_PROJECTION, {"name": name, "max_events": max_events}) or 0)

    async def run_python(self, projection: AsyncPythonProjection, max_events: int = 1000) -> int:
        """Apply the next batch to a Python projection; returns the events applied (0: caught up, held, stopped).

        The connection must not be in a transaction; the batch and its checkpoint commit together.
        A handler error rolls the batch back; then, in a new transaction, the events before the
        failing one are applied again and the failure is recorded (state failed) with them.
        """
        async with self._connection() as conn:
            return await run_python_projection(conn, projection, max_events)

    async def rebuild(self, name: str, progress: Progress | None = None) -> int:
        """Empty the read model (its reset function) and replay the whole log; returns the events replayed.

        One transaction (one statement): readers see the old read model until
        it commits; an inline projection holds appends back meanwhile.
        progress(done, total) is called once before the replay and after each
        batch of 10,000 events. Raises InvalidEventError (ES002) for an external
        projection or one without a reset function, UnknownTypeError (ES003).
        """
        async with self._connection() as conn:

            def on_notice(diagnostic: psycopg.errors.Diagnostic) -> None:
                match = _PROGRESS.search(diagnostic.message_detail or "")
                if match is not None and progress is not None:
                    progress(int(match["done"]), int(match["total"]))

            if progress is not None:
                progress(0, int(await self._scalar(queries.PROJECTION_EVENTS, {"name": name}) or 0))
            conn.add_notice_handler(on_notice)
            try:
                with wrap_errors():
                    row = await (await conn.execute(queries.REBUILD_PROJECTION, {"name": name})).fetchone()
            finally:
                conn.remove_notice_handler(on_notice)
        return int(row[0]) if row else 0

    async def pause(self, name: str) -> None:
        """Stop an async or Python projection; runs apply nothing until resume(). ES002 for inline ones."""
        await self._rows(queries.PAUSE_PROJECTION, {"name": name})

    async def resume(self, name: str) -> None:
        """Let a paused projection run again."""
        await self._rows(queries.RESUME_PROJECTION, {"name": name})

    async def retry(self, name: str) -> None:
        """Let a failed projection run again from the event it failed on (after the cause is fixed)."""
        await self._rows(queries.RETRY_PROJECTION, {"name": name})

    async def skip(self, name: str) -> int:
        """Move a failed projection past the event it failed on and let it run; returns that event's id.

        The event's effect is missing from the read model. Raises InvalidEventError (ES002) when the
        projection has not failed.
        """
        return int(await self._scalar(queries.SKIP_PROJECTION_EVENT, {"name": name}))


async def register_python_projection(conn: psycopg.AsyncConnection[Any], projection: AsyncPythonProjection) -> None:
    """Register (idempotently) a Python projection's checkpoint; see AsyncProjections.register_python."""
    await AsyncProjections(conn).register_python(projection)


async def run_python_projection(
    conn: psycopg.AsyncConnection[Any], projection: AsyncPythonProjection, max_events: int = 1000
) -> int:
    """Apply the next batch to a Python projection; see AsyncProjections.run_python."""
    applied, failure = await _apply_python_batch(conn, projection, max_events)
    if failure is None:
        return applied
    applied, _ = await _apply_python_batch(conn, projection, max_events, stop_at=(applied, failure))
    return applied


async def _apply_python_batch(
    conn: psycopg.AsyncConnection[Any],
    projection: AsyncPythonProjection,
    max_events: int,
    stop_at: tuple[int, str] | None = None,
) -> tuple[int, str | None]:
    """One transaction: lock the projection, read its batch, apply it, move the checkpoint.

    With stop_at=(n, error), apply only the first n events and record error against event n.
    Returns (events applied, the handler's error or None).
    """
    applied = 0
    try:
        async with conn.transaction():
            with wrap_errors():
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(queries.LOCK_PROJECTION, {"name": projection.name})
                    lock = await cur.fetchone()
                    if lock is None or lock["state"] != "running":
                        return 0, None
                    params = read_all_params(lock["after"], max_events, lock["event_types"], None)
                    await cur.execute(queries.READ_ALL, params)
                    batch = [RecordedEvent.from_row(row) for row in await cur.fetchall()]
            limit = len(batch) if stop_at is None else min(stop_at[0], len(batch))
            for event in batch[:limit]:
                await _call_handler(conn, projection, event)
                applied += 1
            with wrap_errors():
                if applied:
                    position = str(batch[applied - 1].feed_position)
                    params = {"name": projection.name, "position": position, "count": applied}
                    await conn.execute(queries.SAVE_PROJECTION_CHECKPOINT, params)
                if stop_at is not None and applied < len(batch):
                    position = str(batch[applied].feed_position)
                    params = {"name": projection.name, "position": position, "error": stop_at[1]}
                    await conn.execute(queries.FAIL_PROJECTION, params)
    except _HandlerFailed as failed:
        log.warning("projection %s failed at event %s of its batch: %s", projection.name, applied, failed.failure)
        return applied, failed.failure
    return applied, None


async def _call_handler(
    conn: psycopg.AsyncConnection[Any], projection: AsyncPythonProjection, event: RecordedEvent
) -> None:
    """Call the user's handler; what it raises (but a lost connection) becomes _HandlerFailed."""
    try:
        await projection.handler(conn, event)
    except psycopg.OperationalError:
        raise
    except Exception as error:  # the handler's error is recorded by the caller, not lost
        raise _HandlerFailed(f"{type(error).__name__}: {error}") from error


def _types(event_types: Sequence[str] | None) -> list[str] | None:
    return None if event_types is None else list(event_types)


class AsyncProjectionWorker:
    """Runs async (database) and Python projections until stopped."""

    def __init__(
        self,
        conninfo: AsyncSource,
        projections: Sequence[str] = (),
        python_projections: Sequence[AsyncPythonProjection] = (),
        *,
        batch_size: int = 1000,
        poll_interval: float = POLL_INTERVAL,
        recheck_delay: float = RECHECK_DELAY,
        reconnect_delay: float = 1.0,
    ) -> None:
        if not projections and not python_projections:
            raise ValueError("a worker needs at least one projection")
        self.conninfo = conninfo
        self.projections = list(projections)
        self.python_projections = list(python_projections)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.recheck_delay = recheck_delay
        self.reconnect_delay = reconnect_delay
        self.stop_event = AEvent()
        self.applied = 0

    def stop(self) -> None:
        """Stop after the current batch."""
        self.stop_event.set()

    async def run_once(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Run batches of every projection until each is caught up (or the worker is stopped)."""
        runner = AsyncProjections(conn)
        total = 0
        for name in self.projections:
            while not self.stop_event.is_set():
                applied = await runner.run(name, self.batch_size)
                total += applied
                if applied < self.batch_size:
                    break
        for projection in self.python_projections:
            while not self.stop_event.is_set():
                applied = await run_python_projection(conn, projection, self.batch_size)
                total += applied
                if applied < self.batch_size:
                    break
        self.applied += total
        return total

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run until stop() or SIGINT/SIGTERM; reconnects after connection loss."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            self._install_signal_handlers()

        # The step yields how many events it applied when it applied any: activity for the follower.
        async def step(conn: psycopg.AsyncConnection[Any]) -> tuple[list[int], bool]:
            applied = await self.run_once(conn)
            return ([applied] if applied else []), True

        async for _ in follow(
            self.conninfo,
            step,
            poll_interval=self.poll_interval,
            recheck_delay=self.recheck_delay,
            reconnect_delay=self.reconnect_delay,
            stop=self.stop_event,
        ):
            pass

    def _install_signal_handlers(self) -> None:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: stopping after the current batch", signum)
            self.stop()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)


__all__ = [
    "AsyncHandler",
    "AsyncProjectionWorker",
    "AsyncProjections",
    "AsyncPythonProjection",
    "Progress",
    "register_python_projection",
    "run_python_projection",
]
