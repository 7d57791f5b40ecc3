-- The Order example (examples/orders/orders.sql, loaded into the test
-- database by `make test-in-cluster`): the fold's states and UTC timestamps,
-- and the order_projections handler with idempotent replay.
BEGIN;
SET LOCAL client_min_messages = warning;
-- The state's timestamps are UTC whatever the session's time zone.
SET LOCAL TIME ZONE 'America/New_York';
SELECT plan(30);

SELECT has_schema('orders', 'the Order example is installed (schema orders)');
SELECT results_eq(
    $$
        SELECT fold, snapshot_every, initial_state ->> 'status'
        FROM eventstore.aggregate_types
        WHERE aggregate_type = 'Order'
    $$,
    $$VALUES ('orders.order_fold(jsonb, eventstore.domain_events)'::regprocedure, 50, 'pending')$$,
    'type Order is registered with orders.order_fold, a snapshot every 50 versions, initial status pending'
);

-- An Order event row at a chosen time, for calling the fold directly.
CREATE FUNCTION pg_temp.order_event(p_type text, p_payload jsonb, p_occurred_at timestamptz)
RETURNS eventstore.domain_events
LANGUAGE sql
AS $fn$
    SELECT ROW(
        1, gen_random_uuid(), 'Order', 'a0000000-0000-4000-8000-000000000001', p_type, 0,
        p_payload, '{}'::jsonb, p_occurred_at, 1
    )::eventstore.domain_events;
$fn$;

-- Applies every event of an aggregate to order_projections, in version order.
CREATE FUNCTION pg_temp.project(p_id uuid)
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_event eventstore.domain_events;
BEGIN
    FOR v_event IN
        SELECT * FROM eventstore.domain_events AS d WHERE d.aggregate_id = p_id ORDER BY d.event_version
    LOOP
        PERFORM orders.project_order(v_event);
    END LOOP;
END;
$fn$;

CREATE TEMP TABLE placed_payload AS
SELECT
    jsonb_build_object(
        'orderNumber', 'ORD-1001',
        'customerId', 'c0000000-0000-4000-8000-000000000001',
        'lineItems', '[{"sku": "BOOK-1", "quantity": 2, "unitPrice": 10.00}]'::jsonb,
        'shippingAddress', '{"city": "Oslo"}'::jsonb,
        'subtotal', 20.00,
        'shippingCost', 4.50,
        'total', 24.50
    ) AS payload;

-- The fold, called directly with events at chosen times.
SELECT is(
    orders.order_fold(
        (
            SELECT initial_state
            FROM eventstore.aggregate_types
            WHERE aggregate_type = 'Order'
        ),
        pg_temp.order_event('OrderPlaced', (SELECT payload FROM placed_payload), '2024-03-01 12:00:00.5+02')
    ),
    (
        SELECT initial_state
        FROM eventstore.aggregate_types
        WHERE aggregate_type = 'Order'
    )
    || '{"status": "placed", "orderNumber": "ORD-1001", "customerId": "c0000000-0000-4000-8000-000000000001",
         "lineItems": [{"sku": "BOOK-1", "quantity": 2, "unitPrice": 10.00}], "shippingAddress": {"city": "Oslo"},
         "subtotal": 20.00, "shippingCost": 4.50, "total": 24.50,
         "placedAt": "2024-03-01T10:00:00.500000Z"}'::jsonb,
    'OrderPlaced: status placed, the order''s data, placedAt in UTC'
);
SELECT is(
    orders.order_fold(
        '{"status": "placed"}',
        pg_temp.order_event('OrderShipped', '{"carrier": "DHL", "trackingNumber": "TRK-1"}', '2024-03-02 08:15:00-05')
    ),
    '{"status": "shipped", "carrier": "DHL", "trackingNumber": "TRK-1",
      "shippedAt": "2024-03-02T13:15:00.000000Z"}'::jsonb,
    'OrderShipped: status shipped, carrier, tracking number, shippedAt in UTC'
);
SELECT is(
    orders.order_fold(
        '{"status": "shipped"}',
        pg_temp.order_event('OrderDelivered', '{"deliveredAt": "2024-03-05T14:30:00+02:00"}', '2024-03-06 00:00+00')
    ),
    '{"status": "delivered", "deliveredAt": "2024-03-05T12:30:00.000000Z"}'::jsonb,
    'OrderDelivered: deliveredAt from the payload, in UTC'
);
SELECT is(
    orders.order_fold(
        '{"status": "shipped"}',
        pg_temp.order_event('OrderDelivered', '{}', '2024-03-06 01:02:03+00')
    ),
    '{"status": "delivered", "deliveredAt": "2024-03-06T01:02:03.000000Z"}'::jsonb,
    'OrderDelivered without deliveredAt: the event''s time'
);
SELECT is(
    orders.order_fold(
        '{"status": "placed"}',
        pg_temp.order_event('OrderCancelled', '{"reason": "customer request"}', '2024-03-02 10:00+01')
    ),
    '{"status": "cancelled", "cancelReason": "customer request",
      "cancelledAt": "2024-03-02T09:00:00.000000Z"}'::jsonb,
    'OrderCancelled: status cancelled, the reason, cancelledAt in UTC'
);
SELECT is(
    orders.order_fold(
        '{"status": "placed", "total": 24.50}',
        pg_temp.order_event('OrderNoteAdded', '{"note": "leave at the door"}', '2024-03-02 10:00+00')
    ),
    '{"status": "placed", "total": 24.50}'::jsonb,
    'an unknown event type leaves the state unchanged'
);

