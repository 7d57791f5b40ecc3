-- The wake-up NOTIFY: a deferred constraint trigger on streams that, in the
-- default mode 'uncontended', takes the notify slot (an advisory lock) without
-- waiting and notifies only when it got it. Whether a transaction took the slot
-- is read from pg_locks; a second session (dblink) holds the slot where the
-- test needs it held. That notifications arrive, one per transaction, is
-- tested with real listeners in tests/python/test_notify.py.
BEGIN;
SELECT plan(16);

CREATE EXTENSION dblink;

-- Whether this backend holds the notify slot (a bigint advisory key shows in
-- pg_locks as its high and low 32 bits).
CREATE FUNCTION pg_temp.holds_notify_slot()
RETURNS boolean
LANGUAGE sql
AS $$
    SELECT EXISTS (
        SELECT FROM pg_catalog.pg_locks AS l
        WHERE l.locktype = 'advisory' AND l.pid = pg_catalog.pg_backend_pid() AND l.granted
            AND l.objsubid = 1
            AND l.classid::bigint = (eventstore._notify_slot_key() >> 32) & 4294967295
            AND l.objid::bigint = eventstore._notify_slot_key() & 4294967295
    )
$$;

CREATE FUNCTION pg_temp.append_one()
RETURNS void
LANGUAGE sql
AS $$
    SELECT FROM eventstore.append_events('Order', gen_random_uuid(), -1, '[{"event_type": "OrderPlaced", "payload": {}}]')
$$;

SELECT hasnt_trigger(
    'eventstore', 'domain_events', 'domain_events_notify',
    'the per-statement NOTIFY trigger of 0.3.0 is gone'
);
SELECT trigger_is(
    'eventstore', 'streams', 'streams_notify', 'eventstore', '_notify_commit',
    'writes to streams fire _notify_commit()'
);
SELECT results_eq(
    $$
        SELECT t.tgconstraint <> 0, t.tgdeferrable, t.tginitdeferred
        FROM pg_catalog.pg_trigger AS t
        WHERE t.tgrelid = 'eventstore.streams'::regclass AND t.tgname = 'streams_notify'
    $$,
    $$VALUES (TRUE, TRUE, TRUE)$$,
    'streams_notify is a constraint trigger, deferred to commit by default'
);
SELECT is(
    (SELECT notify_mode FROM eventstore.settings),
    'uncontended',
    'the default notify mode is uncontended'
);

-- Deferred: an append does not take the slot when it runs, only at commit.
SELECT pg_temp.append_one();
SELECT ok(NOT pg_temp.holds_notify_slot(), 'an append does not take the notify slot before its commit');

-- Fire the deferred trigger now, as the commit would.
SELECT dblink_connect(
    'slot_holder',
    format(
        'host=%s port=%s dbname=%s user=%s',
        current_setting('listen_addresses'), current_setting('port'), current_database(), current_user
    )
);
SELECT lives_ok(
    $$SELECT * FROM dblink('slot_holder', 'SELECT pg_advisory_lock(eventstore._notify_slot_key())') AS t (r text)$$,
    'setup: another session holds the notify slot'
);
SET LOCAL lock_timeout = '2s';
SELECT lives_ok(
    'SET CONSTRAINTS eventstore.streams_notify IMMEDIATE',
    'with the slot held elsewhere, the commit-time trigger does not wait for it'
);
SELECT ok(NOT pg_temp.holds_notify_slot(), 'with the slot held elsewhere, the transaction skips the NOTIFY');

SELECT lives_ok(
    $$SELECT * FROM dblink('slot_holder', 'SELECT pg_advisory_unlock(eventstore._notify_slot_key())') AS t (r text)$$,
    'setup: the other session lets the slot go'
);
SET CONSTRAINTS eventstore.streams_notify DEFERRED;
SELECT pg_temp.append_one();
SET CONSTRAINTS eventstore.streams_notify IMMEDIATE;
SELECT ok(pg_temp.holds_notify_slot(), 'with the slot free, the committing append takes it (and notifies)');
SELECT dblink_disconnect('slot_holder');

-- The mode.
SELECT throws_ok(
    $$SELECT eventstore.set_notify_mode('sometimes')$$,
    'ES002', NULL, 'an unknown notify mode is refused with ES002'
);
SELECT throws_ok(
    'SELECT eventstore.set_notify_mode(NULL)',
    'ES002', NULL, 'a NULL notify mode is refused with ES002'
);
SELECT is(
    (SELECT notify_mode FROM eventstore.settings),
    'uncontended',
    'a refused mode changes nothing'
);
SELECT is(
    eventstore.set_notify_mode('off'),
    'uncontended',
    'set_notify_mode returns the previous mode'
);
SELECT is(
    eventstore.set_notify_mode('every_append'),
    'off',
    'set_notify_mode switches modes'
);
SELECT is(
    (SELECT notify_mode FROM eventstore.settings),
    'every_append',
    'the mode is stored in settings'
);

SELECT * FROM finish();
ROLLBACK;
