-- Projections (sql/code/11_projection_registry.sql to 15_projection_status.sql),
-- one scenario whose steps build on each other: registration and its errors,
-- inline projections (the generated trigger), async runs with checkpoints,
-- failure handling (retry, skip), rebuilds, external (client-side)
-- checkpoints, and the status view.
--
-- run_projection and an async rebuild read the feed below the fence, the
-- oldest running transaction: events appended by this test's own transaction
-- stay out of them. The async tests therefore insert rows with small feed
-- keys directly, as the owner, standing for events of transactions that
-- ended long ago (as code/05_read.sql does for read_all).
BEGIN;
-- A failing handler and a skipped event raise WARNINGs by design, and pausing
-- a paused projection a NOTICE: not what this file is about.
SET LOCAL client_min_messages = error;
SELECT plan(173);

CREATE SCHEMA test_projections;

-- What the handlers saw, in the order they saw it.
CREATE TABLE test_projections.seen (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tag text NOT NULL,
    event_id bigint NOT NULL,
    event_type text NOT NULL
);
-- Calls of the reset functions.
CREATE TABLE test_projections.resets (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tag text NOT NULL
);
-- Whether the async handler fails on 'Poison' events ("the bug is deployed").
CREATE TABLE test_projections.flags (broken boolean NOT NULL);
INSERT INTO test_projections.flags VALUES (TRUE);
-- What the probe handler saw of the rebuild progress while it was replayed.
CREATE TABLE test_projections.probes (
    application_name text PRIMARY KEY,
    progress text,
    status_state text,
    status_progress text
);

-- Handlers: (event eventstore.domain_events) RETURNS void.
CREATE FUNCTION test_projections.see_inline(p_event eventstore.domain_events)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO test_projections.seen (tag, event_id, event_type) VALUES ('inline', p_event.id, p_event.event_type);
$$;

CREATE FUNCTION test_projections.see_all(p_event eventstore.domain_events)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO test_projections.seen (tag, event_id, event_type) VALUES ('all', p_event.id, p_event.event_type);
$$;

-- Fails on 'Poison' events with SQLSTATE TP001 while flags.broken is set.
CREATE FUNCTION test_projections.see_async(p_event eventstore.domain_events)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_event.event_type = 'Poison' AND (SELECT f.broken FROM test_projections.flags AS f) THEN
        RAISE EXCEPTION 'poisoned event %', p_event.id USING ERRCODE = 'TP001';
    END IF;
    INSERT INTO test_projections.seen (tag, event_id, event_type) VALUES ('async', p_event.id, p_event.event_type);
END;
$$;

-- Fails on every 'Toxic' event, with SQLSTATE TP002.
CREATE FUNCTION test_projections.refuse_toxic(p_event eventstore.domain_events)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_event.event_type = 'Toxic' THEN
        RAISE EXCEPTION 'toxic' USING ERRCODE = 'TP002';
    END IF;
END;
$$;

-- Records the rebuild progress it can see: application_name, rebuild_progress()
-- and projection_status, once per distinct application_name.
CREATE FUNCTION test_projections.probe(p_event eventstore.domain_events)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM test_projections.probes AS p WHERE p.application_name = current_setting('application_name')
    ) THEN
        -- pg_stat_activity is read once per transaction unless cleared.
        PERFORM pg_stat_clear_snapshot();
        INSERT INTO test_projections.probes (application_name, progress, status_state, status_progress)
        SELECT
            current_setting('application_name'),
            (SELECT r.progress FROM eventstore.rebuild_progress() AS r WHERE r.pid = pg_backend_pid()),
            s.state,
            s.rebuild_progress
        FROM eventstore.projection_status AS s
        WHERE s.name = 'probe';
    END IF;
    PERFORM p_event.id;
END;
$$;

-- Reset functions: () RETURNS void.
CREATE FUNCTION test_projections.reset_inline()
RETURNS void
LANGUAGE sql
AS $$
    DELETE FROM test_projections.seen WHERE tag = 'inline';
    INSERT INTO test_projections.resets (tag) VALUES ('inline');
$$;

CREATE FUNCTION test_projections.reset_async()
RETURNS void
LANGUAGE sql
AS $$
    DELETE FROM test_projections.seen WHERE tag = 'async';
    INSERT INTO test_projections.resets (tag) VALUES ('async');
$$;

CREATE FUNCTION test_projections.reset_probe()
RETURNS void
LANGUAGE sql
AS $$
    DELETE FROM test_projections.probes;
$$;

-- Functions that are not handlers or reset functions.
CREATE FUNCTION test_projections.returns_integer(p_event eventstore.domain_events)
RETURNS integer
LANGUAGE sql
AS $$ SELECT 1 $$;

CREATE FUNCTION test_projections.takes_jsonb(p_payload jsonb)
RETURNS void
LANGUAGE sql
AS $$ SELECT $$;

CREATE FUNCTION test_projections.two_args(p_event eventstore.domain_events, p_extra integer)
RETURNS void
LANGUAGE sql
AS $$ SELECT $$;

CREATE PROCEDURE test_projections.a_procedure(p_event eventstore.domain_events)
LANGUAGE sql
AS $$ SELECT $$;

CREATE FUNCTION test_projections.reset_with_arg(p_hard boolean)
RETURNS void
LANGUAGE sql
AS $$ SELECT $$;

CREATE FUNCTION test_projections.reset_returns_integer()
RETURNS integer
LANGUAGE sql
AS $$ SELECT 1 $$;

-- Events of ended transactions (below the fence), by label.
CREATE TEMP TABLE ev (name text PRIMARY KEY, id bigint NOT NULL, feed_key bigint NOT NULL);

