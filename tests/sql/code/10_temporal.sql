-- Temporal queries: an aggregate's state at a version or a moment, its
-- history with the state after each event, and event counts per bucket.
BEGIN;
SET LOCAL client_min_messages = warning;
-- event_counts buckets by the session's time zone.
SET LOCAL TIME ZONE 'UTC';
SELECT plan(45);

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

-- The tally state of an aggregate after its first p_version + 1 events,
-- computed in plain SQL: the reference for the fold.
CREATE FUNCTION pg_temp.reference(p_id uuid, p_version integer)
RETURNS jsonb
LANGUAGE sql
AS $fn$
    SELECT jsonb_build_object(
        'types', coalesce(jsonb_agg(d.event_type ORDER BY d.event_version), '[]'),
        'sum', coalesce(sum((d.payload ->> 'n')::integer), 0)
    )
    FROM eventstore.domain_events AS d
    WHERE d.aggregate_id = p_id AND d.event_version <= p_version;
$fn$;

-- The Ledger aggregate L: four appends at four moments, versions 0 | 1 2 | 3 | 4 5 6,
-- with automatic snapshots at 2 and 6.
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Ledger', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"types": [], "sum": 0}', 2
        );
        SELECT eventstore.register_aggregate_type(
            'Other', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"types": [], "sum": 0}', 0
        );
        SELECT eventstore.append_events(
            'Ledger', 'a0000000-0000-4000-8000-000000000001', -1, '[{"event_type": "A", "payload": {"n": 1}}]'
        );
        SELECT eventstore.append_events(
            'Ledger', 'a0000000-0000-4000-8000-000000000001', 0,
            '[{"event_type": "B", "payload": {"n": 2}}, {"event_type": "C", "payload": {"n": 3}}]'
        );
        SELECT eventstore.append_events(
            'Ledger', 'a0000000-0000-4000-8000-000000000001', 2, '[{"event_type": "D", "payload": {"n": 4}}]'
        );
        SELECT eventstore.append_events(
            'Ledger', 'a0000000-0000-4000-8000-000000000001', 3,
            '[{"event_type": "E", "payload": {"n": 5}}, {"event_type": "F", "payload": {"n": 6}},
              {"event_type": "G", "payload": {"n": 7}, "metadata": {"user": "ann"}}]'
        );
        SELECT eventstore.append_events(
            'Other', 'a0000000-0000-4000-8000-000000000002', -1, '[{"event_type": "O", "payload": {}}]'
        );
        SELECT eventstore.append_events(
            'Unregistered', 'a0000000-0000-4000-8000-000000000003', -1,
            '[{"event_type": "U1", "payload": {}}, {"event_type": "U2", "payload": {}}]'
        );
    $$,
    'setup: a Ledger aggregate at version 6 in four appends, an Other and an Unregistered aggregate'
);
SELECT results_eq(
    $$
        SELECT array_agg(event_version ORDER BY event_version)
        FROM eventstore.domain_events
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
        GROUP BY occurred_at
        ORDER BY occurred_at
    $$,
    $$VALUES (ARRAY[0]), (ARRAY[1, 2]), (ARRAY[3]), (ARRAY[4, 5, 6])$$,
    'setup: the events of one append share one occurred_at, later appends have later ones'
);
SELECT results_eq(
    $$
        SELECT version
        FROM eventstore.aggregate_snapshots
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
        ORDER BY version
    $$,
    ARRAY[2, 6],
    'setup: snapshots at versions 2 and 6'
);

-- aggregate_state_at_version
SELECT is_empty(
    $$
        SELECT g.v, s.state, s.version
        FROM generate_series(0, 6) AS g (v)
        LEFT JOIN LATERAL eventstore.aggregate_state_at_version(
            'Ledger', 'a0000000-0000-4000-8000-000000000001', g.v
        ) AS s ON TRUE
        WHERE s.state IS DISTINCT FROM pg_temp.reference('a0000000-0000-4000-8000-000000000001', g.v)
           OR s.version IS DISTINCT FROM g.v
    $$,
    'the state at each version N equals the fold of the first N + 1 events'
);
SELECT results_eq(
    $$
        SELECT state, version
        FROM eventstore.aggregate_state_at_version('Ledger', 'a0000000-0000-4000-8000-000000000001', 1)
    $$,
    $$VALUES ('{"types": ["A", "B"], "sum": 3}'::jsonb, 1)$$,
    'the state at version 1, spelled out'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.aggregate_state_at_version('Ledger', 'a0000000-0000-4000-8000-000000000001', 7)$$,
    'no row for a version after the current one'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.aggregate_state_at_version('Ledger', 'a0000000-0000-4000-8000-000000000099', 0)$$,
    'no row for an unknown aggregate'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.aggregate_state_at_version('Ledger', 'a0000000-0000-4000-8000-000000000001', -1)$$,
    'ES002', NULL, 'aggregate_state_at_version with a negative version'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.aggregate_state_at_version('Ledger', 'a0000000-0000-4000-8000-000000000001', NULL)$$,
    'ES002', NULL, 'aggregate_state_at_version with a NULL version'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.aggregate_state_at_version('Ledger', NULL, 0)$$,
    'ES002', NULL, 'aggregate_state_at_version with a NULL aggregate id'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.aggregate_state_at_version('Ledger', 'a0000000-0000-4000-8000-000000000002', 0)$$,
    'ES002', NULL, 'aggregate_state_at_version of an aggregate of another type'
);
SELECT throws_ok(
    $$
        SELECT *
        FROM eventstore.aggregate_state_at_version('Unregistered', 'a0000000-0000-4000-8000-000000000003', 0)
    $$,
    'ES003', NULL, 'aggregate_state_at_version of an unregistered type'
);

