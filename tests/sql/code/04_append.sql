-- append_events: what a successful append stores and returns. Versions are
-- dense and continue from the current version; feed keys and occurred_at
-- never decrease along an aggregate.
BEGIN;
SELECT plan(27);

-- A new aggregate, two events: one with event_id and metadata, one without.
SELECT lives_ok(
    $$
        CREATE TEMP TABLE first_append AS
        SELECT * FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', -1,
            '[{"event_type": "OrderPlaced", "payload": {"total": 10}, "metadata": {"user": "ann"},
               "event_id": "e0000000-0000-4000-8000-000000000001"},
              {"event_type": "ItemAdded", "payload": {"sku": "x"}}]'
        )
    $$,
    'append_events with expected version -1 creates an aggregate'
);
SELECT is((SELECT count(*) FROM first_append), 2::bigint, 'append_events returns one row per event');
SELECT results_eq(
    $$
        SELECT event_version, event_type, payload, metadata
        FROM eventstore.load_events('a0000000-0000-4000-8000-000000000001')
    $$,
    $$
        VALUES
        (0, 'OrderPlaced', '{"total": 10}'::jsonb, '{"user": "ann"}'::jsonb),
        (1, 'ItemAdded', '{"sku": "x"}'::jsonb, '{}'::jsonb)
    $$,
    'events are stored as given, from version 0; missing metadata is {}'
);
SELECT bag_eq(
    'SELECT * FROM first_append',
    $$SELECT * FROM eventstore.domain_events WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'$$,
    'append_events returns the stored rows'
);
SELECT is(
    (
        SELECT event_id
        FROM first_append
        WHERE event_version = 0
    ),
    'e0000000-0000-4000-8000-000000000001'::uuid,
    'a client-supplied event_id is kept'
);
SELECT ok(
    (
        SELECT event_id IS NOT NULL AND event_id <> 'e0000000-0000-4000-8000-000000000001'
        FROM first_append
        WHERE event_version = 1
    ),
    'a missing event_id is generated'
);
SELECT is(
    (SELECT array_agg(DISTINCT aggregate_type) FROM first_append),
    ARRAY['Order'],
    'every event carries the aggregate type'
);
SELECT results_eq(
    $$
        SELECT aggregate_type, version
        FROM eventstore.streams
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    $$,
    $$VALUES ('Order', 1)$$,
    'the stream row holds the type and the current version'
);

-- Appending to the existing aggregate at its current version continues the versions.
SELECT results_eq(
    $$
        SELECT event_version, event_type
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 1,
            '[{"event_type": "ItemAdded", "payload": {"sku": "y"}},
              {"event_type": "ItemRemoved", "payload": {"sku": "x"}}]'
        )
    $$,
    $$VALUES (2, 'ItemAdded'), (3, 'ItemRemoved')$$,
    'expected version N appends N+1, N+2, ... and returns them in version order'
);

-- Expected version NULL: no check, append at the end. JSON null metadata is {}.
SELECT results_eq(
    $$
        SELECT event_version, metadata
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', NULL,
            '[{"event_type": "OrderShipped", "payload": {}, "metadata": null}]'
        )
    $$,
    $$VALUES (4, '{}'::jsonb)$$,
    'expected version NULL appends at the end; JSON null metadata is stored as {}'
);
SELECT results_eq(
    $$SELECT event_version FROM eventstore.load_events('a0000000-0000-4000-8000-000000000001')$$,
    ARRAY[0, 1, 2, 3, 4],
    'versions are dense from 0'
);
SELECT is(
    (
        SELECT version
        FROM eventstore.streams
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    ),
    4,
    'the stream version follows the last event'
);

-- Feed keys: the transaction id plus the offset (0 here).
SELECT is_empty(
    $$
        SELECT id
        FROM eventstore.domain_events
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
          AND feed_key <> pg_current_xact_id()::text::bigint
    $$,
    'an event''s feed key is its transaction id plus the offset'
);
SELECT results_eq(
    $$
        SELECT last_feed_key, last_occurred_at
        FROM eventstore.streams
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    $$,
    $$
        SELECT feed_key, occurred_at
        FROM eventstore.domain_events
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
        ORDER BY event_version DESC
        LIMIT 1
    $$,
    'the stream row keeps the last feed key and occurred_at'
);