CREATE FUNCTION pg_temp.old_event(p_label text, p_feed_key bigint, p_type text)
RETURNS bigint
LANGUAGE sql
AS $fn$
    WITH e AS (
        INSERT INTO eventstore.domain_events (
            event_id, aggregate_type, aggregate_id, event_type, event_version, payload, feed_key
        )
        VALUES (gen_random_uuid(), 'Test', gen_random_uuid(), p_type, 0, '{}', p_feed_key)
        RETURNING id, feed_key
    )
    INSERT INTO pg_temp.ev (name, id, feed_key)
    SELECT p_label, e.id, e.feed_key FROM e
    RETURNING id;
$fn$;

CREATE FUNCTION pg_temp.ev_id(p_label text)
RETURNS bigint
LANGUAGE sql
STABLE
AS $fn$
    SELECT e.id FROM pg_temp.ev AS e WHERE e.name = p_label;
$fn$;

CREATE FUNCTION pg_temp.ev_position(p_label text)
RETURNS eventstore.feed_position
LANGUAGE sql
STABLE
AS $fn$
    SELECT ROW(e.feed_key, e.id)::eventstore.feed_position FROM pg_temp.ev AS e WHERE e.name = p_label;
$fn$;

-- The checkpoint of a projection.
CREATE FUNCTION pg_temp.checkpoint(p_name text)
RETURNS eventstore.feed_position
LANGUAGE sql
STABLE
AS $fn$
    SELECT ROW(p.checkpoint_feed_key, p.checkpoint_id)::eventstore.feed_position
    FROM eventstore.projections AS p
    WHERE p.name = p_name;
$fn$;

-- The rebuild progress this session shows, read afresh: pg_stat_activity is
-- otherwise read once per transaction.
CREATE FUNCTION pg_temp.own_rebuild_progress()
RETURNS TABLE (name text, progress text)
LANGUAGE plpgsql
AS $fn$
BEGIN
    PERFORM pg_stat_clear_snapshot();
    RETURN QUERY SELECT r.name, r.progress FROM eventstore.rebuild_progress() AS r WHERE r.pid = pg_backend_pid();
END;
$fn$;

-- The event ids a handler saw, in the order it saw them.
CREATE FUNCTION pg_temp.seen(p_tag text)
RETURNS bigint[]
LANGUAGE sql
STABLE
AS $fn$
    SELECT coalesce(array_agg(s.event_id ORDER BY s.seq), '{}')
    FROM test_projections.seen AS s
    WHERE s.tag = p_tag;
$fn$;

-- The ids of the labelled events, in the order given.
CREATE FUNCTION pg_temp.ids(VARIADIC p_labels text[])
RETURNS bigint[]
LANGUAGE sql
STABLE
AS $fn$
    SELECT coalesce(array_agg(pg_temp.ev_id(l.label) ORDER BY l.ord), '{}')
    FROM unnest(p_labels) WITH ORDINALITY AS l (label, ord);
$fn$;

-- registration: arguments
SELECT hasnt_trigger(
    'eventstore', 'domain_events', 'domain_events_inline_projections',
    'with no projection registered, domain_events has no inline projection trigger'
);
SELECT throws_ok(
    $$SELECT eventstore.register_projection(NULL, 'test_projections.see_inline(eventstore.domain_events)')$$,
    'ES002', NULL, 'register_projection refuses a NULL name'
);
SELECT throws_ok(
    $$SELECT eventstore.register_projection(' ', 'test_projections.see_inline(eventstore.domain_events)')$$,
    'ES002', NULL, 'register_projection refuses a blank name'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_projection(
            repeat('x', 256), 'test_projections.see_inline(eventstore.domain_events)'
        )
    $$,
    'ES002', NULL, 'register_projection refuses a name longer than 255 characters'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_projection(
            'p', 'test_projections.see_inline(eventstore.domain_events)', NULL, 'sync'
        )
    $$,
    'ES002', NULL, 'register_projection refuses a mode other than inline or async'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_projection(
            'p', 'test_projections.see_inline(eventstore.domain_events)', NULL, 'external'
        )
    $$,
    'ES002', NULL, 'register_projection refuses mode external (register_external_projection is for that)'
);
SELECT throws_ok(
    $$SELECT eventstore.register_projection('p', 'test_projections.see_inline(eventstore.domain_events)', NULL, NULL)$$,
    'ES002', NULL, 'register_projection refuses a NULL mode'
);
SELECT throws_ok(
    $$SELECT eventstore.register_projection('p', NULL)$$,
    'ES002', NULL, 'register_projection refuses a NULL handler'
);
SELECT throws_ok(
    $$SELECT eventstore.register_projection('p', 'test_projections.returns_integer(eventstore.domain_events)')$$,
    'ES002', NULL, 'register_projection refuses a handler that does not return void'
);
SELECT throws_ok(
    $$SELECT eventstore.register_projection('p', 'test_projections.takes_jsonb(jsonb)')$$,
    'ES002', NULL, 'register_projection refuses a handler that does not take a domain_events row'
);
SELECT throws_ok(
    $$SELECT eventstore.register_projection('p', 'test_projections.two_args(eventstore.domain_events, integer)')$$,
    'ES002', NULL, 'register_projection refuses a handler with a second argument'
);
SELECT throws_ok(
    $$SELECT eventstore.register_projection('p', 'test_projections.a_procedure(eventstore.domain_events)')$$,
    'ES002', NULL, 'register_projection refuses a procedure as handler'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_projection(
            'p', 'test_projections.see_inline(eventstore.domain_events)', NULL, 'inline',
            'test_projections.reset_with_arg(boolean)'
        )
    $$,
    'ES002', NULL, 'register_projection refuses a reset function that takes an argument'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_projection(
            'p', 'test_projections.see_inline(eventstore.domain_events)', NULL, 'inline',
            'test_projections.reset_returns_integer()'
        )
    $$,
    'ES002', NULL, 'register_projection refuses a reset function that does not return void'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_projection(
            'p', 'test_projections.see_inline(eventstore.domain_events)', ARRAY[]::text[]
        )
    $$,
    'ES002', NULL, 'register_projection refuses an empty list of event types'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_projection(
            'p', 'test_projections.see_inline(eventstore.domain_events)', ARRAY['OrderPlaced', NULL]
        )
    $$,
    'ES002', NULL, 'register_projection refuses a NULL event type'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_projection(
            'p', 'test_projections.see_inline(eventstore.domain_events)', ARRAY['OrderPlaced', ' ']
        )
    $$,
    'ES002', NULL, 'register_projection refuses a blank event type'
);
SELECT throws_ok(
    'SELECT eventstore.register_external_projection(NULL)',
    'ES002', NULL, 'register_external_projection refuses a NULL name'
);
SELECT throws_ok(
    $$SELECT eventstore.register_external_projection(repeat('x', 256))$$,
    'ES002', NULL, 'register_external_projection refuses a name longer than 255 characters'
);
SELECT throws_ok(
    $$SELECT eventstore.register_external_projection('p', ARRAY[]::text[])$$,
    'ES002', NULL, 'register_external_projection refuses an empty list of event types'
);
SELECT throws_ok(
    $$SELECT eventstore.register_external_projection('p', ARRAY[NULL]::text[])$$,
    'ES002', NULL, 'register_external_projection refuses a NULL event type'
);
SELECT is_empty(
    'SELECT * FROM eventstore.projections',
    'no refused registration left a row behind'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_projection(
            repeat('n', 255), 'test_projections.see_inline(eventstore.domain_events)', NULL, 'async'
        );
        SELECT eventstore.unregister_projection(repeat('n', 255));
    $$,
    'a name of 255 characters is accepted'
);

