-- The inline projection trigger (sql/code/12_inline_projections.sql): one statement
-- trigger over the appended rows, and a handler's failure that names the
-- projection, the event type and the aggregate while keeping the handler's
-- SQLSTATE. (The rest is tested by 11-15_projections.sql.)
BEGIN;
SELECT plan(9);

CREATE SCHEMA test_inline;
-- A read model whose customer column must be set: OrderPlaced without a
-- customerId breaks it, as the docs' tour once did.
CREATE TABLE test_inline.orders (order_id uuid PRIMARY KEY, customer text NOT NULL);
CREATE FUNCTION test_inline.project(p_event eventstore.domain_events)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO test_inline.orders VALUES (p_event.aggregate_id, p_event.payload ->> 'customerId');
$$;

SELECT lives_ok(
    $$SELECT eventstore.register_projection('order list', 'test_inline.project(eventstore.domain_events)',
                                            ARRAY['OrderPlaced'], 'inline')$$,
    'setup: an inline projection of OrderPlaced events'
);
SELECT is(
    (
        SELECT t.tgnewtable::text FROM pg_catalog.pg_trigger AS t
        WHERE
            t.tgrelid = 'eventstore.domain_events'::regclass AND t.tgname = 'domain_events_inline_projections'
            AND NOT t.tgisinternal AND (t.tgtype & 1) = 0
    ),
    'new_events',
    'inline projections run from a statement trigger over the appended rows'
);
SELECT lives_ok(
    $$SELECT eventstore.append_events('Order', 'b0000000-0000-4000-8000-000000000001', -1,
        '[{"event_type": "OrderPlaced", "payload": {"customerId": "c1"}}, {"event_type": "Other", "payload": {}}]')$$,
    'an append the handler accepts'
);
SELECT is(
    (
        SELECT customer FROM test_inline.orders
        WHERE order_id = 'b0000000-0000-4000-8000-000000000001'
    ),
    'c1',
    'the read model is current at once'
);
SELECT throws_ok(
    $$SELECT eventstore.append_events('Order', 'b0000000-0000-4000-8000-000000000002', -1,
        '[{"event_type": "Other", "payload": {}}, {"event_type": "OrderPlaced", "payload": {}}]')$$,
    '23502',
    NULL,
    'a handler''s failure keeps its SQLSTATE (23502 not_null_violation)'
);
SELECT is_empty(
    $$SELECT FROM eventstore.domain_events WHERE aggregate_id = 'b0000000-0000-4000-8000-000000000002'$$,
    'the refused append wrote nothing'
);

-- The error's fields, as a client sees them.
CREATE FUNCTION pg_temp.refusal()
RETURNS TABLE (error_code text, message text, detail text)
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM eventstore.append_events('Order', 'b0000000-0000-4000-8000-000000000003', -1,
        '[{"event_type": "Other", "payload": {}}, {"event_type": "OrderPlaced", "payload": {}}]');
    RAISE EXCEPTION 'not refused';
EXCEPTION WHEN not_null_violation THEN
    GET STACKED DIAGNOSTICS error_code = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
    RETURN NEXT;
END;
$$;

SELECT ok(
    (SELECT
        r.message LIKE 'inline projection order list refused OrderPlaced of aggregate Order '
        'b0000000-0000-4000-8000-000000000003: null value in column "customer"%'
    FROM pg_temp.refusal() AS r),
    'the message names the projection, the event type, the aggregate, and the handler''s error'
);
SELECT is(
    (SELECT r.detail FROM pg_temp.refusal() AS r),
    E'projection: order list, event_type: OrderPlaced, aggregate_type: Order, '
    'aggregate_id: b0000000-0000-4000-8000-000000000003, event_version: 1\n'
    'Failing row contains (b0000000-0000-4000-8000-000000000003, null).',
    'the DETAIL names them field by field, then the handler''s own DETAIL'
);
SELECT is(
    (SELECT r.error_code FROM pg_temp.refusal() AS r),
    '23502',
    'a client sees the handler''s SQLSTATE'
);

SELECT * FROM finish();
ROLLBACK;
