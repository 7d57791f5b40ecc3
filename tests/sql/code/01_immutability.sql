-- Events are immutable: UPDATE, DELETE and TRUNCATE on domain_events are
-- refused with ES004 for everyone, the owner and superusers included, and
-- under session_replication_role = replica too.
BEGIN;
SELECT plan(17);

SELECT lives_ok(
    $$
        SELECT eventstore.append_events(
            'Order', 'a0000000-0000-4000-8000-000000000001', -1,
            '[{"event_type": "OrderPlaced", "payload": {"total": 10}}, {"event_type": "ItemAdded", "payload": {}}]'
        )
    $$,
    'setup: an Order of two events'
);
SELECT ok(
    (
        SELECT rolsuper
        FROM pg_catalog.pg_roles
        WHERE rolname = current_user
    ),
    'these tests run as a superuser'
);
SELECT is(
    (
        SELECT tableowner::text
        FROM pg_catalog.pg_tables
        WHERE schemaname = 'eventstore' AND tablename = 'domain_events'
    ),
    current_user::text,
    'these tests run as the owner of domain_events'
);

SELECT throws_ok(
    $$UPDATE eventstore.domain_events SET payload = '{"total": 0}'$$,
    'ES004', NULL, 'UPDATE is refused'
);
SELECT throws_ok(
    $$UPDATE eventstore.domain_events SET payload = '{}' WHERE FALSE$$,
    'ES004', NULL, 'an UPDATE that matches no row is refused too'
);
SELECT throws_ok(
    'DELETE FROM eventstore.domain_events',
    'ES004', NULL, 'DELETE is refused'
);
SELECT throws_ok(
    $$DELETE FROM eventstore.domain_events WHERE event_version = 1$$,
    'ES004', NULL, 'DELETE of one event is refused'
);
SELECT throws_ok(
    'TRUNCATE eventstore.domain_events',
    'ES004', NULL, 'TRUNCATE is refused'
);
SELECT throws_ok(
    $$
        MERGE INTO eventstore.domain_events AS d
        USING (SELECT 1 AS one) AS s ON TRUE
        WHEN MATCHED THEN DELETE
    $$,
    'ES004', NULL, 'MERGE ... DELETE is refused'
);

-- session_replication_role = replica skips ordinary triggers; these are
-- ENABLE ALWAYS.
SELECT is_empty(
    $$
        SELECT tgname
        FROM pg_catalog.pg_trigger
        WHERE tgrelid = 'eventstore.domain_events'::regclass
          AND tgname IN ('domain_events_refuse_update_delete', 'domain_events_refuse_truncate')
          AND tgenabled <> 'A'
    $$,
    'the refusing triggers fire always'
);
SET LOCAL session_replication_role = replica;
SELECT throws_ok(
    $$UPDATE eventstore.domain_events SET payload = '{"total": 0}'$$,
    'ES004', NULL, 'UPDATE is refused under session_replication_role = replica'
);
SELECT throws_ok(
    'DELETE FROM eventstore.domain_events',
    'ES004', NULL, 'DELETE is refused under session_replication_role = replica'
);
SELECT throws_ok(
    'TRUNCATE eventstore.domain_events',
    'ES004', NULL, 'TRUNCATE is refused under session_replication_role = replica'
);
SET LOCAL session_replication_role = local;
SELECT throws_ok(
    'TRUNCATE eventstore.domain_events',
    'ES004', NULL, 'TRUNCATE is refused under session_replication_role = local'
);
RESET session_replication_role;

SELECT results_eq(
    $$SELECT event_version, payload FROM eventstore.load_events('a0000000-0000-4000-8000-000000000001')$$,
    $$VALUES (0, '{"total": 10}'::jsonb), (1, '{}'::jsonb)$$,
    'the events are unchanged'
);

-- The refusal is not a side effect of the statements above failing for
-- some other reason: the same statements work on an ordinary table.
CREATE TEMP TABLE events_copy AS
SELECT * FROM eventstore.domain_events;
SELECT lives_ok(
    $$UPDATE events_copy SET payload = '{"total": 0}'; DELETE FROM events_copy; TRUNCATE events_copy$$,
    'the same UPDATE, DELETE and TRUNCATE succeed on a copy of the table'
);
SELECT lives_ok(
    $$SELECT eventstore.append_events('Order', 'a0000000-0000-4000-8000-000000000001', 1,
        '[{"event_type": "OrderShipped", "payload": {}}]')$$,
    'appending (INSERT) still works'
);

SELECT * FROM finish();
ROLLBACK;
