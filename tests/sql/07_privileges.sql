-- Privileges: eventstore_reader reads (functions and SELECT on the tables),
-- eventstore_writer also appends, eventstore_admin also runs operator
-- functions. No role but the owner may INSERT, UPDATE or DELETE on any table.
BEGIN;
-- after_restore's NOTICE is not what this file is about.
SET LOCAL client_min_messages = warning;
SELECT plan(48);

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
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND p.proname IN ('validate_append', 'stored_retry', 'checked_feed_key_offset')
          AND has_function_privilege('eventstore_admin', p.oid, 'EXECUTE')
    $$,
    'internal functions are not executable by the roles'
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
    $$SELECT eventstore.validate_append('Order', 'a0000000-0000-4000-8000-000000000001', NULL, '[]')$$,
    '42501', NULL, 'eventstore_writer cannot call internal functions'
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
RESET ROLE;

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
RESET ROLE;

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
