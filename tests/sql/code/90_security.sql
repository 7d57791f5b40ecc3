-- Privileges: eventstore_reader reads (functions and SELECT on the tables and
-- the status view), eventstore_writer also appends and runs projections,
-- eventstore_admin also runs operator functions (registration, snapshots,
-- projection control). No role but the owner may INSERT, UPDATE or DELETE on
-- any table.
BEGIN;
-- after_restore's NOTICE and skip_projection_event's WARNING are not what
-- this file is about.
SET LOCAL client_min_messages = error;
SELECT plan(106);

SELECT has_role('eventstore_reader', 'role eventstore_reader exists');
SELECT has_role('eventstore_writer', 'role eventstore_writer exists');
SELECT has_role('eventstore_admin', 'role eventstore_admin exists');
SELECT is_member_of('eventstore_reader', 'eventstore_writer', 'eventstore_writer includes eventstore_reader');
SELECT is_member_of('eventstore_writer', 'eventstore_admin', 'eventstore_admin includes eventstore_writer');

-- The catalog: no write privilege on any table or sequence of the schema,
-- for any of the roles or PUBLIC; SELECT on every table for the readers.
SELECT is_empty(
    $$
        SELECT r.rolname, c.oid::regclass, p.privilege
        FROM pg_catalog.pg_class AS c
        CROSS JOIN (VALUES ('eventstore_reader'), ('eventstore_writer'), ('eventstore_admin')) AS r (rolname)
        CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) AS p (privilege)
        WHERE c.relnamespace = 'eventstore'::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND has_table_privilege(r.rolname, c.oid, p.privilege)
    $$,
    'no role has INSERT, UPDATE, DELETE or TRUNCATE on any eventstore table'
);
SELECT is_empty(
    $$
        SELECT r.rolname, c.oid::regclass
        FROM pg_catalog.pg_class AS c
        CROSS JOIN (VALUES ('eventstore_reader'), ('eventstore_writer'), ('eventstore_admin')) AS r (rolname)
        WHERE c.relnamespace = 'eventstore'::regnamespace
          AND c.relkind = 'S'
          AND (has_sequence_privilege(r.rolname, c.oid, 'USAGE') OR has_sequence_privilege(r.rolname, c.oid, 'UPDATE'))
    $$,
    'no role may advance an eventstore sequence'
);
SELECT is_empty(
    $$
        SELECT c.oid::regclass, a.privilege_type
        FROM pg_catalog.pg_class AS c
        CROSS JOIN LATERAL aclexplode(c.relacl) AS a
        WHERE c.relnamespace = 'eventstore'::regnamespace
          AND a.grantee = 0
    $$,
    'PUBLIC has no privilege on any eventstore table or sequence'
);
SELECT is_empty(
    $$
        SELECT c.oid::regclass
        FROM pg_catalog.pg_class AS c
        WHERE c.relnamespace = 'eventstore'::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm')
          AND NOT has_table_privilege('eventstore_reader', c.oid, 'SELECT')
    $$,
    'eventstore_reader may SELECT every eventstore table'
);
SELECT is_empty(
    $$
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND (p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) AS a WHERE a.grantee = 0))
    $$,
    'PUBLIC may execute no eventstore function'
);
SELECT function_privs_are(
    'eventstore', 'append_events', ARRAY['text', 'uuid', 'integer', 'jsonb'], 'eventstore_reader', ARRAY[]::text[],
    'eventstore_reader may not execute append_events'
);
SELECT function_privs_are(
    'eventstore', 'append_events', ARRAY['text', 'uuid', 'integer', 'jsonb'], 'eventstore_writer', ARRAY['EXECUTE'],
    'eventstore_writer may execute append_events'
);
SELECT function_privs_are(
    'eventstore', 'after_restore', ARRAY[]::text[], 'eventstore_writer', ARRAY[]::text[],
    'eventstore_writer may not execute after_restore'
);
SELECT function_privs_are(
    'eventstore', 'after_restore', ARRAY[]::text[], 'eventstore_admin', ARRAY['EXECUTE'],
    'eventstore_admin may execute after_restore'
);
SELECT is_empty(
    $$
        SELECT f.signature
        FROM (
            VALUES
            ('eventstore.load_aggregate(text, uuid)'),
            ('eventstore.aggregate_state_at(text, uuid, timestamptz)'),
            ('eventstore.aggregate_state_at_version(text, uuid, integer)'),
            ('eventstore.aggregate_history(uuid)'),
            ('eventstore.event_counts(timestamptz, timestamptz, text)')
        ) AS f (signature)
        WHERE NOT has_function_privilege('eventstore_reader', f.signature::regprocedure, 'EXECUTE')
    $$,
    'eventstore_reader may execute load_aggregate and the temporal functions'
);
SELECT is_empty(
    $$
        SELECT f.signature, r.rolname
        FROM (
            VALUES
            ('eventstore.register_aggregate_type(text, regprocedure, jsonb, integer)'),
            ('eventstore.take_snapshot(text, uuid)'),
            ('eventstore.prune_snapshots(text, integer)')
        ) AS f (signature)
        CROSS JOIN (VALUES ('eventstore_reader'), ('eventstore_writer')) AS r (rolname)
        WHERE has_function_privilege(r.rolname, f.signature::regprocedure, 'EXECUTE')
    $$,
    'eventstore_reader and eventstore_writer may not register types, take or prune snapshots'
);
SELECT is_empty(
    $$
        SELECT f.signature
        FROM (
            VALUES
            ('eventstore.register_aggregate_type(text, regprocedure, jsonb, integer)'),
            ('eventstore.take_snapshot(text, uuid)'),
            ('eventstore.prune_snapshots(text, integer)')
        ) AS f (signature)
        WHERE NOT has_function_privilege('eventstore_admin', f.signature::regprocedure, 'EXECUTE')
    $$,
    'eventstore_admin may register types, take and prune snapshots'
);
SELECT is_empty(
    $$
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND p.proname LIKE '\_%'
          AND has_function_privilege('eventstore_admin', p.oid, 'EXECUTE')
    $$,
    'internal functions (a leading underscore) are not executable by the roles'
);
SELECT ok(
    (
        SELECT count(*) >= 30 FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace AND p.proname LIKE '\_%'
    ),
    'the internal functions carry the leading underscore'
);
SELECT is_empty(
    $$
        SELECT p.oid::regprocedure, obj_description(p.oid, 'pg_proc')
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND p.proname NOT SIMILAR TO '(projection_handler|projection_reset|fold_step|fold_events)\_%'
          AND p.proname <> 'apply_inline_projections'
          AND (p.proname LIKE '\_%') <> (obj_description(p.oid, 'pg_proc') LIKE 'Internal: %')
    $$,
    'a function is internal (comment "Internal: ...") exactly when its name starts with an underscore'
);

