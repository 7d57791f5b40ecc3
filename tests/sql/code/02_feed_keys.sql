-- The restore guard. A dump restored into a new cluster holds feed keys
-- ahead of that cluster's transaction ids; append_events and read_all then
-- raise ES006 instead of misordering or hiding events, until
-- after_restore() lifts the offset. after_restore() is idempotent.
-- The restore is simulated by storing an event with a feed key far ahead.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(20);

SELECT is(eventstore.after_restore(), 0::bigint, 'after_restore on an empty store keeps offset 0');
SELECT is(eventstore.after_restore(), 0::bigint, 'after_restore again: still 0');
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', -1, '[{"event_type": "OrderPlaced", "payload": {}}]'
        )
    $$,
    'setup: an Order appended in this cluster'
);
SELECT is(eventstore.after_restore(), 0::bigint, 'events written by this cluster need no offset');
SELECT results_eq(
    'SELECT feed_key_offset FROM eventstore.settings',
    ARRAY[0::bigint],
    'the offset is still 0'
);

-- A "restored" event whose key is far ahead of this cluster's transaction ids.
INSERT INTO eventstore.domain_events (
    event_id, aggregate_type, aggregate_id, event_type, event_version, payload, feed_key
)
VALUES (
    'e0000000-0000-4000-8000-000000000099', 'Order', 'a0000000-0000-4000-8000-000000000002',
    'OrderPlaced', 0, '{}', pg_current_xact_id()::text::bigint + 1000000000000
);

SELECT throws_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 0, '[{"event_type": "ItemAdded", "payload": {}}]'
        )
    $$,
    'ES006', NULL, 'append_events to an existing aggregate refuses with ES006 before after_restore'
);
SELECT throws_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000003', -1, '[{"event_type": "OrderPlaced", "payload": {}}]'
        )
    $$,
    'ES006', NULL, 'append_events to a new aggregate refuses with ES006 before after_restore'
);
SELECT throws_ok(
    'SELECT * FROM eventstore.read_all()',
    'ES006', NULL, 'read_all refuses with ES006 before after_restore'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.read_all('(0,0)')$$,
    'ES006', NULL, 'read_all(text) refuses with ES006 before after_restore'
);
SELECT is(
    (SELECT count(*) FROM eventstore.domain_events),
    2::bigint,
    'the refused appends wrote nothing'
);
SELECT results_eq(
    $$SELECT event_version FROM eventstore.load_events('a0000000-0000-4000-8000-000000000002')$$,
    ARRAY[0],
    'load_events, which does not depend on feed keys, still works'
);

-- after_restore lifts the offset above every stored key.
SELECT lives_ok(
    'CREATE TEMP TABLE restored AS SELECT eventstore.after_restore() AS feed_key_offset',
    'after_restore runs'
);
SELECT results_eq(
    'SELECT feed_key_offset FROM eventstore.settings',
    'SELECT feed_key_offset FROM restored',
    'after_restore returns the offset it stored'
);
SELECT ok(
    (
        SELECT s.feed_key_offset + eventstore._key_ceiling() >= max(d.feed_key)
        FROM eventstore.settings AS s
        CROSS JOIN eventstore.domain_events AS d
        GROUP BY s.feed_key_offset
    ),
    'the highest transaction id this snapshot knows of, plus the offset, is at or above every stored key'
);
SELECT is(
    eventstore.after_restore(),
    (SELECT feed_key_offset FROM restored),
    'after_restore again returns the same offset'
);
SELECT results_eq(
    'SELECT feed_key_offset FROM eventstore.settings',
    'SELECT feed_key_offset FROM restored',
    'after_restore again leaves the offset alone'
);

-- The store works again, with the offset in the keys.
SELECT ok(
    (
        SELECT
            d.event_version = 1
            AND d.feed_key >= pg_current_xact_id()::text::bigint + r.feed_key_offset
            AND d.feed_key >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint + r.feed_key_offset
            AND d.feed_key >= (
                SELECT max(e.feed_key) FROM eventstore.domain_events AS e
                WHERE e.aggregate_id = 'a0000000-0000-4000-8000-000000000002'
            )
        FROM
            eventstore.append_events(
                'Order', 'a0000000-0000-4000-8000-000000000001', 0, '[{"event_type": "ItemAdded", "payload": {}}]'
            ) AS d
        CROSS JOIN restored AS r
    ),
    'append_events works after after_restore; its key (id or floor, plus the offset) is at or above the restored one'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000003', -1, '[{"event_type": "OrderPlaced", "payload": {}}]'
        )
    $$,
    'append_events to a new aggregate works after after_restore'
);
SELECT lives_ok(
    'SELECT * FROM eventstore.read_all()',
    'read_all works after after_restore'
);
SELECT lives_ok(
    $$SELECT * FROM eventstore.read_all('(0,0)')$$,
    'read_all(text) works after after_restore'
);

SELECT * FROM finish();
ROLLBACK;
