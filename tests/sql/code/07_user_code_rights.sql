-- User code (folds, projection handlers and reset functions) runs with the
-- rights of its owner, never with the event store owner's, although the
-- event store's SECURITY DEFINER functions call it.
--
-- mallory, a member of eventstore_admin but no superuser, owns a schema with
-- a fold, a handler and a reset function that try what only the event store
-- owner or a superuser may: make mallory a superuser, or INSERT into
-- domain_events directly. Loads, appends (inline projections, snapshots),
-- run_projection and rebuild_projection must fail with 42501 and leave both
-- mallory and the table as they were, also after mallory altered the
-- generated wrappers she owns (SECURITY INVOKER, search_path) or registered
-- a fold whose name tries to break out of the generated code.
BEGIN;
-- The failed snapshot and the failing projections raise WARNINGs by design.
SET LOCAL client_min_messages = error;
SELECT plan(64);

CREATE ROLE mallory NOLOGIN;
GRANT eventstore_admin TO mallory;
CREATE SCHEMA mallory AUTHORIZATION mallory;

-- The generated wrappers of mallory's functions, by what they wrap.
CREATE TEMP VIEW wrappers AS
SELECT
    w.kind,
    p.oid::regprocedure AS wrapper_proc,
    p.proowner::regrole::text AS owned_by,
    p.prosecdef,
    p.proacl
FROM (
    VALUES
    ('fold step', 'fold_step_' || md5('Evil')),
    ('inline handler', 'projection_handler_' || md5('evil_inline')),
    ('inline reset', 'projection_reset_' || md5('evil_inline')),
    ('async handler', 'projection_handler_' || md5('evil_async')),
    ('async reset', 'projection_reset_' || md5('evil_async'))
) AS w (kind, proname)
LEFT JOIN pg_catalog.pg_proc AS p ON p.pronamespace = 'eventstore'::regnamespace AND w.proname = p.proname;
GRANT SELECT ON wrappers TO mallory;

CREATE FUNCTION pg_temp.mallory_is_superuser()
RETURNS boolean
LANGUAGE sql
STABLE
AS $fn$
    SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = 'mallory';
$fn$;

CREATE FUNCTION pg_temp.forged_events()
RETURNS bigint
LANGUAGE sql
STABLE
AS $fn$
    SELECT count(*) FROM eventstore.domain_events AS d WHERE d.event_type = 'Forged';
$fn$;

SET LOCAL ROLE mallory;

-- What mallory's code did, and as whom.
CREATE TABLE mallory.log (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    what text NOT NULL,
    ran_as name NOT NULL DEFAULT current_user
);
-- Whether the reset function attacks.
CREATE TABLE mallory.switch (armed boolean NOT NULL);
INSERT INTO mallory.switch VALUES (FALSE);
-- The witness: advanced whenever mallory's code runs as another role. Unlike
-- a table, a sequence keeps the trace when the statement fails afterwards:
-- code that ran as the event store owner did harm even if rolled back
-- (COPY ... TO PROGRAM, say).
CREATE SEQUENCE mallory.foreign_runs;

