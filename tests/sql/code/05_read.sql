-- Reading: load_events, and the global feed read_all in both overloads
-- (position as eventstore.feed_position and as its text form).
--
-- read_all only returns events below the fence, the oldest running
-- transaction: events appended by this test's own transaction stay out of
-- it. The feed tests therefore insert rows with small feed keys directly, as
-- the owner, standing for events of transactions that ended long ago.
BEGIN;
SELECT plan(53);

-- Events of this transaction: above the fence.
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', -1,
            '[{"event_type": "OrderPlaced", "payload": {}, "event_id": "e0000000-0000-4000-8000-000000000001"},
              {"event_type": "ItemAdded", "payload": {"sku": "x"}, "event_id": "e0000000-0000-4000-8000-000000000002"},
              {"event_type": "ItemAdded", "payload": {"sku": "y"}, "event_id": "e0000000-0000-4000-8000-000000000003"}]'
        )
    $$,
    'setup: an Order of three events appended by this transaction'
);

-- Events of ended transactions: below the fence. Inserted out of feed order,
-- so that id order and feed order differ.
INSERT INTO eventstore.domain_events (
    event_id, aggregate_type, aggregate_id, event_type, event_version, payload, feed_key
)
VALUES
(
    'e0000000-0000-4000-8000-000000000011', 'Customer', 'a0000000-0000-4000-8000-000000000002',
    'CustomerRegistered', 0, '{}', 30
),
(
    'e0000000-0000-4000-8000-000000000012', 'Order', 'a0000000-0000-4000-8000-000000000003',
    'OrderPlaced', 0, '{}', 10
),
(
    'e0000000-0000-4000-8000-000000000013', 'Order', 'a0000000-0000-4000-8000-000000000003',
    'ItemAdded', 1, '{}', 10
),
(
    'e0000000-0000-4000-8000-000000000014', 'Customer', 'a0000000-0000-4000-8000-000000000002',
    'CustomerRenamed', 1, '{}', 20
),
(
    'e0000000-0000-4000-8000-000000000015', 'Order', 'a0000000-0000-4000-8000-000000000003',
    'ItemAdded', 2, '{}', 20
);

-- load_events
SELECT results_eq(
    $$SELECT event_version FROM eventstore.load_events('a0000000-0000-4000-8000-000000000001')$$,
    ARRAY[0, 1, 2],
    'load_events returns an aggregate''s events in version order, from version 0 by default'
);
SELECT results_eq(
    $$SELECT * FROM eventstore.load_events('a0000000-0000-4000-8000-000000000001')$$,
    $$
        SELECT *
        FROM eventstore.domain_events
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
        ORDER BY event_version
    $$,
    'load_events returns the stored rows'
);
SELECT results_eq(
    $$SELECT event_version FROM eventstore.load_events('a0000000-0000-4000-8000-000000000001', 1)$$,
    ARRAY[1, 2],
    'load_events from version 1'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.load_events('a0000000-0000-4000-8000-000000000001', 3)$$,
    'load_events after the last version returns no row'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.load_events('a0000000-0000-4000-8000-0000000000ff')$$,
    'load_events of an unknown aggregate returns no row'
);
SELECT results_eq(
    $$SELECT event_id FROM eventstore.load_events('a0000000-0000-4000-8000-000000000003')$$,
    $$
        VALUES
        ('e0000000-0000-4000-8000-000000000012'::uuid),
        ('e0000000-0000-4000-8000-000000000013'::uuid),
        ('e0000000-0000-4000-8000-000000000015'::uuid)
    $$,
    'load_events orders by version, not by feed key or id'
);
SELECT throws_ok(
    'SELECT eventstore.load_events(NULL)',
    'ES002', NULL, 'load_events refuses a NULL aggregate id'
);
SELECT throws_ok(
    $$SELECT eventstore.load_events('a0000000-0000-4000-8000-000000000001', NULL)$$,
    'ES002', NULL, 'load_events refuses a NULL from-version'
);
SELECT throws_ok(
    $$SELECT eventstore.load_events('a0000000-0000-4000-8000-000000000001', -1)$$,
    'ES002', NULL, 'load_events refuses a negative from-version'
);