-- Every function taking a name: ES003 for one that is not registered.
SELECT throws_ok(
    $$SELECT eventstore.unregister_projection('nope')$$,
    'ES003', NULL, 'unregister_projection: ES003 for an unknown projection'
);
SELECT throws_ok(
    $$SELECT eventstore.pause_projection('nope')$$,
    'ES003', NULL, 'pause_projection: ES003 for an unknown projection'
);
SELECT throws_ok(
    $$SELECT eventstore.resume_projection('nope')$$,
    'ES003', NULL, 'resume_projection: ES003 for an unknown projection'
);
SELECT throws_ok(
    $$SELECT eventstore.retry_projection('nope')$$,
    'ES003', NULL, 'retry_projection: ES003 for an unknown projection'
);
SELECT throws_ok(
    $$SELECT eventstore.skip_projection_event('nope')$$,
    'ES003', NULL, 'skip_projection_event: ES003 for an unknown projection'
);
SELECT throws_ok(
    $$SELECT eventstore.run_projection('nope')$$,
    'ES003', NULL, 'run_projection: ES003 for an unknown projection'
);
SELECT throws_ok(
    $$SELECT eventstore.rebuild_projection('nope')$$,
    'ES003', NULL, 'rebuild_projection: ES003 for an unknown projection'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.lock_projection('nope')$$,
    'ES003', NULL, 'lock_projection: ES003 for an unknown projection'
);
SELECT throws_ok(
    $$SELECT eventstore.save_projection_checkpoint('nope', '(1,1)', 1)$$,
    'ES003', NULL, 'save_projection_checkpoint: ES003 for an unknown projection'
);
SELECT throws_ok(
    $$SELECT eventstore.fail_projection('nope', '(1,1)', 'boom')$$,
    'ES003', NULL, 'fail_projection: ES003 for an unknown projection'
);
SELECT throws_ok(
    'SELECT eventstore.run_projection(NULL)',
    'ES002', NULL, 'run_projection refuses a NULL name'
);
SELECT throws_ok(
    $$SELECT eventstore.unregister_projection('')$$,
    'ES002', NULL, 'unregister_projection refuses an empty name'
);