-- Every function of mallory's calls this. The attack: '...Escalate' events
-- try to make mallory a superuser, '...Forge' events to write an event past
-- append_events. (Her own operator <> below must not be used here.)
CREATE FUNCTION mallory.attack(p_event_type text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF CURRENT_USER OPERATOR(pg_catalog.<>) 'mallory' THEN
        PERFORM nextval('mallory.foreign_runs');
    END IF;
    IF p_event_type LIKE '%Escalate' THEN
        ALTER ROLE mallory SUPERUSER;
    ELSIF p_event_type LIKE '%Forge' THEN
        INSERT INTO eventstore.domain_events (
            event_id, aggregate_type, aggregate_id, event_type, event_version, payload, feed_key
        )
        VALUES (gen_random_uuid(), 'Evil', gen_random_uuid(), 'Forged', 0, '{}', 1);
    END IF;
END;
$$;

CREATE FUNCTION mallory.fold(p_state jsonb, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM mallory.attack(p_event.event_type);
    RETURN p_state || jsonb_build_object('ran_as', current_user);
END;
$$;

CREATE FUNCTION mallory.handler(p_event eventstore.domain_events)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO mallory.log (what) VALUES ('handler ' || p_event.event_type);
    PERFORM mallory.attack(p_event.event_type);
END;
$$;

CREATE FUNCTION mallory.reset()
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO mallory.log (what) VALUES ('reset');
    PERFORM mallory.attack(CASE WHEN (SELECT s.armed FROM mallory.switch AS s) THEN 'ResetEscalate' ELSE 'Reset' END);
END;
$$;

SELECT lives_ok(
    $$SELECT eventstore.register_aggregate_type('Evil', 'mallory.fold(jsonb, eventstore.domain_events)', '{}', 1)$$,
    'mallory registers a fold (a snapshot every version)'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_projection(
            'evil_inline', 'mallory.handler(eventstore.domain_events)', ARRAY['Ping', 'HandlerEscalate', 'HandlerForge'],
            'inline', 'mallory.reset()'
        )
    $$,
    'mallory registers an inline projection'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_projection(
            'evil_async', 'mallory.handler(eventstore.domain_events)', ARRAY['AsyncEscalate', 'AsyncForge'],
            'async', 'mallory.reset()'
        )
    $$,
    'mallory registers an async projection'
);
SELECT throws_ok(
    'ALTER ROLE mallory SUPERUSER',
    '42501', NULL, 'mallory cannot make herself a superuser'
);
SELECT throws_ok(
    format(
        'CREATE OR REPLACE FUNCTION %s RETURNS void LANGUAGE sql AS $body$SELECT$body$',
        (
            SELECT w.wrapper_proc
            FROM wrappers AS w
            WHERE w.kind = 'inline handler'
        )
    ),
    '42501', NULL, 'mallory cannot replace the body of a wrapper she owns (no CREATE on schema eventstore)'
);
RESET ROLE;

-- The generated wrappers.
SELECT results_eq(
    'SELECT kind, owned_by, prosecdef FROM wrappers ORDER BY kind',
    $$
        VALUES
        ('async handler', 'mallory', TRUE),
        ('async reset', 'mallory', TRUE),
        ('fold step', 'mallory', TRUE),
        ('inline handler', 'mallory', TRUE),
        ('inline reset', 'mallory', TRUE)
    $$,
    'the generated wrappers are SECURITY DEFINER and owned by mallory, the owner of the functions they call'
);
SELECT is_empty(
    $$
        SELECT w.kind, a.grantee::regrole
        FROM wrappers AS w
        LEFT JOIN LATERAL aclexplode(w.proacl) AS a ON TRUE
        WHERE w.proacl IS NULL
           OR a.grantee NOT IN ('mallory'::regrole, (SELECT n.nspowner FROM pg_catalog.pg_namespace AS n WHERE n.nspname = 'eventstore'))
    $$,
    'only mallory and the event store owner may execute the wrappers: not PUBLIC, nor any other role'
);
SELECT is_empty(
    $$
        SELECT w.kind, r.rolname
        FROM wrappers AS w
        CROSS JOIN (VALUES ('eventstore_reader'), ('eventstore_writer'), ('eventstore_admin')) AS r (rolname)
        WHERE has_function_privilege(r.rolname, w.wrapper_proc, 'EXECUTE')
    $$,
    'the event store roles may not execute the wrappers'
);
SELECT is(
    (
        SELECT p.proowner::regrole::text
        FROM pg_catalog.pg_proc AS p
        WHERE p.oid = ('eventstore.fold_events_' || md5('Evil') || '(jsonb, eventstore.domain_events)')::regprocedure
    ),
    (
        SELECT n.nspowner::regrole::text
        FROM pg_catalog.pg_namespace AS n
        WHERE n.nspname = 'eventstore'
    ),
    'the generated aggregate stays with the event store owner'
);

-- Harmless events: the user code runs, as mallory, whoever calls.
SET LOCAL ROLE eventstore_writer;
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Evil', 'e0000000-0000-4000-8000-000000000001', -1, '[{"event_type": "Ping", "payload": {}}]'
        )
    $$,
    'eventstore_writer appends a Ping (the inline handler runs)'
);
SELECT results_eq(
    $$SELECT state ->> 'ran_as' FROM eventstore.load_aggregate('Evil', 'e0000000-0000-4000-8000-000000000001')$$,
    ARRAY['mallory'],
    'load_aggregate by eventstore_writer: the fold runs as mallory'
);
RESET ROLE;
SELECT results_eq(
    'SELECT what, ran_as FROM mallory.log ORDER BY seq',
    $$VALUES ('handler Ping', 'mallory'::name)$$,
    'the inline handler ran as mallory'
);