SELECT is_empty(
    $$
        SELECT f.signature, r.rolname, r.allowed
        FROM (
            VALUES
            ('eventstore.run_projection(text, integer)'),
            ('eventstore.lock_projection(text)'),
            ('eventstore.save_projection_checkpoint(text, eventstore.feed_position, integer)'),
            ('eventstore.fail_projection(text, eventstore.feed_position, text)')
        ) AS f (signature)
        CROSS JOIN (VALUES ('eventstore_reader', FALSE), ('eventstore_writer', TRUE), ('eventstore_admin', TRUE)) AS r (
            rolname, allowed
        )
        WHERE has_function_privilege(r.rolname, f.signature::regprocedure, 'EXECUTE') <> r.allowed
    $$,
    'eventstore_writer and eventstore_admin may run projections and move external checkpoints; eventstore_reader not'
);
SELECT is_empty(
    $$
        SELECT f.signature, r.rolname, r.allowed
        FROM (
            VALUES
            ('eventstore.register_projection(text, regprocedure, text[], text, regprocedure)'),
            ('eventstore.register_external_projection(text, text[])'),
            ('eventstore.unregister_projection(text)'),
            ('eventstore.pause_projection(text)'),
            ('eventstore.resume_projection(text)'),
            ('eventstore.retry_projection(text)'),
            ('eventstore.skip_projection_event(text)'),
            ('eventstore.rebuild_projection(text)')
        ) AS f (signature)
        CROSS JOIN (VALUES ('eventstore_reader', FALSE), ('eventstore_writer', FALSE), ('eventstore_admin', TRUE)) AS r (
            rolname, allowed
        )
        WHERE has_function_privilege(r.rolname, f.signature::regprocedure, 'EXECUTE') <> r.allowed
    $$,
    'only eventstore_admin may register, unregister, pause, resume, retry, skip and rebuild projections'
);
SELECT is_empty(
    $$
        SELECT f.signature
        FROM (
            VALUES
            ('eventstore.rebuild_progress()'),
            ('eventstore.projection_lag(eventstore.projections)')
        ) AS f (signature)
        WHERE NOT has_function_privilege('eventstore_reader', f.signature::regprocedure, 'EXECUTE')
          OR NOT has_table_privilege('eventstore_reader', 'eventstore.projection_status', 'SELECT')
    $$,
    'eventstore_reader may SELECT projection_status and execute the functions it calls'
);

