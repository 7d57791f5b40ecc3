-- Registering appenders and the key floor (docs/feed.md, "Registering
-- appenders, and the fence"), in the case that needs a fresh transaction id:
-- a REPEATABLE READ transaction that has written before it appends. pgTAP's
-- own bookkeeping writes, so this transaction has an id before the first
-- append. The fence's multi-session behaviour is tested in
-- tests/python/test_feed.py and test_restore.py.
BEGIN;
SET LOCAL transaction_isolation = 'repeatable read';
SET LOCAL client_min_messages = warning;
SELECT plan(13);

SELECT ok(pg_current_xact_id_if_assigned() IS NOT NULL, 'setup: this transaction has written before appending');

CREATE TEMP TABLE first_append AS
SELECT d.feed_key - s.feed_key_offset AS key_id
FROM
    eventstore.append_events(
        'Order', 'a0000000-0000-4000-8000-00000000f001', -1, '[{"event_type": "OrderPlaced", "payload": {}}]'
    ) AS d
CROSS JOIN eventstore.settings AS s;

SELECT ok(
    EXISTS (
        SELECT FROM pg_locks AS l
        WHERE
            l.pid = pg_backend_pid()
            AND l.relation = 'eventstore.domain_events'::regclass
            AND l.mode = 'RowExclusiveLock'
            AND l.granted
    ),
    'the appender is registered: ROW EXCLUSIVE on domain_events'
);
SELECT ok(
    (SELECT key_id FROM first_append) > pg_current_xact_id()::text::bigint,
    'its key comes from a transaction id newer than its own (a fresh floor)'
);
SELECT ok(
    (SELECT key_id FROM first_append) > pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
    'and newer than its (older) snapshot knows of'
);
SELECT is(
    current_setting('eventstore.key_floor')::bigint,
    (SELECT key_id FROM first_append),
    'the floor is kept for the restore guard'
);
SELECT is((SELECT count(*) FROM eventstore.key_floor_probe), 0::bigint, 'the probe leaves no row');

-- The restore guard knows the transaction's own floors: no false ES006.
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-00000000f001', 0, '[{"event_type": "ItemAdded", "payload": {}}]'
        )
    $$,
    'a second append in the same transaction passes the restore guard'
);
SELECT lives_ok('SELECT * FROM eventstore.read_all()', 'read_all passes the restore guard');
SELECT is(eventstore.after_restore(), 0::bigint, 'after_restore sees no restore');
SELECT ok(
    eventstore.feed_fence() <= pg_current_xact_id()::text::bigint
    + (SELECT s.feed_key_offset FROM eventstore.settings AS s),
    'the open appending transaction holds its own fence below its keys'
);
SELECT is(
    (
        SELECT count(*) FROM eventstore.read_all()
        WHERE aggregate_id = 'a0000000-0000-4000-8000-00000000f001'
    ),
    0::bigint,
    'read_all does not return this transaction''s own uncommitted events'
);

-- A rolled-back savepoint (here an exception block, which is one) takes its
-- floor back with its events.
CREATE TEMP TABLE floor_before AS SELECT current_setting('eventstore.key_floor') AS floor;
DO $$
BEGIN
    PERFORM eventstore.append_events(
        'Order', 'a0000000-0000-4000-8000-00000000f002', -1, '[{"event_type": "OrderPlaced", "payload": {}}]'
    );
    RAISE EXCEPTION 'roll the savepoint back' USING ERRCODE = 'ES900';
EXCEPTION WHEN SQLSTATE 'ES900' THEN
    NULL;
END;
$$;
SELECT is(
    current_setting('eventstore.key_floor'),
    (SELECT floor FROM floor_before),
    'a rolled-back savepoint restores the floor'
);
SELECT is(
    (
        SELECT count(*) FROM eventstore.domain_events
        WHERE aggregate_id = 'a0000000-0000-4000-8000-00000000f002'
    ),
    0::bigint,
    'and its events are gone'
);

SELECT * FROM finish();
ROLLBACK;
