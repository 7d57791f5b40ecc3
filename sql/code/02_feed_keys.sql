-- Feed keys and the fence: the order of the global feed, and how far it may
-- be read. See docs/feed.md ("Why it never skips") for the proof these
-- functions implement.
--
-- An appender first registers: it takes ROW EXCLUSIVE on domain_events, which
-- readers see in pg_locks. Its key is then
--   greatest(own transaction id, a fresh floor, the aggregate's previous key) + offset
-- where the floor is read after registering and is at least the xmax of any
-- snapshot taken before. A reader's fence, for its snapshot S, is the offset plus
-- the least of: S's xmax; its own transaction id; the transaction ids (running
-- at S) of registered appenders; and those of transactions running at S that
-- have ended since. A transaction that neither appended nor ended since S
-- can only append later, registered after the reader looked, so above the
-- fence: unrelated transactions, however long, do not hold it back.

-- Internal helpers like the ones below carry no SET search_path: their callers
-- set it, and without the clause PostgreSQL can inline a SQL function and
-- skips a configuration change per call (both matter on the append path).

-- The highest transaction id a feed key (less the offset) visible in this
-- snapshot can have been made from, unless it came from another cluster: a key
-- is made from a transaction id, the xmax of an earlier snapshot, or a fresh
-- transaction id of our own (eventstore.key_floor, see _fresh_transaction_id()).
CREATE OR REPLACE FUNCTION eventstore._key_ceiling()
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT greatest(
        pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
        pg_current_xact_id_if_assigned()::text::bigint,
        nullif(current_setting('eventstore.key_floor', TRUE), '')::bigint
    );
$$;

COMMENT ON FUNCTION eventstore._key_ceiling() IS
'Internal: the highest transaction id a feed key (less the offset) visible in this snapshot can come from, in this cluster.';

-- A transaction id assigned now: at or above the xmax of every snapshot taken
-- before. An appender needs one after registering when its own transaction id
-- is older and its snapshot cannot tell (REPEATABLE READ, SERIALIZABLE): a
-- subtransaction that inserts a row gets one, and is rolled back. Rare: only
-- for a transaction of those levels that wrote before its append. The id is
-- kept in eventstore.key_floor (transaction-local) for _key_ceiling().
CREATE OR REPLACE FUNCTION eventstore._fresh_transaction_id()
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_top bigint := pg_current_xact_id()::text::bigint;
    v_sub xid;
    v_fresh bigint;
BEGIN
    BEGIN
        INSERT INTO eventstore.key_floor_probe DEFAULT VALUES RETURNING xmin INTO v_sub;
        -- Only to roll the probe back; caught below, never seen by a caller.
        RAISE EXCEPTION 'probe done' USING ERRCODE = 'ES900';
    EXCEPTION WHEN SQLSTATE 'ES900' THEN
        NULL;
    END;
    -- The subtransaction's id is 32 bits, newer than the top-level one and
    -- less than 2^31 ahead of it: widen it with the top-level id's epoch.
    v_fresh := v_top + ((v_sub::text::bigint - v_top % 4294967296 + 4294967296) % 4294967296);
    PERFORM set_config('eventstore.key_floor', v_fresh::text, TRUE);
    RETURN v_fresh;
END;
$$;

COMMENT ON FUNCTION eventstore._fresh_transaction_id() IS
'Internal: a transaction id assigned now (a rolled-back subtransaction''s), for appenders whose snapshot is older than their registration.';

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
    v_ceiling bigint := eventstore._key_ceiling();
BEGIN
    SELECT s.feed_key_offset INTO v_offset FROM eventstore.settings AS s;
    SELECT max(d.feed_key) INTO v_highest_key FROM eventstore.domain_events AS d;
    IF v_highest_key > v_ceiling + v_offset THEN
        RAISE EXCEPTION 'the event store holds feed keys ahead of this cluster''s transaction ids'
            USING ERRCODE = 'ES006',
                  DETAIL = format('highest stored feed key %s, highest transaction id %s, offset %s',
                                  v_highest_key, v_ceiling, v_offset),
                  HINT = 'The database was restored into another cluster: run SELECT eventstore.after_restore(); once.';
    END IF;
    RETURN v_offset;
END;
$$;

COMMENT ON FUNCTION eventstore._checked_feed_key_offset() IS
'Internal: the feed key offset; raises ES006 when stored keys are ahead of the transaction-id counter (a restore into a new cluster).';

