-- Appending events: idempotent retries and append_events(), the hot path.
-- The checks of a call (ES002) are in 03_append_checks.sql. append_events()'s
-- two INSERTs (with and without the caller's event_ids) are written out on
-- purpose: the ON CONFLICT probe costs ~8% in W3 when no event_id is given.

-- When the events of this call are already stored (a client retrying after
-- an unknown outcome), returns the stored rows in version order; returns no
-- row when none of them is stored; raises ES005 when some event_id is stored
-- with other content, or only part of the call is stored.
-- The caller holds the aggregate's stream lock, so a concurrent retry of the
-- same call has either committed or not started.
CREATE OR REPLACE FUNCTION eventstore._stored_retry(
    p_aggregate_type text,
    p_aggregate_id uuid,
    p_events jsonb
)
RETURNS SETOF eventstore.domain_events
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_requested integer := jsonb_array_length(p_events);
    v_found integer;
    v_mismatch uuid;
BEGIN
    -- Pair every requested event with the stored event of the same event_id;
    -- a match must be the same aggregate, type and content, at consecutive
    -- versions in the order of the request.
    WITH requested AS (
        SELECT t.ord, t.e, (t.e ->> 'event_id')::uuid AS event_id
        FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t (e, ord)
    ),

    pairs AS (
        SELECT
            r.ord,
            d.event_id,
            d.aggregate_id = p_aggregate_id
            AND d.aggregate_type = p_aggregate_type
            AND d.event_type = r.e ->> 'event_type'
            AND d.payload = r.e -> 'payload'
            AND d.metadata = coalesce(nullif(r.e -> 'metadata', 'null'::jsonb), '{}'::jsonb)
            AND d.event_version - r.ord = min(d.event_version - r.ord) OVER () AS same
        FROM requested AS r
        INNER JOIN eventstore.domain_events AS d ON d.event_id = r.event_id
    )

    SELECT count(*), (array_agg(p.event_id ORDER BY p.ord) FILTER (WHERE NOT p.same))[1]
    INTO v_found, v_mismatch
    FROM pairs AS p;

    IF v_found = 0 THEN
        RETURN;
    END IF;
    IF v_mismatch IS NOT NULL THEN
        RAISE EXCEPTION 'event_id % is already stored with other content', v_mismatch
            USING ERRCODE = 'ES005',
                  DETAIL = format('aggregate %s', p_aggregate_id),
                  HINT = 'An event_id identifies one event; generate a new one for a new event.';
    END IF;
    IF v_found < v_requested THEN
        RAISE EXCEPTION '% of the % events of this call are already stored', v_found, v_requested
            USING ERRCODE = 'ES005',
                  DETAIL = format('aggregate %s', p_aggregate_id),
                  HINT = 'A retry must resend exactly the events of the original call, each with its event_id.';
    END IF;

    RETURN QUERY
    SELECT d.*
    FROM eventstore.domain_events AS d
    WHERE d.event_id IN (SELECT (t.e ->> 'event_id')::uuid FROM jsonb_array_elements(p_events) AS t (e))
    ORDER BY d.event_version;
END;
$$;

COMMENT ON FUNCTION eventstore._stored_retry(text, uuid, jsonb) IS
'Internal: the stored rows of an append that is being retried, none when it is new; ES005 when event_ids are reused.';

-- Purpose: append events to one aggregate atomically, with optimistic
-- concurrency. The stream row serializes writers of this aggregate only;
-- the events go in with one set-based INSERT.
CREATE OR REPLACE FUNCTION eventstore.append_events(
    p_aggregate_type text,
    p_aggregate_id uuid,
    p_expected_version integer,
    p_events jsonb
)
RETURNS SETOF eventstore.domain_events
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer;
    v_stream eventstore.streams%ROWTYPE;
    v_own_key bigint;
    v_key bigint;
    v_occurred_at timestamptz;
    v_first_version integer;
    v_last_version integer;
    v_stored integer;
    v_highest_key bigint;
    v_key_ceiling bigint;
    v_floor bigint;
    v_snapshot_every integer;
    v_has_event_ids boolean;
BEGIN
    PERFORM eventstore._check_append(p_aggregate_type, p_aggregate_id, p_expected_version, p_events);
    v_count := jsonb_array_length(p_events);
    v_has_event_ids := jsonb_path_exists(p_events, '$[*].event_id ? (@ != null)');

    -- Register as an appender before choosing the key: readers' fences wait
    -- for transactions holding ROW EXCLUSIVE on domain_events (the INSERT
    -- would take it anyway; readers take ACCESS SHARE only). Then a floor
    -- read after registering: at least the xmax of every snapshot a reader
    -- took before it could see us, so our key is not below its fence. See
    -- docs/feed.md ("Why it never skips").
    IF current_setting('transaction_isolation') = 'read committed' THEN
        -- Our id first, so readers see it with the lock; the floor is the
        -- xmax of the next statement's snapshot, taken after the lock.
        PERFORM pg_current_xact_id();
        LOCK TABLE eventstore.domain_events IN ROW EXCLUSIVE MODE;
    ELSE
        -- The snapshot is the transaction's, older than the lock: an id
        -- assigned after the lock is the floor. Ours, if we have none yet.
        LOCK TABLE eventstore.domain_events IN ROW EXCLUSIVE MODE;
        IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
            v_floor := eventstore._fresh_transaction_id();
        END IF;
    END IF;

    -- One statement reads the key, the feed key offset, the restore guard's
    -- inputs and the type's snapshot interval: on this path a call per value
    -- costs more than the values.
    SELECT
        greatest(
            pg_current_xact_id()::text::bigint,
            coalesce(v_floor, pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
        ) + s.feed_key_offset,
        greatest(
            pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
            pg_current_xact_id()::text::bigint,
            v_floor
        ) + s.feed_key_offset,
        (SELECT max(d.feed_key) FROM eventstore.domain_events AS d),
        (SELECT t.snapshot_every FROM eventstore.aggregate_types AS t WHERE t.aggregate_type = p_aggregate_type)
    INTO v_own_key, v_key_ceiling, v_highest_key, v_snapshot_every
    FROM eventstore.settings AS s;
    -- The test of _checked_feed_key_offset(), which raises ES006 for it (and
    -- knows this transaction's earlier floors): a stored key above every
    -- transaction id (plus the offset) means a restore into a new cluster.
    IF v_highest_key > v_key_ceiling THEN
        PERFORM eventstore._checked_feed_key_offset();
    END IF;

    -- Look up and lock the stream row, unless the call says the aggregate is
    -- new (-1): then creating the row is the whole check, and a conflict
    -- sends it to the look-up after all (a retry, or ES001).
    IF p_expected_version IS DISTINCT FROM -1 THEN
        SELECT s.* INTO v_stream
        FROM eventstore.streams AS s
        WHERE s.aggregate_id = p_aggregate_id
        FOR UPDATE;
        IF NOT FOUND AND p_expected_version >= 0 THEN
            RAISE EXCEPTION 'aggregate % does not exist, expected version %', p_aggregate_id, p_expected_version
                USING ERRCODE = 'ES001',
                      DETAIL = format('stream %s, expected version %s, actual version -1 (no events)',
                                      p_aggregate_id, p_expected_version),
                      HINT = 'Use expected version -1 to create an aggregate.';
        END IF;
    END IF;

    IF v_stream.aggregate_id IS NULL THEN
        -- A new aggregate: its first key is our own.
        v_key := v_own_key;
        v_occurred_at := clock_timestamp();
        INSERT INTO eventstore.streams AS s (aggregate_id, aggregate_type, version, last_feed_key, last_occurred_at)
        VALUES (p_aggregate_id, p_aggregate_type, v_count - 1, v_key, v_occurred_at)
        ON CONFLICT (aggregate_id) DO NOTHING;
        IF FOUND THEN
            v_first_version := 0;
        ELSE
            -- It exists: created before this call (-1 skipped the look-up), or
            -- by another transaction since our look-up, which has committed now.
            SELECT s.* INTO STRICT v_stream
            FROM eventstore.streams AS s
            WHERE s.aggregate_id = p_aggregate_id
            FOR UPDATE;
        END IF;
    END IF;

    IF v_first_version IS NULL THEN
        IF v_stream.aggregate_type <> p_aggregate_type THEN
            RAISE EXCEPTION 'aggregate % is of type %, not %', p_aggregate_id, v_stream.aggregate_type, p_aggregate_type
                USING ERRCODE = 'ES002',
                      HINT = 'An aggregate keeps the type it was created with.';
        END IF;

        -- A retry of a call that is already stored returns the stored rows,
        -- however stale its expected version is by now.
        IF v_has_event_ids THEN
            RETURN QUERY SELECT * FROM eventstore._stored_retry(p_aggregate_type, p_aggregate_id, p_events);
            IF FOUND THEN
                RETURN;
            END IF;
        END IF;

        IF p_expected_version IS DISTINCT FROM v_stream.version AND p_expected_version IS NOT NULL THEN
            RAISE EXCEPTION 'aggregate % is at version %, expected version %',
                            p_aggregate_id, v_stream.version, p_expected_version
                USING ERRCODE = 'ES001',
                      DETAIL = format('stream %s, expected version %s, actual version %s',
                                      p_aggregate_id, p_expected_version, v_stream.version),
                      HINT = 'Reload the aggregate, re-run the command, and append again.';
        END IF;

        v_first_version := v_stream.version + 1;
        v_key := greatest(v_own_key, v_stream.last_feed_key);
        v_occurred_at := greatest(clock_timestamp(), v_stream.last_occurred_at);
        UPDATE eventstore.streams AS s
        SET version = v_stream.version + v_count,
            last_feed_key = v_key,
            last_occurred_at = v_occurred_at
        WHERE s.aggregate_id = p_aggregate_id;
    END IF;

    IF NOT v_has_event_ids THEN
        -- Every event_id is generated here, and gen_random_uuid()'s 122 random
        -- bits do not collide in practice: no ON CONFLICT probe per event.
        RETURN QUERY
        INSERT INTO eventstore.domain_events AS d (
            event_id, aggregate_type, aggregate_id, event_type, event_version,
            payload, metadata, occurred_at, feed_key
        )
        SELECT
            gen_random_uuid(),
            p_aggregate_type,
            p_aggregate_id,
            t.e ->> 'event_type',
            v_first_version + t.ord::integer - 1,
            t.e -> 'payload',
            coalesce(nullif(t.e -> 'metadata', 'null'::jsonb), '{}'::jsonb),
            v_occurred_at,
            v_key
        FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t (e, ord)
        ORDER BY t.ord
        RETURNING d.*;
    ELSE
        -- The same with the caller's event_ids. ON CONFLICT: an event_id taken
        -- meanwhile by another aggregate's append must surface as ES005, not
        -- as a unique violation.
        RETURN QUERY
        INSERT INTO eventstore.domain_events AS d (
            event_id, aggregate_type, aggregate_id, event_type, event_version,
            payload, metadata, occurred_at, feed_key
        )
        SELECT
            coalesce((t.e ->> 'event_id')::uuid, gen_random_uuid()),
            p_aggregate_type,
            p_aggregate_id,
            t.e ->> 'event_type',
            v_first_version + t.ord::integer - 1,
            t.e -> 'payload',
            coalesce(nullif(t.e -> 'metadata', 'null'::jsonb), '{}'::jsonb),
            v_occurred_at,
            v_key
        FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t (e, ord)
        ORDER BY t.ord
        ON CONFLICT (event_id) DO NOTHING
        RETURNING d.*;

        GET DIAGNOSTICS v_stored = ROW_COUNT;
        IF v_stored < v_count THEN
            RAISE EXCEPTION 'an event_id of this call is already stored for another aggregate'
                USING ERRCODE = 'ES005',
                      DETAIL = format('aggregate %s: %s of %s events conflicted',
                                      p_aggregate_id, v_count - v_stored, v_count),
                      HINT = 'An event_id identifies one event; generate a new one for a new event.';
        END IF;
    END IF;

    -- An automatic snapshot when this append reached or crossed a multiple of
    -- the type's snapshot interval: of the append's last version.
    v_last_version := v_first_version + v_count - 1;
    IF v_snapshot_every > 0
       AND v_last_version >= v_snapshot_every
       AND (v_last_version / v_snapshot_every) * v_snapshot_every >= v_first_version THEN
        PERFORM eventstore._take_automatic_snapshot(p_aggregate_type, p_aggregate_id, v_last_version);
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.append_events(text, uuid, integer, jsonb) IS
'Appends events to one aggregate atomically and returns the stored rows in version order.
p_expected_version: -1 = the aggregate must not exist, N = its current version must be N, NULL = no check.
p_events: [{"event_type": text, "payload": object, "metadata": object?, "event_id": uuid?}, ...].
A retry whose event_ids are all stored with the same content returns the stored rows.
Errors: ES001 version conflict, ES002 invalid argument or event, ES005 event_id reused with other content, ES006 restore not finished.';
