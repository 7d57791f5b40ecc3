-- pg_eventstore 0.1.0 -> 0.2.0: a faster append path and batch-wise projection handlers.
-- Applied by `pg-eventstore upgrade` (pg_eventstore.schema.upgrade) and by
-- ALTER EXTENSION eventstore UPDATE. tests/python/test_install.py checks that
-- 0.1.0 plus this script gives the same schema as a fresh 0.2.0 install.
--
-- - Internal helpers called only from functions that set search_path lose
--   their own SET search_path (a configuration change per call), and
--   next_transaction_id() becomes inlinable.
-- - append_events(): one statement reads the offset, the restore guard's
--   highest key and the snapshot interval; a new aggregate's stream row is
--   inserted without a look-up first; no ON CONFLICT probe when the call
--   carries no event_ids; the snapshot check moves into append_events()
--   (snapshot_if_due() is replaced by take_automatic_snapshot()).
-- - validate_append(): one pass without a subquery per event.
-- - read_all(): both overloads run one inlined query (feed_page()); the text
--   overload no longer calls the other, which stored every page twice.
-- - Projection handler wrappers take a batch (eventstore.domain_events[]):
--   run_projection() and rebuild_projection() switch rights once per batch.
--   The wrappers of projections registered under 0.1.0 are regenerated below.
-- - save_projection_checkpoint() refuses (ES002) a client that does not hold
--   the projection and a position behind the checkpoint.

