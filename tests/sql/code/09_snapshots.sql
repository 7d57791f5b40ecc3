-- Snapshots: taken by append_events when an append reaches or crosses a
-- multiple of snapshot_every, by take_snapshot on demand; valid only for the
-- fold (and initial state) that made them; pruned by prune_snapshots.
BEGIN;
-- Re-registration NOTICEs are not what this file is about.
SET LOCAL client_min_messages = warning;
SELECT plan(64);

CREATE SCHEMA test_folds;

-- The test fold: the event types in version order and the sum of payload.n.
CREATE FUNCTION test_folds.tally(p_state jsonb, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT p_state || jsonb_build_object(
        'types', (p_state -> 'types') || to_jsonb(p_event.event_type),
        'sum', (p_state ->> 'sum')::integer + coalesce((p_event.payload ->> 'n')::integer, 0)
    );
$$;

-- Another fold: like tally, but the sum counts payload.n ten times.
CREATE FUNCTION test_folds.tenfold(p_state jsonb, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT p_state || jsonb_build_object(
        'types', (p_state -> 'types') || to_jsonb(p_event.event_type),
        'sum', (p_state ->> 'sum')::integer + 10 * coalesce((p_event.payload ->> 'n')::integer, 0)
    );
$$;

-- A fold that fails on 'Boom' events and returns NULL on 'Null' events.
CREATE FUNCTION test_folds.fragile(p_state jsonb, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_event.event_type = 'Boom' THEN
        RAISE EXCEPTION 'boom' USING ERRCODE = '22012';
    ELSIF p_event.event_type = 'Null' THEN
        RETURN NULL;
    END IF;
    RETURN jsonb_build_object('count', coalesce((p_state ->> 'count')::integer, 0) + 1);
END;
$$;

-- Appends p_count events to an aggregate, one append_events call each;
-- returns the last version.
CREATE FUNCTION pg_temp.append_singles(p_type text, p_id uuid, p_count integer)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_version integer;
BEGIN
    FOR i IN 1..p_count LOOP
        SELECT max(e.event_version) INTO v_version
        FROM eventstore.append_events(
            p_type, p_id, NULL,
            jsonb_build_array(jsonb_build_object('event_type', 'Single', 'payload', jsonb_build_object('n', i)))
        ) AS e;
    END LOOP;
    RETURN v_version;
END;
$fn$;

-- A JSON array of p_count events for one append_events call.
CREATE FUNCTION pg_temp.batch(p_count integer)
RETURNS jsonb
LANGUAGE sql
AS $fn$
    SELECT jsonb_agg(
        jsonb_build_object('event_type', 'Batch', 'payload', jsonb_build_object('n', g.i)) ORDER BY g.i
    )
    FROM generate_series(1, p_count) AS g (i);
$fn$;

-- The tally (or tenfold, p_factor 10) state of an aggregate at a version,
-- computed from its events in plain SQL: the reference for the fold.
CREATE FUNCTION pg_temp.reference(p_id uuid, p_version integer, p_initial jsonb, p_factor integer DEFAULT 1)
RETURNS jsonb
LANGUAGE sql
AS $fn$
    SELECT p_initial || jsonb_build_object(
        'types', (p_initial -> 'types') || coalesce(jsonb_agg(d.event_type ORDER BY d.event_version), '[]'),
        'sum', (p_initial ->> 'sum')::integer + p_factor * coalesce(sum((d.payload ->> 'n')::integer), 0)
    )
    FROM eventstore.domain_events AS d
    WHERE d.aggregate_id = p_id AND d.event_version <= p_version;
$fn$;

-- The snapshots of an aggregate: version, and whether the registered fold
-- of its type may use it.
CREATE FUNCTION pg_temp.snapshots(p_id uuid)
RETURNS TABLE (version integer, valid boolean)
LANGUAGE sql
AS $fn$
    SELECT s.version, s.fold_identity IS NOT DISTINCT FROM eventstore._fold_identity(t.fold, t.initial_state)
    FROM eventstore.aggregate_snapshots AS s
    LEFT JOIN eventstore.aggregate_types AS t ON s.aggregate_type = t.aggregate_type
    WHERE s.aggregate_id = p_id
    ORDER BY s.version;
$fn$;

SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Counter', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"types": [], "sum": 0}', 5
        )
    $$,
    'setup: type Counter, a snapshot every 5 versions'
);

-- Automatic snapshots at the boundaries.
SELECT is(
    pg_temp.append_singles('Counter', 'a0000000-0000-4000-8000-000000000001', 13),
    12,
    'setup: 13 single appends, versions 0 to 12'
);
SELECT results_eq(
    $$SELECT version, valid FROM pg_temp.snapshots('a0000000-0000-4000-8000-000000000001')$$,
    $$VALUES (5, TRUE), (10, TRUE)$$,
    'single appends leave a valid snapshot at versions 5 and 10'
);
SELECT is_empty(
    $$
        SELECT s.version
        FROM eventstore.aggregate_snapshots AS s
        WHERE s.aggregate_id = 'a0000000-0000-4000-8000-000000000001'
          AND s.state IS DISTINCT FROM pg_temp.reference(s.aggregate_id, s.version, '{"types": [], "sum": 0}')
    $$,
    'each automatic snapshot holds the fold of the events up to its version'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Counter', 'a0000000-0000-4000-8000-000000000001')$$,
    $$
        SELECT pg_temp.reference('a0000000-0000-4000-8000-000000000001', 12, '{"types": [], "sum": 0}'), 12
    $$,
    'load_aggregate over snapshots equals the fold of all events'
);

SELECT is(
    (
        SELECT max(event_version)
        FROM eventstore.append_events('Counter', 'a0000000-0000-4000-8000-000000000002', -1, pg_temp.batch(3))
    ),
    2,
    'setup: an aggregate at version 2'
);
SELECT is(
    (
        SELECT max(event_version)
        FROM eventstore.append_events('Counter', 'a0000000-0000-4000-8000-000000000002', 2, pg_temp.batch(10))
    ),
    12,
    'setup: one append of versions 3 to 12'
);
SELECT results_eq(
    $$SELECT version, valid FROM pg_temp.snapshots('a0000000-0000-4000-8000-000000000002')$$,
    $$VALUES (12, TRUE)$$,
    'an append crossing 5 and 10 leaves one snapshot, at its last version'
);
SELECT is(
    (
        SELECT state
        FROM eventstore.aggregate_snapshots
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000002'
    ),
    pg_temp.reference('a0000000-0000-4000-8000-000000000002', 12, '{"types": [], "sum": 0}'),
    'that snapshot holds the fold of versions 0 to 12'
);

SELECT lives_ok(
    $$SELECT eventstore.append_events('Counter', 'a0000000-0000-4000-8000-000000000003', -1, pg_temp.batch(5))$$,
    'setup: one append of versions 0 to 4'
);
SELECT is_empty(
    $$SELECT * FROM pg_temp.snapshots('a0000000-0000-4000-8000-000000000003')$$,
    'an append that stops below the first multiple leaves no snapshot'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events('Counter', 'a0000000-0000-4000-8000-000000000003', 4, pg_temp.batch(1));
        SELECT eventstore.append_events('Counter', 'a0000000-0000-4000-8000-000000000003', 5, pg_temp.batch(5));
        SELECT eventstore.append_events('Counter', 'a0000000-0000-4000-8000-000000000003', 10, pg_temp.batch(4));
        SELECT eventstore.append_events('Counter', 'a0000000-0000-4000-8000-000000000003', 14, pg_temp.batch(6));
    $$,
    'setup: appends ending at 5, 10, 14 and 20'
);
SELECT results_eq(
    $$SELECT version, valid FROM pg_temp.snapshots('a0000000-0000-4000-8000-000000000003')$$,
    $$VALUES (5, TRUE), (10, TRUE), (20, TRUE)$$,
    'appends that reach a multiple snapshot it; one between multiples does not'
);

SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'NoSnap', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"types": [], "sum": 0}', 0
        )
    $$,
    'setup: type NoSnap, snapshot_every 0'
);
SELECT is(
    pg_temp.append_singles('NoSnap', 'a0000000-0000-4000-8000-000000000004', 12)
    + pg_temp.append_singles('Unregistered', 'a0000000-0000-4000-8000-000000000005', 12),
    22,
    'setup: 12 single appends to a NoSnap and to an unregistered aggregate'
);
SELECT lives_ok(
    $$SELECT eventstore.append_events('Unregistered', 'a0000000-0000-4000-8000-000000000005', 11, pg_temp.batch(11))$$,
    'setup: one append crossing 15 and 20 to the unregistered aggregate'
);
SELECT is_empty(
    $$
        SELECT *
        FROM eventstore.aggregate_snapshots
        WHERE aggregate_id IN ('a0000000-0000-4000-8000-000000000004', 'a0000000-0000-4000-8000-000000000005')
    $$,
    'no automatic snapshot with snapshot_every 0 or for an unregistered type'
);

