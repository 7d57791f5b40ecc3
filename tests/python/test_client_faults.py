"""Client faults: a connection killed in the middle of an append, and retries after an unknown outcome.

The retry test kills the appending connection at a random moment: before,
during, or (rarely: the window is a few microseconds) after its commit. In
every case the client cannot know whether its call was stored, retries it
with the same event_ids, and exactly one copy ends up stored. (That a retry
of a stored call returns the stored rows is also shown deterministically in
test_append.py and tests/sql/04_idempotency.sql.)"""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import psycopg

from pg_eventstore.models import NewEvent
from pg_eventstore.store import NO_STREAM, EventStore

# An inline projection that sleeps on 'Slow' events, so an append can be caught mid-way.
SLOW_PROJECTION = """
CREATE FUNCTION public.slow_down(p_event eventstore.domain_events) RETURNS void LANGUAGE sql
AS $$ SELECT pg_sleep(CASE WHEN p_event.event_type = 'Slow' THEN 0.5 ELSE 0.002 END) $$;
SELECT eventstore.register_projection('slow', 'public.slow_down(eventstore.domain_events)', NULL, 'inline');
"""


def backend_sleeping(observer: psycopg.Connection[Any], pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = observer.execute("SELECT wait_event FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
        if row and row[0] == "PgSleep":
            return True
        time.sleep(0.01)
    return False


def test_a_connection_killed_in_the_middle_of_an_append_stores_nothing(dsn: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute(SLOW_PROJECTION.encode())
    order_id = uuid.uuid4()
    outcome: list[BaseException] = []
    victim = psycopg.connect(dsn, autocommit=True)

    def append() -> None:
        try:
            EventStore(victim).append(
                "Order",
                order_id,
                [NewEvent("A", {}), NewEvent("Slow", {}), NewEvent("B", {})],
                expected_version=NO_STREAM,
            )
        except BaseException as error:  # the assertion below names what is expected
            outcome.append(error)

    thread = threading.Thread(target=append)
    thread.start()
    assert backend_sleeping(conn, victim.info.backend_pid), "the append never reached its second event"
    conn.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])
    thread.join(10)
    victim.close()
    assert len(outcome) == 1 and isinstance(outcome[0], psycopg.OperationalError)
    assert conn.execute(
        "SELECT count(*) FROM eventstore.domain_events WHERE aggregate_id = %s", [order_id]
    ).fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM eventstore.streams WHERE aggregate_id = %s", [order_id]).fetchone() == (
        0,
    )


def test_retrying_with_the_same_event_ids_after_an_unknown_outcome_stores_one_copy(
    dsn: str, conn: psycopg.Connection[Any], report: Any
) -> None:
    conn.execute(SLOW_PROJECTION.encode())
    rng = random.Random(7)
    outcomes = {"answered": 0, "killed, had committed": 0, "killed, had not committed": 0}
    for _ in range(30):
        order_id = uuid.uuid4()
        events = [NewEvent("Tick", {"n": n}, event_id=uuid.uuid4()) for n in range(3)]
        victim = psycopg.connect(dsn, autocommit=True)
        killer = threading.Timer(
            rng.uniform(0.0, 0.03),
            lambda pid=victim.info.backend_pid: conn.execute("SELECT pg_terminate_backend(%s)", [pid]),
        )
        killer.start()
        try:
            EventStore(victim).append("Order", order_id, events, expected_version=NO_STREAM)
            outcomes["answered"] += 1
        except psycopg.OperationalError:
            committed = conn.execute(
                "SELECT count(*) FROM eventstore.domain_events WHERE aggregate_id = %s", [order_id]
            ).fetchone() == (3,)
            outcomes["killed, had committed" if committed else "killed, had not committed"] += 1
            # The client does not know the outcome: it retries the same call.
            with psycopg.connect(dsn, autocommit=True) as retry:
                stored = EventStore(retry).append("Order", order_id, events, expected_version=NO_STREAM)
            assert [e.event_id for e in stored] == [e.event_id for e in events]
        finally:
            killer.join()
            victim.close()
        rows = conn.execute(
            "SELECT event_id FROM eventstore.domain_events WHERE aggregate_id = %s ORDER BY event_version", [order_id]
        ).fetchall()
        assert [row[0] for row in rows] == [e.event_id for e in events], "exactly one copy of the call"
    report(f"retry after an unknown outcome, 30 trials: {outcomes}")
    assert outcomes["killed, had committed"] + outcomes["killed, had not committed"] > 0, "no append was ever cut off"
    assert outcomes["answered"] > 0, "no append ever completed"
