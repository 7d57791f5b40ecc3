-- Wake-up hints for consumers on channel eventstore_events, sent at commit.
--
-- PostgreSQL 15 commits notifying transactions one at a time: PreCommit_Notify
-- takes a lock on the database that is held across the commit's WAL flush, so
-- a NOTIFY in every append transaction costs appends their group commit. By
-- default ('uncontended') a committing append transaction notifies only when
-- no other one is notifying at that moment: it takes the notify slot, a
-- transaction-level advisory lock, without waiting, and skips the NOTIFY when
-- another transaction holds it. The skipped transaction commits beside the
-- notifying one; consumers cover it by re-reading shortly after every wake-up
-- and by polling (docs/other-languages.md states the contract). It is only a
-- hint either way: consumers re-read the feed, which is the truth.

-- The key of the notify slot (pg_try_advisory_xact_lock(bigint)): the 64-bit
-- hash of 'eventstore_events' with seed 0, a constant so that it folds into
-- the trigger's cached plan. Documented: operators may see it in pg_locks.
CREATE OR REPLACE FUNCTION eventstore._notify_slot_key()
RETURNS bigint
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
RETURN -5427539809654024772;

COMMENT ON FUNCTION eventstore._notify_slot_key() IS
'Internal: the advisory-lock key of the notify slot (held by the one append transaction that is sending NOTIFY eventstore_events).';

-- Fires at commit (a deferred constraint trigger), once per stream row an
-- append wrote: deferred so that a long transaction that appended early takes
-- the slot only for its commit, not for its whole life. Several appends of one
-- transaction send the same payload, which PostgreSQL folds into one
-- notification. SECURITY DEFINER: at commit it runs as the session's user,
-- outside append_events(), and reads the settings.
CREATE OR REPLACE FUNCTION eventstore._notify_commit()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_mode text;
BEGIN
    SELECT s.notify_mode INTO v_mode FROM eventstore.settings AS s;
    IF v_mode = 'every_append'
        OR (v_mode = 'uncontended' AND pg_try_advisory_xact_lock(eventstore._notify_slot_key())) THEN
        PERFORM pg_notify('eventstore_events', pg_current_xact_id()::text);
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION eventstore._notify_commit() IS
'Internal: deferred trigger function that sends NOTIFY eventstore_events (payload: the transaction id) at the commit of an append transaction, as settings.notify_mode says.';

-- Constraint triggers have no CREATE OR REPLACE: drop and create again (in a
-- DO block, so that a fresh install prints no "does not exist" notice).
DO $drop_notify_trigger$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_trigger
        WHERE tgrelid = 'eventstore.streams'::regclass AND tgname = 'streams_notify'
    ) THEN
        DROP TRIGGER streams_notify ON eventstore.streams;
    END IF;
END;
$drop_notify_trigger$;
CREATE CONSTRAINT TRIGGER streams_notify
AFTER INSERT OR UPDATE ON eventstore.streams
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION eventstore._notify_commit();

-- Which committing append transactions send NOTIFY eventstore_events.
CREATE OR REPLACE FUNCTION eventstore.set_notify_mode(p_mode text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_previous text;
BEGIN
    IF p_mode IS NULL OR p_mode NOT IN ('uncontended', 'every_append', 'off') THEN
        RAISE EXCEPTION 'p_mode must be ''uncontended'', ''every_append'' or ''off''; got %',
            coalesce(quote_literal(p_mode), 'NULL')
            USING ERRCODE = 'ES002',
                  HINT = '''uncontended'' (the default) keeps group commit; ''every_append'' notifies from every '
                      || 'append transaction and commits them one at a time; ''off'' leaves consumers to poll.';
    END IF;
    SELECT s.notify_mode INTO v_previous FROM eventstore.settings AS s FOR UPDATE;
    UPDATE eventstore.settings SET notify_mode = p_mode;
    RETURN v_previous;
END;
$$;

COMMENT ON FUNCTION eventstore.set_notify_mode(text) IS
'Sets which committing append transactions send NOTIFY eventstore_events: ''uncontended'' (default: only when no other one is notifying), ''every_append'' (each, committing one at a time), ''off''. Returns the previous mode.';