-- Through the event store: placed -> shipped -> delivered, then a note.
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', -1,
            jsonb_build_array(jsonb_build_object('event_type', 'OrderPlaced', 'payload', p.payload))
        )
        FROM placed_payload AS p;
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 0,
            '[{"event_type": "OrderShipped", "payload": {"carrier": "DHL", "trackingNumber": "TRK-1"}}]'
        );
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 1,
            '[{"event_type": "OrderDelivered", "payload": {"deliveredAt": "2024-03-05T14:30:00+02:00"}}]'
        );
    $$,
    'setup: an order placed, shipped and delivered'
);
SELECT results_eq(
    $$
        SELECT s.state ->> 'status', s.state ->> 'orderNumber', (s.state ->> 'total')::numeric, s.version
        FROM eventstore.load_aggregate('Order', 'a0000000-0000-4000-8000-000000000001') AS s
    $$,
    $$VALUES ('delivered', 'ORD-1001', 24.50, 2)$$,
    'load_aggregate: the order is delivered at version 2 and keeps its data'
);
SELECT results_eq(
    $$
        SELECT s.state ->> 'placedAt', s.state ->> 'shippedAt', s.state ->> 'deliveredAt'
        FROM eventstore.load_aggregate('Order', 'a0000000-0000-4000-8000-000000000001') AS s
    $$,
    $$
        SELECT
            to_char(p.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            to_char(s.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            '2024-03-05T12:30:00.000000Z'
        FROM eventstore.domain_events AS p
        INNER JOIN eventstore.domain_events AS s ON p.aggregate_id = s.aggregate_id
        WHERE p.aggregate_id = 'a0000000-0000-4000-8000-000000000001'
          AND p.event_version = 0
          AND s.event_version = 1
    $$,
    'placedAt and shippedAt are the events'' times in UTC, deliveredAt the payload''s'
);
SELECT results_eq(
    $$
        SELECT g.v, s.state ->> 'status'
        FROM generate_series(0, 2) AS g (v)
        CROSS JOIN LATERAL eventstore.aggregate_state_at_version(
            'Order', 'a0000000-0000-4000-8000-000000000001', g.v
        ) AS s
    $$,
    $$VALUES (0, 'placed'), (1, 'shipped'), (2, 'delivered')$$,
    'the status after each event: placed, shipped, delivered'
);
CREATE TEMP TABLE delivered_state AS
SELECT state FROM eventstore.load_aggregate('Order', 'a0000000-0000-4000-8000-000000000001');
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 2,
            '[{"event_type": "OrderNoteAdded", "payload": {"note": "leave at the door"}}]'
        )
    $$,
    'setup: an event type the fold does not know'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Order', 'a0000000-0000-4000-8000-000000000001')$$,
    $$SELECT state, 3 FROM delivered_state$$,
    'an unknown event type moves the version but leaves the state unchanged'
);

