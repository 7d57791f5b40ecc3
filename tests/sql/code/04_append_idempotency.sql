-- Idempotent retries: a call whose events are all stored already, for the
-- same aggregate with the same content, returns the stored rows and appends
-- nothing, however stale its expected version. A reused event_id with other
-- content, or a partial retry, is ES005.
BEGIN;
SELECT plan(34);

-- Runs a call that must fail with p_code, then checks that the event store
-- still holds as many events and streams as before: two assertions per call.
CREATE FUNCTION pg_temp.refused(p_call text, p_code text, p_description text)
RETURNS SETOF text
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_before bigint[] := ARRAY[
        (SELECT count(*) FROM eventstore.domain_events),
        (SELECT count(*) FROM eventstore.streams)
    ];
BEGIN
    RETURN NEXT throws_ok(p_call, p_code, NULL, p_description);
    RETURN NEXT is(
        ARRAY[(SELECT count(*) FROM eventstore.domain_events), (SELECT count(*) FROM eventstore.streams)],
        v_before,
        p_description || ': nothing written'
    );
END;
$fn$;

-- The original calls: a new Order (events 1 and 2), then event 3.
SELECT lives_ok(
    $$
        CREATE TEMP TABLE original AS
        SELECT * FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', -1,
            '[{"event_type": "OrderPlaced", "payload": {"total": 10}, "metadata": {"user": "ann"},
               "event_id": "e0000000-0000-4000-8000-000000000001"},
              {"event_type": "ItemAdded", "payload": {"sku": "x"},
               "event_id": "e0000000-0000-4000-8000-000000000002"}]'
        )
    $$,
    'the original call stores two events'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 1,
            '[{"event_type": "ItemAdded", "payload": {"sku": "y"}, "event_id": "e0000000-0000-4000-8000-000000000003"}]'
        )
    $$,
    'a later call stores a third event'
);

-- Retrying the first call, with its now stale expected version -1.
SELECT results_eq(
    $$
        SELECT id, event_id, event_version, feed_key
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', -1,
            '[{"event_type": "OrderPlaced", "payload": {"total": 10}, "metadata": {"user": "ann"},
               "event_id": "e0000000-0000-4000-8000-000000000001"},
              {"event_type": "ItemAdded", "payload": {"sku": "x"},
               "event_id": "e0000000-0000-4000-8000-000000000002"}]'
        )
    $$,
    'SELECT id, event_id, event_version, feed_key FROM original ORDER BY event_version',
    'a retry with a stale expected version returns the stored rows in version order'
);
SELECT results_eq(
    $$
        SELECT event_version
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 0,
            '[{"event_type": "OrderPlaced", "payload": {"total": 10}, "metadata": {"user": "ann"},
               "event_id": "e0000000-0000-4000-8000-000000000001"},
              {"event_type": "ItemAdded", "payload": {"sku": "x"},
               "event_id": "e0000000-0000-4000-8000-000000000002"}]'
        )
    $$,
    ARRAY[0, 1],
    'a retry with another stale expected version returns the stored rows'
);
SELECT results_eq(
    $$
        SELECT event_version
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', NULL,
            '[{"event_type": "OrderPlaced", "payload": {"total": 10}, "metadata": {"user": "ann"},
               "event_id": "E0000000-0000-4000-8000-000000000001"},
              {"event_type": "ItemAdded", "payload": {"sku": "x"}, "metadata": {},
               "event_id": "E0000000-0000-4000-8000-000000000002"}]'
        )
    $$,
    ARRAY[0, 1],
    'a retry with event_ids in upper case and metadata {} spelled out returns the stored rows'
);
SELECT results_eq(
    $$
        SELECT event_version
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 1,
            '[{"event_type": "ItemAdded", "payload": {"sku": "y"}, "metadata": null,
               "event_id": "e0000000-0000-4000-8000-000000000003"}]'
        )
    $$,
    ARRAY[2],
    'a retry of the latest call with its own (now stale) expected version returns its row'
);
SELECT results_eq(
    $$
        SELECT event_version
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 2,
            '[{"event_type": "ItemAdded", "payload": {"sku": "y"}, "event_id": "e0000000-0000-4000-8000-000000000003"}]'
        )
    $$,
    ARRAY[2],
    'a retry with the current version as expected version returns the stored row, appends nothing'
);
SELECT results_eq(
    $$
        SELECT event_version
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', -1,
            '[{"event_type": "OrderPlaced", "payload": {"total": 10}, "metadata": {"user": "ann"},
               "event_id": "e0000000-0000-4000-8000-000000000001"}]'
        )
    $$,
    ARRAY[0],
    'a retry of part of a stored call (every event stored) returns those rows'
);
SELECT results_eq(
    $$SELECT count(*)::integer, max(event_version) FROM eventstore.domain_events$$,
    $$VALUES (3, 2)$$,
    'the retries appended nothing'
);
SELECT is(
    (
        SELECT version
        FROM eventstore.streams
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    ),
    2,
    'the retries left the stream version alone'
);