-- occurred_at is the insert time and never decreases along the aggregate.
SELECT is_empty(
    $$
        SELECT id
        FROM eventstore.domain_events
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
          AND occurred_at < now()
    $$,
    'occurred_at is the insert time, not before the transaction start'
);
SELECT is_empty(
    $$
        SELECT event_version
        FROM (
            SELECT
                event_version,
                occurred_at < lag(occurred_at) OVER (ORDER BY event_version) AS went_back
            FROM eventstore.domain_events
            WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
        ) AS t
        WHERE went_back
    $$,
    'occurred_at never decreases along an aggregate'
);

-- Aggregates are independent: each starts at version 0.
SELECT results_eq(
    $$
        SELECT event_version, aggregate_type
        FROM eventstore.append_events(
            'Customer', 'a0000000-0000-4000-8000-000000000002', -1,
            '[{"event_type": "CustomerRegistered", "payload": {"name": "Ann"}}]'
        )
    $$,
    $$VALUES (0, 'Customer')$$,
    'another aggregate starts at version 0 with its own type'
);
SELECT is(
    (
        SELECT version
        FROM eventstore.streams
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    ),
    4,
    'appending to one aggregate leaves another''s version alone'
);

-- Many events in one call.
SELECT results_eq(
    $$
        SELECT event_version
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000003', -1,
            (
                SELECT jsonb_agg(jsonb_build_object('event_type', 'ItemAdded', 'payload', jsonb_build_object('n', n)))
                FROM generate_series(1, 100) AS n
            )
        )
    $$,
    $$SELECT n FROM generate_series(0, 99) AS n$$,
    'one call of 100 events stores versions 0..99 in order'
);
SELECT results_eq(
    $$
        SELECT (payload ->> 'n')::integer
        FROM eventstore.load_events('a0000000-0000-4000-8000-000000000003')
    $$,
    $$SELECT n FROM generate_series(1, 100) AS n$$,
    'events keep the order of the array'
);

-- A mixed-case event_id is stored as the uuid it denotes.
SELECT is(
    (
        SELECT event_id
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000003', 99,
            '[{"event_type": "OrderShipped", "payload": {}, "event_id": "E0000000-0000-4000-8000-0000000000AB"}]'
        )
    ),
    'e0000000-0000-4000-8000-0000000000ab'::uuid,
    'an upper-case event_id is accepted'
);

-- A writer whose transaction id is older than the previous key of the
-- aggregate (it waited on the stream lock) must not go below that key, nor
-- below the previous occurred_at. Simulated by raising the stream row's
-- marks; this comes last, as keys above the transaction id would make
-- later appends in this transaction see a restored database (ES006).
UPDATE eventstore.streams
SET
    last_feed_key = last_feed_key + 1000,
    last_occurred_at = now() + interval '1 hour'
WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001';

SELECT lives_ok(
    $$
        CREATE TEMP TABLE late_append AS
        SELECT * FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 4,
            '[{"event_type": "OrderDelivered", "payload": {}}, {"event_type": "OrderClosed", "payload": {}}]'
        )
    $$,
    'append after the stream''s marks moved ahead of this transaction'
);
SELECT is(
    (SELECT array_agg(DISTINCT feed_key) FROM late_append),
    ARRAY[pg_current_xact_id()::text::bigint + 1000],
    'the feed key is raised to the previous key of the aggregate'
);
SELECT is(
    (SELECT array_agg(DISTINCT occurred_at) FROM late_append),
    ARRAY[now() + interval '1 hour'],
    'occurred_at is raised to the previous occurred_at of the aggregate'
);
SELECT is_empty(
    $$
        SELECT event_version
        FROM (
            SELECT
                event_version,
                feed_key < lag(feed_key) OVER (ORDER BY event_version) AS went_back
            FROM eventstore.domain_events
            WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
        ) AS t
        WHERE went_back
    $$,
    'feed keys never decrease along an aggregate'
);
SELECT is_empty(
    $$
        SELECT event_version
        FROM (
            SELECT
                event_version,
                occurred_at < lag(occurred_at) OVER (ORDER BY event_version) AS went_back
            FROM eventstore.domain_events
            WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
        ) AS t
        WHERE went_back
    $$,
    'occurred_at never decreases along an aggregate, even after a raised mark'
);
SELECT results_eq(
    $$
        SELECT version, last_feed_key
        FROM eventstore.streams
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    $$,
    $$VALUES (6, pg_current_xact_id()::text::bigint + 1000)$$,
    'the stream row moves on to the new version and keeps the raised key'
);

SELECT * FROM finish();
ROLLBACK;