-- A new fold never sees the snapshots of the old one.
SELECT lives_ok(
    $$SELECT eventstore.append_events('Counter', 'a0000000-0000-4000-8000-000000000006', -1, pg_temp.batch(11))$$,
    'setup: an aggregate at version 10 with a snapshot at 10'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Counter', 'test_folds.tenfold(jsonb, eventstore.domain_events)', '{"types": [], "sum": 0}', 5
        )
    $$,
    're-register Counter with another fold'
);
SELECT results_eq(
    $$SELECT valid FROM pg_temp.snapshots('a0000000-0000-4000-8000-000000000001')$$,
    ARRAY[FALSE, FALSE],
    'the snapshots of the old fold are no longer valid'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Counter', 'a0000000-0000-4000-8000-000000000001')$$,
    $$
        SELECT pg_temp.reference('a0000000-0000-4000-8000-000000000001', 12, '{"types": [], "sum": 0}', 10), 12
    $$,
    'load_aggregate after a new fold equals a fold from scratch with the new fold'
);
SELECT results_eq(
    $$
        SELECT state
        FROM eventstore.aggregate_state_at_version('Counter', 'a0000000-0000-4000-8000-000000000001', 10)
    $$,
    $$SELECT pg_temp.reference('a0000000-0000-4000-8000-000000000001', 10, '{"types": [], "sum": 0}', 10)$$,
    'aggregate_state_at_version does not use the old fold''s snapshot either'
);
SELECT is(
    pg_temp.append_singles('Counter', 'a0000000-0000-4000-8000-000000000001', 3),
    15,
    'setup: three more single appends, to version 15'
);
SELECT results_eq(
    $$SELECT version, valid FROM pg_temp.snapshots('a0000000-0000-4000-8000-000000000001')$$,
    $$VALUES (5, FALSE), (10, FALSE), (15, TRUE)$$,
    'new automatic snapshots carry the new fold''s identity'
);
SELECT is(
    (
        SELECT state
        FROM eventstore.aggregate_snapshots
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001' AND version = 15
    ),
    pg_temp.reference('a0000000-0000-4000-8000-000000000001', 15, '{"types": [], "sum": 0}', 10),
    'the new snapshot holds the new fold''s state'
);
SELECT is(
    eventstore.take_snapshot('Counter', 'a0000000-0000-4000-8000-000000000006'),
    10,
    'take_snapshot at a version that has a snapshot of the old fold'
);
SELECT results_eq(
    $$
        SELECT s.version, v.valid, s.state
        FROM eventstore.aggregate_snapshots AS s
        INNER JOIN pg_temp.snapshots(s.aggregate_id) AS v ON s.version = v.version
        WHERE s.aggregate_id = 'a0000000-0000-4000-8000-000000000006'
    $$,
    $$
        SELECT 10, TRUE, pg_temp.reference('a0000000-0000-4000-8000-000000000006', 10, '{"types": [], "sum": 0}', 10)
    $$,
    'the new snapshot replaced the old fold''s row at that version'
);

SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Counter', 'test_folds.tenfold(jsonb, eventstore.domain_events)', '{"types": ["v3"], "sum": 1000}', 5
        )
    $$,
    're-register Counter with the same fold and another initial state'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Counter', 'a0000000-0000-4000-8000-000000000001')$$,
    $$
        SELECT pg_temp.reference('a0000000-0000-4000-8000-000000000001', 15, '{"types": ["v3"], "sum": 1000}', 10), 15
    $$,
    'load_aggregate after a new initial state equals a fold from scratch'
);
SELECT is(
    eventstore.take_snapshot('Counter', 'a0000000-0000-4000-8000-000000000001'),
    15,
    'setup: a snapshot at 15 made by the current definition of the fold'
);

-- A fold redefined in place, without re-registering, is a new fold too.
CREATE OR REPLACE FUNCTION test_folds.tenfold(p_state jsonb, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT p_state || jsonb_build_object(
        'types', (p_state -> 'types') || to_jsonb(p_event.event_type),
        'sum', (p_state ->> 'sum')::integer + 100 * coalesce((p_event.payload ->> 'n')::integer, 0)
    );
$$;
SELECT is(
    pg_temp.append_singles('Counter', 'a0000000-0000-4000-8000-000000000001', 5),
    20,
    'setup: five more single appends, to version 20, after the fold was redefined'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Counter', 'a0000000-0000-4000-8000-000000000001')$$,
    $$
        SELECT pg_temp.reference('a0000000-0000-4000-8000-000000000001', 20, '{"types": ["v3"], "sum": 1000}', 100), 20
    $$,
    'a fold redefined by CREATE OR REPLACE does not use the snapshots of its old definition'
);

-- A failing fold does not fail the append that would snapshot.
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Fragile', 'test_folds.fragile(jsonb, eventstore.domain_events)', '{}', 2
        )
    $$,
    'setup: type Fragile, a snapshot every 2 versions'
);
-- The WARNING about the failed snapshot is expected.
SET LOCAL client_min_messages = error;
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Fragile', 'a0000000-0000-4000-8000-000000000007', -1,
            '[{"event_type": "Ok", "payload": {}}, {"event_type": "Ok", "payload": {}},
              {"event_type": "Boom", "payload": {}}]'
        )
    $$,
    'an append whose snapshot fails in the fold succeeds'
);
SELECT is(
    (
        SELECT version
        FROM eventstore.streams
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000007'
    ),
    2,
    'the stream moved to version 2'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Fragile', 'a0000000-0000-4000-8000-000000000008', -1,
            '[{"event_type": "Ok", "payload": {}}, {"event_type": "Ok", "payload": {}},
              {"event_type": "Null", "payload": {}}]'
        )
    $$,
    'an append whose snapshot fails because the fold returns NULL succeeds'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Fragile', 'a0000000-0000-4000-8000-000000000007', 2,
            '[{"event_type": "Ok", "payload": {}}, {"event_type": "Ok", "payload": {}}]'
        )
    $$,
    'a later append past the next multiple succeeds as well'
);
SELECT results_eq(
    $$
        SELECT aggregate_id, count(*)
        FROM eventstore.domain_events
        WHERE aggregate_id IN ('a0000000-0000-4000-8000-000000000007', 'a0000000-0000-4000-8000-000000000008')
        GROUP BY aggregate_id
        ORDER BY aggregate_id
    $$,
    $$
        VALUES
        ('a0000000-0000-4000-8000-000000000007'::uuid, 5::bigint),
        ('a0000000-0000-4000-8000-000000000008'::uuid, 3::bigint)
    $$,
    'every event of those appends is stored'
);
SET LOCAL client_min_messages = warning;
SELECT is_empty(
    $$
        SELECT *
        FROM eventstore.aggregate_snapshots
        WHERE aggregate_id IN ('a0000000-0000-4000-8000-000000000007', 'a0000000-0000-4000-8000-000000000008')
    $$,
    'no snapshot is stored when the fold fails'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.load_aggregate('Fragile', 'a0000000-0000-4000-8000-000000000007')$$,
    '22012', NULL, 'loading that aggregate raises the fold''s own error'
);
SELECT throws_ok(
    $$SELECT eventstore.take_snapshot('Fragile', 'a0000000-0000-4000-8000-000000000007')$$,
    '22012', NULL, 'take_snapshot raises the fold''s error instead of hiding it'
);

