-- Aggregate types: register_aggregate_type validates the fold and generates
-- a step function and an aggregate around it; load_aggregate folds the
-- latest valid snapshot plus the events after it.
BEGIN;
-- Re-registration NOTICEs are not what this file is about.
SET LOCAL client_min_messages = warning;
SELECT plan(60);

-- Folds for the tests, in a schema of their own (rolled back with the rest).
CREATE SCHEMA test_folds;

-- The test fold: the event types in version order and the sum of payload.n,
-- so a state shows exactly which events it has seen and where it started.
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

-- Another fold of the same signature: counts events only.
CREATE FUNCTION test_folds.counter(p_state jsonb, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT jsonb_build_object('count', coalesce((p_state ->> 'count')::integer, 0) + 1, 'last', p_event.event_type);
$$;

-- A fold that returns NULL for a 'Poison' event.
CREATE FUNCTION test_folds.null_on_poison(p_state jsonb, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE WHEN p_event.event_type = 'Poison' THEN NULL ELSE p_state END;
$$;

-- Functions that are not folds.
CREATE FUNCTION test_folds.json_state(p_state json, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE sql
AS $$ SELECT p_state::jsonb $$;

CREATE FUNCTION test_folds.swapped(p_event eventstore.domain_events, p_state jsonb)
RETURNS jsonb
LANGUAGE sql
AS $$ SELECT p_state $$;

CREATE FUNCTION test_folds.three_args(p_state jsonb, p_event eventstore.domain_events, p_extra integer)
RETURNS jsonb
LANGUAGE sql
AS $$ SELECT p_state $$;

CREATE FUNCTION test_folds.json_result(p_state jsonb, p_event eventstore.domain_events)
RETURNS json
LANGUAGE sql
AS $$ SELECT p_state::json $$;

CREATE FUNCTION test_folds.set_returning(p_state jsonb, p_event eventstore.domain_events)
RETURNS SETOF jsonb
LANGUAGE sql
AS $$ SELECT p_state $$;

CREATE PROCEDURE test_folds.a_procedure(p_state jsonb, p_event eventstore.domain_events)
LANGUAGE sql
AS $$ SELECT p_state $$;

-- A schema and fold whose names need quoting in the generated DDL.
CREATE SCHEMA "TestFolds";
CREATE FUNCTION "TestFolds"."TallyFold"(p_state jsonb, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$ SELECT test_folds.tally(p_state, p_event) $$;

-- register_aggregate_type: a valid registration.
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Tally', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"types": [], "sum": 0}', 0
        )
    $$,
    'register_aggregate_type registers a fold'
);
SELECT results_eq(
    $$
        SELECT fold, initial_state, snapshot_every, fold_aggregate
        FROM eventstore.aggregate_types
        WHERE aggregate_type = 'Tally'
    $$,
    $$
        VALUES (
            'test_folds.tally(jsonb, eventstore.domain_events)'::regprocedure,
            '{"types": [], "sum": 0}'::jsonb,
            0,
            'fold_events_' || md5('Tally')
        )
    $$,
    'the registry holds the fold, initial state, snapshot interval and generated aggregate'
);
SELECT has_function(
    'eventstore', 'fold_step_' || md5('Tally'), ARRAY['jsonb', 'jsonb', 'eventstore.domain_events'],
    'registration generates the step function eventstore.fold_step_<md5(type)>'
);
SELECT is(
    (
        SELECT p.prokind::text
        FROM pg_catalog.pg_proc AS p
        WHERE p.oid = ('eventstore.fold_events_' || md5('Tally') || '(jsonb, eventstore.domain_events)')::regprocedure
    ),
    'a',
    'registration generates the aggregate eventstore.fold_events_<md5(type)>'
);
SELECT is_empty(
    $$
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND p.proname IN ('fold_step_' || md5('Tally'), 'fold_events_' || md5('Tally'))
          AND pg_catalog.obj_description(p.oid, 'pg_proc') NOT LIKE '%aggregate type Tally%'
    $$,
    'the generated functions carry a comment naming their aggregate type'
);
SELECT lives_ok(
    $$SELECT eventstore.register_aggregate_type('Defaulted', 'test_folds.counter(jsonb, eventstore.domain_events)')$$,
    'register_aggregate_type with the default initial state and snapshot interval'
);
SELECT results_eq(
    $$SELECT initial_state, snapshot_every FROM eventstore.aggregate_types WHERE aggregate_type = 'Defaulted'$$,
    $$VALUES ('{}'::jsonb, 50)$$,
    'the defaults are initial state {} and a snapshot every 50 versions'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            repeat('T', 255), 'test_folds.counter(jsonb, eventstore.domain_events)', '{}', 0
        )
    $$,
    'a type name of 255 characters is accepted'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Quoted', '"TestFolds"."TallyFold"(jsonb, eventstore.domain_events)', '{"types": [], "sum": 0}', 0
        )
    $$,
    'a fold whose schema and name need quoting can be registered'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'it''s "odd"; --', 'test_folds.counter(jsonb, eventstore.domain_events)', '{}', 0
        )
    $$,
    'any type name can be registered: the generated names are md5 based'
);