-- read_all: the fence and the order.
SELECT is_empty(
    $$
        SELECT event_id
        FROM eventstore.read_all(NULL::eventstore.feed_position)
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    $$,
    'read_all leaves out events of transactions still running (this one)'
);
SELECT lives_ok(
    $$
        CREATE TEMP TABLE feed AS
        SELECT * FROM eventstore.read_all(NULL::eventstore.feed_position) WITH ORDINALITY
    $$,
    'read_all from the start'
);
SELECT results_eq(
    'SELECT event_id FROM feed ORDER BY ordinality',
    $$
        VALUES
        ('e0000000-0000-4000-8000-000000000012'::uuid),
        ('e0000000-0000-4000-8000-000000000013'::uuid),
        ('e0000000-0000-4000-8000-000000000014'::uuid),
        ('e0000000-0000-4000-8000-000000000015'::uuid),
        ('e0000000-0000-4000-8000-000000000011'::uuid)
    $$,
    'read_all returns the feed in (feed_key, id) order, not in id order'
);
SELECT results_eq(
    $$
        SELECT id, event_id, aggregate_type, aggregate_id, event_type, event_version,
            payload, metadata, occurred_at, feed_key
        FROM feed
        ORDER BY ordinality
    $$,
    $$
        SELECT id, event_id, aggregate_type, aggregate_id, event_type, event_version,
            payload, metadata, occurred_at, feed_key
        FROM eventstore.domain_events
        WHERE feed_key < 100
        ORDER BY feed_key, id
    $$,
    'read_all returns every column of the stored rows'
);
SELECT is_empty(
    $$
        SELECT id
        FROM feed
        WHERE feed_position IS DISTINCT FROM ROW(feed_key, id)::eventstore.feed_position
    $$,
    'a row''s feed_position is (feed_key, id)'
);
SELECT results_eq(
    'SELECT event_id FROM eventstore.read_all()',
    'SELECT event_id FROM feed ORDER BY ordinality',
    'read_all() without arguments starts from the beginning'
);
SELECT results_eq(
    'SELECT event_id FROM eventstore.read_all(NULL)',
    'SELECT event_id FROM feed ORDER BY ordinality',
    'read_all(NULL) starts from the beginning'
);

-- read_all: paging by position.
SELECT results_eq(
    'SELECT event_id FROM eventstore.read_all(NULL::eventstore.feed_position, 2)',
    'SELECT event_id FROM feed WHERE ordinality <= 2 ORDER BY ordinality',
    'p_max_count limits the page'
);
SELECT results_eq(
    $$
        SELECT event_id
        FROM eventstore.read_all(
            (
                SELECT feed_position
                FROM feed
                WHERE ordinality = 1
            ),
            2
        )
    $$,
    'SELECT event_id FROM feed WHERE ordinality IN (2, 3) ORDER BY ordinality',
    'p_after resumes right after that row, also between rows of one feed key'
);
SELECT results_eq(
    $$
        SELECT event_id
        FROM eventstore.read_all(
            (
                SELECT feed_position
                FROM feed
                WHERE ordinality = 2
            )
        )
    $$,
    'SELECT event_id FROM feed WHERE ordinality > 2 ORDER BY ordinality',
    'p_after resumes right after that row, across feed keys'
);
SELECT is_empty(
    $$
        SELECT event_id
        FROM eventstore.read_all(
            (
                SELECT feed_position
                FROM feed
                WHERE ordinality = 5
            )
        )
    $$,
    'read_all after the last row returns no row'
);
SELECT results_eq(
    $$
        WITH RECURSIVE walk AS (
            SELECT
                1 AS n,
                f.event_id,
                f.feed_position
            FROM eventstore.read_all(NULL::eventstore.feed_position, 1) AS f
            UNION ALL
            SELECT
                w.n + 1,
                f.event_id,
                f.feed_position
            FROM walk AS w
            CROSS JOIN LATERAL eventstore.read_all(w.feed_position, 1) AS f
        )

        SELECT event_id FROM walk ORDER BY n
    $$,
    'SELECT event_id FROM feed ORDER BY ordinality',
    'paging one row at a time visits every row once, in feed order'
);