-- A cancelled order.
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000002', -1,
            '[{"event_type": "OrderPlaced",
               "payload": {"orderNumber": "ORD-1002", "customerId": "c0000000-0000-4000-8000-000000000002",
                           "lineItems": [], "subtotal": 5, "shippingCost": 0, "total": 5}},
              {"event_type": "OrderCancelled", "payload": {"reason": "out of stock"}}]'
        )
    $$,
    'setup: an order placed and cancelled'
);
SELECT results_eq(
    $$
        SELECT
            s.state ->> 'status',
            s.state ->> 'cancelReason',
            s.state ->> 'cancelledAt' = to_char(d.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            s.state ->> 'shippedAt'
        FROM eventstore.load_aggregate('Order', 'a0000000-0000-4000-8000-000000000002') AS s
        INNER JOIN eventstore.domain_events AS d
            ON d.aggregate_id = 'a0000000-0000-4000-8000-000000000002' AND d.event_version = 1
    $$,
    $$VALUES ('cancelled', 'out of stock', TRUE, NULL::text)$$,
    'a cancelled order: status, reason, cancelledAt in UTC, never shipped'
);

-- The projection handler.
SELECT lives_ok(
    $$SELECT pg_temp.project('a0000000-0000-4000-8000-000000000001')$$,
    'project_order applies every event of the delivered order'
);
SELECT results_eq(
    $$
        SELECT
            o.order_number, o.customer_id, o.status, o.line_items, o.subtotal, o.shipping_cost, o.total,
            o.shipping_addr
        FROM orders.order_projections AS o
        WHERE o.aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    $$,
    $$
        VALUES (
            'ORD-1001', 'c0000000-0000-4000-8000-000000000001'::uuid, 'delivered',
            '[{"sku": "BOOK-1", "quantity": 2, "unitPrice": 10.00}]'::jsonb, 20.00, 4.50, 24.50,
            '{"city": "Oslo"}'::jsonb
        )
    $$,
    'the projected row holds the order''s data and its status delivered'
);
SELECT results_eq(
    $$
        SELECT o.placed_at, o.shipped_at, o.delivered_at, o.cancelled_at, o.version, o.last_event_id, o.updated_at
        FROM orders.order_projections AS o
        WHERE o.aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    $$,
    $$
        SELECT
            (SELECT d.occurred_at FROM eventstore.domain_events AS d WHERE d.aggregate_id = l.aggregate_id AND d.event_version = 0),
            (SELECT d.occurred_at FROM eventstore.domain_events AS d WHERE d.aggregate_id = l.aggregate_id AND d.event_version = 1),
            '2024-03-05 12:30+00'::timestamptz,
            NULL::timestamptz,
            l.event_version,
            l.id,
            l.occurred_at
        FROM eventstore.domain_events AS l
        WHERE l.aggregate_id = 'a0000000-0000-4000-8000-000000000001' AND l.event_version = 3
    $$,
    'the projected times come from the events; version, last_event_id and updated_at from the last event'
);
CREATE TEMP TABLE projected AS
SELECT to_jsonb(o.*) AS projected_row
FROM orders.order_projections AS o
WHERE o.aggregate_id = 'a0000000-0000-4000-8000-000000000001';
SELECT lives_ok(
    $$SELECT pg_temp.project('a0000000-0000-4000-8000-000000000001')$$,
    'replaying every event of the order again'
);
SELECT results_eq(
    $$
        SELECT to_jsonb(o.*)
        FROM orders.order_projections AS o
        WHERE o.aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    $$,
    'SELECT projected_row FROM projected',
    'a replay changes nothing: one row, identical'
);
SELECT lives_ok(
    $$
        SELECT orders.project_order(d)
        FROM eventstore.domain_events AS d
        WHERE d.aggregate_id = 'a0000000-0000-4000-8000-000000000001' AND d.event_version = 1
    $$,
    'applying the OrderShipped event once more, after the order was delivered'
);
SELECT results_eq(
    $$
        SELECT to_jsonb(o.*)
        FROM orders.order_projections AS o
        WHERE o.aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    $$,
    'SELECT projected_row FROM projected',
    'an event applied twice changes nothing: the order stays delivered'
);
SELECT lives_ok(
    $$
        SELECT orders.project_order(d)
        FROM eventstore.domain_events AS d
        WHERE d.aggregate_id = 'a0000000-0000-4000-8000-000000000002' AND d.event_version = 0
    $$,
    'project_order applies the OrderPlaced event of the second order'
);
SELECT lives_ok(
    $$
        SELECT orders.project_order(d)
        FROM eventstore.domain_events AS d
        WHERE d.aggregate_id = 'a0000000-0000-4000-8000-000000000002' AND d.event_version = 0
    $$,
    'applying the same OrderPlaced event twice does not fail'
);
SELECT results_eq(
    $$
        SELECT o.status, o.version
        FROM orders.order_projections AS o
        WHERE o.aggregate_id = 'a0000000-0000-4000-8000-000000000002'
    $$,
    $$VALUES ('placed', 0)$$,
    'the placed order is projected once, at version 0'
);
SELECT lives_ok(
    $$SELECT pg_temp.project('a0000000-0000-4000-8000-000000000002')$$,
    'project_order applies the rest of the cancelled order'
);
SELECT results_eq(
    $$
        SELECT o.status, o.cancelled_at, o.shipped_at, o.version
        FROM orders.order_projections AS o
        WHERE o.aggregate_id = 'a0000000-0000-4000-8000-000000000002'
    $$,
    $$
        SELECT 'cancelled', d.occurred_at, NULL::timestamptz, 1
        FROM eventstore.domain_events AS d
        WHERE d.aggregate_id = 'a0000000-0000-4000-8000-000000000002' AND d.event_version = 1
    $$,
    'the cancelled order''s row: status cancelled, cancelled_at the event''s time'
);
SELECT is_empty(
    $$
        SELECT o.aggregate_id
        FROM orders.order_projections AS o
        CROSS JOIN LATERAL eventstore.load_aggregate('Order', o.aggregate_id) AS s
        WHERE o.status IS DISTINCT FROM s.state ->> 'status' OR o.version IS DISTINCT FROM s.version
    $$,
    'the read model agrees with the fold on status and version'
);
SELECT is_empty(
    $$
        SELECT p.oid::regprocedure, c.lineno, c.message
        FROM pg_catalog.pg_proc AS p
        INNER JOIN pg_catalog.pg_language AS l ON p.prolang = l.oid
        CROSS JOIN LATERAL plpgsql_check_function_tb(p.oid::regprocedure, fatal_errors => FALSE) AS c
        WHERE p.pronamespace = 'orders'::regnamespace
          AND l.lanname = 'plpgsql'
          AND c.level = 'error'
    $$,
    'plpgsql_check reports no error in the example''s PL/pgSQL functions'
);

SELECT * FROM finish();
ROLLBACK;