-- take_snapshot
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Manual', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"types": [], "sum": 0}', 0
        );
        SELECT eventstore.append_events('Manual', 'a0000000-0000-4000-8000-000000000009', -1, pg_temp.batch(3));
    $$,
    'setup: a Manual aggregate at version 2, no automatic snapshots'
);
SELECT is(
    eventstore.take_snapshot('Manual', 'a0000000-0000-4000-8000-000000000009'),
    2,
    'take_snapshot returns the version it snapshotted'
);
SELECT is(
    eventstore.take_snapshot('Manual', 'a0000000-0000-4000-8000-000000000009'),
    2,
    'take_snapshot again returns the same version'
);
SELECT results_eq(
    $$
        SELECT s.version, v.valid, s.state
        FROM eventstore.aggregate_snapshots AS s
        INNER JOIN pg_temp.snapshots(s.aggregate_id) AS v ON s.version = v.version
        WHERE s.aggregate_id = 'a0000000-0000-4000-8000-000000000009'
    $$,
    $$
        SELECT 2, TRUE, pg_temp.reference('a0000000-0000-4000-8000-000000000009', 2, '{"types": [], "sum": 0}')
    $$,
    'take_snapshot stores one valid snapshot of the current state'
);
SELECT throws_ok(
    $$SELECT eventstore.take_snapshot('Unregistered', 'a0000000-0000-4000-8000-000000000005')$$,
    'ES003', NULL, 'take_snapshot of an unregistered type'
);
SELECT throws_ok(
    $$SELECT eventstore.take_snapshot(NULL, 'a0000000-0000-4000-8000-000000000009')$$,
    'ES002', NULL, 'take_snapshot with a NULL type'
);
SELECT throws_ok(
    $$SELECT eventstore.take_snapshot('Manual', NULL)$$,
    'ES002', NULL, 'take_snapshot with a NULL aggregate id'
);
SELECT throws_ok(
    $$SELECT eventstore.take_snapshot('Manual', 'a0000000-0000-4000-8000-000000000099')$$,
    'ES002', NULL, 'take_snapshot of an unknown aggregate'
);
SELECT throws_ok(
    $$SELECT eventstore.take_snapshot('Manual', 'a0000000-0000-4000-8000-000000000001')$$,
    'ES002', NULL, 'take_snapshot of an aggregate of another type'
);