-- An Order written by the owner, for the roles to read.
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', -1, '[{"event_type": "OrderPlaced", "payload": {}}]'
        )
    $$,
    'setup: an Order written by the owner'
);

-- A registered type with one aggregate, for the roles to load. The admin
-- registers folds too, so it needs to see their schema.
CREATE SCHEMA test_folds;
CREATE FUNCTION test_folds.tally(p_state jsonb, p_event eventstore.domain_events)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT jsonb_build_object('count', coalesce((p_state ->> 'count')::integer, 0) + 1);
$$;
GRANT USAGE ON SCHEMA test_folds TO eventstore_admin;
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type('Tally', 'test_folds.tally(jsonb, eventstore.domain_events)', '{}', 0);
        SELECT eventstore.append_events(
            'Tally', 'a0000000-0000-4000-8000-000000000003', -1, '[{"event_type": "Counted", "payload": {}}]'
        );
    $$,
    'setup: a Tally type registered and an aggregate written by the owner'
);

-- Projections registered by the owner, for the roles to run: an async one
-- with a reset function, and an external one.
CREATE TABLE test_folds.notes (event_id bigint NOT NULL);
CREATE FUNCTION test_folds.note(p_event eventstore.domain_events)
RETURNS void
LANGUAGE sql
AS $$ INSERT INTO test_folds.notes VALUES (p_event.id) $$;
CREATE FUNCTION test_folds.forget()
RETURNS void
LANGUAGE sql
AS $$ DELETE FROM test_folds.notes $$;
SELECT lives_ok(
    $$
        SELECT eventstore.register_projection(
            'notes', 'test_folds.note(eventstore.domain_events)', NULL, 'async', 'test_folds.forget()'
        );
        SELECT eventstore.register_external_projection('client');
    $$,
    'setup: an async and an external projection registered by the owner'
);

