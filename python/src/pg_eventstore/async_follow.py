"""Following the feed: the one LISTEN/wake-up loop behind subscribe(), the projection
workers and the command line's --follow modes.

A follower owns a connection in autocommit (notifications arrive between
transactions only), LISTENs on the append channel, and calls its step until
the step says it is caught up; then it waits for a notification, polling
every poll_interval seconds as a fallback, since a notification is a hint and
may be missed. A lost connection is opened again after reconnect_delay; the
step resumes from wherever its caller keeps its position.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from pg_eventstore import queries
from pg_eventstore._acompat import AEvent, asleep

log = logging.getLogger(__name__)

# How often a follower waiting for a wake-up looks at its stop event, in seconds.
STOP_CHECK = 0.25

T = TypeVar("T")

# Where a follower gets its connection: a conninfo string, a connection (a new one
# is opened with its settings: the caller's connection keeps its transaction), or a pool.
AsyncSource = str | psycopg.AsyncConnection[Any] | AsyncConnectionPool[Any]


@asynccontextmanager
async def listening_connection(source: AsyncSource) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of the follower's own, in autocommit, LISTENing on the append channel."""
    if isinstance(source, AsyncConnectionPool):
        async with source.connection() as conn:
            autocommit = conn.autocommit
            await conn.set_autocommit(True)
            try:
                await conn.execute(queries.LISTEN)
                yield conn
            finally:
                # Hand the connection back to the pool as it was lent.
                if not conn.closed:
                    await conn.execute("UNLISTEN *")
                    await conn.set_autocommit(autocommit)
        return
    if isinstance(source, str):
        conninfo, password = source, None
    else:
        conninfo, password = source.info.dsn, source.info.password
    async with await psycopg.AsyncConnection.connect(conninfo, password=password, autocommit=True) as conn:
        await conn.execute(queries.LISTEN)
        yield conn


async def wait_for_wake_up(conn: psycopg.AsyncConnection[Any], poll_interval: float, stop: AEvent) -> bool:
    """Wait until a notification arrives (True), or poll_interval passes or stop is set (False)."""
    deadline = time.monotonic() + poll_interval
    while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
        async for _ in conn.notifies(timeout=min(remaining, STOP_CHECK), stop_after=1):
            return True
    return False


async def follow(
    source: AsyncSource,
    step: Callable[[psycopg.AsyncConnection[Any]], Awaitable[tuple[Sequence[T], bool]]],
    *,
    poll_interval: float,
    reconnect_delay: float,
    stop: AEvent,
) -> AsyncIterator[T]:
    """Yield what step(conn) returns, forever or until stop is set.

    step returns (items, caught_up); after a caught-up step the follower waits
    for a wake-up before the next one.
    """
    while not stop.is_set():
        try:
            async with listening_connection(source) as conn:
                while not stop.is_set():
                    items, caught_up = await step(conn)
                    for item in items:
                        yield item
                        if stop.is_set():
                            return
                    if caught_up:
                        await wait_for_wake_up(conn, poll_interval, stop)
        except psycopg.OperationalError as error:
            if stop.is_set():
                return
            log.warning("lost the connection while following the feed (%s); reconnecting", error)
            await asleep(reconnect_delay)


__all__ = ["STOP_CHECK", "AsyncSource", "follow", "listening_connection", "wait_for_wake_up"]
