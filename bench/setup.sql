-- The bench schema: the ceiling table and the helpers the benchmark runner
-- (bench/harness.py and bench/sections/) uses. Installed only into the
-- runner's throwaway databases, after build/eventstore.sql and
-- examples/orders/orders.sql.

CREATE SCHEMA bench;

-- The ceiling: a bare table of the same shape as eventstore.domain_events
-- (columns, defaults, CHECK constraints, primary key, unique constraints and
-- indexes, copied by LIKE ... INCLUDING ALL), but no triggers, and written
-- with plain INSERT statements instead of functions.
CREATE TABLE bench.ceiling_events (LIKE eventstore.domain_events INCLUDING ALL);

-- The contract ceiling adds what the contract makes every append do, in plain
-- SQL: a stream row (optimistic concurrency) and a NOTIFY (the wake-up hint).
CREATE TABLE bench.ceiling_streams (LIKE eventstore.streams INCLUDING ALL);

-- W4 runs through this wrapper so that a conflict (ES001) counts as a failed
-- attempt instead of aborting the pgbench client. Its exception block costs a
-- subtransaction per call, which the ceiling (INSERT ... ON CONFLICT DO
-- NOTHING) does not pay.
CREATE FUNCTION bench.try_append(
    p_aggregate_type text,
    p_aggregate_id uuid,
    p_expected_version integer,
    p_events jsonb
)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM eventstore.append_events(p_aggregate_type, p_aggregate_id, p_expected_version, p_events);
    RETURN TRUE;
EXCEPTION WHEN SQLSTATE 'ES001' THEN
    RETURN FALSE;
END;
$$;

-- The Order projection's reset function (orders.sql has none): rebuilds start
-- from an empty read model.
CREATE FUNCTION bench.reset_order_projections()
RETURNS void
LANGUAGE sql
AS $$
    TRUNCATE orders.order_projections;
$$;

-- One batch of an async projection and the checkpoint it left, in one round
-- trip and one transaction: the async-lag workload needs to know which
-- events a projection commit covered.
CREATE FUNCTION bench.run_projection_reporting(
    p_name text,
    p_max_events integer,
    OUT applied integer,
    OUT checkpoint_feed_key bigint,
    OUT checkpoint_id bigint
)
LANGUAGE plpgsql
AS $$
BEGIN
    applied := eventstore.run_projection(p_name, p_max_events);
    SELECT p.checkpoint_feed_key, p.checkpoint_id
    INTO checkpoint_feed_key, checkpoint_id
    FROM eventstore.projections AS p
    WHERE p.name = p_name;
END;
$$;

-- An OrderPlaced payload of about 300 bytes, as the seed's place_order
-- writes it; p_n makes the order number unique.
CREATE FUNCTION bench.order_placed_payload(p_n bigint, p_placed_at timestamptz)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT jsonb_build_object(
        'orderNumber', 'ORD-' || to_char(p_placed_at AT TIME ZONE 'UTC', 'YYYYMMDD') || '-' || lpad(p_n::text, 8, '0'),
        'customerId', md5('customer-' || (p_n % 50000))::uuid,
        'lineItems', jsonb_build_array(
            jsonb_build_object(
                'productId', 'p-' || (1000 + p_n % 500),
                'sku', 'SKU-' || (1000 + p_n % 500),
                'name', 'Espresso beans 1kg',
                'quantity', 1 + p_n % 3,
                'unitPrice', 24.5
            )
        ),
        'shippingAddress', jsonb_build_object(
            'line1', '12 Harbour Road', 'city', 'Lisbon', 'country', 'PT', 'postalCode', '1100-001'
        ),
        'subtotal', 24.5 * (1 + p_n % 3),
        'shippingCost', CASE WHEN 24.5 * (1 + p_n % 3) >= 100 THEN 0 ELSE 4.95 END,
        'total', 24.5 * (1 + p_n % 3) + CASE WHEN 24.5 * (1 + p_n % 3) >= 100 THEN 0 ELSE 4.95 END
    );
$$;

-- Purpose: write a realistic Order history of exactly p_events events fast,
-- without append_events(): orders placed one a minute from 2024-01-01, each
-- 80% placed/shipped/delivered, 8% placed/shipped/cancelled, 7%
-- placed/cancelled, 5% only placed; the events of all orders interleaved in
-- time order and cut at p_events (the last orders lose their later events).
-- The rows keep the event store's invariants: versions dense from 0 per
-- order, occurred_at and feed keys never decreasing along an order, keys
-- made like append_events() makes them (the writing transaction's id plus
-- the settings offset; one transaction per p_chunk events, so keys are below
-- the fence once written), and one streams row per order. The same events,
-- in the same order, are copied into bench.ceiling_events.
-- CALL it outside a transaction block: it commits after every chunk.
CREATE PROCEDURE bench.generate_order_history(p_events integer, p_chunk integer DEFAULT 100000)
LANGUAGE plpgsql
AS $$
DECLARE
    v_orders integer := ceil(p_events / 2.8)::integer + 5000;
    v_done integer := 0;
    v_generated integer;