-- inline
SELECT lives_ok(
    $$
        SELECT eventstore.register_projection(
            'inline_orders', 'test_projections.see_inline(eventstore.domain_events)',
            ARRAY['OrderPlaced', 'OrderShipped'], 'inline', 'test_projections.reset_inline()'
        )
    $$,
    'register_projection registers an inline projection'
);
SELECT results_eq(
    $$
        SELECT handler, event_types, mode, reset, state, checkpoint_feed_key, checkpoint_id, events_applied,
            last_error, failed_event_id
        FROM eventstore.projections
        WHERE name = 'inline_orders'
    $$,
    $$
        VALUES (
            'test_projections.see_inline(eventstore.domain_events)'::regprocedure,
            ARRAY['OrderPlaced', 'OrderShipped'],
            'inline',
            'test_projections.reset_inline()'::regprocedure,
            'running',
            -1::bigint,
            0::bigint,
            0::bigint,
            NULL::text,
            NULL::bigint
        )
    $$,
    'the registry holds handler, event types, mode and reset; running, checkpoint (-1,0)'
);
SELECT has_function(
    'eventstore', 'projection_handler_' || md5('inline_orders'), ARRAY['eventstore.domain_events[]'],
    'registration generates the handler wrapper eventstore.projection_handler_<md5(name)>'
);
SELECT has_function(
    'eventstore', 'projection_reset_' || md5('inline_orders'), ARRAY[]::name[],
    'registration generates the reset wrapper eventstore.projection_reset_<md5(name)>'
);
SELECT trigger_is(
    'eventstore', 'domain_events', 'domain_events_inline_projections', 'eventstore', 'apply_inline_projections',
    'an inline projection creates the trigger domain_events_inline_projections'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_projection(
            'inline_all', 'test_projections.see_all(eventstore.domain_events)', NULL, 'inline'
        )
    $$,
    'a second inline projection, for every event type'
);
SELECT is_empty(
    $$
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND pg_catalog.obj_description(p.oid, 'pg_proc') IS NULL
    $$,
    'the generated wrappers and trigger function have a COMMENT'
);
SELECT is_empty(
    $$
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND p.proname ~ '^(projection_handler|projection_reset|apply_inline_projections)'
          AND (
              NOT coalesce('search_path=pg_catalog, pg_temp' = ANY(p.proconfig), FALSE)
              OR p.proacl IS NULL
              OR EXISTS (SELECT FROM aclexplode(p.proacl) AS a WHERE a.grantee = 0)
          )
    $$,
    'the generated functions set search_path = pg_catalog, pg_temp and PUBLIC may not execute them'
);
SELECT lives_ok(
    $$
        CREATE TEMP TABLE appended AS
        SELECT a.id, a.event_type
        FROM eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', -1,
            '[{"event_type": "OrderPlaced", "payload": {}},
              {"event_type": "ItemAdded", "payload": {}},
              {"event_type": "OrderShipped", "payload": {}}]'
        ) AS a
    $$,
    'append three events'
);
SELECT is(
    pg_temp.seen('inline'),
    (
        SELECT array_agg(a.id ORDER BY a.id)
        FROM appended AS a
        WHERE a.event_type IN ('OrderPlaced', 'OrderShipped')
    ),
    'an inline projection is current inside the appending transaction, with only its event types, in order'
);
SELECT is(
    pg_temp.seen('all'),
    (SELECT array_agg(a.id ORDER BY a.id) FROM appended AS a),
    'an inline projection without event types sees every event'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_projection(
            'inline_fragile', 'test_projections.refuse_toxic(eventstore.domain_events)', ARRAY['Toxic'], 'inline'
        )
    $$,
    'a third inline projection, whose handler fails on Toxic events'
);
SELECT throws_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000002', -1,
            '[{"event_type": "OrderPlaced", "payload": {}}, {"event_type": "Toxic", "payload": {}}]'
        )
    $$,
    'TP002',
    'inline projection inline_fragile refused Toxic of aggregate Order a0000000-0000-4000-8000-000000000002: toxic',
    'a failing inline handler fails the append with the handler''s error, naming the projection, event and aggregate'
);
SELECT ok(
    NOT EXISTS (
        SELECT FROM eventstore.domain_events
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000002'
    )
    AND NOT EXISTS (
        SELECT FROM eventstore.streams
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000002'
    )
    AND cardinality(pg_temp.seen('inline')) = 2
    AND cardinality(pg_temp.seen('all')) = 3,
    'nothing of the failed append is stored: no event, no stream, no effect of the other inline handlers'
);
SELECT throws_ok(
    $$SELECT eventstore.pause_projection('inline_orders')$$,
    'ES002', NULL, 'pause_projection refuses an inline projection'
);
SELECT throws_ok(
    $$SELECT eventstore.resume_projection('inline_orders')$$,
    'ES002', NULL, 'resume_projection refuses an inline projection'
);
SELECT throws_ok(
    $$SELECT eventstore.retry_projection('inline_orders')$$,
    'ES002', NULL, 'retry_projection refuses an inline projection'
);
SELECT throws_ok(
    $$SELECT eventstore.skip_projection_event('inline_orders')$$,
    'ES002', NULL, 'skip_projection_event refuses an inline projection (it never fails on its own)'
);
SELECT throws_ok(
    $$SELECT eventstore.run_projection('inline_orders')$$,
    'ES002', NULL, 'run_projection refuses an inline projection'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.lock_projection('inline_orders')$$,
    'ES002', NULL, 'lock_projection refuses an inline projection'
);
SELECT throws_ok(
    $$SELECT eventstore.register_external_projection('inline_orders')$$,
    'ES002', NULL, 'register_external_projection refuses the name of a projection with a database handler'
);
SELECT results_eq(
    $$
        SELECT mode, state, position, lag, events_applied
        FROM eventstore.projection_status
        WHERE name = 'inline_orders'
    $$,
    $$VALUES ('inline', 'running', NULL::eventstore.feed_position, 0::bigint, NULL::bigint)$$,
    'projection_status: an inline projection is running with lag 0, and no checkpoint or count of its own'
);
SELECT lives_ok(
    $$SELECT eventstore.unregister_projection('inline_fragile')$$,
    'unregister an inline projection'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000002', -1, '[{"event_type": "Toxic", "payload": {}}]'
        )
    $$,
    'after unregistering, its handler no longer runs on append'
);
SELECT has_trigger(
    'eventstore', 'domain_events', 'domain_events_inline_projections',
    'the trigger stays while an inline projection is registered'
);
SELECT hasnt_function(
    'eventstore', 'projection_handler_' || md5('inline_fragile'), ARRAY['eventstore.domain_events[]'],
    'unregistering drops the handler wrapper'
);
SELECT throws_ok(
    $$
        SELECT eventstore.register_projection(
            'inline_all', 'test_projections.see_all(eventstore.domain_events)', NULL, 'async'
        )
    $$,
    'ES002', NULL,
    're-registering cannot change a projection''s mode (its checkpoint would be wrong)'
);
SELECT lives_ok(
    $$
        SELECT eventstore.unregister_projection('inline_all');
        SELECT eventstore.register_projection(
            'inline_all', 'test_projections.see_all(eventstore.domain_events)', NULL, 'async'
        );
        SELECT eventstore.unregister_projection('inline_orders');
    $$,
    'move one inline projection to async (unregister, register) and unregister the other'
);
SELECT hasnt_trigger(
    'eventstore', 'domain_events', 'domain_events_inline_projections',
    'without inline projections the trigger is gone'
);
SELECT hasnt_function(
    'eventstore', 'apply_inline_projections', ARRAY[]::name[],
    'without inline projections the generated trigger function is gone'
);
SELECT ok(
    NOT EXISTS (
        SELECT FROM pg_catalog.pg_proc
        WHERE pronamespace = 'eventstore'::regnamespace AND proname LIKE 'projection\_%\_' || md5('inline_orders')
    ),
    'unregistering drops the handler and reset wrappers'
);
SELECT is(
    cardinality(pg_temp.seen('inline')),
    2,
    'unregistering leaves the read model as it is'
);
SELECT lives_ok(
    $$SELECT eventstore.unregister_projection('inline_all')$$,
    'unregister the async one too'
);