-- sql/03_feed_key.sql
-- The lowest transaction id that no visible row can carry: above every
-- completed transaction of the snapshot, and above our own when we have one
-- (the snapshot's xmax alone can be at or below our own transaction id).
-- Internal helpers like this one carry no SET search_path: their callers set
-- it, and without the clause PostgreSQL can inline a SQL function and skips
-- a configuration change per call (both matter on the append path).
CREATE OR REPLACE FUNCTION eventstore.next_transaction_id()
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT greatest(
        pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
        pg_current_xact_id_if_assigned()::text::bigint + 1
    );
$$;

COMMENT ON FUNCTION eventstore.next_transaction_id() IS
'Internal: a transaction id above every transaction whose rows this snapshot can see.';

-- The offset, after checking that the transaction-id counter is ahead of every
-- stored key. It is not after a dump is restored into a new cluster; carrying
-- on would sort new events before restored ones and hide them from consumers,
-- so this raises ES006 until after_restore() has been run.
CREATE OR REPLACE FUNCTION eventstore.checked_feed_key_offset()
RETURNS bigint
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_offset bigint;
    v_highest_key bigint;
    v_next_xid bigint := eventstore.next_transaction_id();
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

COMMENT ON FUNCTION eventstore.checked_feed_key_offset() IS
'Internal: the feed key offset; raises ES006 when stored keys are ahead of the transaction-id counter (a restore into a new cluster).';

-- sql/04_append.sql
-- Raises ES002 naming the first bad argument or event; returns nothing when
-- the call is well formed. Nothing has been written when it raises.
-- No SET search_path (see next_transaction_id()): append_events() sets it.
CREATE OR REPLACE FUNCTION eventstore.validate_append(
    p_aggregate_type text,
    p_aggregate_id uuid,
    p_expected_version integer,
    p_events jsonb
)
RETURNS void
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_problem record;
BEGIN
    IF p_aggregate_type IS NULL OR btrim(p_aggregate_type) = '' THEN
        RAISE EXCEPTION 'p_aggregate_type must be a non-empty string'
            USING ERRCODE = 'ES002', HINT = 'Pass the aggregate''s type, e.g. ''Order''.';
    END IF;
    IF length(p_aggregate_type) > 255 THEN
        RAISE EXCEPTION 'p_aggregate_type is longer than 255 characters'
            USING ERRCODE = 'ES002';
    END IF;
    IF p_aggregate_id IS NULL THEN
        RAISE EXCEPTION 'p_aggregate_id must not be NULL'
            USING ERRCODE = 'ES002', HINT = 'Generate a UUID for a new aggregate.';
    END IF;
    IF p_expected_version < -1 THEN
        RAISE EXCEPTION 'p_expected_version must be -1, a version >= 0, or NULL; got %', p_expected_version
            USING ERRCODE = 'ES002',
                  HINT = '-1: the aggregate must not exist; N: its current version must be N; NULL: no check.';
    END IF;
    IF p_events IS NULL OR jsonb_typeof(p_events) <> 'array' OR jsonb_array_length(p_events) = 0 THEN
        RAISE EXCEPTION 'p_events must be a non-empty JSON array of events'
            USING ERRCODE = 'ES002',
                  HINT = 'Pass [{"event_type": "...", "payload": {...}}, ...].';
    END IF;

    -- The first malformed element, in array order (0-based, as in JSON).
    -- One pass, no subquery per element: on the append path.
    SELECT t.ord - 1 AS position, check_result.problem
    INTO v_problem
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t (e, ord)
    CROSS JOIN LATERAL (
        SELECT CASE
            WHEN jsonb_typeof(t.e) <> 'object'
                THEN 'is not a JSON object'
            WHEN t.e - ARRAY['event_type', 'payload', 'metadata', 'event_id'] <> '{}'::jsonb
                THEN 'has a key other than event_type, payload, metadata and event_id'
            WHEN jsonb_typeof(t.e -> 'event_type') IS DISTINCT FROM 'string'
                 OR btrim(t.e ->> 'event_type') = ''
                THEN 'needs "event_type": a non-empty string'
            WHEN length(t.e ->> 'event_type') > 255
                THEN 'has an event_type longer than 255 characters'
            WHEN jsonb_typeof(t.e -> 'payload') IS DISTINCT FROM 'object'
                THEN 'needs "payload": a JSON object'
            WHEN coalesce(jsonb_typeof(t.e -> 'metadata'), 'null') NOT IN ('object', 'null')
                THEN 'has "metadata" that is not a JSON object'
            WHEN coalesce(jsonb_typeof(t.e -> 'event_id'), 'null') NOT IN ('string', 'null')
                 OR (t.e ->> 'event_id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                THEN 'has an "event_id" that is not a UUID string'
            WHEN pg_column_size(t.e) > 1048576
                THEN 'is larger than 1 MiB'
        END AS problem
    ) AS check_result
    WHERE check_result.problem IS NOT NULL
    ORDER BY t.ord
    LIMIT 1;

    IF FOUND THEN
        RAISE EXCEPTION 'p_events[%] %', v_problem.position, v_problem.problem
            USING ERRCODE = 'ES002',
                  HINT = 'Each event is {"event_type": text, "payload": object, "metadata": object?, "event_id": uuid?}; events are at most 1 MiB.';
    END IF;

    -- Only calls that carry event_ids can repeat one: most appends skip this query.
    IF NOT jsonb_path_exists(p_events, '$[*].event_id ? (@ != null)') THEN
        RETURN;
    END IF;
    -- Grouped by the uuid: one id written in upper and in lower case is a duplicate too.
    SELECT min(t.e ->> 'event_id') AS event_id
    INTO v_problem
    FROM jsonb_array_elements(p_events) AS t (e)
    WHERE t.e ->> 'event_id' IS NOT NULL
    GROUP BY (t.e ->> 'event_id')::uuid
    HAVING count(*) > 1
    LIMIT 1;

    IF FOUND THEN
        RAISE EXCEPTION 'p_events carries event_id % more than once', v_problem.event_id
            USING ERRCODE = 'ES002', HINT = 'Every event needs its own event_id.';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.validate_append(text, uuid, integer, jsonb) IS
'Internal: raises ES002 naming the first malformed argument or event of an append_events() call.';

-- When the events of this call are already stored (a client retrying after
-- an unknown outcome), returns the stored rows in version order; returns no
-- row when none of them is stored; raises ES005 when some event_id is stored
-- with other content, or only part of the call is stored.
-- The caller holds the aggregate's stream lock, so a concurrent retry of the
-- same call has either committed or not started.
CREATE OR REPLACE FUNCTION eventstore.stored_retry(
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

COMMENT ON FUNCTION eventstore.stored_retry(text, uuid, jsonb) IS
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
    v_lowest_free_key bigint;
    v_snapshot_every integer;
    v_has_event_ids boolean;
BEGIN
    PERFORM eventstore.validate_append(p_aggregate_type, p_aggregate_id, p_expected_version, p_events);
    v_count := jsonb_array_length(p_events);
    v_has_event_ids := jsonb_path_exists(p_events, '$[*].event_id ? (@ != null)');

    -- One statement reads the feed key offset, the restore guard's inputs and
    -- the type's snapshot interval: on this path a call per value costs more
    -- than the values.
    SELECT
        pg_current_xact_id()::text::bigint + s.feed_key_offset,
        eventstore.next_transaction_id() + s.feed_key_offset,
        (SELECT max(d.feed_key) FROM eventstore.domain_events AS d),
        (SELECT t.snapshot_every FROM eventstore.aggregate_types AS t WHERE t.aggregate_type = p_aggregate_type)
    INTO v_own_key, v_lowest_free_key, v_highest_key, v_snapshot_every
    FROM eventstore.settings AS s;
    -- The test of checked_feed_key_offset(), which raises ES006 for it: a
    -- stored key at or above every transaction id (plus the offset) means a
    -- restore into a new cluster.
    IF v_highest_key >= v_lowest_free_key THEN
        PERFORM eventstore.checked_feed_key_offset();
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
            RETURN QUERY SELECT * FROM eventstore.stored_retry(p_aggregate_type, p_aggregate_id, p_events);
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
        PERFORM eventstore.take_automatic_snapshot(p_aggregate_type, p_aggregate_id, v_last_version);
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.append_events(text, uuid, integer, jsonb) IS
'Appends events to one aggregate atomically and returns the stored rows in version order.
p_expected_version: -1 = the aggregate must not exist, N = its current version must be N, NULL = no check.
p_events: [{"event_type": text, "payload": object, "metadata": object?, "event_id": uuid?}, ...].
A retry whose event_ids are all stored with the same content returns the stored rows.
Errors: ES001 version conflict, ES002 invalid argument or event, ES005 event_id reused with other content, ES006 restore not finished.';

-- sql/05_read.sql
-- Raises ES002 unless p_max_count, a page size of read_all(), is positive.
CREATE OR REPLACE FUNCTION eventstore.check_page_size(p_max_count integer)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_max_count IS NULL OR p_max_count < 1 THEN
        RAISE EXCEPTION 'p_max_count must be a positive integer; got %', coalesce(p_max_count::text, 'NULL')
            USING ERRCODE = 'ES002';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.check_page_size(integer) IS
'Internal: ES002 unless a read_all() page size is a positive integer.';

REVOKE ALL ON FUNCTION eventstore.check_page_size(integer) FROM PUBLIC;

-- One page of the feed after (p_after_key, p_after_id), below p_fence: the
-- query of both read_all() overloads. A plain SQL function, which the
-- planner inlines into their RETURN QUERY; one overload calling the other
-- would store every page twice (each set-returning call keeps its rows).
CREATE OR REPLACE FUNCTION eventstore.feed_page(
    p_after_key bigint,
    p_after_id bigint,
    p_fence bigint,
    p_max_count integer,
    p_event_types text[],
    p_aggregate_types text[]
)
RETURNS TABLE (
    id bigint,
    event_id uuid,
    aggregate_type text,
    aggregate_id uuid,
    event_type text,
    event_version integer,
    payload jsonb,
    metadata jsonb,
    occurred_at timestamptz,
    feed_key bigint,
    feed_position eventstore.feed_position
)
LANGUAGE sql
STABLE
AS $$
    SELECT
        d.id, d.event_id, d.aggregate_type, d.aggregate_id, d.event_type, d.event_version,
        d.payload, d.metadata, d.occurred_at, d.feed_key,
        ROW(d.feed_key, d.id)::eventstore.feed_position
    FROM eventstore.domain_events AS d
    WHERE (d.feed_key, d.id) > (p_after_key, p_after_id)
      AND d.feed_key < p_fence
      AND (p_event_types IS NULL OR d.event_type = ANY(p_event_types))
      AND (p_aggregate_types IS NULL OR d.aggregate_type = ANY(p_aggregate_types))
    ORDER BY d.feed_key, d.id
    LIMIT p_max_count;
$$;

COMMENT ON FUNCTION eventstore.feed_page(bigint, bigint, bigint, integer, text[], text[]) IS
'Internal: one page of the feed after a position and below a fence, in feed order (the query of read_all()).';

REVOKE ALL ON FUNCTION eventstore.feed_page(bigint, bigint, bigint, integer, text[], text[]) FROM PUBLIC;

-- Purpose: the global feed. Rows come in (feed_key, id) order and only below
-- the fence: the oldest transaction still running (plus the offset). Every
-- transaction below the fence has ended, so nothing can commit behind a
-- reader's position later: the feed never skips, and never repeats.
CREATE OR REPLACE FUNCTION eventstore.read_all(
    p_after eventstore.feed_position DEFAULT NULL,
    p_max_count integer DEFAULT 1000,
    p_event_types text[] DEFAULT NULL,
    p_aggregate_types text[] DEFAULT NULL
)
RETURNS TABLE (
    id bigint,
    event_id uuid,
    aggregate_type text,
    aggregate_id uuid,
    event_type text,
    event_version integer,
    payload jsonb,
    metadata jsonb,
    occurred_at timestamptz,
    feed_key bigint,
    feed_position eventstore.feed_position
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_after_key bigint := -1;
    v_after_id bigint := 0;
BEGIN
    PERFORM eventstore.check_page_size(p_max_count);
    -- Not "p_after IS NOT NULL": a row is NOT NULL only when every field is,
    -- so a half-NULL position would be read from the start instead of refused.
    IF NOT p_after IS NULL THEN
        IF (p_after).feed_key IS NULL OR (p_after).id IS NULL THEN
            RAISE EXCEPTION 'p_after must be a full feed position or NULL; got %', p_after
                USING ERRCODE = 'ES002', HINT = 'Pass the feed_position of the last row you processed.';
        END IF;
        v_after_key := (p_after).feed_key;
        v_after_id := (p_after).id;
    END IF;
    RETURN QUERY
    SELECT * FROM eventstore.feed_page(
        v_after_key, v_after_id, eventstore.feed_fence(), p_max_count, p_event_types, p_aggregate_types
    );
END;
$$;

COMMENT ON FUNCTION eventstore.read_all(eventstore.feed_position, integer, text[], text[]) IS
'The global feed after p_after (NULL: from the start), at most p_max_count rows, optionally only the given event and aggregate types.
Gap-free: a row never appears behind a position already returned. Each aggregate comes in version order.
Pass the last row''s feed_position back as p_after to resume. Errors: ES002, ES006.';

-- The same feed, with the position in its text form '(feed_key,id)', as
-- clients store it. NULL starts from the beginning.
CREATE OR REPLACE FUNCTION eventstore.read_all(
    p_after text,
    p_max_count integer DEFAULT 1000,
    p_event_types text[] DEFAULT NULL,
    p_aggregate_types text[] DEFAULT NULL
)
RETURNS TABLE (
    id bigint,
    event_id uuid,
    aggregate_type text,
    aggregate_id uuid,
    event_type text,
    event_version integer,
    payload jsonb,
    metadata jsonb,
    occurred_at timestamptz,
    feed_key bigint,
    feed_position eventstore.feed_position
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- Two unsigned integers, each within bigint: anything else is ES002, not a
    -- cast error. The second test is NULL when the first fails, whatever the order.
    -- (-1,0) is the position before the first event, as checkpoints start.
    IF p_after !~ '^\(-?[0-9]+,-?[0-9]+\)$'
       OR (SELECT max(abs(n::numeric)) FROM unnest(regexp_match(p_after, '^\((-?[0-9]+),(-?[0-9]+)\)$')) AS n)
          > 9223372036854775807 THEN
        RAISE EXCEPTION 'p_after is not a feed position: %', p_after
            USING ERRCODE = 'ES002', HINT = 'A feed position reads ''(feed_key,id)'', e.g. ''(1234,56)''.';
    END IF;
    PERFORM eventstore.check_page_size(p_max_count);
    RETURN QUERY
    SELECT * FROM eventstore.feed_page(
        coalesce((p_after::eventstore.feed_position).feed_key, -1),
        coalesce((p_after::eventstore.feed_position).id, 0),
        eventstore.feed_fence(), p_max_count, p_event_types, p_aggregate_types
    );
END;
$$;

COMMENT ON FUNCTION eventstore.read_all(text, integer, text[], text[]) IS
'read_all() with the position in its text form ''(feed_key,id)''; NULL starts from the beginning. Errors: ES002, ES006.';

-- sql/06_notify.sql
-- No SET search_path (see next_transaction_id()): it fires inside the
-- functions that insert events, which set it, once per append.
CREATE OR REPLACE FUNCTION eventstore.notify_append()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('eventstore_events', pg_current_xact_id()::text);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION eventstore.notify_append() IS
'Trigger function: NOTIFY eventstore_events once per appending transaction (payload: the transaction id).';

-- sql/08_snapshots.sql
DROP FUNCTION eventstore.snapshot_if_due(text, uuid, integer, integer);

-- Called by append_events() when an append reached or crossed a multiple of
-- the type's snapshot_every: snapshots the append's last version. A snapshot
-- is a cache: if the fold fails here, the append goes on with a WARNING
-- (loading the aggregate will raise the same error).
CREATE OR REPLACE FUNCTION eventstore.take_automatic_snapshot(
    p_aggregate_type text,
    p_aggregate_id uuid,
    p_version integer
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type eventstore.aggregate_types;
    v_error text;
BEGIN
    SELECT t.* INTO STRICT v_type FROM eventstore.aggregate_types AS t WHERE t.aggregate_type = p_aggregate_type;
    BEGIN
        PERFORM eventstore.save_snapshot(v_type, p_aggregate_id, p_version);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT;
        RAISE WARNING 'no snapshot of % % at version %: %', p_aggregate_type, p_aggregate_id, p_version, v_error
            USING HINT = 'The events are stored; fix the fold and run eventstore.take_snapshot().';
    END;
END;
$$;

COMMENT ON FUNCTION eventstore.take_automatic_snapshot(text, uuid, integer) IS
'Internal: the automatic snapshot of an append''s last version, taken when append_events() finds it due; a failing fold only WARNs.';

REVOKE ALL ON FUNCTION eventstore.take_automatic_snapshot(text, uuid, integer) FROM PUBLIC;

-- sql/10_projections.sql
-- The next events of the feed for a projection: after its checkpoint, below
-- the fence (or all committed ones when p_fence is NULL), of its event types.
CREATE OR REPLACE FUNCTION eventstore.projection_batch(
    p_projection eventstore.projections,
    p_fence bigint,
    p_max_events integer
)
RETURNS eventstore.domain_events[]
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- ARRAY(subquery) keeps the subquery's order (array_agg would sort again);
    -- NULL, not an empty array, when there is nothing to do.
    SELECT nullif(
        ARRAY(
            SELECT d
            FROM eventstore.domain_events AS d
            WHERE (d.feed_key, d.id) > (p_projection.checkpoint_feed_key, p_projection.checkpoint_id)
              AND (p_fence IS NULL OR d.feed_key < p_fence)
              AND (p_projection.event_types IS NULL OR d.event_type = ANY(p_projection.event_types))
            ORDER BY d.feed_key, d.id
            LIMIT p_max_events
        ),
        '{}'
    );
$$;

COMMENT ON FUNCTION eventstore.projection_batch(eventstore.projections, bigint, integer) IS
'Internal: the next events of the feed for a projection, in feed order.';

-- (Re)creates the generated wrappers of a projection: the handler wrapper,
-- which takes a batch of events, and the reset wrapper (dropped when there is
-- no reset function). See hand_to_owner_of() for why user code is never
-- called directly. Also used by the upgrade from 0.1.0, whose handler
-- wrappers took one event.
CREATE OR REPLACE FUNCTION eventstore.create_projection_wrappers(
    p_name text,
    p_handler regprocedure,
    p_reset regprocedure
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One call per batch of events, not per event: the switch to the
    -- owner's rights and search_path is paid once for the whole batch.
    -- unnest returns the events in array order, which is feed order.
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION eventstore.%I(p_events eventstore.domain_events[]) RETURNS void LANGUAGE plpgsql
         SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L',
        eventstore.projection_wrapper(p_name, 'handler'),
        format(
            E'BEGIN%s\n    PERFORM %s(e) FROM pg_catalog.unnest(p_events) AS e;\nEND;',
            eventstore.owner_guard(p_handler), eventstore.qualified_name(p_handler)
        )
    );
    PERFORM eventstore.hand_to_owner_of(
        format('eventstore.%I(eventstore.domain_events[])', eventstore.projection_wrapper(p_name, 'handler'))::regprocedure,
        p_handler,
        format('Generated by register_projection(): calls the handler of projection %s for each event of a batch.', p_name)
    );
    IF to_regprocedure(format('eventstore.%I()', eventstore.projection_wrapper(p_name, 'reset'))) IS NOT NULL THEN
        EXECUTE format('DROP FUNCTION eventstore.%I()', eventstore.projection_wrapper(p_name, 'reset'));
    END IF;
    IF p_reset IS NOT NULL THEN
        EXECUTE format(
            'CREATE FUNCTION eventstore.%I() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
             SET search_path = pg_catalog, pg_temp AS %L',
            eventstore.projection_wrapper(p_name, 'reset'),
            format(E'BEGIN%s\n    PERFORM %s();\nEND;', eventstore.owner_guard(p_reset), eventstore.qualified_name(p_reset))
        );
        PERFORM eventstore.hand_to_owner_of(
            format('eventstore.%I()', eventstore.projection_wrapper(p_name, 'reset'))::regprocedure,
            p_reset,
            format('Generated by register_projection(): calls the reset function of projection %s.', p_name)
        );
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.create_projection_wrappers(text, regprocedure, regprocedure) IS
'Internal: (re)creates the generated handler (batch) and reset wrappers of a projection.';

REVOKE ALL ON FUNCTION eventstore.create_projection_wrappers(text, regprocedure, regprocedure) FROM PUBLIC;

-- Purpose: (re)write the trigger that runs inline projections. The trigger
-- function is generated with a static call per inline projection, so it is
-- planned once per session; with no inline projection there is no trigger
-- at all, and appends cost what they cost before projections existed.
CREATE OR REPLACE FUNCTION eventstore.refresh_inline_projections()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_calls text;
BEGIN
    SELECT string_agg(
        CASE
            WHEN p.event_types IS NULL
                THEN format('PERFORM eventstore.%I(ARRAY[NEW]);', eventstore.projection_wrapper(p.name, 'handler'))
            ELSE format(
                'IF NEW.event_type = ANY (%L::text[]) THEN PERFORM eventstore.%I(ARRAY[NEW]); END IF;',
                p.event_types, eventstore.projection_wrapper(p.name, 'handler')
            )
        END,
        E'\n    ' ORDER BY p.name
    )
    INTO v_calls
    FROM eventstore.projections AS p
    WHERE p.mode = 'inline';

    IF v_calls IS NULL THEN
        DROP TRIGGER IF EXISTS domain_events_inline_projections ON eventstore.domain_events;
        DROP FUNCTION IF EXISTS eventstore.apply_inline_projections();
        RETURN;
    END IF;

    EXECUTE format(
        $ddl$
        CREATE OR REPLACE FUNCTION eventstore.apply_inline_projections()
        RETURNS trigger
        LANGUAGE plpgsql
        SET search_path = pg_catalog, pg_temp
        AS %L
        $ddl$,
        E'BEGIN\n    ' || v_calls || E'\n    RETURN NULL;\nEND;'
    );
    REVOKE ALL ON FUNCTION eventstore.apply_inline_projections() FROM PUBLIC;
    COMMENT ON FUNCTION eventstore.apply_inline_projections() IS
    'Generated by the projection functions: runs every inline projection''s handler for each appended event.';
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_trigger AS t
        WHERE t.tgrelid = 'eventstore.domain_events'::regclass AND t.tgname = 'domain_events_inline_projections'
    ) THEN
        CREATE TRIGGER domain_events_inline_projections
        AFTER INSERT ON eventstore.domain_events
        FOR EACH ROW EXECUTE FUNCTION eventstore.apply_inline_projections();
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.refresh_inline_projections() IS
'Internal: regenerates the trigger that runs the inline projections (dropped when there is none).';

-- Purpose: register or replace a projection. The handler is
-- (event eventstore.domain_events) RETURNS void; the optional reset function
-- () RETURNS void empties the read model for rebuild_projection().
-- Re-registering (same mode) keeps the checkpoint and state.
CREATE OR REPLACE FUNCTION eventstore.register_projection(
    p_name text,
    p_handler regprocedure,
    p_event_types text[] DEFAULT NULL,
    p_mode text DEFAULT 'inline',
    p_reset regprocedure DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_name IS NULL OR btrim(p_name) = '' OR length(p_name) > 255 THEN
        RAISE EXCEPTION 'p_name must be a non-empty string of at most 255 characters' USING ERRCODE = 'ES002';
    END IF;
    IF p_mode IS NULL OR p_mode NOT IN ('inline', 'async') THEN
        RAISE EXCEPTION 'p_mode must be ''inline'' or ''async''; got %', coalesce(p_mode, 'NULL')
            USING ERRCODE = 'ES002',
                  HINT = 'Client-side handlers register with eventstore.register_external_projection().';
    END IF;
    PERFORM eventstore.validate_event_types(p_event_types);
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_proc AS p
        WHERE p.oid = p_handler
          AND p.prokind = 'f'
          AND NOT p.proretset
          AND p.prorettype = 'void'::regtype
          AND p.proargtypes = ARRAY['eventstore.domain_events'::regtype]::oidvector
    ) THEN
        RAISE EXCEPTION 'handler % does not have the signature (event eventstore.domain_events) RETURNS void',
                        coalesce(p_handler::text, 'NULL')
            USING ERRCODE = 'ES002';
    END IF;
    IF p_reset IS NOT NULL AND NOT EXISTS (
        SELECT FROM pg_catalog.pg_proc AS p
        WHERE p.oid = p_reset
          AND p.prokind = 'f'
          AND NOT p.proretset
          AND p.prorettype = 'void'::regtype
          AND p.pronargs = 0
    ) THEN
        RAISE EXCEPTION 'reset function % does not have the signature () RETURNS void', p_reset
            USING ERRCODE = 'ES002';
    END IF;
    PERFORM eventstore.check_may_register(p_handler, 'handler');
    IF p_reset IS NOT NULL THEN
        PERFORM eventstore.check_may_register(p_reset, 'reset function');
    END IF;

    PERFORM eventstore.create_projection_wrappers(p_name, p_handler, p_reset);

    INSERT INTO eventstore.projections AS p (name, handler, event_types, mode, reset)
    VALUES (p_name, p_handler, p_event_types, p_mode, p_reset)
    ON CONFLICT (name) DO UPDATE
    SET handler = excluded.handler,
        event_types = excluded.event_types,
        reset = excluded.reset,
        updated_at = pg_catalog.now()
    WHERE p.mode = excluded.mode;
    -- A new mode would need a new checkpoint (inline to async replays
    -- everything, async to inline skips what it had not applied): refused.
    IF NOT FOUND THEN
        RAISE EXCEPTION 'projection % is registered as %; its mode cannot change to %',
                        p_name, (SELECT p.mode FROM eventstore.projections AS p WHERE p.name = p_name), p_mode
            USING ERRCODE = 'ES002',
                  HINT = 'Unregister it and register it again; then rebuild it (or let an async one replay the log).';
    END IF;
    PERFORM eventstore.refresh_inline_projections();
END;
$$;

COMMENT ON FUNCTION eventstore.register_projection(text, regprocedure, text[], text, regprocedure) IS
'Registers or replaces a projection: handler(event eventstore.domain_events) RETURNS void, applied to p_event_types (NULL: all).
p_mode ''inline'' runs it in the appending transaction; ''async'' runs it through run_projection(). p_reset() empties the read model for rebuild_projection().
Errors: ES002.';

-- Remove a projection (its read model is left as it is).
CREATE OR REPLACE FUNCTION eventstore.unregister_projection(p_name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM eventstore.registered_projection(p_name);
    DELETE FROM eventstore.projections AS p WHERE p.name = p_name;
    PERFORM eventstore.refresh_inline_projections();
    -- External projections have no wrappers; others may lack a reset wrapper.
    IF to_regprocedure(format('eventstore.%I(eventstore.domain_events[])', eventstore.projection_wrapper(p_name, 'handler')))
       IS NOT NULL THEN
        EXECUTE format('DROP FUNCTION eventstore.%I(eventstore.domain_events[])', eventstore.projection_wrapper(p_name, 'handler'));
    END IF;
    IF to_regprocedure(format('eventstore.%I()', eventstore.projection_wrapper(p_name, 'reset'))) IS NOT NULL THEN
        EXECUTE format('DROP FUNCTION eventstore.%I()', eventstore.projection_wrapper(p_name, 'reset'));
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.unregister_projection(text) IS
'Removes a projection and, for inline ones, its call from the trigger; the read model is left as it is. Errors: ES002, ES003.';

-- Purpose: apply one batch of events to a projection's handler, all in one
-- statement (unnest returns the elements in array order, which is feed order). When that fails, the batch is undone and applied one event at a
-- time to find the failing event, which is recorded (state failed); the
-- events before it stay applied. Returns the events applied.
CREATE OR REPLACE FUNCTION eventstore.apply_projection_batch(
    p_projection eventstore.projections,
    p_batch eventstore.domain_events[]
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_call text := format('SELECT eventstore.%I($1)', eventstore.projection_wrapper(p_projection.name, 'handler'));
    v_event eventstore.domain_events;
    v_applied integer := 0;
    v_sqlstate text;
    v_message text;
BEGIN
    BEGIN
        EXECUTE v_call USING p_batch;
        RETURN cardinality(p_batch);
    EXCEPTION WHEN OTHERS THEN
        NULL;  -- undone; find the failing event below
    END;
    FOREACH v_event IN ARRAY p_batch LOOP
        BEGIN
            EXECUTE v_call USING ARRAY[v_event];
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_sqlstate = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
            UPDATE eventstore.projections AS p
            SET state = 'failed',
                last_error = format('%s: %s', v_sqlstate, v_message),
                failed_event_id = v_event.id,
                failed_feed_key = v_event.feed_key,
                updated_at = pg_catalog.now()
            WHERE p.name = p_projection.name;
            RAISE WARNING 'projection % stopped at event % (position (%,%)): %',
                          p_projection.name, v_event.id, v_event.feed_key, v_event.id, v_message
                USING HINT = 'Fix the cause, then eventstore.retry_projection() or eventstore.skip_projection_event().';
            RETURN v_applied;
        END;
        v_applied := v_applied + 1;
    END LOOP;
    RETURN v_applied;
END;
$$;

COMMENT ON FUNCTION eventstore.apply_projection_batch(eventstore.projections, eventstore.domain_events[]) IS
'Internal: applies a batch to a projection''s handler; on failure finds, records and stops at the failing event.';

-- Purpose: reset a projection's read model (its reset function) and replay
-- the whole log through its handler, in one transaction: readers see the old
-- read model until it commits, then the new one. An inline projection's
-- rebuild holds appends back (SHARE lock on domain_events) so no event
-- slips between the replay and the trigger. Progress: a NOTICE per batch and
-- eventstore.rebuild_progress() for other sessions.
CREATE OR REPLACE FUNCTION eventstore.rebuild_projection(p_name text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_batch_size constant integer := 10000;
    v_projection eventstore.projections := eventstore.registered_projection(p_name);
    v_fence bigint;
    v_total bigint;
    v_done bigint := 0;
    v_batch eventstore.domain_events[];
    v_last eventstore.domain_events;
BEGIN
    IF v_projection.mode = 'external' THEN
        RAISE EXCEPTION 'projection % is external: its client rebuilds it', p_name USING ERRCODE = 'ES002';
    END IF;
    IF v_projection.reset IS NULL THEN
        RAISE EXCEPTION 'projection % has no reset function', p_name
            USING ERRCODE = 'ES002',
                  HINT = 'Register it again with p_reset => a function () RETURNS void that empties the read model.';
    END IF;
    -- Wait for a running batch to finish; runners arriving later get 0.
    SELECT p.* INTO v_projection FROM eventstore.projections AS p WHERE p.name = p_name FOR UPDATE;
    IF v_projection.mode = 'inline' THEN
        LOCK TABLE eventstore.domain_events IN SHARE MODE;
    ELSE
        v_fence := eventstore.feed_fence();
    END IF;

    EXECUTE format('SELECT eventstore.%I()', eventstore.projection_wrapper(p_name, 'reset'));
    v_projection.checkpoint_feed_key := -1;
    v_projection.checkpoint_id := 0;
    SELECT count(*) INTO v_total
    FROM eventstore.domain_events AS d
    WHERE (v_fence IS NULL OR d.feed_key < v_fence)
      AND (v_projection.event_types IS NULL OR d.event_type = ANY(v_projection.event_types));

    LOOP
        PERFORM set_config('application_name', format('eventstore rebuild %s: %s/%s events', p_name, v_done, v_total),
                           TRUE);
        v_batch := eventstore.projection_batch(v_projection, v_fence, v_batch_size);
        EXIT WHEN v_batch IS NULL;
        EXECUTE format('SELECT eventstore.%I($1)', eventstore.projection_wrapper(p_name, 'handler')) USING v_batch;
        v_last := v_batch[cardinality(v_batch)];
        v_projection.checkpoint_feed_key := v_last.feed_key;
        v_projection.checkpoint_id := v_last.id;
        v_done := v_done + cardinality(v_batch);
        RAISE NOTICE 'rebuild %: % of % events', p_name, v_done, v_total
            USING DETAIL = format('done=%s total=%s', v_done, v_total);
    END LOOP;

    UPDATE eventstore.projections AS p
    SET checkpoint_feed_key = v_projection.checkpoint_feed_key,
        checkpoint_id = v_projection.checkpoint_id,
        state = CASE WHEN p.state = 'paused' THEN 'paused' ELSE 'running' END,
        events_applied = v_done,
        last_error = NULL,
        failed_event_id = NULL,
        failed_feed_key = NULL,
        updated_at = pg_catalog.now()
    WHERE p.name = p_name;
    RETURN v_done;
END;
$$;

COMMENT ON FUNCTION eventstore.rebuild_projection(text) IS
'Resets a projection''s read model and replays the whole log through its handler in one transaction; returns the events replayed.
Readers see the old read model until it commits. Inline projections hold appends back meanwhile. Progress: NOTICE per 10,000 events, eventstore.rebuild_progress().
Errors: ES002 (external projection, no reset function), ES003.';

-- External projections: move the checkpoint in the transaction that applied the events.
CREATE OR REPLACE FUNCTION eventstore.save_projection_checkpoint(
    p_name text,
    p_position eventstore.feed_position,
    p_events_applied integer
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_projection eventstore.projections := eventstore.registered_projection(p_name);
BEGIN
    IF p_position IS NULL OR (p_position).feed_key IS NULL OR (p_position).id IS NULL
       OR p_events_applied IS NULL OR p_events_applied < 0 THEN
        RAISE EXCEPTION 'p_position must be a full feed position and p_events_applied >= 0' USING ERRCODE = 'ES002';
    END IF;
    IF v_projection.mode <> 'external' THEN
        RAISE EXCEPTION 'projection % is %, not external', p_name, v_projection.mode USING ERRCODE = 'ES002';
    END IF;
    -- Only the client that holds the projection may move its checkpoint: one
    -- that does not would overwrite the holder's. SKIP LOCKED returns the row
    -- when this transaction holds it (or nobody does: then it takes it), and
    -- no row when another transaction holds it.
    SELECT p.* INTO v_projection
    FROM eventstore.projections AS p
    WHERE p.name = p_name
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'projection % is held by another client', p_name
            USING ERRCODE = 'ES002',
                  HINT = 'Call eventstore.lock_projection() first, in the same transaction, and go on only when it returns a row.';
    END IF;
    IF (p_position).feed_key < v_projection.checkpoint_feed_key
       OR ((p_position).feed_key = v_projection.checkpoint_feed_key AND (p_position).id < v_projection.checkpoint_id) THEN
        RAISE EXCEPTION 'p_position % is behind the checkpoint (%,%) of projection %',
                        p_position, v_projection.checkpoint_feed_key, v_projection.checkpoint_id, p_name
            USING ERRCODE = 'ES002',
                  HINT = 'A checkpoint only moves forward; to replay the feed, unregister the projection and register it again.';
    END IF;
    UPDATE eventstore.projections AS p
    SET checkpoint_feed_key = (p_position).feed_key,
        checkpoint_id = (p_position).id,
        events_applied = p.events_applied + p_events_applied,
        updated_at = pg_catalog.now()
    WHERE p.name = p_name;
END;
$$;

COMMENT ON FUNCTION eventstore.save_projection_checkpoint(text, eventstore.feed_position, integer) IS
'For external projections: moves the checkpoint forward, in the transaction that applied the events and holds the projection (lock_projection). Errors: ES002 (also: held by another client, or behind the checkpoint), ES003.';

-- The wrappers of projections registered under 0.1.0 take one event: replace
-- them with batch wrappers, and regenerate the inline trigger that calls
-- them. Under ALTER EXTENSION UPDATE, functions created here would become
-- members of the extension, which registration's generated functions never
-- are (unregister_projection() must be able to drop them): they are
-- released from it again.
DO $upgrade$
DECLARE
    v_projection record;
    v_generated regprocedure;
BEGIN
    DROP TRIGGER IF EXISTS domain_events_inline_projections ON eventstore.domain_events;
    DROP FUNCTION IF EXISTS eventstore.apply_inline_projections();
    FOR v_projection IN
        SELECT p.name, p.handler, p.reset FROM eventstore.projections AS p WHERE p.mode <> 'external' ORDER BY p.name
    LOOP
        EXECUTE format(
            'DROP FUNCTION IF EXISTS eventstore.%I(eventstore.domain_events)',
            eventstore.projection_wrapper(v_projection.name, 'handler')
        );
        PERFORM eventstore.create_projection_wrappers(v_projection.name, v_projection.handler, v_projection.reset);
    END LOOP;
    PERFORM eventstore.refresh_inline_projections();

    FOR v_generated IN
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc AS p
        INNER JOIN pg_catalog.pg_depend AS d
            ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
        WHERE p.pronamespace = 'eventstore'::regnamespace
          AND p.proname ~ '^(projection_handler_|projection_reset_|apply_inline_projections$)'
    LOOP
        EXECUTE format('ALTER EXTENSION eventstore DROP FUNCTION %s', v_generated);
    END LOOP;
END;
$upgrade$;

INSERT INTO eventstore.schema_migrations (version) VALUES ('0.2.0');
