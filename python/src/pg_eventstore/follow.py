# Generated from async_follow.py by tools/async_to_sync.py; do not edit (run `make generate`).
"""Following the feed: the one LISTEN/wake-up loop behind subscribe(), the projection
workers and the command line's --follow modes.

A follower owns a connection in autocommit (notifications arrive between
transactions only), LISTENs on the append channel, and calls its step until
the step says it is caught up. Then:

- after activity (a wake-up, or a step that found something) it reads again
  once recheck_delay has passed, or sooner if a notification comes. By default
  only one committing append transaction notifies at a time (notify_mode
  'uncontended'): one that commits beside the notifying one sends nothing and
  can become readable just after the woken follower read; and a woken
  follower may find the new events still behind the feed fence. The re-read
  catches both while the store is busy or going quiet.
- when idle (the last re-read found nothing) it waits for a notification for
  at most poll_interval seconds, then reads anyway: the bound for an event
  whose notification was skipped or missed (docs/other-languages.md).

A lost connection is opened again after reconnect_delay; the step resumes
from wherever its caller keeps its position.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from pg_eventstore import queries
from pg_eventstore._acompat import Event, sleep

log = logging.getLogger(__name__)

# How often a follower waiting for a wake-up looks at its stop event, in seconds.
STOP_CHECK = 0.25

# The defaults of every follower (subscribe, the projection workers, the CLI's --follow), in seconds:
# the re-read after activity, and the longest wait without a notification when idle.
RECHECK_DELAY = 0.05
POLL_INTERVAL = 1.0

T = TypeVar("T")

# Where a follower gets its connection: a conninfo string, a connection (a new one
# is opened with its settings: the caller's connection keeps its transaction), or a pool.
Source = str | psycopg.Connection[Any] | ConnectionPool[Any]


@contextmanager
def listening_connection(source: Source) -> Iterator[psycopg.Connection[Any]]:
    """A connection of the follower's own, in autocommit, LISTENing on the append channel."""
    if isinstance(source, ConnectionPool):
        with source.connection() as conn:
            autocommit = conn.autocommit
            conn.set_autocommit(True)
            try:
                conn.execute(queries.LISTEN)
                yield conn
            finally:
                # Hand the connection back to the pool as it was lent.
                if not conn.closed:
                    conn.execute("UNLISTEN *")
                    conn.set_autocommit(autocommit)
        return
    if isinstance(source, str):
        conninfo, password = source, None
    else:
        conninfo, password = source.info.dsn, source.info.password
    with psycopg.Connection.connect(conninfo, password=password, autocommit=True) as conn:
        conn.execute(queries.LISTEN)
        yield conn


def wait_for_wake_up(conn: psycopg.Connection[Any], timeout: float, stop: Event) -> bool:
    """Wait until a notification arrives (True), or timeout seconds pass or stop is set (False)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
        for _ in conn.notifies(timeout=min(remaining, STOP_CHECK), stop_after=1):
            return True
    return False


def follow(
    source: Source,
    step: Callable[[psycopg.Connection[Any]], tuple[Sequence[T], bool]],
    *,
    poll_interval: float = POLL_INTERVAL,
    recheck_delay: float = RECHECK_DELAY,
    reconnect_delay: float,
    stop: Event,
) -> Iterator[T]:
    """Yield what step(conn) returns, forever or until stop is set.

    step returns (items, caught_up): items found are activity. After a caught-up
    step the follower waits recheck_delay after activity (a notification cuts
    it short), else for a notification or at most poll_interval.
    """
    if poll_interval <= 0 or recheck_delay < 0:
        raise ValueError("poll_interval must be > 0 and recheck_delay >= 0")
    while not stop.is_set():
        try:
            with listening_connection(source) as conn:
                # The first read is a catch-up: re-read once after it, as after a wake-up.
                active = True
                while not stop.is_set():
                    items, caught_up = step(conn)
                    for item in items:
                        active = True
                        yield item
                        if stop.is_set():
                            return
                    if not caught_up:
                        continue
                    if active:
                        active = wait_for_wake_up(conn, recheck_delay, stop)
                    else:
                        active = wait_for_wake_up(conn, poll_interval, stop)
        except psycopg.OperationalError as error:
            if stop.is_set():
                return
            log.warning("lost the connection while following the feed (%s); reconnecting", error)
            sleep(reconnect_delay)


__all__ = [
    "POLL_INTERVAL",
    "RECHECK_DELAY",
    "STOP_CHECK",
    "Source",
    "follow",
    "listening_connection",
    "wait_for_wake_up",
]