-- eventstore_writer
SET LOCAL ROLE eventstore_writer;
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 0, '[{"event_type": "ItemAdded", "payload": {}}]'
        )
    $$,
    'eventstore_writer can append'
);
SELECT results_eq(
    $$SELECT event_version FROM eventstore.load_events('a0000000-0000-4000-8000-000000000001')$$,
    ARRAY[0, 1],
    'eventstore_writer can load events'
);
SELECT lives_ok(
    'SELECT * FROM eventstore.read_all()',
    'eventstore_writer can read the feed'
);
SELECT lives_ok(
    $$SELECT * FROM eventstore.read_all('(0,0)')$$,
    'eventstore_writer can read the feed by text position'
);
SELECT throws_ok(
    $$
        INSERT INTO eventstore.domain_events (
            event_id, aggregate_type, aggregate_id, event_type, event_version, payload, feed_key
        )
        VALUES (gen_random_uuid(), 'Order', 'a0000000-0000-4000-8000-000000000001', 'Forged', 9, '{}', 1)
    $$,
    '42501', NULL, 'eventstore_writer cannot INSERT into domain_events'
);
SELECT throws_ok(
    $$UPDATE eventstore.domain_events SET payload = '{}'$$,
    '42501', NULL, 'eventstore_writer cannot UPDATE domain_events'
);
SELECT throws_ok(
    'DELETE FROM eventstore.domain_events',
    '42501', NULL, 'eventstore_writer cannot DELETE from domain_events'
);
SELECT throws_ok(
    'UPDATE eventstore.streams SET version = 0',
    '42501', NULL, 'eventstore_writer cannot UPDATE streams'
);
SELECT throws_ok(
    'DELETE FROM eventstore.streams',
    '42501', NULL, 'eventstore_writer cannot DELETE from streams'
);
SELECT throws_ok(
    'UPDATE eventstore.settings SET feed_key_offset = 0',
    '42501', NULL, 'eventstore_writer cannot UPDATE settings'
);
SELECT throws_ok(
    'SELECT eventstore.after_restore()',
    '42501', NULL, 'eventstore_writer cannot run after_restore'
);
SELECT throws_ok(
    $$SELECT eventstore._check_append('Order', 'a0000000-0000-4000-8000-000000000001', NULL, '[]')$$,
    '42501', NULL, 'eventstore_writer cannot call internal functions'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000003')$$,
    $$VALUES ('{"count": 1}'::jsonb, 0)$$,
    'eventstore_writer can load an aggregate'
);
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('Tally', 'test_folds.tally(jsonb, eventstore.domain_events)')$$,
    '42501', NULL, 'eventstore_writer cannot register an aggregate type'
);
SELECT throws_ok(
    $$SELECT eventstore.take_snapshot('Tally', 'a0000000-0000-4000-8000-000000000003')$$,
    '42501', NULL, 'eventstore_writer cannot take a snapshot'
);
SELECT throws_ok(
    'SELECT eventstore.prune_snapshots()',
    '42501', NULL, 'eventstore_writer cannot prune snapshots'
);
SELECT throws_ok(
    $$
        INSERT INTO eventstore.aggregate_snapshots (aggregate_type, aggregate_id, version, state, fold_identity)
        VALUES ('Tally', 'a0000000-0000-4000-8000-000000000003', 0, '{"count": 1000}', 'forged')
    $$,
    '42501', NULL, 'eventstore_writer cannot INSERT into aggregate_snapshots'
);
SELECT throws_ok(
    'UPDATE eventstore.aggregate_types SET snapshot_every = 1',
    '42501', NULL, 'eventstore_writer cannot UPDATE aggregate_types'
);
SELECT is(eventstore.run_projection('notes'), 0, 'eventstore_writer can run an async projection');
SELECT results_eq(
    $$SELECT after, state FROM eventstore.lock_projection('client')$$,
    $$VALUES (ROW(-1, 0)::eventstore.feed_position, 'running')$$,
    'eventstore_writer can lock an external projection'
);
SELECT lives_ok(
    $$
        SELECT eventstore.save_projection_checkpoint('client', '(1,1)', 1);
        SELECT eventstore.fail_projection('client', '(1,2)', 'boom');
    $$,
    'eventstore_writer can save an external projection''s checkpoint and record its failure'
);
SELECT results_eq(
    $$SELECT name, state, position FROM eventstore.projection_status ORDER BY name$$,
    $$
        VALUES
        ('client', 'failed', ROW(1, 1)::eventstore.feed_position),
        ('notes', 'running', ROW(-1, 0)::eventstore.feed_position)
    $$,
    'eventstore_writer can read projection_status'
);
SELECT throws_ok(
    $$SELECT eventstore.register_projection('mine', 'test_folds.note(eventstore.domain_events)', NULL, 'async')$$,
    '42501', NULL, 'eventstore_writer cannot register a projection'
);
SELECT throws_ok(
    $$SELECT eventstore.skip_projection_event('client')$$,
    '42501', NULL, 'eventstore_writer cannot skip an event'
);
SELECT throws_ok(
    $$SELECT eventstore.rebuild_projection('notes')$$,
    '42501', NULL, 'eventstore_writer cannot rebuild a projection'
);
SELECT throws_ok(
    $$UPDATE eventstore.projections SET state = 'running'$$,
    '42501', NULL, 'eventstore_writer cannot UPDATE projections'
);
RESET ROLE;