-- aggregate_state_at, at the times read back from the events.
CREATE TEMP TABLE append_times AS
SELECT
    occurred_at,
    max(event_version) AS last_version,
    row_number() OVER (ORDER BY occurred_at) AS append_number
FROM eventstore.domain_events
WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
GROUP BY occurred_at;

SELECT results_eq(
    $$
        SELECT s.version
        FROM append_times AS t
        CROSS JOIN LATERAL eventstore.aggregate_state_at(
            'Ledger', 'a0000000-0000-4000-8000-000000000001', t.occurred_at
        ) AS s
        ORDER BY t.occurred_at
    $$,
    ARRAY[0, 2, 3, 6],
    'at the time of each append the state includes all of its events'
);
SELECT is_empty(
    $$
        SELECT t.occurred_at
        FROM append_times AS t
        LEFT JOIN LATERAL eventstore.aggregate_state_at(
            'Ledger', 'a0000000-0000-4000-8000-000000000001', t.occurred_at
        ) AS s ON TRUE
        WHERE s.state IS DISTINCT FROM pg_temp.reference('a0000000-0000-4000-8000-000000000001', t.last_version)
    $$,
    'the state at the time of each append equals the fold of the events up to it'
);
SELECT results_eq(
    $$
        SELECT s.version
        FROM append_times AS t
        CROSS JOIN LATERAL eventstore.aggregate_state_at(
            'Ledger', 'a0000000-0000-4000-8000-000000000001', t.occurred_at - INTERVAL '1 microsecond'
        ) AS s
        ORDER BY t.occurred_at
    $$,
    ARRAY[0, 2, 3],
    'just before an append the state is the one after the previous append'
);
SELECT is_empty(
    $$
        SELECT *
        FROM eventstore.aggregate_state_at(
            'Ledger', 'a0000000-0000-4000-8000-000000000001',
            (SELECT t.occurred_at - INTERVAL '1 microsecond' FROM append_times AS t WHERE t.append_number = 1)
        )
    $$,
    'no row before the first event'
);
SELECT results_eq(
    $$
        SELECT state, version
        FROM eventstore.aggregate_state_at('Ledger', 'a0000000-0000-4000-8000-000000000001', 'infinity')
    $$,
    $$SELECT pg_temp.reference('a0000000-0000-4000-8000-000000000001', 6), 6$$,
    'the state at a time after the last event is the current state'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.aggregate_state_at('Ledger', 'a0000000-0000-4000-8000-000000000099', 'infinity')$$,
    'no row for an unknown aggregate'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.aggregate_state_at('Ledger', 'a0000000-0000-4000-8000-000000000001', NULL)$$,
    'ES002', NULL, 'aggregate_state_at with a NULL time'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.aggregate_state_at('Ledger', NULL, now())$$,
    'ES002', NULL, 'aggregate_state_at with a NULL aggregate id'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.aggregate_state_at('Ledger', 'a0000000-0000-4000-8000-000000000002', 'infinity')$$,
    'ES002', NULL, 'aggregate_state_at of an aggregate of another type'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.aggregate_state_at('Unregistered', 'a0000000-0000-4000-8000-000000000003', now())$$,
    'ES003', NULL, 'aggregate_state_at of an unregistered type'
);