-- Attacks from the fold.
SET LOCAL ROLE eventstore_writer;
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Evil', 'e0000000-0000-4000-8000-000000000002', -1, '[{"event_type": "FoldEscalate", "payload": {}}]'
        );
        SELECT eventstore.append_events(
            'Evil', 'e0000000-0000-4000-8000-000000000003', -1, '[{"event_type": "FoldForge", "payload": {}}]'
        );
    $$,
    'setup: two aggregates with an attacking event each (no snapshot due at version 0)'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.load_aggregate('Evil', 'e0000000-0000-4000-8000-000000000002')$$,
    '42501', NULL, 'load_aggregate: the fold cannot make mallory a superuser'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.load_aggregate('Evil', 'e0000000-0000-4000-8000-000000000003')$$,
    '42501', NULL, 'load_aggregate: the fold cannot INSERT into domain_events'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.aggregate_state_at('Evil', 'e0000000-0000-4000-8000-000000000002', 'infinity')$$,
    '42501', NULL, 'aggregate_state_at: the fold cannot make mallory a superuser'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Evil', 'e0000000-0000-4000-8000-000000000002', 0, '[{"event_type": "Pong", "payload": {}}]'
        )
    $$,
    'an append that triggers a snapshot: the events are stored'
);
SELECT is_empty(
    $$SELECT * FROM eventstore.aggregate_snapshots WHERE aggregate_id = 'e0000000-0000-4000-8000-000000000002'$$,
    'but the fold failed: no snapshot'
);
RESET ROLE;
SET LOCAL ROLE eventstore_admin;
SELECT throws_ok(
    $$SELECT eventstore.take_snapshot('Evil', 'e0000000-0000-4000-8000-000000000002')$$,
    '42501', NULL, 'take_snapshot: the fold cannot make mallory a superuser'
);
RESET ROLE;
SELECT ok(NOT pg_temp.mallory_is_superuser(), 'after the fold''s attacks mallory is no superuser');
SELECT is(pg_temp.forged_events(), 0::bigint, 'and no forged event got in');

-- Attacks from the inline handler.
SET LOCAL ROLE eventstore_writer;
SELECT throws_ok(
    $$
        SELECT eventstore.append_events(
            'Plain', 'e0000000-0000-4000-8000-000000000011', -1, '[{"event_type": "HandlerEscalate", "payload": {}}]'
        )
    $$,
    '42501', NULL, 'append: the inline handler cannot make mallory a superuser'
);
SELECT throws_ok(
    $$
        SELECT eventstore.append_events(
            'Plain', 'e0000000-0000-4000-8000-000000000012', -1, '[{"event_type": "HandlerForge", "payload": {}}]'
        )
    $$,
    '42501', NULL, 'append: the inline handler cannot INSERT into domain_events'
);
RESET ROLE;
SELECT is(
    (
        SELECT count(*)
        FROM eventstore.domain_events
        WHERE aggregate_type = 'Plain'
    ),
    0::bigint,
    'the appends failed as a whole'
);