BEGIN
    CREATE TEMP TABLE generated_events ON COMMIT PRESERVE ROWS AS
    WITH placed AS (
        SELECT
            i,
            md5('order-' || i)::uuid AS aggregate_id,
            abs(hashint4(i)) % 100 AS kind,
            timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute' AS placed_at
        FROM generate_series(1, v_orders) AS i
    ),

    events AS (
        SELECT
            p.i,
            p.aggregate_id,
            s.event_version,
            s.event_type,
            p.placed_at + s.delay AS occurred_at,
            CASE s.event_type
                WHEN 'OrderPlaced' THEN bench.order_placed_payload(p.i, p.placed_at)
                WHEN 'OrderShipped' THEN jsonb_build_object(
                    'trackingNumber', 'TRK' || lpad(p.i::text, 10, '0'),
                    'carrier', (ARRAY['DHL', 'UPS', 'CTT'])[1 + p.i % 3],
                    'estimatedDelivery', p.placed_at + interval '4 days'
                )
                WHEN 'OrderDelivered' THEN jsonb_build_object(
                    'deliveredAt', p.placed_at + interval '3 days', 'signedBy', 'front desk'
                )
                ELSE jsonb_build_object(
                    'reason', 'customer request',
                    'cancelledBy', md5('customer-' || (p.i % 50000))::uuid,
                    'refundAmount', 24.5
                )
            END AS payload,
            jsonb_build_object('correlationId', md5('correlation-' || p.i)::uuid, 'user', 'shop-frontend')
                AS metadata
        FROM placed AS p
        CROSS JOIN LATERAL (
            VALUES
            (0, 'OrderPlaced', interval '0'),
            (1, CASE WHEN p.kind < 88 THEN 'OrderShipped' ELSE 'OrderCancelled' END,
             CASE WHEN p.kind < 88 THEN interval '1 day' ELSE interval '2 hours' END),
            (2, CASE WHEN p.kind < 80 THEN 'OrderDelivered' ELSE 'OrderCancelled' END, interval '3 days')
        ) AS s (event_version, event_type, delay)
        WHERE s.event_version = 0
           OR (s.event_version = 1 AND p.kind < 95)
           OR (s.event_version = 2 AND p.kind < 88)
    )

    SELECT
        row_number() OVER (ORDER BY e.occurred_at, e.i, e.event_version) AS n,
        e.*
    FROM events AS e;

    SELECT count(*) INTO v_generated FROM generated_events;
    IF v_generated < p_events THEN
        RAISE EXCEPTION 'generated only % events, % wanted', v_generated, p_events;
    END IF;
    CREATE INDEX ON generated_events (n);
    COMMIT;

    WHILE v_done < p_events LOOP
        INSERT INTO eventstore.domain_events (
            event_id, aggregate_type, aggregate_id, event_type, event_version, payload, metadata, occurred_at, feed_key
        )
        SELECT
            gen_random_uuid(), 'Order', g.aggregate_id, g.event_type, g.event_version, g.payload, g.metadata,
            g.occurred_at,
            pg_current_xact_id()::text::bigint + (SELECT s.feed_key_offset FROM eventstore.settings AS s)
        FROM generated_events AS g
        WHERE g.n > v_done AND g.n <= least(v_done + p_chunk, p_events)
        ORDER BY g.n;
        v_done := least(v_done + p_chunk, p_events);
        COMMIT;
    END LOOP;

    INSERT INTO eventstore.streams (aggregate_id, aggregate_type, version, last_feed_key, last_occurred_at, created_at)
    SELECT d.aggregate_id, 'Order', max(d.event_version), max(d.feed_key), max(d.occurred_at), min(d.occurred_at)
    FROM eventstore.domain_events AS d
    GROUP BY d.aggregate_id;

    INSERT INTO bench.ceiling_events (
        event_id, aggregate_type, aggregate_id, event_type, event_version, payload, metadata, occurred_at, feed_key
    )
    SELECT
        d.event_id, d.aggregate_type, d.aggregate_id, d.event_type, d.event_version, d.payload, d.metadata,
        d.occurred_at, d.feed_key
    FROM eventstore.domain_events AS d
    ORDER BY d.id;
    DROP TABLE generated_events;
    COMMIT;
END;
$$;
