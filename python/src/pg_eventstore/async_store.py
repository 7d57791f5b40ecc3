"""AsyncEventStore: EventStore's API for asyncio, over an async connection or pool.

Transactions work as in EventStore: with a connection you own the
transaction; with a pool every call is its own transaction.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from pg_eventstore import queries
from pg_eventstore.errors import wrap_errors
from pg_eventstore.models import AggregateState, EventCount, FeedPosition, HistoryEntry, RecordedEvent
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
from pg_eventstore.store import STOP_CHECK


class AsyncEventStore:
    """Append to and read from the eventstore schema with asyncio. No side effects until a method is called."""

    def __init__(self, source: psycopg.AsyncConnection[Any] | AsyncConnectionPool[Any]) -> None:
        self._source = source

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if isinstance(self._source, AsyncConnectionPool):
            async with self._source.connection() as conn:
                yield conn
        else:
            yield self._source

    async def _rows(self, query: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        async with self._connection() as conn:
            with wrap_errors():
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(query, params)
                    return await cur.fetchall()

    async def _fetch(self, query: Any, params: dict[str, Any]) -> list[RecordedEvent]:
        return [RecordedEvent.from_row(row) for row in await self._rows(query, params)]

    async def _scalar(self, query: Any, params: dict[str, Any]) -> Any:
        async with self._connection() as conn:
            with wrap_errors():
                async with conn.cursor() as cur:
                    await cur.execute(query, params)
                    row = await cur.fetchone()
                    return None if row is None else row[0]

    async def _state(self, query: Any, params: dict[str, Any]) -> AggregateState | None:
        rows = await self._rows(query, params)
        return AggregateState.from_row(rows[0]) if rows else None

    async def append(
        self,
        aggregate_type: str,
        aggregate_id: uuid.UUID,
        events: Sequence[EventLike],
        *,
        expected_version: int | None,
    ) -> list[RecordedEvent]:
        """Append events atomically; see EventStore.append."""
        return await self._fetch(queries.APPEND, append_params(aggregate_type, aggregate_id, events, expected_version))

    async def load_events(self, aggregate_id: uuid.UUID, from_version: int = 0) -> list[RecordedEvent]:
        """One aggregate's events from from_version on, in version order."""
        return await self._fetch(queries.LOAD_EVENTS, load_params(aggregate_id, from_version))

    async def read_all(
        self,
        after: PositionLike = None,
        max_count: int = 1000,
        *,
        event_types: Sequence[str] | None = None,
        aggregate_types: Sequence[str] | None = None,
    ) -> list[RecordedEvent]:
        """The next page of the global feed after `after` (None: from the start)."""
        return await self._fetch(queries.READ_ALL, read_all_params(after, max_count, event_types, aggregate_types))

    async def register_aggregate_type(
        self,
        aggregate_type: str,
        fold: str,
        initial_state: Mapping[str, Any] | None = None,
        snapshot_every: int = 50,
    ) -> None:
        """Register (or re-register) the SQL fold of an aggregate type; see EventStore.register_aggregate_type."""
        await self._scalar(
            queries.REGISTER_AGGREGATE_TYPE, register_params(aggregate_type, fold, initial_state, snapshot_every)
        )

    async def load_aggregate(self, aggregate_type: str, aggregate_id: uuid.UUID) -> AggregateState | None:
        """The aggregate's current state as its registered fold computes it; None when it has no events."""
        return await self._state(queries.LOAD_AGGREGATE, aggregate_params(aggregate_type, aggregate_id))

    async def state_at(
        self,
        aggregate_type: str,
        aggregate_id: uuid.UUID,
        *,
        at: datetime | None = None,
        version: int | None = None,
    ) -> AggregateState | None:
        """The aggregate's state as of a moment or right after a version; see EventStore.state_at."""
        return await self._state(*state_at_query(aggregate_type, aggregate_id, at, version))

    async def aggregate_history(self, aggregate_id: uuid.UUID) -> list[HistoryEntry]:
        """Every event of an aggregate in version order, each with the state right after it."""
        rows = await self._rows(queries.AGGREGATE_HISTORY, {"aggregate_id": aggregate_id})
        return [HistoryEntry.from_row(row) for row in rows]

    async def event_counts(self, from_: datetime | None, to: datetime | None, bucket: str = "day") -> list[EventCount]:
        """Events per time bucket and event type in [from_, to); see EventStore.event_counts."""
        rows = await self._rows(queries.EVENT_COUNTS, event_counts_params(from_, to, bucket))
        return [EventCount.from_row(row) for row in rows]

    async def take_snapshot(self, aggregate_type: str, aggregate_id: uuid.UUID) -> int | None:
        """Snapshot the aggregate's current state now; returns the version snapshotted."""
        version: int | None = await self._scalar(queries.TAKE_SNAPSHOT, aggregate_params(aggregate_type, aggregate_id))
        return version

    async def prune_snapshots(self, aggregate_type: str | None = None, keep: int = 1) -> int:
        """Delete snapshots no fold will use and all but the latest `keep` per aggregate; returns how many."""
        deleted: int = await self._scalar(queries.PRUNE_SNAPSHOTS, prune_params(aggregate_type, keep))
        return deleted

    @asynccontextmanager
    async def _listening_connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of the subscription's own, in autocommit so notifications arrive between reads."""
        if isinstance(self._source, AsyncConnectionPool):
            async with self._source.connection() as conn:
                autocommit = conn.autocommit
                await conn.set_autocommit(True)
                try:
                    yield conn
                finally:
                    # Hand the connection back to the pool as it was lent.
                    if not conn.closed:
                        await conn.execute("UNLISTEN *")
                        await conn.set_autocommit(autocommit)
        else:
            info = self._source.info
            async with await psycopg.AsyncConnection.connect(info.dsn, password=info.password, autocommit=True) as conn:
                yield conn

    async def subscribe(
        self,
        after: PositionLike = None,
        *,
        batch_size: int = 1000,
        event_types: Sequence[str] | None = None,
        aggregate_types: Sequence[str] | None = None,
        poll_interval: float = 5.0,
        reconnect_delay: float = 1.0,
        stop: asyncio.Event | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        """Every event of the feed after `after`, then new ones as they commit; see EventStore.subscribe."""
        position: FeedPosition | str | None = after
        stopped = stop if stop is not None else asyncio.Event()
        while not stopped.is_set():
            try:
                async with self._listening_connection() as conn:
                    await conn.execute(queries.LISTEN)
                    while not stopped.is_set():
                        with wrap_errors():
                            async with conn.cursor(row_factory=dict_row) as cur:
                                await cur.execute(
                                    queries.READ_ALL,
                                    read_all_params(position, batch_size, event_types, aggregate_types),
                                )
                                batch = [RecordedEvent.from_row(row) for row in await cur.fetchall()]
                        for event in batch:
                            position = event.feed_position
                            yield event
                            if stopped.is_set():
                                return
                        if len(batch) < batch_size:
                            await _wait_for_wake_up(conn, poll_interval, stopped)
            except psycopg.OperationalError:
                if stopped.is_set():
                    return
                await asyncio.sleep(reconnect_delay)


async def _wait_for_wake_up(conn: psycopg.AsyncConnection[Any], poll_interval: float, stopped: asyncio.Event) -> None:
    """Until a notification arrives, poll_interval passes, or stop is set (checked every STOP_CHECK seconds)."""
    deadline = time.monotonic() + poll_interval
    while not stopped.is_set() and (remaining := deadline - time.monotonic()) > 0:
        async for _ in conn.notifies(timeout=min(remaining, STOP_CHECK), stop_after=1):
            return