-- async: events of ended transactions, inserted out of feed order.
SELECT lives_ok(
    $$
        SELECT pg_temp.old_event('a', 30, 'Counted');
        SELECT pg_temp.old_event('b', 10, 'Counted');
        SELECT pg_temp.old_event('c', 20, 'Other');
        SELECT pg_temp.old_event('d', 10, 'Counted');
        SELECT pg_temp.old_event('e', 40, 'Other');
    $$,
    'setup: five events of ended transactions'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_projection(
            'counter', 'test_projections.see_async(eventstore.domain_events)', ARRAY['Counted', 'Poison'], 'async',
            'test_projections.reset_async()'
        )
    $$,
    'register_projection registers an async projection'
);
SELECT hasnt_trigger(
    'eventstore', 'domain_events', 'domain_events_inline_projections',
    'an async projection creates no trigger'
);
SELECT is(pg_temp.seen('async'), '{}', 'registering applies nothing');
SELECT results_eq(
    $$SELECT state, position, lag, events_applied FROM eventstore.projection_status WHERE name = 'counter'$$,
    $$VALUES ('running', ROW(-1, 0)::eventstore.feed_position, 3::bigint, 0::bigint)$$,
    'projection_status: a new async projection lags by the events of its types'
);
SELECT throws_ok(
    $$SELECT eventstore.run_projection('counter', 0)$$,
    'ES002', NULL, 'run_projection refuses p_max_events 0'
);
SELECT throws_ok(
    $$SELECT eventstore.run_projection('counter', -5)$$,
    'ES002', NULL, 'run_projection refuses a negative p_max_events'
);
SELECT throws_ok(
    $$SELECT eventstore.run_projection('counter', NULL)$$,
    'ES002', NULL, 'run_projection refuses a NULL p_max_events'
);
SELECT is(eventstore.run_projection('counter', 2), 2, 'run_projection applies at most p_max_events');
SELECT is(pg_temp.seen('async'), pg_temp.ids('b', 'd'), 'run_projection applies in feed order, not id order');
SELECT is(pg_temp.checkpoint('counter'), pg_temp.ev_position('d'), 'the checkpoint moves to the last applied event');
SELECT is(eventstore.run_projection('counter'), 1, 'the next run applies the rest');
SELECT is(pg_temp.seen('async'), pg_temp.ids('b', 'd', 'a'), 'each event applied once, in feed order');
SELECT is(
    pg_temp.checkpoint('counter'),
    pg_temp.ev_position('e'),
    'caught up, the checkpoint moves past the later events of other types, to the head below the fence'
);
SELECT results_eq(
    $$SELECT state, position, lag, events_applied FROM eventstore.projection_status WHERE name = 'counter'$$,
    $$VALUES ('running', pg_temp.ev_position('e'), 0::bigint, 3::bigint)$$,
    'projection_status: caught up, lag 0, three events applied'
);
SELECT is(eventstore.run_projection('counter'), 0, 'run_projection returns 0 when caught up');
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Counter', 'a0000000-0000-4000-8000-000000000003', -1,
            '[{"event_type": "Counted", "payload": {}}, {"event_type": "Counted", "payload": {}}]'
        )
    $$,
    'append two events in this (still running) transaction'
);
SELECT is(
    eventstore.run_projection('counter'),
    0,
    'run_projection leaves out events of running transactions, this one included'
);
SELECT is(
    (
        SELECT lag
        FROM eventstore.projection_status
        WHERE name = 'counter'
    ),
    2::bigint,
    'projection_status counts them in the lag'
);
SELECT is(pg_temp.checkpoint('counter'), pg_temp.ev_position('e'), 'and the checkpoint stays below the fence');

-- pause and resume
SELECT lives_ok(
    $$SELECT pg_temp.old_event('f', 50, 'Counted')$$,
    'setup: a new event of an ended transaction'
);
SELECT lives_ok($$SELECT eventstore.pause_projection('counter')$$, 'pause_projection');
SELECT lives_ok($$SELECT eventstore.pause_projection('counter')$$, 'pausing a paused projection changes nothing');
SELECT is(eventstore.run_projection('counter'), 0, 'run_projection returns 0 for a paused projection');
SELECT results_eq(
    $$SELECT state, position, lag FROM eventstore.projection_status WHERE name = 'counter'$$,
    $$VALUES ('paused', pg_temp.ev_position('e'), 3::bigint)$$,
    'projection_status: paused, the checkpoint still, the lag growing'
);
SELECT lives_ok($$SELECT eventstore.resume_projection('counter')$$, 'resume_projection');
SELECT is(
    (
        SELECT state
        FROM eventstore.projections
        WHERE name = 'counter'
    ),
    'running',
    'a resumed projection is running'
);
SELECT is(eventstore.run_projection('counter'), 1, 'a resumed projection runs again');
SELECT is(pg_temp.seen('async'), pg_temp.ids('b', 'd', 'a', 'f'), 'from where it was paused');