-- aggregate_history
SELECT results_eq(
    $$
        SELECT event_version, event_type, payload, metadata, occurred_at
        FROM eventstore.aggregate_history('a0000000-0000-4000-8000-000000000001')
    $$,
    $$
        SELECT event_version, event_type, payload, metadata, occurred_at
        FROM eventstore.domain_events
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
        ORDER BY event_version
    $$,
    'aggregate_history returns every event, in version order'
);
SELECT is_empty(
    $$
        SELECT h.event_version
        FROM eventstore.aggregate_history('a0000000-0000-4000-8000-000000000001') AS h
        LEFT JOIN LATERAL eventstore.aggregate_state_at_version(
            'Ledger', 'a0000000-0000-4000-8000-000000000001', h.event_version
        ) AS s ON TRUE
        WHERE h.state_after IS DISTINCT FROM s.state
    $$,
    'each state_after equals aggregate_state_at_version of that version'
);
SELECT results_eq(
    $$
        SELECT state_after
        FROM eventstore.aggregate_history('a0000000-0000-4000-8000-000000000001')
        WHERE event_version IN (0, 6)
        ORDER BY event_version
    $$,
    $$
        VALUES
        ('{"types": ["A"], "sum": 1}'::jsonb),
        ('{"types": ["A", "B", "C", "D", "E", "F", "G"], "sum": 28}'::jsonb)
    $$,
    'state_after of the first and the last event, spelled out'
);
SELECT results_eq(
    $$
        SELECT event_version, event_type, state_after
        FROM eventstore.aggregate_history('a0000000-0000-4000-8000-000000000003')
    $$,
    $$VALUES (0, 'U1', NULL::jsonb), (1, 'U2', NULL::jsonb)$$,
    'aggregate_history of an unregistered type: the events with a NULL state_after'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.aggregate_history('a0000000-0000-4000-8000-000000000099')$$,
    'aggregate_history of an unknown aggregate is empty'
);
SELECT throws_ok(
    'SELECT * FROM eventstore.aggregate_history(NULL)',
    'ES002', NULL, 'aggregate_history with a NULL aggregate id'
);

-- The temporal functions start from a valid snapshot at or before the
-- target. A snapshot planted by the owner at version 3, with a state no fold
-- would compute, shows where the fold started.
INSERT INTO eventstore.aggregate_snapshots (aggregate_type, aggregate_id, version, state, fold_identity)
SELECT
    'Ledger' AS aggregate_type,
    'a0000000-0000-4000-8000-000000000001'::uuid AS aggregate_id,
    3 AS version,
    '{"types": ["planted"], "sum": 0}'::jsonb AS state,
    eventstore._fold_identity(t.fold, t.initial_state) AS fold_identity
FROM eventstore.aggregate_types AS t
WHERE t.aggregate_type = 'Ledger';

SELECT results_eq(
    $$
        SELECT state, version
        FROM eventstore.aggregate_state_at_version('Ledger', 'a0000000-0000-4000-8000-000000000001', 4)
    $$,
    $$VALUES ('{"types": ["planted", "E"], "sum": 5}'::jsonb, 4)$$,
    'aggregate_state_at_version folds from the latest snapshot before the target'
);
SELECT results_eq(
    $$
        SELECT state, version
        FROM eventstore.aggregate_state_at_version('Ledger', 'a0000000-0000-4000-8000-000000000001', 3)
    $$,
    $$VALUES ('{"types": ["planted"], "sum": 0}'::jsonb, 3)$$,
    'aggregate_state_at_version returns a snapshot at the target as it is'
);
SELECT results_eq(
    $$
        SELECT state, version
        FROM eventstore.aggregate_state_at_version('Ledger', 'a0000000-0000-4000-8000-000000000001', 2)
    $$,
    $$SELECT pg_temp.reference('a0000000-0000-4000-8000-000000000001', 2), 2$$,
    'aggregate_state_at_version does not use a snapshot after the target'
);
SELECT results_eq(
    $$
        SELECT s.state, s.version
        FROM append_times AS t
        CROSS JOIN LATERAL eventstore.aggregate_state_at(
            'Ledger', 'a0000000-0000-4000-8000-000000000001', t.occurred_at
        ) AS s
        WHERE t.append_number = 3
    $$,
    $$VALUES ('{"types": ["planted"], "sum": 0}'::jsonb, 3)$$,
    'aggregate_state_at uses a snapshot at or before its version too'
);
SELECT results_eq(
    $$
        SELECT state, version
        FROM eventstore.aggregate_state_at_version('Ledger', 'a0000000-0000-4000-8000-000000000001', 6)
    $$,
    $$SELECT pg_temp.reference('a0000000-0000-4000-8000-000000000001', 6), 6$$,
    'the automatic snapshot at 6 (taken before the plant) is still the one used at 6'
);