-- Attacks from the async handler, on events of ended transactions.
INSERT INTO eventstore.domain_events (
    event_id, aggregate_type, aggregate_id, event_type, event_version, payload, feed_key
)
VALUES
(gen_random_uuid(), 'Plain', 'e0000000-0000-4000-8000-000000000021', 'AsyncEscalate', 0, '{}', 10),
(gen_random_uuid(), 'Plain', 'e0000000-0000-4000-8000-000000000022', 'AsyncForge', 0, '{}', 20);
SET LOCAL ROLE eventstore_writer;
SELECT is(eventstore.run_projection('evil_async'), 0, 'run_projection: the handler fails on the first event');
SELECT results_eq(
    $$SELECT state, left(last_error, 6) FROM eventstore.projection_status WHERE name = 'evil_async'$$,
    $$VALUES ('failed', '42501:')$$,
    'the projection stopped with 42501: the handler could not make mallory a superuser'
);
RESET ROLE;
SET LOCAL ROLE eventstore_admin;
SELECT lives_ok($$SELECT eventstore.skip_projection_event('evil_async')$$, 'eventstore_admin skips that event');
RESET ROLE;
SET LOCAL ROLE eventstore_writer;
SELECT is(eventstore.run_projection('evil_async'), 0, 'run_projection: the handler fails on the next event');
SELECT results_eq(
    $$SELECT state, left(last_error, 6) FROM eventstore.projection_status WHERE name = 'evil_async'$$,
    $$VALUES ('failed', '42501:')$$,
    'the projection stopped with 42501: the handler could not INSERT into domain_events'
);
RESET ROLE;

-- Attacks from the reset function.
SET LOCAL ROLE eventstore_admin;
SELECT is(eventstore.rebuild_projection('evil_inline'), 1::bigint, 'rebuild_projection with a harmless reset');
RESET ROLE;
SELECT results_eq(
    $$SELECT what, ran_as FROM mallory.log WHERE seq > 1 ORDER BY seq$$,
    $$VALUES ('reset', 'mallory'::name), ('handler Ping', 'mallory'::name)$$,
    'the reset function and the replayed handler ran as mallory'
);
UPDATE mallory.switch SET armed = TRUE;
SET LOCAL ROLE eventstore_admin;
SELECT throws_ok(
    $$SELECT eventstore.rebuild_projection('evil_inline')$$,
    '42501', NULL, 'rebuild_projection: the reset function cannot make mallory a superuser'
);
RESET ROLE;
UPDATE mallory.switch SET armed = FALSE;
SELECT ok(NOT pg_temp.mallory_is_superuser(), 'after the handlers'' and the reset''s attacks mallory is no superuser');
SELECT is(pg_temp.forged_events(), 0::bigint, 'and no forged event got in');
SELECT is(
    (SELECT f.is_called FROM mallory.foreign_runs AS f),
    FALSE,
    'mallory''s code ran as mallory only, also in the statements that failed'
);

-- A fold whose name tries to close the generated code's quotes and run SQL
-- as the event store owner; function bodies are not checked, so a broken
-- body would not stop it. (noqa: RF05: the special characters are the point.)
SET LOCAL ROLE mallory;
CREATE FUNCTION mallory."$step$;ALTER ROLE mallory SUPERUSER;SELECT $step$"(  -- noqa: RF05
    p_state jsonb, p_event eventstore.domain_events
)
RETURNS jsonb
LANGUAGE sql
AS $$ SELECT p_state || jsonb_build_object('type', p_event.event_type) $$;
CREATE FUNCTION mallory."it's"(p_state jsonb, p_event eventstore.domain_events)  -- noqa: RF05
RETURNS jsonb
LANGUAGE sql
AS $$ SELECT p_state || jsonb_build_object('quoted', p_event.event_type) $$;
SET LOCAL check_function_bodies = off;
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Quoted', 'mallory."$step$;ALTER ROLE mallory SUPERUSER;SELECT $step$"(jsonb, eventstore.domain_events)'
        )
    $$,
    'mallory registers a fold named $step$;ALTER ROLE mallory SUPERUSER;SELECT $step$'
);
SET LOCAL check_function_bodies = on;
RESET ROLE;
SELECT ok(NOT pg_temp.mallory_is_superuser(), 'the name ran no SQL: mallory is no superuser');
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Quoted', 'e0000000-0000-4000-8000-000000000031', -1, '[{"event_type": "Quoted", "payload": {}}]'
        )
    $$,
    'setup: an aggregate of that type'
);
SELECT results_eq(
    $$SELECT state FROM eventstore.load_aggregate('Quoted', 'e0000000-0000-4000-8000-000000000031')$$,
    $$VALUES ('{"type": "Quoted"}'::jsonb)$$,
    'the generated step calls that fold'
);
SELECT lives_ok(
    $$SELECT eventstore.register_aggregate_type('Quoted', 'mallory."it''s"(jsonb, eventstore.domain_events)')$$,
    'a fold whose name has a quote'
);
SELECT results_eq(
    $$SELECT state FROM eventstore.load_aggregate('Quoted', 'e0000000-0000-4000-8000-000000000031')$$,
    $$VALUES ('{"quoted": "Quoted"}'::jsonb)$$,
    'the generated step calls that fold'
);