-- failure: the handler fails on the second of three events.
SELECT throws_ok(
    $$SELECT eventstore.skip_projection_event('counter')$$,
    'ES002', NULL, 'skip_projection_event refuses a projection that has not failed'
);
SELECT lives_ok(
    $$
        SELECT pg_temp.old_event('g', 60, 'Counted');
        SELECT pg_temp.old_event('p', 61, 'Poison');
        SELECT pg_temp.old_event('h', 62, 'Counted');
    $$,
    'setup: Counted, Poison, Counted'
);
SELECT is(eventstore.run_projection('counter'), 1, 'a failing run returns the events applied before the failure');
SELECT is(pg_temp.seen('async'), pg_temp.ids('b', 'd', 'a', 'f', 'g'), 'the events before the failing one are applied');
SELECT results_eq(
    $$
        SELECT state, last_error, failed_event_id, failed_feed_key, events_applied
        FROM eventstore.projections
        WHERE name = 'counter'
    $$,
    $$VALUES ('failed', 'TP001: poisoned event ' || pg_temp.ev_id('p'), pg_temp.ev_id('p'), 61::bigint, 5::bigint)$$,
    'the projection stops: state failed, the error with its SQLSTATE, the failing event''s id and feed key'
);
SELECT is(pg_temp.checkpoint('counter'), pg_temp.ev_position('g'), 'the checkpoint is just before the failing event');
SELECT results_eq(
    $$
        SELECT state, position, lag, events_applied, last_error, failed_event_id
        FROM eventstore.projection_status
        WHERE name = 'counter'
    $$,
    $$
        VALUES (
            'failed', pg_temp.ev_position('g'), 4::bigint, 5::bigint,
            'TP001: poisoned event ' || pg_temp.ev_id('p'), pg_temp.ev_id('p')
        )
    $$,
    'projection_status shows the failure'
);
SELECT is(eventstore.run_projection('counter'), 0, 'run_projection returns 0 for a failed projection');
SELECT is(pg_temp.checkpoint('counter'), pg_temp.ev_position('g'), 'and moves nothing');
SELECT lives_ok($$SELECT eventstore.retry_projection('counter')$$, 'retry_projection before the fix');
SELECT is(eventstore.run_projection('counter'), 0, 'the retried run fails again at once');
SELECT results_eq(
    $$SELECT state, failed_event_id FROM eventstore.projections WHERE name = 'counter'$$,
    $$VALUES ('failed', pg_temp.ev_id('p'))$$,
    'at the same event'
);
UPDATE test_projections.flags SET broken = FALSE;
SELECT lives_ok($$SELECT eventstore.retry_projection('counter')$$, 'retry_projection after the fix');
SELECT results_eq(
    $$SELECT state, last_error, failed_event_id, failed_feed_key FROM eventstore.projections WHERE name = 'counter'$$,
    $$VALUES ('running', NULL::text, NULL::bigint, NULL::bigint)$$,
    'retry_projection: running again, the error cleared'
);
SELECT is(eventstore.run_projection('counter'), 2, 'the run resumes at the failed event');
SELECT is(
    pg_temp.seen('async'),
    pg_temp.ids('b', 'd', 'a', 'f', 'g', 'p', 'h'),
    'the failed event and the ones after it are applied, once'
);

-- skip
UPDATE test_projections.flags SET broken = TRUE;
SELECT lives_ok(
    $$
        SELECT pg_temp.old_event('q', 70, 'Poison');
        SELECT pg_temp.old_event('i', 71, 'Counted');
    $$,
    'setup: Poison, Counted'
);
SELECT is(eventstore.run_projection('counter'), 0, 'the run fails at the first event');
SELECT is(pg_temp.checkpoint('counter'), pg_temp.ev_position('h'), 'the checkpoint does not move');
SELECT is(
    eventstore.skip_projection_event('counter'),
    pg_temp.ev_id('q'),
    'skip_projection_event returns the skipped event''s id'
);
SELECT results_eq(
    $$SELECT state, position, last_error, failed_event_id FROM eventstore.projection_status WHERE name = 'counter'$$,
    $$VALUES ('running', pg_temp.ev_position('q'), NULL::text, NULL::bigint)$$,
    'skip_projection_event: running, the checkpoint on the skipped event, the error cleared'
);
SELECT is(eventstore.run_projection('counter'), 1, 'the run continues after the skipped event');
SELECT is(
    pg_temp.seen('async'),
    pg_temp.ids('b', 'd', 'a', 'f', 'g', 'p', 'h', 'i'),
    'the skipped event is missing from the read model, the next one is applied'
);
SELECT throws_ok(
    $$SELECT eventstore.skip_projection_event('counter')$$,
    'ES002', NULL, 'skip_projection_event refuses once the projection runs again'
);

