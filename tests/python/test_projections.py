"""Projections in SQL with real connections: inline, async, failures, rebuild, external checkpoints.

Running them through the Python API (the workers, Python projections) is test_projection_runners_async.py
and its generated twin test_projection_runners.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bulk_orders
import psycopg
import pytest

READ_MODEL = "SELECT * FROM orders.order_projections ORDER BY aggregate_id"


def generate_orders(conn: psycopg.Connection[Any], orders: int) -> None:
    conn.execute(bulk_orders.generate_orders(orders))


def register(conn: psycopg.Connection[Any], name: str, mode: str, *, reset: bool = True) -> None:
    conn.execute(
        "SELECT eventstore.register_projection(%s, 'orders.project_order(eventstore.domain_events)', NULL, %s, %s)",
        [name, mode, "orders.reset_order_projections()" if reset else None],
    )


def run_until_caught_up(conn: psycopg.Connection[Any], name: str, batch: int = 1000) -> int:
    total = 0
    while True:
        row = conn.execute("SELECT eventstore.run_projection(%s, %s)", [name, batch]).fetchone()
        applied = int(row[0]) if row else 0
        total += applied
        if applied == 0:
            return total


@pytest.fixture
def orders_conn(orders_dsn: str) -> Any:
    with psycopg.connect(orders_dsn, autocommit=True) as conn:
        yield conn


def test_inline_projection_is_current_at_commit_and_atomic_with_the_append(
    orders_conn: psycopg.Connection[Any], orders_dsn: str
) -> None:
    register(orders_conn, "orders", "inline")
    order_id = uuid.uuid4()
    with psycopg.connect(orders_dsn) as writer:
        writer.execute(
            "SELECT eventstore.append_events('Order', %s, -1, %s)",
            [
                order_id,
                '[{"event_type": "OrderPlaced", "payload": {"orderNumber": "A-1", '
                '"customerId": "7c7c0e4e-9f6a-4d8e-8a8f-111111111111", "total": 10}}]',
            ],
        )
        assert orders_conn.execute("SELECT count(*) FROM orders.order_projections").fetchone() == (0,)
        writer.commit()
    assert orders_conn.execute(
        "SELECT status FROM orders.order_projections WHERE aggregate_id = %s", [order_id]
    ).fetchone() == ("placed",)

    # A failing inline handler fails the append: no event, no read-model row.
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        orders_conn.execute(
            "SELECT eventstore.append_events('Order', gen_random_uuid(), -1, %s)",
            ['[{"event_type": "OrderPlaced", "payload": {"orderNumber": "A-2", "customerId": "not-a-uuid"}}]'],
        )
    assert orders_conn.execute("SELECT count(*) FROM eventstore.domain_events").fetchone() == (1,)
    assert orders_conn.execute("SELECT count(*) FROM orders.order_projections").fetchone() == (1,)


def test_async_projection_after_catch_up_equals_the_inline_result(orders_conn: psycopg.Connection[Any]) -> None:
    register(orders_conn, "orders_inline", "inline")
    generate_orders(orders_conn, 3334)  # 10,002 events
    assert orders_conn.execute("SELECT count(*) FROM eventstore.domain_events").fetchone() == (10002,)
    inline_rows = orders_conn.execute(READ_MODEL).fetchall()

    orders_conn.execute("SELECT eventstore.unregister_projection('orders_inline')")
    orders_conn.execute("DELETE FROM orders.order_projections")
    register(orders_conn, "orders_async", "async")
    assert run_until_caught_up(orders_conn, "orders_async") == 10002
    assert orders_conn.execute(READ_MODEL).fetchall() == inline_rows
    status = orders_conn.execute(
        "SELECT state, lag, events_applied FROM eventstore.projection_status WHERE name = 'orders_async'"
    ).fetchone()
    assert status == ("running", 0, 10002)


def test_order_projection_matches_load_aggregate_for_every_order(orders_conn: psycopg.Connection[Any]) -> None:
    register(orders_conn, "orders", "inline")
    generate_orders(orders_conn, 300)
    mismatches = orders_conn.execute(
        """
        SELECT o.aggregate_id
        FROM orders.order_projections AS o
        CROSS JOIN LATERAL eventstore.load_aggregate('Order', o.aggregate_id) AS a
        WHERE o.status <> a.state ->> 'status'
           OR o.version <> a.version
           OR o.order_number <> a.state ->> 'orderNumber'
           OR o.total <> (a.state ->> 'total')::numeric
        """
    ).fetchall()
    assert orders_conn.execute("SELECT count(*) FROM orders.order_projections").fetchone() == (300,)
    assert mismatches == []


def test_two_runners_started_together_never_double_apply(orders_dsn: str, orders_conn: psycopg.Connection[Any]) -> None:
    orders_conn.execute("CREATE TABLE public.applied (event_id uuid PRIMARY KEY)")
    orders_conn.execute(
        "CREATE FUNCTION public.record_event(p_event eventstore.domain_events) RETURNS void LANGUAGE sql "
        "AS $$ INSERT INTO public.applied VALUES (p_event.event_id) $$"
    )
    orders_conn.execute(
        "SELECT eventstore.register_projection('counter', 'public.record_event(eventstore.domain_events)',"
        " NULL, 'async')"
    )
    generate_orders(orders_conn, 1000)
    barrier = threading.Barrier(2)

    def runner() -> int:
        applied = 0
        with psycopg.connect(orders_dsn, autocommit=True) as conn:
            barrier.wait()
            for _ in range(200):
                applied += conn.execute("SELECT eventstore.run_projection('counter', 50)").fetchone()[0]  # type: ignore[index]
        return applied

    with ThreadPoolExecutor(2) as executor:
        results = list(executor.map(lambda _: runner(), range(2)))
    total = run_until_caught_up(orders_conn, "counter") + sum(results)
    assert total == 3000
    assert orders_conn.execute("SELECT count(*) FROM public.applied").fetchone() == (3000,)
    assert min(results) > 0, "both runners should have got batches"


def test_failure_stops_at_the_event_and_retry_resumes_after_a_fix(orders_conn: psycopg.Connection[Any]) -> None:
    orders_conn.execute("CREATE TABLE public.broken (event_type text)")
    orders_conn.execute("CREATE TABLE public.seen (id bigint PRIMARY KEY)")
    orders_conn.execute(
        """
        CREATE FUNCTION public.fragile(p_event eventstore.domain_events) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT FROM public.broken AS b WHERE b.event_type = p_event.event_type) THEN
                RAISE EXCEPTION 'cannot handle %', p_event.event_type USING ERRCODE = '22023';
            END IF;
            INSERT INTO public.seen VALUES (p_event.id);
        END $$
        """
    )
    orders_conn.execute(
        "SELECT eventstore.register_projection('fragile', 'public.fragile(eventstore.domain_events)', NULL, 'async')"
    )
    orders_conn.execute("INSERT INTO public.broken VALUES ('OrderShipped')")
    generate_orders(orders_conn, 3)
    events = orders_conn.execute("SELECT id, event_type FROM eventstore.read_all() ORDER BY feed_position").fetchall()
    first_shipped = next(i for i, (_, event_type) in enumerate(events) if event_type == "OrderShipped")

    assert run_until_caught_up(orders_conn, "fragile") == first_shipped
    state, last_error, failed_event_id = orders_conn.execute(
        "SELECT state, last_error, failed_event_id FROM eventstore.projection_status WHERE name = 'fragile'"
    ).fetchone()  # type: ignore[misc]
    assert (state, failed_event_id) == ("failed", events[first_shipped][0])
    assert last_error.startswith("22023")
    assert [row[0] for row in orders_conn.execute("SELECT id FROM public.seen ORDER BY id")] == sorted(
        event_id for event_id, _ in events[:first_shipped]
    )
    assert run_until_caught_up(orders_conn, "fragile") == 0, "a failed projection does not run"

    orders_conn.execute("DELETE FROM public.broken")
    orders_conn.execute("SELECT eventstore.retry_projection('fragile')")
    assert run_until_caught_up(orders_conn, "fragile") == len(events) - first_shipped
    assert orders_conn.execute("SELECT count(*) FROM public.seen").fetchone() == (len(events),)


def test_rebuild_yields_the_same_read_model_as_live_processing(orders_conn: psycopg.Connection[Any]) -> None:
    register(orders_conn, "orders", "inline")
    generate_orders(orders_conn, 500)
    live = orders_conn.execute(READ_MODEL).fetchall()
    orders_conn.execute("UPDATE orders.order_projections SET status = 'corrupted'")
    notices: list[str] = []
    orders_conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    replayed = orders_conn.execute("SELECT eventstore.rebuild_projection('orders')").fetchone()
    assert replayed == (1500,)
    assert orders_conn.execute(READ_MODEL).fetchall() == live
    assert any(n.startswith("rebuild orders: 1500 of 1500") for n in notices)


def test_rebuild_progress_is_visible_to_another_session_while_it_runs(
    orders_dsn: str, orders_conn: psycopg.Connection[Any]
) -> None:
    orders_conn.execute(
        "CREATE FUNCTION public.slow_noop(p_event eventstore.domain_events) RETURNS void LANGUAGE sql "
        "AS $$ SELECT pg_sleep(0.0003) $$"
    )
    orders_conn.execute("CREATE FUNCTION public.noop_reset() RETURNS void LANGUAGE sql AS $$ SELECT $$")
    orders_conn.execute(
        "SELECT eventstore.register_projection('slow_rebuild', 'public.slow_noop(eventstore.domain_events)', "
        "NULL, 'async', 'public.noop_reset()')"
    )
    generate_orders(orders_conn, 3334)  # 10,002 events: a batch of 10,000 (about 3 s), then one of 2
    result: list[Any] = []

    def rebuild() -> None:
        with psycopg.connect(orders_dsn, autocommit=True) as conn:
            result.append(conn.execute("SELECT eventstore.rebuild_projection('slow_rebuild')").fetchone())

    thread = threading.Thread(target=rebuild)
    thread.start()
    seen: set[tuple[str, str]] = set()
    while thread.is_alive():
        for row in orders_conn.execute(
            "SELECT state, rebuild_progress FROM eventstore.projection_status WHERE name = 'slow_rebuild'"
        ):
            if row[1] is not None:
                seen.add((row[0], row[1]))
        time.sleep(0.05)
    thread.join()
    assert result == [(10002,)]
    assert ("rebuilding", "0/10002") in seen, f"another session saw {sorted(seen)}"
    assert orders_conn.execute(
        "SELECT state, rebuild_progress FROM eventstore.projection_status WHERE name = 'slow_rebuild'"
    ).fetchone() == ("running", None)


def test_only_the_client_holding_an_external_projection_moves_its_checkpoint(dsn: str) -> None:
    """A second client's save while the first holds the projection is refused (ES002), not waited for and applied."""
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute("SELECT eventstore.register_external_projection('mailer')")
        setup.execute(
            "SELECT eventstore.append_events('Mail', gen_random_uuid(), -1,"
            ' \'[{"event_type": "MailQueued", "payload": {}}, {"event_type": "MailQueued", "payload": {}}]\')'
        )
        positions = [row[0] for row in setup.execute("SELECT feed_position::text FROM eventstore.read_all(NULL::text)")]
    first, last = positions[0], positions[-1]
    save = "SELECT eventstore.save_projection_checkpoint('mailer', %s::eventstore.feed_position, %s)"
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn) as other:
        assert holder.execute("SELECT after::text FROM eventstore.lock_projection('mailer')").fetchone() == ("(-1,0)",)
        # Before the check, the save waited for the holder and then overwrote its checkpoint.
        other.execute("SET lock_timeout = '5s'")
        with pytest.raises(psycopg.Error) as refused:
            other.execute(save, [first, 1])
        assert refused.value.sqlstate == "ES002"
        other.rollback()
        holder.execute(save, [last, 2])
        holder.commit()
    with psycopg.connect(dsn) as check:
        assert check.execute("SELECT after::text FROM eventstore.lock_projection('mailer')").fetchone() == (last,)