-- mallory owns the wrappers, so she may ALTER them: to SECURITY INVOKER, the
-- wrappers would run with the rights of their caller, the event store
-- owner, and with her search_path, her operator <> and her type jsonb would
-- be found first. The wrappers' bodies, which she cannot change, refuse to
-- run as anyone but mallory.
CREATE TEMP TABLE log_mark AS SELECT max(l.seq) AS seq FROM mallory.log AS l;
SET LOCAL ROLE mallory;
CREATE FUNCTION mallory.not_equal(p_left name, p_right name)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM mallory.attack('OperatorEscalate');
    RETURN FALSE;
END;
$$;
SELECT lives_ok(
    'CREATE OPERATOR mallory.<> (LEFTARG = name, RIGHTARG = name, FUNCTION = mallory.not_equal)',
    'setup: mallory''s operator <> for names'
);
CREATE FUNCTION mallory.check_jsonb(p_value pg_catalog.jsonb)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM mallory.attack('DomainEscalate');
    RETURN TRUE;
END;
$$;
-- VALUE is the keyword of domain constraints, not a column.
CREATE DOMAIN mallory.jsonb AS pg_catalog.jsonb CHECK (mallory.check_jsonb(VALUE));  -- noqa: CP02
SELECT lives_ok(
    $$
        DO $do$
        DECLARE
            v_wrapper regprocedure;
        BEGIN
            FOR v_wrapper IN SELECT w.wrapper_proc FROM wrappers AS w LOOP
                EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER SET search_path = mallory, pg_catalog', v_wrapper);
            END LOOP;
        END;
        $do$
    $$,
    'mallory alters every wrapper to SECURITY INVOKER with her search_path'
);
RESET ROLE;
SELECT results_eq(
    'SELECT kind, owned_by, prosecdef FROM wrappers ORDER BY kind',
    $$
        VALUES
        ('async handler', 'mallory', FALSE),
        ('async reset', 'mallory', FALSE),
        ('fold step', 'mallory', FALSE),
        ('inline handler', 'mallory', FALSE),
        ('inline reset', 'mallory', FALSE)
    $$,
    'setup: the wrappers are SECURITY INVOKER now'
);
SET LOCAL ROLE eventstore_writer;
SELECT throws_ok(
    $$SELECT * FROM eventstore.load_aggregate('Evil', 'e0000000-0000-4000-8000-000000000001')$$,
    '42501', NULL, 'load_aggregate: the altered fold step refuses to run as the event store owner'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Evil', 'e0000000-0000-4000-8000-000000000001', 0, '[{"event_type": "Pong", "payload": {}}]'
        )
    $$,
    'an append that triggers a snapshot stands'
);
RESET ROLE;
SELECT is_empty(
    $$SELECT * FROM eventstore.aggregate_snapshots WHERE aggregate_type = 'Evil'$$,
    'no snapshot of Evil was taken'
);
SET LOCAL ROLE eventstore_writer;
SELECT throws_ok(
    $$
        SELECT eventstore.append_events(
            'Plain', 'e0000000-0000-4000-8000-000000000013', -1, '[{"event_type": "HandlerEscalate", "payload": {}}]'
        )
    $$,
    '42501', NULL, 'append: the altered inline handler wrapper refuses to run as the event store owner'
);
SELECT throws_ok(
    $$
        SELECT eventstore.append_events(
            'Plain', 'e0000000-0000-4000-8000-000000000014', -1, '[{"event_type": "Ping", "payload": {}}]'
        )
    $$,
    '42501', NULL, 'append: the altered inline handler wrapper refuses harmless events too'
);
RESET ROLE;
SET LOCAL ROLE eventstore_admin;
SELECT lives_ok($$SELECT eventstore.retry_projection('evil_async')$$, 'eventstore_admin retries the async projection');
RESET ROLE;
SET LOCAL ROLE eventstore_writer;
SELECT is(eventstore.run_projection('evil_async'), 0, 'run_projection: the altered handler wrapper refuses');
SELECT results_eq(
    $$
        SELECT state, last_error LIKE '42501: the generated function calling mallory.handler%'
        FROM eventstore.projection_status
        WHERE name = 'evil_async'
    $$,
    $$VALUES ('failed', TRUE)$$,
    'the projection stopped with 42501 from the wrapper''s guard'
);
RESET ROLE;
SET LOCAL ROLE eventstore_admin;
SELECT throws_ok(
    $$SELECT eventstore.rebuild_projection('evil_inline')$$,
    '42501', NULL, 'rebuild_projection: the altered reset wrapper refuses to run as the event store owner'
);
SELECT throws_ok(
    $$SELECT eventstore.rebuild_projection('evil_async')$$,
    '42501', NULL, 'rebuild_projection: so does the other one'
);
RESET ROLE;
SELECT is_empty(
    'SELECT * FROM mallory.log WHERE seq > (SELECT m.seq FROM log_mark AS m)',
    'none of mallory''s code ran after the wrappers were altered'
);
SELECT is(
    (SELECT f.is_called FROM mallory.foreign_runs AS f),
    FALSE,
    'mallory''s code never ran as another role, also not in the statements that failed'
);
SELECT ok(NOT pg_temp.mallory_is_superuser(), 'mallory is no superuser at the end');
SELECT is(pg_temp.forged_events(), 0::bigint, 'and no forged event got in');
SELECT is(
    (
        SELECT count(*)
        FROM eventstore.domain_events
        WHERE aggregate_type = 'Plain'
    ),
    2::bigint,
    'the only Plain events are the two inserted by the test'
);