-- eventstore_reader
SET LOCAL ROLE eventstore_reader;
SELECT throws_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 1, '[{"event_type": "ItemAdded", "payload": {}}]'
        )
    $$,
    '42501', NULL, 'eventstore_reader cannot append'
);
SELECT results_eq(
    $$SELECT event_version FROM eventstore.load_events('a0000000-0000-4000-8000-000000000001')$$,
    ARRAY[0, 1],
    'eventstore_reader can load events'
);
SELECT lives_ok(
    'SELECT * FROM eventstore.read_all()',
    'eventstore_reader can read the feed'
);
SELECT lives_ok(
    $$SELECT * FROM eventstore.read_all('(0,0)')$$,
    'eventstore_reader can read the feed by text position'
);
SELECT is(
    (
        SELECT count(*)
        FROM eventstore.domain_events
        WHERE aggregate_id = 'a0000000-0000-4000-8000-000000000001'
    ),
    2::bigint,
    'eventstore_reader can SELECT domain_events'
);
SELECT lives_ok(
    $$
        SELECT *
        FROM eventstore.streams
        CROSS JOIN eventstore.settings
        CROSS JOIN eventstore.schema_migrations
    $$,
    'eventstore_reader can SELECT streams, settings and schema_migrations'
);
SELECT throws_ok(
    $$
        INSERT INTO eventstore.domain_events (
            event_id, aggregate_type, aggregate_id, event_type, event_version, payload, feed_key
        )
        VALUES (gen_random_uuid(), 'Order', 'a0000000-0000-4000-8000-000000000001', 'Forged', 9, '{}', 1)
    $$,
    '42501', NULL, 'eventstore_reader cannot INSERT into domain_events'
);
SELECT throws_ok(
    $$UPDATE eventstore.domain_events SET payload = '{}'$$,
    '42501', NULL, 'eventstore_reader cannot UPDATE domain_events'
);
SELECT throws_ok(
    'DELETE FROM eventstore.domain_events',
    '42501', NULL, 'eventstore_reader cannot DELETE from domain_events'
);
SELECT throws_ok(
    $$
        INSERT INTO eventstore.streams (aggregate_id, aggregate_type, version, last_feed_key, last_occurred_at)
        VALUES ('a0000000-0000-4000-8000-000000000002', 'Order', 0, 0, now())
    $$,
    '42501', NULL, 'eventstore_reader cannot INSERT into streams'
);
SELECT results_eq(
    $$SELECT state, version FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000003')$$,
    $$VALUES ('{"count": 1}'::jsonb, 0)$$,
    'eventstore_reader can load an aggregate'
);
SELECT results_eq(
    $$
        SELECT version
        FROM eventstore.aggregate_state_at_version('Tally', 'a0000000-0000-4000-8000-000000000003', 0)
        UNION ALL
        SELECT version
        FROM eventstore.aggregate_state_at('Tally', 'a0000000-0000-4000-8000-000000000003', 'infinity')
        UNION ALL
        SELECT event_version
        FROM eventstore.aggregate_history('a0000000-0000-4000-8000-000000000003')
    $$,
    ARRAY[0, 0, 0],
    'eventstore_reader can run aggregate_state_at_version, aggregate_state_at and aggregate_history'
);
SELECT lives_ok(
    'SELECT * FROM eventstore.event_counts(NULL, NULL)',
    'eventstore_reader can run event_counts'
);
SELECT lives_ok(
    'SELECT * FROM eventstore.aggregate_types CROSS JOIN eventstore.aggregate_snapshots',
    'eventstore_reader can SELECT aggregate_types and aggregate_snapshots'
);
SELECT throws_ok(
    $$SELECT eventstore.register_aggregate_type('Tally', 'test_folds.tally(jsonb, eventstore.domain_events)')$$,
    '42501', NULL, 'eventstore_reader cannot register an aggregate type'
);
SELECT throws_ok(
    $$SELECT eventstore.take_snapshot('Tally', 'a0000000-0000-4000-8000-000000000003')$$,
    '42501', NULL, 'eventstore_reader cannot take a snapshot'
);
SELECT throws_ok(
    'SELECT eventstore.prune_snapshots()',
    '42501', NULL, 'eventstore_reader cannot prune snapshots'
);
SELECT throws_ok(
    $$
        INSERT INTO eventstore.aggregate_snapshots (aggregate_type, aggregate_id, version, state, fold_identity)
        VALUES ('Tally', 'a0000000-0000-4000-8000-000000000003', 0, '{"count": 1000}', 'forged')
    $$,
    '42501', NULL, 'eventstore_reader cannot INSERT into aggregate_snapshots'
);
SELECT throws_ok(
    'DELETE FROM eventstore.aggregate_types',
    '42501', NULL, 'eventstore_reader cannot DELETE from aggregate_types'
);
SELECT results_eq(
    $$SELECT name, mode, state, lag FROM eventstore.projection_status ORDER BY name$$,
    $$VALUES ('client', 'external', 'failed', 3::bigint), ('notes', 'async', 'running', 3::bigint)$$,
    'eventstore_reader can read projection_status'
);
SELECT is_empty(
    'SELECT * FROM eventstore.rebuild_progress()',
    'eventstore_reader can run rebuild_progress'
);
SELECT throws_ok(
    $$SELECT eventstore.run_projection('notes')$$,
    '42501', NULL, 'eventstore_reader cannot run a projection'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.lock_projection('client')$$,
    '42501', NULL, 'eventstore_reader cannot lock an external projection'
);
SELECT throws_ok(
    $$SELECT eventstore.save_projection_checkpoint('client', '(9,9)', 1)$$,
    '42501', NULL, 'eventstore_reader cannot move an external projection''s checkpoint'
);
SELECT throws_ok(
    'DELETE FROM eventstore.projections',
    '42501', NULL, 'eventstore_reader cannot DELETE from projections'
);
RESET ROLE;