-- ES002: bad arguments.
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type(NULL, 'test_folds.tally(jsonb, eventstore.domain_events)')$$,
    'ES002', NULL, 'NULL aggregate type'
);
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('', 'test_folds.tally(jsonb, eventstore.domain_events)')$$,
    'ES002', NULL, 'empty aggregate type'
);
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('  ', 'test_folds.tally(jsonb, eventstore.domain_events)')$$,
    'ES002', NULL, 'blank aggregate type'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_aggregate_type(repeat('T', 256), 'test_folds.tally(jsonb, eventstore.domain_events)')
    $$,
    'ES002', NULL, 'aggregate type longer than 255 characters'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_aggregate_type('Bad', 'test_folds.tally(jsonb, eventstore.domain_events)', NULL)
    $$,
    'ES002', NULL, 'NULL initial state'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_aggregate_type('Bad', 'test_folds.tally(jsonb, eventstore.domain_events)', '{}', NULL)
    $$,
    'ES002', NULL, 'NULL snapshot interval'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_aggregate_type('Bad', 'test_folds.tally(jsonb, eventstore.domain_events)', '{}', -1)
    $$,
    'ES002', NULL, 'negative snapshot interval'
);
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('Bad', NULL)$$,
    'ES002', NULL, 'NULL fold'
);
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('Bad', 'test_folds.json_state(json, eventstore.domain_events)')$$,
    'ES002', NULL, 'a fold taking json instead of jsonb'
);
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('Bad', 'test_folds.swapped(eventstore.domain_events, jsonb)')$$,
    'ES002', NULL, 'a fold with its arguments swapped'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Bad', 'test_folds.three_args(jsonb, eventstore.domain_events, integer)'
        )
    $$,
    'ES002', NULL, 'a fold with a third argument'
);
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('Bad', 'test_folds.json_result(jsonb, eventstore.domain_events)')$$,
    'ES002', NULL, 'a fold returning json instead of jsonb'
);
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('Bad', 'test_folds.set_returning(jsonb, eventstore.domain_events)')$$,
    'ES002', NULL, 'a set-returning fold'
);
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('Bad', 'test_folds.a_procedure(jsonb, eventstore.domain_events)')$$,
    'ES002', NULL, 'a procedure as fold'
);
SELECT throws_ok(
    format(
        $$SELECT eventstore.register_aggregate_type('Bad', %L)$$,
        'eventstore.fold_events_' || md5('Tally') || '(jsonb, eventstore.domain_events)'
    ),
    'ES002', NULL, 'an aggregate function as fold'
);
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('Bad', 'test_folds.missing(jsonb, eventstore.domain_events)')$$,
    '42883', NULL, 'a fold that does not exist is refused by the regprocedure cast'
);
SELECT is(
    (
        SELECT count(*)
        FROM eventstore.aggregate_types
        WHERE aggregate_type = 'Bad'
    ),
    0::bigint,
    'no refused registration is stored'
);

-- Re-registration replaces the fold, initial state and interval, reusing the
-- generated names. The NOTICE about old snapshots is not an error.
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Defaulted', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"types": ["init"], "sum": 0}', 7
        )
    $$,
    're-registering a type with another fold succeeds'
);
SELECT results_eq(
    $$
        SELECT fold, initial_state, snapshot_every, fold_aggregate
        FROM eventstore.aggregate_types
        WHERE aggregate_type = 'Defaulted'
    $$,
    $$
        VALUES (
            'test_folds.tally(jsonb, eventstore.domain_events)'::regprocedure,
            '{"types": ["init"], "sum": 0}'::jsonb,
            7,
            'fold_events_' || md5('Defaulted')
        )
    $$,
    're-registration replaces the registry row'
);
SELECT is(
    (
        SELECT count(*)
        FROM pg_catalog.pg_proc AS p
        WHERE
            p.pronamespace = 'eventstore'::regnamespace
            AND p.proname IN ('fold_step_' || md5('Defaulted'), 'fold_events_' || md5('Defaulted'))
    ),
    2::bigint,
    're-registration replaces the generated step function and aggregate'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Defaulted', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"types": ["init"], "sum": 0}', 7
        )
    $$,
    're-registering the same fold again succeeds'
);