-- event_counts, over events inserted by the owner at chosen times in 2001,
-- long before the events of this test.
INSERT INTO eventstore.domain_events (
    event_id, aggregate_type, aggregate_id, event_type, event_version, payload, occurred_at, feed_key
)
VALUES
(gen_random_uuid(), 'Hist', 'a0000000-0000-4000-8000-000000000010', 'Alpha', 0, '{}', '2001-01-01 10:05+00', 1),
(gen_random_uuid(), 'Hist', 'a0000000-0000-4000-8000-000000000010', 'Alpha', 1, '{}', '2001-01-01 10:40+00', 1),
(
    gen_random_uuid(), 'Hist', 'a0000000-0000-4000-8000-000000000010', 'Beta', 2, '{}',
    '2001-01-01 10:59:59.999999+00', 1
),
(gen_random_uuid(), 'Hist', 'a0000000-0000-4000-8000-000000000010', 'Alpha', 3, '{}', '2001-01-01 11:00+00', 1),
(gen_random_uuid(), 'Hist', 'a0000000-0000-4000-8000-000000000011', 'Beta', 0, '{}', '2001-01-02 09:00+00', 1),
(gen_random_uuid(), 'Hist', 'a0000000-0000-4000-8000-000000000011', 'Beta', 1, '{}', '2001-01-02 09:30+00', 1);

SELECT results_eq(
    $$SELECT * FROM eventstore.event_counts('2001-01-01', '2001-01-03', 'day')$$,
    $$
        VALUES
        ('2001-01-02 00:00+00'::timestamptz, 'Beta', 2::bigint),
        ('2001-01-01 00:00+00'::timestamptz, 'Alpha', 3::bigint),
        ('2001-01-01 00:00+00'::timestamptz, 'Beta', 1::bigint)
    $$,
    'event_counts per day and event type, newest bucket first, larger counts first'
);
SELECT results_eq(
    $$SELECT * FROM eventstore.event_counts('2001-01-01', '2001-01-03')$$,
    $$SELECT * FROM eventstore.event_counts('2001-01-01', '2001-01-03', 'day')$$,
    'the default bucket is a day'
);
SELECT results_eq(
    $$SELECT * FROM eventstore.event_counts('2001-01-01', '2001-01-03', 'hour')$$,
    $$
        VALUES
        ('2001-01-02 09:00+00'::timestamptz, 'Beta', 2::bigint),
        ('2001-01-01 11:00+00'::timestamptz, 'Alpha', 1::bigint),
        ('2001-01-01 10:00+00'::timestamptz, 'Alpha', 2::bigint),
        ('2001-01-01 10:00+00'::timestamptz, 'Beta', 1::bigint)
    $$,
    'event_counts per hour'
);
SELECT results_eq(
    $$SELECT * FROM eventstore.event_counts('2001-01-01', '2001-02-01', 'month')$$,
    $$
        VALUES
        ('2001-01-01 00:00+00'::timestamptz, 'Alpha', 3::bigint),
        ('2001-01-01 00:00+00'::timestamptz, 'Beta', 3::bigint)
    $$,
    'equal counts in a bucket are ordered by event type'
);
SELECT results_eq(
    $$SELECT * FROM eventstore.event_counts('2001-01-01 10:05+00', '2001-01-01 11:00+00', 'hour')$$,
    $$
        VALUES
        ('2001-01-01 10:00+00'::timestamptz, 'Alpha', 2::bigint),
        ('2001-01-01 10:00+00'::timestamptz, 'Beta', 1::bigint)
    $$,
    'p_from is inclusive and p_to exclusive'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.event_counts('2001-01-03', '2001-01-04', 'day')$$,
    'event_counts of a range without events is empty'
);
SELECT results_eq(
    $$SELECT * FROM eventstore.event_counts(NULL, '2001-01-02', 'day')$$,
    $$
        VALUES
        ('2001-01-01 00:00+00'::timestamptz, 'Alpha', 3::bigint),
        ('2001-01-01 00:00+00'::timestamptz, 'Beta', 1::bigint)
    $$,
    'a NULL p_from counts from the first event'
);
SELECT is(
    (SELECT sum(event_count) FROM eventstore.event_counts('2001-01-02', NULL, 'day')),
    (
        SELECT count(*)::numeric
        FROM eventstore.domain_events
        WHERE occurred_at >= '2001-01-02'
    ),
    'a NULL p_to counts up to the last event'
);
SELECT is(
    (SELECT sum(event_count) FROM eventstore.event_counts(NULL, NULL, 'year')),
    (SELECT count(*) FROM eventstore.domain_events)::numeric,
    'NULL bounds on both sides count every event'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.event_counts(NULL, NULL, 'fortnight')$$,
    'ES002', NULL, 'event_counts with an unknown bucket'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.event_counts(NULL, NULL, 'day''; SELECT 1; --')$$,
    'ES002', NULL, 'event_counts with a bucket that is not a plain unit'
);
SELECT throws_ok(
    'SELECT * FROM eventstore.event_counts(NULL, NULL, NULL)',
    'ES002', NULL, 'event_counts with a NULL bucket'
);

SELECT * FROM finish();
ROLLBACK;