-- eventstore_admin
SET LOCAL ROLE eventstore_admin;
SELECT lives_ok(
    'SELECT eventstore.after_restore()',
    'eventstore_admin can run after_restore'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', 1, '[{"event_type": "ItemAdded", "payload": {}}]'
        )
    $$,
    'eventstore_admin can append'
);
SELECT throws_ok(
    $$
        INSERT INTO eventstore.domain_events (
            event_id, aggregate_type, aggregate_id, event_type, event_version, payload, feed_key
        )
        VALUES (gen_random_uuid(), 'Order', 'a0000000-0000-4000-8000-000000000001', 'Forged', 9, '{}', 1)
    $$,
    '42501', NULL, 'eventstore_admin cannot INSERT into domain_events'
);
SELECT throws_ok(
    $$UPDATE eventstore.domain_events SET payload = '{}'$$,
    '42501', NULL, 'eventstore_admin cannot UPDATE domain_events'
);
SELECT throws_ok(
    'DELETE FROM eventstore.domain_events',
    '42501', NULL, 'eventstore_admin cannot DELETE from domain_events'
);
SELECT throws_ok(
    'UPDATE eventstore.settings SET feed_key_offset = 0',
    '42501', NULL, 'eventstore_admin cannot UPDATE settings'
);
SELECT throws_ok(
    'DELETE FROM eventstore.streams',
    '42501', NULL, 'eventstore_admin cannot DELETE from streams'
);
SELECT lives_ok(
    $$
        SELECT eventstore.register_aggregate_type(
            'Tally', 'test_folds.tally(jsonb, eventstore.domain_events)', '{"count": 10}', 0
        )
    $$,
    'eventstore_admin can register an aggregate type'
);
SELECT is(
    eventstore.take_snapshot('Tally', 'a0000000-0000-4000-8000-000000000003'),
    0,
    'eventstore_admin can take a snapshot'
);
SELECT is(
    eventstore.prune_snapshots('Tally', 0),
    1::bigint,
    'eventstore_admin can prune snapshots'
);
SELECT throws_ok(
    $$
        INSERT INTO eventstore.aggregate_snapshots (aggregate_type, aggregate_id, version, state, fold_identity)
        VALUES ('Tally', 'a0000000-0000-4000-8000-000000000003', 0, '{"count": 1000}', 'forged')
    $$,
    '42501', NULL, 'eventstore_admin cannot INSERT into aggregate_snapshots'
);
SELECT throws_ok(
    'DELETE FROM eventstore.aggregate_snapshots',
    '42501', NULL, 'eventstore_admin cannot DELETE from aggregate_snapshots'
);
SELECT throws_ok(
    $$
        INSERT INTO eventstore.aggregate_types (aggregate_type, fold, initial_state, snapshot_every, fold_aggregate)
        VALUES ('Forged', 'test_folds.tally(jsonb, eventstore.domain_events)', '{}', 0, 'count')
    $$,
    '42501', NULL, 'eventstore_admin cannot INSERT into aggregate_types'
);
SELECT throws_ok(
    'UPDATE eventstore.aggregate_types SET snapshot_every = 1',
    '42501', NULL, 'eventstore_admin cannot UPDATE aggregate_types'
);
SELECT is(eventstore.skip_projection_event('client'), 2::bigint, 'eventstore_admin can skip an event');
SELECT lives_ok(
    $$
        SELECT eventstore.pause_projection('notes');
        SELECT eventstore.resume_projection('notes');
        SELECT eventstore.retry_projection('notes');
    $$,
    'eventstore_admin can pause, resume and retry a projection'
);
SELECT is(eventstore.rebuild_projection('notes'), 0::bigint, 'eventstore_admin can rebuild a projection');
SELECT lives_ok(
    $$
        SELECT eventstore.register_projection(
            'notes_inline', 'test_folds.note(eventstore.domain_events)', ARRAY['Counted'], 'inline'
        );
        SELECT eventstore.register_external_projection('client2');
        SELECT eventstore.unregister_projection('client2');
    $$,
    'eventstore_admin can register and unregister projections'
);
SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Note', 'a0000000-0000-4000-8000-000000000004', -1, '[{"event_type": "Counted", "payload": {}}]'
        )
    $$,
    'eventstore_admin''s inline projection runs on append'
);
SELECT throws_ok(
    $$INSERT INTO eventstore.projections (name, mode) VALUES ('forged', 'external')$$,
    '42501', NULL, 'eventstore_admin cannot INSERT into projections'
);
SELECT throws_ok(
    $$UPDATE eventstore.projections SET checkpoint_feed_key = 0$$,
    '42501', NULL, 'eventstore_admin cannot UPDATE projections'
);
RESET ROLE;
SELECT is(
    (SELECT count(*) FROM test_folds.notes),
    1::bigint,
    'the inline projection saw the append'
);