-- Registering someone else's function: the session's login role must hold
-- the rights of the function's owner. As mallory's session (not only her
-- role), a superuser's function cannot be registered as fold, handler or
-- reset function; her own can.
CREATE FUNCTION public.superuser_handler(p_event eventstore.domain_events)
RETURNS void
LANGUAGE sql
AS $fn$ SELECT $fn$;
CREATE FUNCTION public.superuser_fold(p_state jsonb, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE sql
AS $fn$ SELECT p_state $fn$;
CREATE FUNCTION mallory.handler_ok(p_event eventstore.domain_events)
RETURNS void
LANGUAGE sql
AS $fn$ SELECT $fn$;
ALTER FUNCTION mallory.handler_ok(eventstore.domain_events) OWNER TO mallory;
SET LOCAL SESSION AUTHORIZATION mallory;
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('Stolen', 'public.superuser_fold(jsonb, eventstore.domain_events)')$$,
    '42501', NULL,
    'mallory''s session cannot register a superuser''s fold'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_projection(
            'stolen', 'mallory.handler_ok(eventstore.domain_events)', NULL, 'async', 'pg_catalog.pg_stat_reset()'
        )
    $$,
    '42501', NULL,
    'nor a superuser''s function (pg_stat_reset) as reset function'
);
SELECT throws_ok(
    $$SELECT eventstore.register_projection('stolen', 'public.superuser_handler(eventstore.domain_events)')$$,
    '42501', NULL,
    'nor a superuser''s handler'
);
SELECT lives_ok(
    $$SELECT eventstore.register_projection('own', 'mallory.handler_ok(eventstore.domain_events)', NULL, 'async')$$,
    'but her own handler, yes'
);
RESET SESSION AUTHORIZATION;
SELECT is(
    (
        SELECT count(*)
        FROM eventstore.projections
        WHERE name IN ('stolen', 'own')
    ),
    1::bigint,
    'only her own registration happened'
);

SELECT * FROM finish();
ROLLBACK;
