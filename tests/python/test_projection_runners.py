# Generated from test_projection_runners_async.py by tools/async_to_sync.py; do not edit (run `make generate`).
"""Running projections through the Python API: the worker, killed mid-batch, and a Python projection.

Written for the asyncio API; test_projection_runners.py runs the same tests on the sync one. The
worker runs in the test itself; the client that kills its batches is a thread of plain sync code
(the same in both files). The projections' SQL side is test_projections.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from bulk_orders import generate_orders

from pg_eventstore.models import RecordedEvent
from pg_eventstore.projections import ProjectionWorker, PythonProjection, run_python_projection


@pytest.fixture
def orders_conn(orders_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.Connection.connect(orders_dsn, autocommit=True) as conn:
        yield conn


def kill_batches_until_caught_up(orders_dsn: str, worker: ProjectionWorker, killed: list[int]) -> None:
    """Another client: kill the worker's running batches (twice, within 5 s), wait until the
    projection has caught up (30 s at most), then stop the worker."""
    try:
        with psycopg.connect(orders_dsn, autocommit=True) as conn:
            deadline = time.monotonic() + 5
            while sum(killed) < 2 and time.monotonic() < deadline:
                time.sleep(0.3)
                killed.append(
                    conn.execute(
                        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE query LIKE '%%run_projection%%' AND state = 'active' AND pid <> pg_backend_pid()) AS k"
                    ).fetchone()[0]  # type: ignore[index]
                )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if conn.execute("SELECT lag FROM eventstore.projection_status WHERE name = 'slow'").fetchone() == (0,):
                    break
                time.sleep(0.1)
    finally:
        worker.stop()


def test_worker_killed_mid_batch_resumes_without_loss_or_double_apply(
    orders_dsn: str, orders_conn: psycopg.Connection[Any]
) -> None:
    orders_conn.execute("CREATE TABLE public.applied (event_id uuid PRIMARY KEY)")
    orders_conn.execute(
        "CREATE FUNCTION public.slow_record(p_event eventstore.domain_events) RETURNS void LANGUAGE sql "
        "AS $$ SELECT pg_sleep(0.002); INSERT INTO public.applied VALUES (p_event.event_id) $$"
    )
    orders_conn.execute(
        "SELECT eventstore.register_projection('slow', 'public.slow_record(eventstore.domain_events)', NULL, 'async')"
    )
    orders_conn.execute(generate_orders(400))  # 1,200 events, about 2.4 s of handler time
    worker = ProjectionWorker(orders_dsn, ["slow"], batch_size=200, poll_interval=0.2, reconnect_delay=0.1)
    killed: list[int] = []
    killer = threading.Thread(target=kill_batches_until_caught_up, args=(orders_dsn, worker, killed))
    killer.start()
    worker.run(install_signal_handlers=False)
    killer.join(10)
    assert not killer.is_alive()
    assert sum(killed) >= 1, "no batch was killed, so the test proved nothing"
    assert (orders_conn.execute("SELECT count(*) FROM public.applied")).fetchone() == (1200,)
    assert (
        orders_conn.execute("SELECT events_applied FROM eventstore.projection_status WHERE name = 'slow'")
    ).fetchone() == (1200,)


def test_python_projection_applies_database_effects_exactly_once_and_records_failures(
    orders_dsn: str, orders_conn: psycopg.Connection[Any]
) -> None:
    orders_conn.execute("CREATE TABLE public.shipments (aggregate_id uuid PRIMARY KEY, carrier text)")
    seen: list[RecordedEvent] = []
    fail_on: set[uuid.UUID] = set()

    def on_shipped(conn: psycopg.Connection[Any], event: RecordedEvent) -> None:
        if event.aggregate_id in fail_on:
            raise RuntimeError("downstream refused")
        seen.append(event)
        conn.execute("INSERT INTO public.shipments VALUES (%s, %s)", [event.aggregate_id, event.payload["carrier"]])

    projection = PythonProjection("shipments", on_shipped, event_types=["OrderShipped"])
    orders_conn.execute(generate_orders(30))
    with psycopg.Connection.connect(orders_dsn, autocommit=True) as conn:
        conn.execute("SELECT eventstore.register_external_projection('shipments', ARRAY['OrderShipped'])")
        shipped = (
            conn.execute(
                "SELECT aggregate_id FROM eventstore.read_all(NULL, 1000, ARRAY['OrderShipped']) ORDER BY feed_position"
            )
        ).fetchall()
        fail_on.add(shipped[12][0])
        assert run_python_projection(conn, projection, max_events=10) == 10
        assert run_python_projection(conn, projection, max_events=10) == 2
        status = (
            conn.execute(
                "SELECT state, last_error, events_applied FROM eventstore.projection_status WHERE name = 'shipments'"
            )
        ).fetchone()
        assert status == ("failed", "RuntimeError: downstream refused", 12)
        assert run_python_projection(conn, projection, max_events=10) == 0
        fail_on.clear()
        conn.execute("SELECT eventstore.retry_projection('shipments')")
        while run_python_projection(conn, projection, max_events=10):
            pass
    assert (orders_conn.execute("SELECT count(*) FROM public.shipments")).fetchone() == (30,)
    assert len({e.event_id for e in seen}) == 30
