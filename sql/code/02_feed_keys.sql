-- Feed keys and the fence: the order of the global feed, and how far it may
-- be read.
--
-- An event's key is its transaction id plus the settings offset, raised to the
-- previous key of the same aggregate when that is higher. Readers only return
-- keys below the fence (the oldest transaction still running, plus the offset):
-- a key is never below its own transaction id, so no event can later appear
-- behind a reader; and keys never decrease along an aggregate, so (feed_key, id)
-- keeps every aggregate's versions in order. See docs/feed.md.

-- The lowest transaction id that no visible row can carry: above every
-- completed transaction of the snapshot, and above our own when we have one
-- (the snapshot's xmax alone can be at or below our own transaction id).
-- Internal helpers like this one carry no SET search_path: their callers set
-- it, and without the clause PostgreSQL can inline a SQL function and skips
-- a configuration change per call (both matter on the append path).
CREATE OR REPLACE FUNCTION eventstore._next_transaction_id()
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT greatest(
        pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
        pg_current_xact_id_if_assigned()::text::bigint + 1
    );
$$;

COMMENT ON FUNCTION eventstore._next_transaction_id() IS
'Internal: a transaction id above every transaction whose rows this snapshot can see.';

-- The offset, after checking that the transaction-id counter is ahead of every
-- stored key. It is not after a dump is restored into a new cluster; carrying
-- on would sort new events before restored ones and hide them from consumers,
-- so this raises ES006 until after_restore() has been run.
CREATE OR REPLACE FUNCTION eventstore._checked_feed_key_offset()
RETURNS bigint
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_offset bigint;
    v_highest_key bigint;
    v_next_xid bigint := eventstore._next_transaction_id();
BEGIN
    SELECT s.feed_key_offset INTO v_offset FROM eventstore.settings AS s;
    SELECT max(d.feed_key) INTO v_highest_key FROM eventstore.domain_events AS d;
    IF v_highest_key >= v_next_xid + v_offset THEN
        RAISE EXCEPTION 'the event store holds feed keys ahead of this cluster''s transaction ids'
            USING ERRCODE = 'ES006',
                  DETAIL = format('highest stored feed key %s, next transaction id %s, offset %s',
                                  v_highest_key, v_next_xid, v_offset),
                  HINT = 'The database was restored into another cluster: run SELECT eventstore.after_restore(); once.';
    END IF;
    RETURN v_offset;
END;
$$;

COMMENT ON FUNCTION eventstore._checked_feed_key_offset() IS
'Internal: the feed key offset; raises ES006 when stored keys are ahead of the transaction-id counter (a restore into a new cluster).';

-- The feed's fence: rows with a lower feed_key are committed or gone for good.
-- Public: operators compare it with consumers' positions to see lag.
CREATE OR REPLACE FUNCTION eventstore.feed_fence()
RETURNS bigint
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint + eventstore._checked_feed_key_offset();
$$;

COMMENT ON FUNCTION eventstore.feed_fence() IS
'The feed key below which every event is committed: the oldest running transaction id plus the offset. read_all returns only events below it; a long transaction holds it back. Errors: ES006.';

-- Operator step after restoring a dump into a new cluster: lift the offset so
-- that new keys (and the fence) are above every restored key. Idempotent.
CREATE OR REPLACE FUNCTION eventstore.after_restore()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_offset bigint;
    v_needed bigint;
BEGIN
    -- Lock the settings row: two operators running this at once agree.
    SELECT s.feed_key_offset INTO v_offset FROM eventstore.settings AS s FOR UPDATE;
    SELECT max(d.feed_key) - eventstore._next_transaction_id() + 1
    INTO v_needed
    FROM eventstore.domain_events AS d;
    IF v_needed IS NULL OR v_needed <= v_offset THEN
        RAISE NOTICE 'feed key offset % is already above every stored key; nothing to do', v_offset;
        RETURN v_offset;
    END IF;
    UPDATE eventstore.settings SET feed_key_offset = v_needed;
    RAISE NOTICE 'feed key offset raised from % to %', v_offset, v_needed;
    RETURN v_needed;
END;
$$;

COMMENT ON FUNCTION eventstore.after_restore() IS
'Run once after restoring a dump into a new cluster: raises the feed key offset above every restored key so the feed resumes without skipping. Idempotent; returns the offset.';
