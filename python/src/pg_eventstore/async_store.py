"""AsyncEventStore: append to and read from the eventstore schema over a psycopg connection or pool.

With a connection you own the transaction: calls run in it, and you commit
(or use autocommit=True). With a pool every call is its own transaction.
This module is the source of both clients: store.py (EventStore) is
generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import BaseRowFactory, Row, dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool

from pg_eventstore import models, queries
from pg_eventstore._acompat import AEvent
from pg_eventstore.async_follow import POLL_INTERVAL, RECHECK_DELAY, STOP_CHECK, follow
from pg_eventstore.errors import EventStoreError, from_psycopg, wrap_errors
from pg_eventstore.models import (
    ANY_VERSION,
    NO_STREAM,
    AggregateState,
    EventCount,
    FeedPosition,
    HistoryEntry,
    NewEvent,
    RecordedEvent,
    StoreStatus,
)
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


class AsyncClientBase:
    """What the clients share: a connection (calls run in your transaction) or a pool (one transaction
    per call), and running one statement on it with errors mapped."""

    def __init__(self, source: psycopg.AsyncConnection[Any] | AsyncConnectionPool[Any]) -> None:
        self._source = source

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if isinstance(self._source, AsyncConnectionPool):
            async with self._source.connection() as conn:
                yield conn
        else:
            yield self._source

    async def _run(self, query: Any, params: dict[str, Any] | None, row_factory: BaseRowFactory[Row]) -> list[Row]:
        """One statement's rows, errors mapped: in your transaction, or with a pool as its own transaction."""
        source = self._source
        if not isinstance(source, AsyncConnectionPool):
            return await _fetch_all(source, query, params, row_factory)
        async with source.connection() as conn:
            if conn.autocommit or not _default_transactions(conn):
                return await _fetch_all(conn, query, params, row_factory)
            # One statement is a transaction of its own in autocommit mode: one round trip instead of
            # three (BEGIN, the statement, COMMIT), the client's largest cost per call. The connection
            # goes back to the pool as it came, or closed (the pool replaces it) when it cannot.
            await conn.set_autocommit(True)
            try:
                return await _fetch_all(conn, query, params, row_factory)
            finally:
                if conn.pgconn.transaction_status == TransactionStatus.IDLE:
                    await conn.set_autocommit(False)
                else:
                    await conn.close()

    async def _rows(self, query: Any, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return await self._run(query, params, dict_row)

    async def _scalar(self, query: Any, params: dict[str, Any] | None = None) -> Any:
        rows = await self._run(query, params, tuple_row)
        return rows[0][0] if rows else None


def _default_transactions(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the connection starts transactions with a plain BEGIN, as an autocommit statement's own is."""
    return conn.isolation_level is None and conn.read_only is None and conn.deferrable is None


async def _fetch_all(
    conn: psycopg.AsyncConnection[Any], query: Any, params: dict[str, Any] | None, row_factory: BaseRowFactory[Row]
) -> list[Row]:
    with wrap_errors():
        async with conn.cursor(row_factory=row_factory) as cur:
            await cur.execute(query, params)
            return await cur.fetchall()


class AsyncEventStore(AsyncClientBase):
    """Append to and read from the eventstore schema. No side effects until a method is called."""

    async def _fetch(self, query: Any, params: dict[str, Any]) -> list[RecordedEvent]:
        return await self._run(query, params, RecordedEvent.rows)

    async def _state(self, query: Any, params: dict[str, Any]) -> AggregateState | None:
        rows = await self._run(query, params, AggregateState.rows)
        return rows[0] if rows else None

    async def append(
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
        """Register (or re-register) the SQL fold of an aggregate type.

        fold names the function as regprocedure text, e.g.
        'orders.order_fold(jsonb, eventstore.domain_events)'. initial_state
        (default {}) is the state before the first event; snapshots are taken
        every snapshot_every versions (0: never automatically). Raises
        InvalidEventError (ES002) for a bad signature or argument.
        """
        await self._scalar(
            queries.REGISTER_AGGREGATE_TYPE, register_params(aggregate_type, fold, initial_state, snapshot_every)
        )

    async def load_aggregate(self, aggregate_type: str, aggregate_id: uuid.UUID) -> AggregateState | None:
        """The aggregate's current state as its registered fold computes it; None when it has no events.

        Raises UnknownTypeError (ES003) when the type is not registered.
        """
        return await self._state(queries.LOAD_AGGREGATE, aggregate_params(aggregate_type, aggregate_id))

    async def state_at(
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
        return await self._state(*state_at_query(aggregate_type, aggregate_id, at, version))

    async def aggregate_history(self, aggregate_id: uuid.UUID) -> list[HistoryEntry]:
        """Every event of an aggregate in version order, each with the state right after it."""
        return await self._run(queries.AGGREGATE_HISTORY, {"aggregate_id": aggregate_id}, HistoryEntry.rows)

    async def event_counts(self, from_: datetime | None, to: datetime | None, bucket: str = "day") -> list[EventCount]:
        """Events per time bucket (minute, hour, day, week, month, year) and event type in [from_, to).

        None bounds are open. Newest bucket first.
        """
        return await self._run(queries.EVENT_COUNTS, event_counts_params(from_, to, bucket), EventCount.rows)

    async def take_snapshot(self, aggregate_type: str, aggregate_id: uuid.UUID) -> int | None:
        """Snapshot the aggregate's current state now; returns the version snapshotted.

        Raises InvalidEventError (ES002) when the aggregate does not exist.
        """
        version: int | None = await self._scalar(queries.TAKE_SNAPSHOT, aggregate_params(aggregate_type, aggregate_id))
        return version

    async def prune_snapshots(self, aggregate_type: str | None = None, keep: int = 1) -> int:
        """Delete snapshots no fold will use and all but the latest `keep` per aggregate; returns how many."""
        deleted: int = await self._scalar(queries.PRUNE_SNAPSHOTS, prune_params(aggregate_type, keep))
        return deleted

    async def latest_snapshot_version(self, aggregate_type: str, aggregate_id: uuid.UUID) -> int | None:
        """The version of the aggregate's latest snapshot; None when it has none."""
        version: int | None = await self._scalar(
            queries.LATEST_SNAPSHOT, aggregate_params(aggregate_type, aggregate_id)
        )
        return version

    async def database_time(self) -> datetime:
        """The database server's clock now (clock_timestamp()), e.g. to query state_at a moment it stamped."""
        moment: datetime = await self._scalar(queries.DATABASE_CLOCK)
        return moment

    async def installed_version(self) -> str | None:
        """The schema version installed in the database, None when there is none."""
        if not await self._scalar(queries.SCHEMA_INSTALLED):
            return None
        version = await self._scalar(queries.INSTALLED_VERSION)
        return None if version is None else str(version)

    async def feed_fence(self) -> int:
        """The feed key below which every event is committed (read_all returns only those).

        Raises RestoreNotFinishedError (ES006) after a restore into a new cluster until after_restore().
        """
        fence: int = await self._scalar(queries.FEED_FENCE)
        return fence

    async def after_restore(self) -> int:
        """After restoring a dump into a new cluster: lift the feed key offset above every restored key.

        Idempotent; returns the offset. Needs eventstore_admin. The database
        explains what it did in NOTICEs (add a notice handler to see them).
        """
        offset: int = await self._scalar(queries.AFTER_RESTORE)
        return offset

    async def status(self) -> StoreStatus:
        """The installed version, counts, the feed fence, every projection, and what holds the fence back.

        Raises EventStoreError when the schema is not installed. A fence that
        cannot be computed (ES006 after a restore) does not fail the call: it is
        reported in feed_fence_error.
        """
        installed = await self.installed_version()
        if installed is None:
            raise EventStoreError(
                "the eventstore schema is not installed in this database",
                hint="install it: pg-eventstore install, or pg_eventstore.schema.install(conn)",
            )
        counts = (await self._rows(queries.STORE_COUNTS))[0]
        projections = await self._rows(queries.PROJECTION_STATUS, {"name": None})
        oldest = await self._rows(queries.OLDEST_TRANSACTIONS, {"limit": 1})
        prepared = await self._rows(queries.PREPARED_TRANSACTIONS)
        fence: int | None = None
        fence_error: Exception | None = None
        async with self._connection() as conn:
            try:
                # A savepoint (or its own transaction): a refusal leaves the caller's transaction usable.
                async with conn.transaction():
                    row = await (await conn.execute(queries.FEED_FENCE)).fetchone()
                    fence = None if row is None else int(row[0])
            except psycopg.Error as error:
                fence_error = from_psycopg(error) or error
        return StoreStatus(
            installed_version=installed,
            events=counts["events"],
            aggregates=counts["aggregates"],
            aggregate_types=counts["aggregate_types"],
            snapshots=counts["snapshots"],
            feed_fence=fence,
            feed_fence_error=fence_error,
            projections=[models.ProjectionStatus.from_row(row) for row in projections],
            oldest_transaction=models.OpenTransaction.from_row(oldest[0]) if oldest else None,
            prepared_transactions=[models.PreparedTransaction.from_row(row) for row in prepared],
        )

    async def subscribe(
        self,
        after: PositionLike = None,
        *,
        batch_size: int = 1000,
        event_types: Sequence[str] | None = None,
        aggregate_types: Sequence[str] | None = None,
        poll_interval: float = POLL_INTERVAL,
        recheck_delay: float = RECHECK_DELAY,
        reconnect_delay: float = 1.0,
        stop: AEvent | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        """Every event of the feed after `after`, then new ones as they commit, forever (or until `stop` is set).

        LISTENs for the append wake-up and re-reads the feed; after a wake-up or
        new events it reads again after recheck_delay seconds, and when idle it
        reads at least every poll_interval seconds. On a lost connection it
        reconnects and resumes after the last event it yielded. Store
        event.feed_position to resume later.
        """
        position: FeedPosition | str | None = after

        async def next_page(conn: psycopg.AsyncConnection[Any]) -> tuple[list[RecordedEvent], bool]:
            nonlocal position
            with wrap_errors():
                async with conn.cursor(row_factory=RecordedEvent.rows) as cur:
                    await cur.execute(
                        queries.READ_ALL, read_all_params(position, batch_size, event_types, aggregate_types)
                    )
                    page = await cur.fetchall()
            if page:
                position = page[-1].feed_position
            return page, len(page) < batch_size

        async for event in follow(
            self._source,
            next_page,
            poll_interval=poll_interval,
            recheck_delay=recheck_delay,
            reconnect_delay=reconnect_delay,
            stop=stop if stop is not None else AEvent(),
        ):
            yield event


__all__ = ["ANY_VERSION", "NO_STREAM", "STOP_CHECK", "AsyncClientBase", "AsyncEventStore", "NewEvent"]