-- rebuild (async), of a failed projection.
SELECT lives_ok(
    $$SELECT pg_temp.old_event('r', 80, 'Poison')$$,
    'setup: another Poison event'
);
SELECT is(eventstore.run_projection('counter'), 0, 'setup: the projection fails on it');
UPDATE test_projections.flags SET broken = FALSE;
SELECT is(
    eventstore.rebuild_projection('counter'),
    10::bigint,
    'rebuild_projection returns the number of events replayed (those of its types below the fence)'
);
SELECT results_eq(
    'SELECT tag FROM test_projections.resets ORDER BY seq',
    ARRAY['async'],
    'rebuild_projection calls the reset function once'
);
SELECT is(
    pg_temp.seen('async'),
    pg_temp.ids('b', 'd', 'a', 'f', 'g', 'p', 'h', 'q', 'i', 'r'),
    'the whole log is replayed in feed order, the skipped event included, this transaction''s appends left out'
);
SELECT results_eq(
    $$
        SELECT state, position, events_applied, last_error, failed_event_id
        FROM eventstore.projection_status
        WHERE name = 'counter'
    $$,
    $$VALUES ('running', pg_temp.ev_position('r'), 10::bigint, NULL::text, NULL::bigint)$$,
    'after a rebuild: running, checkpoint on the last replayed event, events_applied the count, no error'
);
SELECT is(eventstore.run_projection('counter'), 0, 'nothing is applied twice after a rebuild');
SELECT lives_ok(
    $$
        SELECT eventstore.register_projection(
            'noreset', 'test_projections.see_async(eventstore.domain_events)', ARRAY['Counted'], 'async'
        )
    $$,
    'an async projection without a reset function'
);
SELECT throws_ok(
    $$SELECT eventstore.rebuild_projection('noreset')$$,
    'ES002', NULL, 'rebuild_projection refuses a projection without a reset function'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_projection(
            'counter', 'test_projections.see_async(eventstore.domain_events)', ARRAY['Counted'], 'async'
        );
    $$,
    're-register counter with other event types and no reset function'
);
SELECT results_eq(
    $$
        SELECT event_types, reset, state, pg_temp.checkpoint(name), events_applied
        FROM eventstore.projections
        WHERE name = 'counter'
    $$,
    $$VALUES (ARRAY['Counted'], NULL::regprocedure, 'running', pg_temp.ev_position('r'), 10::bigint)$$,
    're-registering replaces event types and reset function, and keeps checkpoint, state and counts'
);
SELECT hasnt_function(
    'eventstore', 'projection_reset_' || md5('counter'), ARRAY[]::name[],
    're-registering without a reset function drops the reset wrapper'
);

-- rebuild (inline): replays events it missed and this transaction's own.
SELECT lives_ok(
    $$
        SELECT pg_temp.old_event('o1', 5, 'OrderPlaced');
        SELECT eventstore.register_projection(
            'inline_orders', 'test_projections.see_inline(eventstore.domain_events)',
            ARRAY['OrderPlaced', 'OrderShipped'], 'inline', 'test_projections.reset_inline()'
        );
        SELECT pg_temp.old_event('o2', 90, 'OrderShipped');
    $$,
    'setup: an OrderPlaced before the inline projection is registered (again), an OrderShipped after'
);
SELECT is(
    pg_temp.seen('inline'),
    (
        SELECT array_agg(a.id ORDER BY a.id)
        FROM appended AS a
        WHERE a.event_type IN ('OrderPlaced', 'OrderShipped')
    )
    || pg_temp.ev_id('o2'),
    'the inline projection missed the event of the time it was not registered'
);
SELECT is(
    eventstore.rebuild_projection('inline_orders'),
    4::bigint,
    'rebuild_projection of an inline projection replays every event of its types, this transaction''s included'
);
SELECT is(
    pg_temp.seen('inline'),
    pg_temp.ids('o1', 'o2')
    || (
        SELECT array_agg(a.id ORDER BY a.id)
        FROM appended AS a
        WHERE a.event_type IN ('OrderPlaced', 'OrderShipped')
    ),
    'in feed order, after the reset'
);
SELECT results_eq(
    'SELECT tag FROM test_projections.resets ORDER BY seq',
    ARRAY['async', 'inline'],
    'the inline projection''s reset function was called'
);

-- rebuild progress: batches of 10,000, seen from inside the rebuild.
SELECT lives_ok(
    $$
        INSERT INTO eventstore.domain_events (
            event_id, aggregate_type, aggregate_id, event_type, event_version, payload, feed_key
        )
        SELECT gen_random_uuid(), 'Test', gen_random_uuid(), 'Probe', 0, '{}', 100
        FROM generate_series(1, 10001);
        SELECT eventstore.register_projection(
            'probe', 'test_projections.probe(eventstore.domain_events)', ARRAY['Probe'], 'async',
            'test_projections.reset_probe()'
        );
    $$,
    'setup: 10,001 Probe events and a projection that records the progress it sees'
);
SELECT is(eventstore.rebuild_projection('probe'), 10001::bigint, 'rebuild_projection replays 10,001 events');
SELECT results_eq(
    'SELECT * FROM test_projections.probes ORDER BY application_name',
    $$
        VALUES
        ('eventstore rebuild probe: 0/10001 events', '0/10001', 'rebuilding', '0/10001'),
        ('eventstore rebuild probe: 10000/10001 events', '10000/10001', 'rebuilding', '10000/10001')
    $$,
    'two batches; application_name, rebuild_progress() and projection_status show the progress'
);
SELECT results_eq(
    'SELECT * FROM pg_temp.own_rebuild_progress()',
    $$VALUES ('probe', '10001/10001')$$,
    'rebuild_progress(): name and progress of the rebuilding session, until its transaction ends'
);
SET LOCAL application_name = 'pgtap';
SELECT is_empty(
    'SELECT * FROM pg_temp.own_rebuild_progress()',
    'rebuild_progress() reads application_name: another name, no rebuild shown'
);
SELECT is(
    (
        SELECT events_applied
        FROM eventstore.projection_status
        WHERE name = 'probe'
    ),
    10001::bigint,
    'the rebuild counts the events applied'
);