-- prune_snapshots. Prunable aggregate P: a snapshot at 1 of an old initial
-- state, valid ones at 2, 3 and 4; aggregate Q: valid ones at 0 and 1; and a
-- snapshot of a type that is not registered.
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Prunable', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"types": [], "sum": 0}', 0
        );
        SELECT eventstore.append_events('Prunable', 'a0000000-0000-4000-8000-00000000000a', -1, pg_temp.batch(2));
        SELECT eventstore.take_snapshot('Prunable', 'a0000000-0000-4000-8000-00000000000a');
        SELECT eventstore.register_aggregate_type(
            'Prunable', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"types": ["new"], "sum": 0}', 0
        );
        SELECT eventstore.append_events('Prunable', 'a0000000-0000-4000-8000-00000000000a', 1, pg_temp.batch(1));
        SELECT eventstore.take_snapshot('Prunable', 'a0000000-0000-4000-8000-00000000000a');
        SELECT eventstore.append_events('Prunable', 'a0000000-0000-4000-8000-00000000000a', 2, pg_temp.batch(1));
        SELECT eventstore.take_snapshot('Prunable', 'a0000000-0000-4000-8000-00000000000a');
        SELECT eventstore.append_events('Prunable', 'a0000000-0000-4000-8000-00000000000a', 3, pg_temp.batch(1));
        SELECT eventstore.take_snapshot('Prunable', 'a0000000-0000-4000-8000-00000000000a');
        SELECT eventstore.append_events('Prunable', 'a0000000-0000-4000-8000-00000000000b', -1, pg_temp.batch(1));
        SELECT eventstore.take_snapshot('Prunable', 'a0000000-0000-4000-8000-00000000000b');
        SELECT eventstore.append_events('Prunable', 'a0000000-0000-4000-8000-00000000000b', 0, pg_temp.batch(1));
        SELECT eventstore.take_snapshot('Prunable', 'a0000000-0000-4000-8000-00000000000b');
        INSERT INTO eventstore.aggregate_snapshots (aggregate_type, aggregate_id, version, state, fold_identity)
        VALUES ('Gone', 'a0000000-0000-4000-8000-00000000000c', 0, '{}', 'a fold that was never registered');
    $$,
    'setup: snapshots to prune'
);
SELECT results_eq(
    $$
        SELECT version, valid
        FROM pg_temp.snapshots('a0000000-0000-4000-8000-00000000000a')
    $$,
    $$VALUES (1, FALSE), (2, TRUE), (3, TRUE), (4, TRUE)$$,
    'setup: P has one invalid and three valid snapshots'
);
SELECT is(
    eventstore.prune_snapshots('Prunable', 10),
    1::bigint,
    'prune_snapshots deletes invalid snapshots however many are kept'
);
SELECT is(
    eventstore.prune_snapshots('Prunable', 2),
    1::bigint,
    'prune_snapshots keeps the latest p_keep valid snapshots per aggregate'
);
SELECT results_eq(
    $$
        SELECT aggregate_id, version
        FROM eventstore.aggregate_snapshots
        WHERE aggregate_type IN ('Prunable', 'Gone')
        ORDER BY aggregate_id, version
    $$,
    $$
        VALUES
        ('a0000000-0000-4000-8000-00000000000a'::uuid, 3),
        ('a0000000-0000-4000-8000-00000000000a'::uuid, 4),
        ('a0000000-0000-4000-8000-00000000000b'::uuid, 0),
        ('a0000000-0000-4000-8000-00000000000b'::uuid, 1),
        ('a0000000-0000-4000-8000-00000000000c'::uuid, 0)
    $$,
    'the latest two of P and both of Q remain; other types are untouched'
);
SELECT is(
    eventstore.prune_snapshots('Prunable'),
    2::bigint,
    'prune_snapshots keeps one per aggregate by default'
);
SELECT results_eq(
    $$
        SELECT aggregate_id, version
        FROM eventstore.aggregate_snapshots
        WHERE aggregate_type = 'Prunable'
        ORDER BY aggregate_id
    $$,
    $$
        VALUES
        ('a0000000-0000-4000-8000-00000000000a'::uuid, 4),
        ('a0000000-0000-4000-8000-00000000000b'::uuid, 1)
    $$,
    'the latest snapshot of each aggregate remains'
);
SELECT is(
    eventstore.prune_snapshots('Prunable', 0),
    2::bigint,
    'prune_snapshots with p_keep 0 deletes every snapshot of the type'
);
SELECT lives_ok(
    'SELECT eventstore.prune_snapshots(NULL)',
    'prune_snapshots of all types'
);
SELECT is_empty(
    $$
        SELECT s.aggregate_type, s.aggregate_id, s.version
        FROM eventstore.aggregate_snapshots AS s
        LEFT JOIN eventstore.aggregate_types AS t ON s.aggregate_type = t.aggregate_type
        WHERE s.fold_identity IS DISTINCT FROM eventstore._fold_identity(t.fold, t.initial_state)
    $$,
    'after pruning all types no invalid snapshot or snapshot of an unregistered type remains'
);
SELECT is_empty(
    $$
        SELECT aggregate_id
        FROM eventstore.aggregate_snapshots
        GROUP BY aggregate_id
        HAVING count(*) > 1
    $$,
    'after pruning all types at most one snapshot per aggregate remains'
);
SELECT throws_ok(
    $$SELECT eventstore.prune_snapshots('Prunable', -1)$$,
    'ES002', NULL, 'prune_snapshots with a negative p_keep'
);
SELECT throws_ok(
    $$SELECT eventstore.prune_snapshots('Prunable', NULL)$$,
    'ES002', NULL, 'prune_snapshots with a NULL p_keep'
);
SELECT throws_ok(
    $$SELECT eventstore.prune_snapshots('Unregistered')$$,
    'ES003', NULL, 'prune_snapshots of an unregistered type'
);

SELECT * FROM finish();
ROLLBACK;