-- The fence less the offset, for the current snapshot S. pg_locks is read
-- once (the CTE), after S was taken; that order is what the proof needs, and
-- it holds for any S the caller uses: a statement's or a transaction's.
-- The result is also valid for any later snapshot.
-- pg_locks holds 32-bit transaction ids; every one of them that matters is in
-- S's list of running ids (64-bit), which is what they are matched against.
-- On a standby there are no appenders to see: the oldest running id, as the
-- feed did before 0.4.0. PL/pgSQL, not SQL: it keeps the query's plan for the
-- session (planning it, with the pg_locks view, costs ten times running it).
CREATE OR REPLACE FUNCTION eventstore._fence_transaction_id()
RETURNS bigint
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_locked_xids bigint[];
    v_registered_xids bigint[];
    v_registered_without_xid boolean;
BEGIN
    -- First statement: pg_locks, read after the snapshot S (the caller's).
    WITH locks AS MATERIALIZED (
        SELECT l.locktype, l.transactionid::text::bigint AS xid32, l.virtualtransaction
        FROM pg_catalog.pg_locks AS l
        WHERE l.granted
          AND (
              (l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock')
              OR (
                  l.locktype = 'relation'
                  AND l.mode = 'RowExclusiveLock'
                  AND l.relation = 'eventstore.domain_events'::regclass
                  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname = current_database())
              )
          )
    ),
    -- Registered appenders, with the transaction ids their transaction holds
    -- (top-level and subtransactions); none when pg_locks showed none.
    appenders AS (
        SELECT r.virtualtransaction, t.xid32
        FROM locks AS r
        LEFT JOIN locks AS t ON t.locktype = 'transactionid' AND t.virtualtransaction = r.virtualtransaction
        WHERE r.locktype = 'relation'
    )
    SELECT
        (SELECT array_agg(t.xid32) FROM locks AS t WHERE t.locktype = 'transactionid'),
        (SELECT array_agg(a.xid32) FROM appenders AS a WHERE a.xid32 IS NOT NULL),
        EXISTS (SELECT FROM appenders AS a WHERE a.xid32 IS NULL)
    INTO v_locked_xids, v_registered_xids, v_registered_without_xid;

    -- Second statement, so that pg_xact_status() runs after pg_locks was read.
    -- A transaction ending releases its fast-path relation lock before its
    -- transaction-id lock, and both only after it became visible: one that
    -- pg_locks shows with its id but not registered may be an appender that
    -- ended after S. pg_xact_status() tells it from one still running (which
    -- registers later, if ever, and then takes a key above S's xmax).
    RETURN (
    WITH snapshot AS (
        SELECT
            pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
            pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax,
            pg_current_xact_id_if_assigned()::text::bigint AS own
    ),
    running_at_snapshot AS (
        SELECT x AS full_xid, x::text::bigint AS xid, x::text::bigint % 4294967296 AS xid32
        FROM pg_snapshot_xip(pg_current_snapshot()) AS x
    )
    SELECT CASE WHEN pg_is_in_recovery() THEN s.xmin ELSE least(
        s.xmax,
        s.own,
        -- Running at S, ended since: it may have appended below S's xmax.
        (
            SELECT min(r.xid) FROM running_at_snapshot AS r
            WHERE NOT (r.xid32 = ANY(coalesce(v_locked_xids, '{}')))
               OR pg_xact_status(r.full_xid) IS DISTINCT FROM 'in progress'
        ),
        -- Running at S and registered: its key is at least its id.
        (SELECT min(r.xid) FROM running_at_snapshot AS r WHERE r.xid32 = ANY(coalesce(v_registered_xids, '{}'))),
        -- A registered appender without a visible id (it has none yet, it ended
        -- between pg_locks' two passes, or PREPARE TRANSACTION is moving its
        -- locks): any id it has or gets is at least S's xmin.
        CASE WHEN v_registered_without_xid THEN s.xmin END
    ) END
    FROM snapshot AS s
    );
END;
$$;

COMMENT ON FUNCTION eventstore._fence_transaction_id() IS
'Internal: the feed fence less the offset for the current snapshot: held back only by transactions that appended (or ended since the snapshot).';

-- The feed's fence: every event with a lower feed_key has committed (or
-- rolled back) before the current snapshot, so a query with this snapshot or
-- a later one sees all of them.
-- Public: operators compare it with consumers' positions to see lag.
CREATE OR REPLACE FUNCTION eventstore.feed_fence()
RETURNS bigint
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT eventstore._fence_transaction_id() + eventstore._checked_feed_key_offset();
$$;

COMMENT ON FUNCTION eventstore.feed_fence() IS
'The feed key below which every event is committed (or rolled back) as seen from the current snapshot: read_all returns only events below it. Held back by transactions that appended and are still open, not by other transactions. Errors: ES006.';

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
    -- After this, _key_ceiling() plus the offset is at or above every stored
    -- key, and new keys (at least that) sort after restored ones: a tie goes
    -- to the larger id, and the restored id sequence is ahead of every id.
    SELECT max(d.feed_key) - eventstore._key_ceiling()
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