-- read_all: the text form of the position.
SELECT results_eq(
    $$
        WITH RECURSIVE walk AS (
            SELECT
                1 AS n,
                f.event_id,
                f.feed_position
            FROM eventstore.read_all(NULL::text, 1) AS f
            UNION ALL
            SELECT
                w.n + 1,
                f.event_id,
                f.feed_position
            FROM walk AS w
            CROSS JOIN LATERAL eventstore.read_all(w.feed_position::text, 1) AS f
        )

        SELECT event_id FROM walk ORDER BY n
    $$,
    'SELECT event_id FROM feed ORDER BY ordinality',
    'paging by the text form of feed_position visits every row once, in feed order'
);
SELECT results_eq(
    $$
        SELECT *
        FROM eventstore.read_all(
            (
                SELECT feed_position::text
                FROM feed
                WHERE ordinality = 1
            ),
            3
        )
    $$,
    $$
        SELECT *
        FROM eventstore.read_all(
            (
                SELECT feed_position
                FROM feed
                WHERE ordinality = 1
            ),
            3
        )
    $$,
    'read_all(text) returns what read_all(feed_position) returns'
);
SELECT results_eq(
    $$SELECT * FROM eventstore.read_all('(10,0)')$$,
    $$SELECT * FROM eventstore.read_all(ROW(10, 0)::eventstore.feed_position)$$,
    'a hand-written text position works like the composite one'
);
SELECT results_eq(
    $$SELECT event_id FROM eventstore.read_all(NULL::text)$$,
    'SELECT event_id FROM feed ORDER BY ordinality',
    'read_all(NULL::text) starts from the beginning'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.read_all('(9223372036854775807,9223372036854775807)')$$,
    'the largest text position is accepted and returns no row'
);

-- read_all: filters.
SELECT results_eq(
    $$SELECT event_id FROM eventstore.read_all(NULL::eventstore.feed_position, 10, ARRAY['ItemAdded'])$$,
    $$
        VALUES
        ('e0000000-0000-4000-8000-000000000013'::uuid),
        ('e0000000-0000-4000-8000-000000000015'::uuid)
    $$,
    'p_event_types keeps only those event types'
);
SELECT results_eq(
    $$
        SELECT event_id
        FROM eventstore.read_all(NULL::eventstore.feed_position, p_aggregate_types => ARRAY['Customer'])
    $$,
    $$
        VALUES
        ('e0000000-0000-4000-8000-000000000014'::uuid),
        ('e0000000-0000-4000-8000-000000000011'::uuid)
    $$,
    'p_aggregate_types keeps only those aggregate types'
);
SELECT results_eq(
    $$
        SELECT event_id
        FROM eventstore.read_all(
            NULL::eventstore.feed_position, 10,
            ARRAY['ItemAdded', 'CustomerRenamed', 'CustomerRegistered'], ARRAY['Order']
        )
    $$,
    $$
        VALUES
        ('e0000000-0000-4000-8000-000000000013'::uuid),
        ('e0000000-0000-4000-8000-000000000015'::uuid)
    $$,
    'both filters apply together'
);
SELECT results_eq(
    $$SELECT event_id FROM eventstore.read_all(NULL::eventstore.feed_position, 1, ARRAY['ItemAdded'])$$,
    $$VALUES ('e0000000-0000-4000-8000-000000000013'::uuid)$$,
    'p_max_count counts the rows that pass the filters'
);
SELECT results_eq(
    $$
        SELECT event_id
        FROM eventstore.read_all(
            (
                SELECT feed_position
                FROM feed
                WHERE event_id = 'e0000000-0000-4000-8000-000000000013'
            ),
            10,
            ARRAY['ItemAdded']
        )
    $$,
    $$VALUES ('e0000000-0000-4000-8000-000000000015'::uuid)$$,
    'a filtered read resumes after a position'
);
SELECT results_eq(
    $$
        SELECT event_id
        FROM eventstore.read_all(
            p_after => '(0,0)', p_event_types => ARRAY['ItemAdded'], p_aggregate_types => ARRAY['Order']
        )
    $$,
    $$
        VALUES
        ('e0000000-0000-4000-8000-000000000013'::uuid),
        ('e0000000-0000-4000-8000-000000000015'::uuid)
    $$,
    'read_all(text) applies the filters too'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.read_all(NULL::eventstore.feed_position, 10, ARRAY['NoSuchEvent'])$$,
    'an event type filter that matches nothing returns no row'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.read_all(NULL::eventstore.feed_position, 10, NULL, ARRAY[]::text[])$$,
    'an empty aggregate type filter returns no row'
);