-- load_aggregate: errors.
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Tally', 'a0000000-0000-4000-8000-000000000001', -1,
            '[{"event_type": "A", "payload": {"n": 1}}, {"event_type": "B", "payload": {"n": 2}},
              {"event_type": "C", "payload": {"n": 3}}, {"event_type": "D", "payload": {"n": 4}}]'
        )
    $$,
    'setup: a Tally aggregate at version 3'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Defaulted', 'a0000000-0000-4000-8000-000000000002', -1, '[{"event_type": "X", "payload": {"n": 9}}]'
        )
    $$,
    'setup: an aggregate of type Defaulted'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.load_aggregate('Unregistered', 'a0000000-0000-4000-8000-000000000001')$$,
    'ES003', NULL, 'load_aggregate of an unregistered type'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.load_aggregate(NULL, 'a0000000-0000-4000-8000-000000000001')$$,
    'ES002', NULL, 'load_aggregate with a NULL type'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.load_aggregate('Tally', NULL)$$,
    'ES002', NULL, 'load_aggregate with a NULL aggregate id'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000002')$$,
    'ES002', NULL, 'load_aggregate of an aggregate of another type'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000099')$$,
    'load_aggregate of an unknown aggregate returns no row'
);

-- load_aggregate: the folded state.
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000001')$$,
    $$VALUES ('{"types": ["A", "B", "C", "D"], "sum": 10}'::jsonb, 3)$$,
    'load_aggregate folds every event from the initial state and returns the current version'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Defaulted', 'a0000000-0000-4000-8000-000000000002')$$,
    $$VALUES ('{"types": ["init", "X"], "sum": 9}'::jsonb, 0)$$,
    'load_aggregate uses the fold and initial state of the latest registration'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Quoted', 'a0000000-0000-4000-8000-000000000003', -1, '[{"event_type": "Q", "payload": {"n": 5}}]'
        )
    $$,
    'setup: an aggregate of type Quoted'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Quoted', 'a0000000-0000-4000-8000-000000000003')$$,
    $$VALUES ('{"types": ["Q"], "sum": 5}'::jsonb, 0)$$,
    'the generated step calls a fold whose schema and name need quoting'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'it''s "odd"; --', 'a0000000-0000-4000-8000-000000000004', -1, '[{"event_type": "O", "payload": {}}]'
        )
    $$,
    'setup: an aggregate of the oddly named type'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('it''s "odd"; --', 'a0000000-0000-4000-8000-000000000004')$$,
    $$VALUES ('{"count": 1, "last": "O"}'::jsonb, 0)$$,
    'an oddly named type loads like any other'
);

-- load_aggregate starts from the latest valid snapshot. Snapshots planted by
-- the owner with states no fold would compute show where the fold started.
INSERT INTO eventstore.aggregate_snapshots (aggregate_type, aggregate_id, version, state, fold_identity)
SELECT
    'Tally' AS aggregate_type,
    'a0000000-0000-4000-8000-000000000001'::uuid AS aggregate_id,
    planted.version,
    planted.state,
    coalesce(planted.fold_identity, eventstore._fold_identity(t.fold, t.initial_state)) AS fold_identity
FROM eventstore.aggregate_types AS t
CROSS JOIN (
    VALUES
    (0, '{"types": ["older"], "sum": 50}'::jsonb, NULL),
    (1, '{"types": ["planted"], "sum": 100}'::jsonb, NULL),
    (2, '{"types": ["stale"], "sum": -1000}'::jsonb, 'made by another fold')
) AS planted (version, state, fold_identity)
WHERE t.aggregate_type = 'Tally';

SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000001')$$,
    $$VALUES ('{"types": ["planted", "C", "D"], "sum": 107}'::jsonb, 3)$$,
    'load_aggregate starts from the latest valid snapshot and folds only the events after it'
);
SELECT ok(
    (
        SELECT state ->> 'types' NOT LIKE '%stale%'
        FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000001')
    ),
    'a later snapshot made by another fold is not used'
);
INSERT INTO eventstore.aggregate_snapshots (aggregate_type, aggregate_id, version, state, fold_identity)
SELECT
    'Tally' AS aggregate_type,
    'a0000000-0000-4000-8000-000000000001'::uuid AS aggregate_id,
    3 AS version,
    '{"types": ["at-head"], "sum": 0}'::jsonb AS state,
    eventstore._fold_identity(t.fold, t.initial_state) AS fold_identity
FROM eventstore.aggregate_types AS t
WHERE t.aggregate_type = 'Tally';
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000001')$$,
    $$VALUES ('{"types": ["at-head"], "sum": 0}'::jsonb, 3)$$,
    'a valid snapshot at the current version is returned as it is'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Tally', 'a0000000-0000-4000-8000-000000000001', 3, '[{"event_type": "E", "payload": {"n": 5}}]'
        )
    $$,
    'setup: one more event after the snapshot at version 3'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000001')$$,
    $$VALUES ('{"types": ["at-head", "E"], "sum": 5}'::jsonb, 4)$$,
    'events appended after a snapshot are folded onto it'
);
-- A valid snapshot of another aggregate is not used.
SELECT results_eq(
    $$SELECT state FROM eventstore.load_aggregate('Quoted', 'a0000000-0000-4000-8000-000000000003')$$,
    $$VALUES ('{"types": ["Q"], "sum": 5}'::jsonb)$$,
    'snapshots of one aggregate do not leak into another'
);
-- Changing the initial state makes the snapshots invalid as well.
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Tally', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"types": ["new"], "sum": 0}', 0
        )
    $$,
    're-registering Tally with another initial state'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000001')$$,
    $$VALUES ('{"types": ["new", "A", "B", "C", "D", "E"], "sum": 15}'::jsonb, 4)$$,
    'after a new initial state no earlier snapshot is used'
);

-- A fold that returns NULL.
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Nullish', 'test_folds.null_on_poison(jsonb, eventstore.domain_events)', '{}', 0
        )
    $$,
    'setup: a type whose fold returns NULL for Poison events'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Nullish', 'a0000000-0000-4000-8000-000000000005', -1,
            '[{"event_type": "Fine", "payload": {}}, {"event_type": "Poison", "payload": {}}]'
        )
    $$,
    'setup: an aggregate with a Poison event'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.load_aggregate('Nullish', 'a0000000-0000-4000-8000-000000000005')$$,
    'ES002', NULL, 'load_aggregate raises ES002 when the fold returns NULL'
);

-- The generated functions run only inside the event store's functions.
SELECT is_empty(
    $$
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND (p.proname LIKE 'fold\_step\_%' OR p.proname LIKE 'fold\_events\_%')
          AND (
              p.proacl IS NULL
              OR EXISTS (SELECT FROM aclexplode(p.proacl) AS a WHERE a.grantee = 0)
              OR has_function_privilege('eventstore_admin', p.oid, 'EXECUTE')
          )
    $$,
    'no generated function is executable by PUBLIC or the roles'
);
SET LOCAL ROLE eventstore_reader;
SELECT throws_ok(
    format(
        $$SELECT eventstore.%I('{}', '{}', d) FROM eventstore.domain_events AS d$$,
        'fold_step_' || md5('Tally')
    ),
    '42501', NULL, 'eventstore_reader cannot call a generated step function'
);
SELECT throws_ok(
    format(
        $$SELECT eventstore.%I('{}', d ORDER BY d.event_version) FROM eventstore.domain_events AS d$$,
        'fold_events_' || md5('Tally')
    ),
    '42501', NULL, 'eventstore_reader cannot call a generated aggregate'
);
SELECT results_eq(
    $$SELECT version FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000001')$$,
    ARRAY[4],
    'eventstore_reader loads aggregates through load_aggregate'
);
RESET ROLE;
SET LOCAL ROLE eventstore_admin;
SELECT throws_ok(
    format(
        $$SELECT eventstore.%I('{}', '{}', d) FROM eventstore.domain_events AS d$$,
        'fold_step_' || md5('Tally')
    ),
    '42501', NULL, 'eventstore_admin cannot call a generated step function either'
);
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