-- PUBLIC: a role outside the three gets nothing.
CREATE ROLE eventstore_test_outsider NOLOGIN;
SET LOCAL ROLE eventstore_test_outsider;
SELECT throws_ok(
    'SELECT * FROM eventstore.read_all()',
    '42501', NULL, 'a role outside the three cannot read the feed'
);
SELECT throws_ok(
    'SELECT count(*) FROM eventstore.domain_events',
    '42501', NULL, 'a role outside the three cannot SELECT domain_events'
);
SELECT throws_ok(
    $$SELECT * FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000003')$$,
    '42501', NULL, 'a role outside the three cannot load an aggregate'
);
SELECT throws_ok(
    'SELECT * FROM eventstore.projection_status',
    '42501', NULL, 'a role outside the three cannot read projection_status'
);
SELECT throws_ok(
    $$SELECT eventstore.run_projection('notes')$$,
    '42501', NULL, 'a role outside the three cannot run a projection'
);
RESET ROLE;

SELECT results_eq(
    $$SELECT state FROM eventstore.load_aggregate('Tally', 'a0000000-0000-4000-8000-000000000003')$$,
    $$VALUES ('{"count": 11}'::jsonb)$$,
    'no forged snapshot or registration got in: the admin''s registration holds'
);

SELECT is(
    (
        SELECT count(*)
        FROM eventstore.domain_events
        WHERE event_type = 'Forged'
    ),
    0::bigint,
    'no forged event got in'
);

SELECT * FROM finish();
ROLLBACK;