-- read_all: ES002.
SELECT throws_ok(
    'SELECT eventstore.read_all(NULL::eventstore.feed_position, NULL)',
    'ES002', NULL, 'read_all refuses a NULL p_max_count'
);
SELECT throws_ok(
    'SELECT eventstore.read_all(NULL::eventstore.feed_position, 0)',
    'ES002', NULL, 'read_all refuses p_max_count 0'
);
SELECT throws_ok(
    'SELECT eventstore.read_all(NULL::eventstore.feed_position, -5)',
    'ES002', NULL, 'read_all refuses a negative p_max_count'
);
SELECT throws_ok(
    $$SELECT eventstore.read_all('(10,0)', 0)$$,
    'ES002', NULL, 'read_all(text) refuses p_max_count 0'
);
SELECT throws_ok(
    'SELECT eventstore.read_all(ROW(10, NULL)::eventstore.feed_position)',
    'ES002', NULL, 'read_all refuses a position without id'
);
SELECT throws_ok(
    'SELECT eventstore.read_all(ROW(NULL, 10)::eventstore.feed_position)',
    'ES002', NULL, 'read_all refuses a position without feed key'
);
SELECT throws_ok(
    $$SELECT eventstore.read_all('garbage')$$,
    'ES002', NULL, 'read_all(text) refuses a text that is no position'
);
SELECT throws_ok(
    $$SELECT eventstore.read_all('')$$,
    'ES002', NULL, 'read_all(text) refuses an empty text'
);
SELECT throws_ok(
    $$SELECT eventstore.read_all('(10,1')$$,
    'ES002', NULL, 'read_all(text) refuses an unclosed position'
);
SELECT throws_ok(
    $$SELECT eventstore.read_all('(10,)')$$,
    'ES002', NULL, 'read_all(text) refuses a position without id'
);
SELECT throws_ok(
    $$SELECT eventstore.read_all('(10, 1)')$$,
    'ES002', NULL, 'read_all(text) refuses a position with spaces'
);
SELECT is(
    (SELECT count(*) FROM eventstore.read_all('(-1,0)')),
    (SELECT count(*) FROM eventstore.read_all(NULL::text)),
    'read_all(text) takes ''(-1,0)'', the position before the first event, as the start'
);
SELECT throws_ok(
    $$SELECT eventstore.read_all('(10,1,2)')$$,
    'ES002', NULL, 'read_all(text) refuses three numbers'
);
SELECT throws_ok(
    $$SELECT eventstore.read_all('(9223372036854775808,1)')$$,
    'ES002', NULL, 'read_all(text) refuses a feed key beyond bigint'
);
SELECT throws_ok(
    $$SELECT eventstore.read_all('(10,99999999999999999999)')$$,
    'ES002', NULL, 'read_all(text) refuses an id beyond bigint'
);

-- read_all: the fence is the oldest running transaction. A key just below it
-- is in the feed; a key at this transaction's id (at or above the fence) is not.
INSERT INTO eventstore.domain_events (
    event_id, aggregate_type, aggregate_id, event_type, event_version, payload, feed_key
)
VALUES
(
    'e0000000-0000-4000-8000-000000000021', 'Order', 'a0000000-0000-4000-8000-000000000004',
    'OrderPlaced', 0, '{}', pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1
),
(
    'e0000000-0000-4000-8000-000000000022', 'Order', 'a0000000-0000-4000-8000-000000000005',
    'OrderPlaced', 0, '{}', pg_current_xact_id()::text::bigint
);
SELECT results_eq(
    $$
        SELECT event_id
        FROM eventstore.read_all(
            (
                SELECT feed_position
                FROM feed
                WHERE ordinality = 5
            )
        )
    $$,
    $$VALUES ('e0000000-0000-4000-8000-000000000021'::uuid)$$,
    'a key below the oldest running transaction is in the feed, this transaction''s key is not'
);

-- read_all: the default page is 1000 rows.
INSERT INTO eventstore.domain_events (
    event_id, aggregate_type, aggregate_id, event_type, event_version, payload, feed_key
)
SELECT
    gen_random_uuid() AS event_id,
    'Order' AS aggregate_type,
    'a0000000-0000-4000-8000-000000000006'::uuid AS aggregate_id,
    'ItemAdded' AS event_type,
    n AS event_version,
    '{}'::jsonb AS payload,
    40 AS feed_key
FROM generate_series(0, 999) AS n;
SELECT is(
    (SELECT count(*) FROM eventstore.read_all()),
    1000::bigint,
    'read_all returns at most 1000 rows by default'
);
SELECT is(
    (SELECT count(*) FROM eventstore.read_all(NULL::eventstore.feed_position, 5000)),
    1006::bigint,
    'a larger p_max_count returns the whole feed'
);

SELECT * FROM finish();
ROLLBACK;
