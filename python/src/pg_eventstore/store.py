"""EventStore: the synchronous client over a psycopg connection or pool.

With a connection you own the transaction: calls run in it, and you commit
(or use autocommit=True). With a pool every call is its own transaction.
AsyncEventStore (async_store.py) is the same API for asyncio.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from pg_eventstore import queries
from pg_eventstore.errors import wrap_errors
from pg_eventstore.models import AggregateState, EventCount, FeedPosition, HistoryEntry, NewEvent, RecordedEvent
from pg_eventstore.params import (
    EventLike,
    PositionLike,
    aggregate_params,
    append_params,
    event_counts_params,
    load_params,
    prune_params,
    read_all_params,
    register_params,
    state_at_query,
)

# Expected versions with a name: the aggregate must not exist yet / no check.
NO_STREAM = -1
ANY_VERSION = None

# How often a subscription waiting for events looks at its stop event.
STOP_CHECK = 0.25


class EventStore:
    """Append to and read from the eventstore schema. No side effects until a method is called."""

    def __init__(self, source: psycopg.Connection[Any] | ConnectionPool[Any]) -> None:
        self._source = source

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if isinstance(self._source, ConnectionPool):
            with self._source.connection() as conn:
                yield conn
        else:
            yield self._source

    def _rows(self, query: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self._connection() as conn, wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def _fetch(self, query: Any, params: dict[str, Any]) -> list[RecordedEvent]:
        return [RecordedEvent.from_row(row) for row in self._rows(query, params)]

    def _scalar(self, query: Any, params: dict[str, Any]) -> Any:
        with self._connection() as conn, wrap_errors(), conn.cursor() as cur:
            cur.execute(query, params)
            row = cur.fetchone()
            return None if row is None else row[0]

    def _state(self, query: Any, params: dict[str, Any]) -> AggregateState | None:
        rows = self._rows(query, params)
        return AggregateState.from_row(rows[0]) if rows else None

    def append(
        self,
        aggregate_type: str,
        aggregate_id: uuid.UUID,
        events: Sequence[EventLike],
        *,
        expected_version: int | None,
    ) -> list[RecordedEvent]:
        """Append events atomically; returns the stored events in version order.

        expected_version: NO_STREAM (-1) for a new aggregate, N when its current
        version must be N, ANY_VERSION (None) for no check. Raises
        ConcurrencyError on a mismatch. Events that carry event_ids make the
        call safe to retry: a retry of a stored call returns the stored events.
        """
        return self._fetch(queries.APPEND, append_params(aggregate_type, aggregate_id, events, expected_version))

    def load_events(self, aggregate_id: uuid.UUID, from_version: int = 0) -> list[RecordedEvent]:
        """One aggregate's events from from_version on, in version order."""
        return self._fetch(queries.LOAD_EVENTS, load_params(aggregate_id, from_version))

    def read_all(
        self,
        after: PositionLike = None,
        max_count: int = 1000,
        *,
        event_types: Sequence[str] | None = None,
        aggregate_types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        """The next page of the global feed after `after` (None: from the start)."""
        return self._fetch(queries.READ_ALL, read_all_params(after, max_count, event_types, aggregate_types))

    def register_aggregate_type(
        self,
        aggregate_type: str,
        fold: str,
        initial_state: Mapping[str, Any] | None = None,
        snapshot_every: int = 50,
    ) -> None:
        """Register (or re-register) the SQL fold of an aggregate type.

        fold names the function as regprocedure text, e.g.
        'orders.order_fold(jsonb, eventstore.domain_events)'. initial_state
        (default {}) is the state before the first event; snapshots are taken
        every snapshot_every versions (0: never automatically). Raises
        InvalidEventError (ES002) for a bad signature or argument.
        """
        self._scalar(
            queries.REGISTER_AGGREGATE_TYPE, register_params(aggregate_type, fold, initial_state, snapshot_every)
        )

    def load_aggregate(self, aggregate_type: str, aggregate_id: uuid.UUID) -> AggregateState | None:
        """The aggregate's current state as its registered fold computes it; None when it has no events.

        Raises UnknownTypeError (ES003) when the type is not registered.
        """
        return self._state(queries.LOAD_AGGREGATE, aggregate_params(aggregate_type, aggregate_id))

    def state_at(
        self,
        aggregate_type: str,
        aggregate_id: uuid.UUID,
        *,
        at: datetime | None = None,
        version: int | None = None,
    ) -> AggregateState | None:
        """The aggregate's state as of a moment or right after a version; give exactly one of at and version.

        at (timezone-aware): after the last event that occurred at or before
        it. None before the first event, past the last version, or for an
        unknown aggregate.
        """
        return self._state(*state_at_query(aggregate_type, aggregate_id, at, version))

    def aggregate_history(self, aggregate_id: uuid.UUID) -> list[HistoryEntry]:
        """Every event of an aggregate in version order, each with the state right after it."""
        rows = self._rows(queries.AGGREGATE_HISTORY, {"aggregate_id": aggregate_id})
        return [HistoryEntry.from_row(row) for row in rows]

    def event_counts(self, from_: datetime | None, to: datetime | None, bucket: str = "day") -> list[EventCount]:
        """Events per time bucket (minute, hour, day, week, month, year) and event type in [from_, to).

        None bounds are open. Newest bucket first.
        """
        rows = self._rows(queries.EVENT_COUNTS, event_counts_params(from_, to, bucket))
        return [EventCount.from_row(row) for row in rows]

    def take_snapshot(self, aggregate_type: str, aggregate_id: uuid.UUID) -> int | None:
        """Snapshot the aggregate's current state now; returns the version snapshotted.

        Raises InvalidEventError (ES002) when the aggregate does not exist.
        """
        version: int | None = self._scalar(queries.TAKE_SNAPSHOT, aggregate_params(aggregate_type, aggregate_id))
        return version

    def prune_snapshots(self, aggregate_type: str | None = None, keep: int = 1) -> int:
        """Delete snapshots no fold will use and all but the latest `keep` per aggregate; returns how many."""
        deleted: int = self._scalar(queries.PRUNE_SNAPSHOTS, prune_params(aggregate_type, keep))
        return deleted

    @contextmanager
    def _listening_connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the subscription's own, in autocommit so notifications arrive between reads."""
        if isinstance(self._source, ConnectionPool):
            with self._source.connection() as conn:
                autocommit = conn.autocommit
                conn.autocommit = True
                try:
                    yield conn
                finally:
                    # Hand the connection back to the pool as it was lent.
                    if not conn.closed:
                        conn.execute("UNLISTEN *")
                        conn.autocommit = autocommit
        else:
            info = self._source.info
            with psycopg.connect(info.dsn, password=info.password, autocommit=True) as conn:
                yield conn

    def subscribe(
        self,
        after: PositionLike = None,
        *,
        batch_size: int = 1000,
        event_types: Sequence[str] | None = None,
        aggregate_types: Sequence[str] | None = None,
        poll_interval: float = 5.0,
        reconnect_delay: float = 1.0,
        stop: threading.Event | None = None,
    ) -> Iterator[RecordedEvent]:
        """Every event of the feed after `after`, then new ones as they commit, forever (or until `stop` is set).

        LISTENs for the append wake-up and re-reads the feed, polling every
        poll_interval seconds as a fallback. On a lost connection it
        reconnects and resumes after the last event it yielded. Store
        event.feed_position to resume later.
        """
        position: FeedPosition | str | None = after
        stopped = stop if stop is not None else threading.Event()
        while not stopped.is_set():
            try:
                with self._listening_connection() as conn:
                    conn.execute(queries.LISTEN)
                    while not stopped.is_set():
                        with wrap_errors(), conn.cursor(row_factory=dict_row) as cur:
                            cur.execute(
                                queries.READ_ALL,
                                read_all_params(position, batch_size, event_types, aggregate_types),
                            )
                            batch = [RecordedEvent.from_row(row) for row in cur.fetchall()]
                        for event in batch:
                            position = event.feed_position
                            yield event
                            if stopped.is_set():
                                return
                        if len(batch) < batch_size:
                            _wait_for_wake_up(conn, poll_interval, stopped)
            except psycopg.OperationalError:
                if stopped.is_set():
                    return
                time.sleep(reconnect_delay)


def _wait_for_wake_up(conn: psycopg.Connection[Any], poll_interval: float, stopped: threading.Event) -> None:
    """Until a notification arrives, poll_interval passes, or stop is set (checked every STOP_CHECK seconds)."""
    deadline = time.monotonic() + poll_interval
    while not stopped.is_set() and (remaining := deadline - time.monotonic()) > 0:
        if any(True for _ in conn.notifies(timeout=min(remaining, STOP_CHECK), stop_after=1)):
            return


__all__ = ["ANY_VERSION", "NO_STREAM", "EventStore", "NewEvent"]