-- external
SELECT lives_ok(
    $$SELECT eventstore.register_external_projection('ext', ARRAY['Counted', 'Other'])$$,
    'register_external_projection'
);
SELECT results_eq(
    $$SELECT handler, reset, event_types, mode, state FROM eventstore.projections WHERE name = 'ext'$$,
    $$VALUES (NULL::regprocedure, NULL::regprocedure, ARRAY['Counted', 'Other'], 'external', 'running')$$,
    'an external projection has no handler'
);
SELECT lives_ok(
    $$SELECT eventstore.register_external_projection('ext', ARRAY['Counted'])$$,
    'register_external_projection again replaces the event types'
);
SELECT throws_ok(
    $$SELECT eventstore.run_projection('ext')$$,
    'ES002', NULL, 'run_projection refuses an external projection'
);
SELECT throws_ok(
    $$SELECT eventstore.rebuild_projection('ext')$$,
    'ES002', NULL, 'rebuild_projection refuses an external projection'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.lock_projection('counter')$$,
    'ES002', NULL, 'lock_projection refuses an async projection'
);
SELECT results_eq(
    $$SELECT after, state, event_types FROM eventstore.lock_projection('ext')$$,
    $$VALUES (ROW(-1, 0)::eventstore.feed_position, 'running', ARRAY['Counted'])$$,
    'lock_projection returns the checkpoint, state and event types'
);
SELECT throws_ok(
    $$SELECT eventstore.save_projection_checkpoint('ext', NULL, 1)$$,
    'ES002', NULL, 'save_projection_checkpoint refuses a NULL position'
);
SELECT throws_ok(
    $$SELECT eventstore.save_projection_checkpoint('ext', ROW(NULL, 1)::eventstore.feed_position, 1)$$,
    'ES002', NULL, 'save_projection_checkpoint refuses a position without a feed key'
);
SELECT throws_ok(
    $$SELECT eventstore.save_projection_checkpoint('ext', '(1,1)', -1)$$,
    'ES002', NULL, 'save_projection_checkpoint refuses a negative count'
);
SELECT throws_ok(
    $$SELECT eventstore.save_projection_checkpoint('ext', '(1,1)', NULL)$$,
    'ES002', NULL, 'save_projection_checkpoint refuses a NULL count'
);
SELECT throws_ok(
    $$SELECT eventstore.save_projection_checkpoint('counter', '(1,1)', 1)$$,
    'ES002', NULL, 'save_projection_checkpoint refuses an async projection'
);
SELECT lives_ok(
    $$SELECT eventstore.save_projection_checkpoint('ext', pg_temp.ev_position('d'), 2)$$,
    'save_projection_checkpoint'
);
SELECT results_eq(
    $$SELECT after, state FROM eventstore.lock_projection('ext')$$,
    $$VALUES (pg_temp.ev_position('d'), 'running')$$,
    'lock_projection returns the saved checkpoint'
);
SELECT throws_ok(
    $$
        SELECT eventstore.save_projection_checkpoint(
            'ext', ROW((pg_temp.ev_position('d')).feed_key, 1)::eventstore.feed_position, 1
        )
    $$,
    'ES002', NULL, 'save_projection_checkpoint refuses a position behind the checkpoint'
);
SELECT lives_ok(
    $$SELECT eventstore.save_projection_checkpoint('ext', pg_temp.ev_position('d'), 0)$$,
    'save_projection_checkpoint accepts the checkpoint itself again (a batch that applied nothing)'
);
SELECT results_eq(
    $$SELECT state, position, lag, events_applied FROM eventstore.projection_status WHERE name = 'ext'$$,
    $$VALUES ('running', pg_temp.ev_position('d'), 7::bigint, 2::bigint)$$,
    'projection_status of an external projection: checkpoint, lag (this transaction''s events included), count'
);
SELECT throws_ok(
    $$SELECT eventstore.fail_projection('ext', NULL, 'boom')$$,
    'ES002', NULL, 'fail_projection refuses a NULL position'
);
SELECT throws_ok(
    $$SELECT eventstore.fail_projection('ext', ROW(1, NULL)::eventstore.feed_position, 'boom')$$,
    'ES002', NULL, 'fail_projection refuses a position without an id'
);
SELECT throws_ok(
    $$SELECT eventstore.fail_projection('counter', '(1,1)', 'boom')$$,
    'ES002', NULL, 'fail_projection refuses an async projection'
);
SELECT lives_ok(
    $$SELECT eventstore.fail_projection('ext', pg_temp.ev_position('a'), 'boom')$$,
    'fail_projection'
);
SELECT results_eq(
    $$SELECT state, position, last_error, failed_event_id FROM eventstore.projection_status WHERE name = 'ext'$$,
    $$VALUES ('failed', pg_temp.ev_position('d'), 'boom', pg_temp.ev_id('a'))$$,
    'fail_projection records the error and the event; the checkpoint stays'
);
SELECT results_eq(
    $$SELECT after, state FROM eventstore.lock_projection('ext')$$,
    $$VALUES (pg_temp.ev_position('d'), 'failed')$$,
    'lock_projection tells the client the projection failed'
);
SELECT is(
    eventstore.skip_projection_event('ext'),
    pg_temp.ev_id('a'),
    'skip_projection_event on an external projection'
);
SELECT results_eq(
    $$SELECT after, state FROM eventstore.lock_projection('ext')$$,
    $$VALUES (pg_temp.ev_position('a'), 'running')$$,
    'its checkpoint moves past the failed event'
);
SELECT lives_ok(
    $$
        SELECT eventstore.pause_projection('ext');
        SELECT eventstore.resume_projection('ext');
    $$,
    'an external projection can be paused and resumed'
);
SELECT lives_ok($$SELECT eventstore.unregister_projection('ext')$$, 'unregister an external projection');
SELECT is_empty($$SELECT * FROM eventstore.projection_status WHERE name = 'ext'$$, 'it is gone');

-- The status view: one row per projection.
SELECT results_eq(
    'SELECT name, mode, state FROM eventstore.projection_status ORDER BY name',
    $$
        VALUES
        ('counter', 'async', 'running'),
        ('inline_orders', 'inline', 'running'),
        ('noreset', 'async', 'running'),
        ('probe', 'async', 'running')
    $$,
    'projection_status: one row per registered projection'
);

SELECT * FROM finish();
ROLLBACK;
