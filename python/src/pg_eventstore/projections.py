"""Running projections from Python.

- ProjectionWorker runs async projections (handlers in the database) and
  Python projections (handlers here) continuously: it LISTENs for the append
  wake-up, runs batches until every projection is caught up, polls as a
  fallback, reconnects when the connection drops, and stops after the
  current batch on SIGINT/SIGTERM or when its stop event is set.
- PythonProjection is a handler written in Python with its checkpoint in the
  database (eventstore.projections, mode 'external'). Each batch runs in one
  transaction that also moves the checkpoint, so database side effects made
  on the given connection happen exactly once per event; effects outside
  the database (HTTP calls, queues) happen at least once: a batch that fails
  or is cut off is applied again.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pg_eventstore import queries
from pg_eventstore.errors import wrap_errors
from pg_eventstore.models import RecordedEvent
from pg_eventstore.params import read_all_params

log = logging.getLogger(__name__)

Handler = Callable[[psycopg.Connection[Any], RecordedEvent], None]


@dataclass(frozen=True)
class PythonProjection:
    """A projection whose handler runs here: handler(conn, event) is called inside the batch's transaction."""

    name: str
    handler: Handler
    event_types: Sequence[str] | None = None


def register_python_projection(conn: psycopg.Connection[Any], projection: PythonProjection) -> None:
    """Register (idempotently) the projection's checkpoint in the database: an admin's step
    (eventstore_admin), done once before workers (eventstore_writer is enough for those) run it."""
    with wrap_errors():
        conn.execute(
            queries.REGISTER_EXTERNAL_PROJECTION,
            {"name": projection.name, "event_types": _types(projection.event_types)},
        )


def run_python_projection(conn: psycopg.Connection[Any], projection: PythonProjection, max_events: int = 1000) -> int:
    """Apply the next batch to a Python projection; returns the events applied (0: caught up, held, stopped).

    The connection must not be in a transaction; the batch and its checkpoint commit together.
    A handler error rolls the batch back; then, in a new transaction, the events before the
    failing one are applied again and the failure is recorded (state failed) with them.
    """
    applied, failure = _apply_python_batch(conn, projection, max_events)
    if failure is None:
        return applied
    applied, _ = _apply_python_batch(conn, projection, max_events, stop_at=(applied, failure))
    return applied


def _apply_python_batch(
    conn: psycopg.Connection[Any],
    projection: PythonProjection,
    max_events: int,
    stop_at: tuple[int, str] | None = None,
) -> tuple[int, str | None]:
    """One transaction: lock the projection, read its batch, apply it, move the checkpoint.

    With stop_at=(n, error), apply only the first n events and record error against event n.
    Returns (events applied, the handler's error or None).
    """
    applied = 0
    try:
        with conn.transaction():
            with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
                cur.execute(queries.LOCK_PROJECTION, {"name": projection.name})
                lock = cur.fetchone()
                if lock is None or lock["state"] != "running":
                    return 0, None
                cur.execute(queries.READ_ALL, read_all_params(lock["after"], max_events, lock["event_types"], None))
                batch = [RecordedEvent.from_row(row) for row in cur.fetchall()]
            limit = len(batch) if stop_at is None else min(stop_at[0], len(batch))
            for event in batch[:limit]:
                projection.handler(conn, event)
                applied += 1
            with wrap_errors():
                if applied:
                    conn.execute(
                        queries.SAVE_PROJECTION_CHECKPOINT,
                        {"name": projection.name, "position": str(batch[applied - 1].feed_position), "count": applied},
                    )
                if stop_at is not None and applied < len(batch):
                    conn.execute(
                        queries.FAIL_PROJECTION,
                        {"name": projection.name, "position": str(batch[applied].feed_position), "error": stop_at[1]},
                    )
    except psycopg.OperationalError:
        raise
    except Exception as error:  # the handler's error is recorded by the caller, not lost
        failure = f"{type(error).__name__}: {error}"
        log.warning("projection %s failed at event %s of its batch: %s", projection.name, applied, failure)
        return applied, failure
    return applied, None


def _types(event_types: Sequence[str] | None) -> list[str] | None:
    return None if event_types is None else list(event_types)


class ProjectionWorker:
    """Runs async (database) and Python projections until stopped."""

    def __init__(
        self,
        conninfo: str,
        projections: Sequence[str] = (),
        python_projections: Sequence[PythonProjection] = (),
        *,
        batch_size: int = 1000,
        poll_interval: float = 5.0,
        reconnect_delay: float = 1.0,
    ) -> None:
        if not projections and not python_projections:
            raise ValueError("a worker needs at least one projection")
        self.conninfo = conninfo
        self.projections = list(projections)
        self.python_projections = list(python_projections)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.reconnect_delay = reconnect_delay
        self.stop_event = threading.Event()
        self.applied = 0

    def stop(self) -> None:
        """Stop after the current batch."""
        self.stop_event.set()

    def run_once(self, conn: psycopg.Connection[Any]) -> int:
        """Run batches of every projection until each is caught up (or the worker is stopped)."""
        total = 0
        for name in self.projections:
            while not self.stop_event.is_set():
                with wrap_errors():
                    row = conn.execute(queries.RUN_PROJECTION, {"name": name, "max_events": self.batch_size}).fetchone()
                applied = int(row[0]) if row else 0
                total += applied
                if applied < self.batch_size:
                    break
        for projection in self.python_projections:
            while not self.stop_event.is_set():
                applied = run_python_projection(conn, projection, self.batch_size)
                total += applied
                if applied < self.batch_size:
                    break
        self.applied += total
        return total

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run until stop() or SIGINT/SIGTERM; reconnects after connection loss."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            self._install_signal_handlers()
        while not self.stop_event.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(queries.LISTEN)
                    while not self.stop_event.is_set():
                        self.run_once(conn)
                        self._wait_for_wake_up(conn)
            except psycopg.OperationalError as error:
                if self.stop_event.is_set():
                    return
                log.warning("projection worker lost its connection (%s); reconnecting", error)
                time.sleep(self.reconnect_delay)

    def _wait_for_wake_up(self, conn: psycopg.Connection[Any]) -> None:
        deadline = time.monotonic() + self.poll_interval
        while not self.stop_event.is_set() and (remaining := deadline - time.monotonic()) > 0:
            if any(True for _ in conn.notifies(timeout=min(remaining, 0.25), stop_after=1)):
                return

    def _install_signal_handlers(self) -> None:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: stopping after the current batch", signum)
            self.stop()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