-- ES005: an event_id stored with other content.
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', -1,
        '[{"event_type": "OrderPlaced", "payload": {"total": 11}, "metadata": {"user": "ann"},
           "event_id": "e0000000-0000-4000-8000-000000000001"}]')$$,
    'ES005', 'a stored event_id with another payload'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', -1,
        '[{"event_type": "OrderCancelled", "payload": {"total": 10}, "metadata": {"user": "ann"},
           "event_id": "e0000000-0000-4000-8000-000000000001"}]')$$,
    'ES005', 'a stored event_id with another event_type'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', -1,
        '[{"event_type": "OrderPlaced", "payload": {"total": 10}, "metadata": {"user": "bob"},
           "event_id": "e0000000-0000-4000-8000-000000000001"}]')$$,
    'ES005', 'a stored event_id with other metadata'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', -1,
        '[{"event_type": "OrderPlaced", "payload": {"total": 10},
           "event_id": "e0000000-0000-4000-8000-000000000001"}]')$$,
    'ES005', 'a stored event_id without its metadata'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', -1,
        '[{"event_type": "ItemAdded", "payload": {"sku": "x"}, "event_id": "e0000000-0000-4000-8000-000000000002"},
          {"event_type": "OrderPlaced", "payload": {"total": 10}, "metadata": {"user": "ann"},
           "event_id": "e0000000-0000-4000-8000-000000000001"}]')$$,
    'ES005', 'stored events retried in another order'
);

-- ES005: a partial retry, some events stored and some new.
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', 2,
        '[{"event_type": "ItemAdded", "payload": {"sku": "y"}, "event_id": "e0000000-0000-4000-8000-000000000003"},
          {"event_type": "ItemAdded", "payload": {"sku": "z"}, "event_id": "e0000000-0000-4000-8000-000000000004"}]')$$,
    'ES005', 'a call with one stored and one new event_id'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', 2,
        '[{"event_type": "ItemAdded", "payload": {"sku": "y"}, "event_id": "e0000000-0000-4000-8000-000000000003"},
          {"event_type": "ItemAdded", "payload": {"sku": "z"}}]')$$,
    'ES005', 'a call with one stored event_id and one event without event_id'
);

-- ES005: an event_id of another aggregate, whether the target exists or not.
SELECT lives_ok(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000002', -1,
        '[{"event_type": "OrderPlaced", "payload": {}}]')$$,
    'setup: a second Order'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000002', 0,
        '[{"event_type": "ItemAdded", "payload": {"sku": "y"}, "event_id": "e0000000-0000-4000-8000-000000000003"}]')$$,
    'ES005', 'an event_id of another aggregate, appended to an existing one'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "OrderPlaced", "payload": {}},
          {"event_type": "ItemAdded", "payload": {"sku": "y"}, "event_id": "e0000000-0000-4000-8000-000000000003"}]')$$,
    'ES005', 'an event_id of another aggregate, in a call that creates a new one'
);
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000009', -1,
        '[{"event_type": "ItemAdded", "payload": {"sku": "y"}, "event_id": "e0000000-0000-4000-8000-000000000003"}]')$$,
    'ES005', 'a whole stored call retried against another (new) aggregate'
);
SELECT is_empty(
    $$SELECT aggregate_id FROM eventstore.streams WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000009'$$,
    'the refused calls left no stream behind'
);

-- A retry under another aggregate type is a type change: ES002.
SELECT pg_temp.refused(
    $$SELECT eventstore.append_events('Customer', 'a0000000-0000-4000-8000-000000000001', -1,
        '[{"event_type": "ItemAdded", "payload": {"sku": "y"}, "event_id": "e0000000-0000-4000-8000-000000000003"}]')$$,
    'ES002', 'a retry under another aggregate type'
);

SELECT * FROM finish();
ROLLBACK;
