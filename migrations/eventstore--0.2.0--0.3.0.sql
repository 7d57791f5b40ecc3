-- pg_eventstore 0.3.0: upgrade script 0.2.0--0.3.0, built by make sql from the files named below. Do not edit.

-- migrations/0.2.0--0.3.0/pre.sql
-- pg_eventstore 0.2.0 -> 0.3.0, the hand-written part that runs BEFORE the code
-- (sql/code/, re-run in full by the upgrade): state changes, and what
-- CREATE OR REPLACE cannot change. See migrations/README.md.

-- read_all() returns the new row type feed_event instead of a TABLE (the same
-- columns): a result type CREATE OR REPLACE cannot change.
CREATE TYPE eventstore.feed_event AS (
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
);
DROP FUNCTION eventstore.read_all(eventstore.feed_position, integer, text[], text[]);
DROP FUNCTION eventstore.read_all(text, integer, text[], text[]);

-- sql/code/00_checks.sql
-- Guards shared by the public functions: each raises ES002 naming the
-- argument (p_argument) that is wrong, and returns nothing when it is right.
-- Internal; no SET search_path: every caller pins it (see
-- _next_transaction_id() in 02_feed_keys.sql for why that matters).

-- ES002 with a message and, when there is one, a hint (RAISE refuses a NULL hint).
CREATE OR REPLACE FUNCTION eventstore._raise_invalid(p_message text, p_hint text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'ES002', MESSAGE = p_message;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'ES002', MESSAGE = p_message, HINT = p_hint;
END;
$$;

COMMENT ON FUNCTION eventstore._raise_invalid(text, text) IS
'Internal: raises ES002 with the message and the optional hint.';

-- A name or type: a non-empty string.
CREATE OR REPLACE FUNCTION eventstore._check_not_empty(p_value text, p_argument text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL OR btrim(p_value) = '' THEN
        RAISE EXCEPTION '% must be a non-empty string', p_argument USING ERRCODE = 'ES002';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_not_empty(text, text) IS
'Internal: ES002 unless the argument is a non-empty string.';

-- A name to register: non-empty and at most 255 characters, as the registry tables allow.
CREATE OR REPLACE FUNCTION eventstore._check_name(p_value text, p_argument text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL OR btrim(p_value) = '' OR length(p_value) > 255 THEN
        RAISE EXCEPTION '% must be a non-empty string of at most 255 characters', p_argument
            USING ERRCODE = 'ES002';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_name(text, text) IS
'Internal: ES002 unless the argument is a non-empty string of at most 255 characters.';

-- Any argument that has no meaning as NULL (no STRICT functions: they would
-- silently return nothing).
CREATE OR REPLACE FUNCTION eventstore._check_not_null(p_value anyelement, p_argument text, p_hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL THEN
        PERFORM eventstore._raise_invalid(format('%s must not be NULL', p_argument), p_hint);
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_not_null(anyelement, text, text) IS
'Internal: ES002 when the argument is NULL.';

-- A count that must be at least 1 (page and batch sizes).
CREATE OR REPLACE FUNCTION eventstore._check_positive(p_value integer, p_argument text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL OR p_value < 1 THEN
        RAISE EXCEPTION '% must be a positive integer; got %', p_argument, coalesce(p_value::text, 'NULL')
            USING ERRCODE = 'ES002';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_positive(integer, text) IS
'Internal: ES002 unless the argument is an integer >= 1.';

-- A version or a count that may be 0.
CREATE OR REPLACE FUNCTION eventstore._check_not_negative(p_value integer, p_argument text, p_hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL OR p_value < 0 THEN
        PERFORM eventstore._raise_invalid(
            format('%s must be >= 0; got %s', p_argument, coalesce(p_value::text, 'NULL')), p_hint
        );
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_not_negative(integer, text, text) IS
'Internal: ES002 unless the argument is an integer >= 0.';

-- A feed position with both fields. Not "p_position IS NULL": a row is NULL
-- only when every field is, so a half-NULL position would slip through.
CREATE OR REPLACE FUNCTION eventstore._check_feed_position(p_position eventstore.feed_position, p_argument text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF (p_position).feed_key IS NULL OR (p_position).id IS NULL THEN
        RAISE EXCEPTION '% must be a full feed position; got %', p_argument, coalesce(p_position::text, 'NULL')
            USING ERRCODE = 'ES002', HINT = 'Pass the feed_position of the last event processed, e.g. ''(1234,56)''.';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_feed_position(eventstore.feed_position, text) IS
'Internal: ES002 unless the argument is a feed position with both fields set.';

-- sql/code/01_immutability.sql
-- Events are immutable: UPDATE, DELETE and TRUNCATE on the log are refused
-- for everyone, the owner and superusers included.

-- Raises ES004 for whatever statement fired it.
CREATE OR REPLACE FUNCTION eventstore._refuse_event_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % on %.% is not allowed', tg_op, tg_table_schema, tg_table_name
        USING ERRCODE = 'ES004',
              HINT = 'Record a correcting event with eventstore.append_events() instead.';
END;
$$;

COMMENT ON FUNCTION eventstore._refuse_event_change() IS
'Internal: trigger function that refuses UPDATE, DELETE and TRUNCATE on eventstore.domain_events with ES004.';

CREATE OR REPLACE TRIGGER domain_events_refuse_update_delete
BEFORE UPDATE OR DELETE ON eventstore.domain_events
FOR EACH STATEMENT EXECUTE FUNCTION eventstore._refuse_event_change();

CREATE OR REPLACE TRIGGER domain_events_refuse_truncate
BEFORE TRUNCATE ON eventstore.domain_events
FOR EACH STATEMENT EXECUTE FUNCTION eventstore._refuse_event_change();

-- ALWAYS: the triggers fire under session_replication_role = replica too,
-- which would otherwise let a superuser slip past them.
ALTER TABLE eventstore.domain_events ENABLE ALWAYS TRIGGER domain_events_refuse_update_delete;
ALTER TABLE eventstore.domain_events ENABLE ALWAYS TRIGGER domain_events_refuse_truncate;

-- sql/code/02_feed_keys.sql
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

-- sql/code/04_append.sql
-- Appending events: validation, idempotent retries, and append_events().
-- Over 350 lines for one reason: append_events() is the hot path, one
-- function whose steps share their locals (a helper call per step costs more
-- than the step); its checks and its two INSERTs (with and without the
-- caller's event_ids) are written out on purpose.

-- Raises ES002 naming the first bad argument or event; returns nothing when
-- the call is well formed. Nothing has been written when it raises.
-- No SET search_path (see _next_transaction_id()): append_events() sets it.
CREATE OR REPLACE FUNCTION eventstore._check_append(
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
    -- The keys an event may have, in the order the messages list them.
    v_keys constant text[] := ARRAY['event_type', 'payload', 'metadata', 'event_id'];
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
            WHEN t.e - v_keys <> '{}'::jsonb
                THEN format(
                    'has an unknown key %s; expected %s',
                    (SELECT to_json(k.key)::text FROM jsonb_object_keys(t.e - v_keys) AS k (key) ORDER BY k.key LIMIT 1),
                    array_to_string(v_keys, ', ')
                )
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

COMMENT ON FUNCTION eventstore._check_append(text, uuid, integer, jsonb) IS
'Internal: raises ES002 naming the first malformed argument or event of an append_events() call.';

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
    v_lowest_free_key bigint;
    v_snapshot_every integer;
    v_has_event_ids boolean;
BEGIN
    PERFORM eventstore._check_append(p_aggregate_type, p_aggregate_id, p_expected_version, p_events);
    v_count := jsonb_array_length(p_events);
    v_has_event_ids := jsonb_path_exists(p_events, '$[*].event_id ? (@ != null)');

    -- One statement reads the feed key offset, the restore guard's inputs and
    -- the type's snapshot interval: on this path a call per value costs more
    -- than the values.
    SELECT
        pg_current_xact_id()::text::bigint + s.feed_key_offset,
        eventstore._next_transaction_id() + s.feed_key_offset,
        (SELECT max(d.feed_key) FROM eventstore.domain_events AS d),
        (SELECT t.snapshot_every FROM eventstore.aggregate_types AS t WHERE t.aggregate_type = p_aggregate_type)
    INTO v_own_key, v_lowest_free_key, v_highest_key, v_snapshot_every
    FROM eventstore.settings AS s;
    -- The test of _checked_feed_key_offset(), which raises ES006 for it: a
    -- stored key at or above every transaction id (plus the offset) means a
    -- restore into a new cluster.
    IF v_highest_key >= v_lowest_free_key THEN
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

-- sql/code/05_read.sql
-- Reading: one aggregate's events, and the global feed.

-- One aggregate's events from a version on, in version order.
CREATE OR REPLACE FUNCTION eventstore.load_events(p_aggregate_id uuid, p_from_version integer DEFAULT 0)
RETURNS SETOF eventstore.domain_events
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM eventstore._check_not_null(p_aggregate_id, 'p_aggregate_id');
    PERFORM eventstore._check_not_negative(p_from_version, 'p_from_version', 'Versions start at 0.');
    RETURN QUERY
    SELECT d.*
    FROM eventstore.domain_events AS d
    WHERE d.aggregate_id = p_aggregate_id
      AND d.event_version >= p_from_version
    ORDER BY d.event_version;
END;
$$;

COMMENT ON FUNCTION eventstore.load_events(uuid, integer) IS
'The events of one aggregate from p_from_version (default 0) on, in version order; no row for an unknown aggregate. Errors: ES002.';

-- One page of the feed after (p_after_key, p_after_id), below p_fence: the
-- query of both read_all() overloads. A plain SQL function, which the
-- planner inlines into their RETURN QUERY; one overload calling the other
-- would store every page twice (each set-returning call keeps its rows).
CREATE OR REPLACE FUNCTION eventstore._feed_page(
    p_after_key bigint,
    p_after_id bigint,
    p_fence bigint,
    p_max_count integer,
    p_event_types text[],
    p_aggregate_types text[]
)
RETURNS SETOF eventstore.feed_event
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

COMMENT ON FUNCTION eventstore._feed_page(bigint, bigint, bigint, integer, text[], text[]) IS
'Internal: one page of the feed after a position and below a fence, in feed order (the query of read_all()).';

-- Purpose: the global feed. Rows come in (feed_key, id) order and only below
-- the fence: the oldest transaction still running (plus the offset). Every
-- transaction below the fence has ended, so nothing can commit behind a
-- reader's position later: the feed never skips, and never repeats.
-- plan_cache_mode: the page query's plan is the same index scan for every
-- position, but PostgreSQL would plan it again on every call (the custom
-- plan's estimate beats the generic one's); that was 5% of a page.
CREATE OR REPLACE FUNCTION eventstore.read_all(
    p_after eventstore.feed_position DEFAULT NULL,
    p_max_count integer DEFAULT 1000,
    p_event_types text[] DEFAULT NULL,
    p_aggregate_types text[] DEFAULT NULL
)
RETURNS SETOF eventstore.feed_event
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
    PERFORM eventstore._check_positive(p_max_count, 'p_max_count');
    -- Not "p_after IS NOT NULL": a row is NOT NULL only when every field is,
    -- so a half-NULL position would be read from the start instead of refused.
    IF NOT p_after IS NULL THEN
        PERFORM eventstore._check_feed_position(p_after, 'p_after');
        v_after_key := (p_after).feed_key;
        v_after_id := (p_after).id;
    END IF;
    RETURN QUERY
    SELECT * FROM eventstore._feed_page(
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
RETURNS SETOF eventstore.feed_event
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
    PERFORM eventstore._check_positive(p_max_count, 'p_max_count');
    RETURN QUERY
    SELECT * FROM eventstore._feed_page(
        coalesce((p_after::eventstore.feed_position).feed_key, -1),
        coalesce((p_after::eventstore.feed_position).id, 0),
        eventstore.feed_fence(), p_max_count, p_event_types, p_aggregate_types
    );
END;
$$;

COMMENT ON FUNCTION eventstore.read_all(text, integer, text[], text[]) IS
'read_all() with the position in its text form ''(feed_key,id)''; NULL starts from the beginning. Errors: ES002, ES006.';

-- sql/code/06_notify.sql
-- Wake-up hints for consumers: one NOTIFY per appending transaction.
-- The payload is the transaction id, the same for every statement of the
-- transaction, so PostgreSQL folds repeated notifications into one.
-- It is only a hint: consumers re-read the feed, which is the truth.

-- No SET search_path (see _next_transaction_id()): it fires inside the
-- functions that insert events, which set it, once per append.
CREATE OR REPLACE FUNCTION eventstore._notify_append()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('eventstore_events', pg_current_xact_id()::text);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION eventstore._notify_append() IS
'Internal: trigger function that sends NOTIFY eventstore_events once per appending transaction (payload: the transaction id).';

CREATE OR REPLACE TRIGGER domain_events_notify
AFTER INSERT ON eventstore.domain_events
FOR EACH STATEMENT EXECUTE FUNCTION eventstore._notify_append();

-- sql/code/07_user_code_rights.sql
-- User code (folds, projection handlers and reset functions) is called through
-- generated wrappers that run with the rights of the code's owner, never with
-- the event store owner's: the machinery that generates and guards them.

-- A function's schema-qualified, quoted name, for generated and dynamic SQL.
CREATE OR REPLACE FUNCTION eventstore._qualified_name(p_function regprocedure)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%I.%I', n.nspname, p.proname)
    FROM pg_catalog.pg_proc AS p
    INNER JOIN pg_catalog.pg_namespace AS n ON p.pronamespace = n.oid
    WHERE p.oid = p_function;
$$;

COMMENT ON FUNCTION eventstore._qualified_name(regprocedure) IS
'Internal: the quoted, schema-qualified name of a function, for generated SQL.';

-- Generated functions that call a user's function (a fold, a projection
-- handler or reset) are SECURITY DEFINER and handed to the owner of that
-- function: the user's code then runs with its owner's rights, never with the
-- event store owner's, even though the event store's own SECURITY DEFINER
-- functions call it. Only the event store's functions may execute them.
CREATE OR REPLACE FUNCTION eventstore._hand_to_owner_of(p_generated regprocedure, p_target regprocedure, p_comment text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner regrole := (SELECT p.proowner::regrole FROM pg_catalog.pg_proc AS p WHERE p.oid = p_target);
BEGIN
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', p_generated);
    EXECUTE format('COMMENT ON FUNCTION %s IS %L', p_generated, p_comment);
    IF v_owner <> current_user::regrole THEN
        EXECUTE format('ALTER FUNCTION %s OWNER TO %s', p_generated, v_owner);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', p_generated, current_user);
    END IF;
    PERFORM eventstore._release_from_extension(p_generated);
END;
$$;

COMMENT ON FUNCTION eventstore._hand_to_owner_of(regprocedure, regprocedure, text) IS
'Internal: makes a generated wrapper run with the rights of the owner of the user function it calls.';

-- The first statement of every generated wrapper. Its owner may ALTER it (to
-- SECURITY INVOKER, say, so that it would run with the rights of its caller,
-- the event store owner) but cannot replace its body, which needs CREATE on
-- schema eventstore: so the body refuses to run as anyone but that owner.
-- Fully qualified, types and operators included: the owner may also change
-- the wrapper's search_path.
CREATE OR REPLACE FUNCTION eventstore._owner_guard(p_target regprocedure)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        $guard$
    IF CURRENT_USER OPERATOR(pg_catalog.<>) %1$L::pg_catalog.name THEN
        RAISE EXCEPTION 'the generated function calling %% must run as %%, not as %%', %2$L, %1$L, CURRENT_USER
            USING ERRCODE = '42501', HINT = 'It was altered after registration; register it again.';
    END IF;$guard$,
        pg_catalog.pg_get_userbyid(p.proowner), p.oid::regprocedure::text
    )
    FROM pg_catalog.pg_proc AS p
    WHERE p.oid = p_target;
$$;

COMMENT ON FUNCTION eventstore._owner_guard(regprocedure) IS
'Internal: PL/pgSQL that refuses to run unless the current user is the owner of p_target, for generated wrappers.';

-- Registering user code hands it to the event store, which runs it with its
-- owner's rights: so only a session that holds those rights may register it.
-- session_user, not current_user (the event store owner inside SECURITY
-- DEFINER functions): a session can never act with more than its login role's
-- rights, whatever role it SET ROLE to.
CREATE OR REPLACE FUNCTION eventstore._check_may_register(p_function regprocedure, p_what text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner oid := (SELECT p.proowner FROM pg_catalog.pg_proc AS p WHERE p.oid = p_function);
BEGIN
    IF NOT pg_catalog.pg_has_role(session_user, v_owner, 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to register % %: it belongs to %, and % does not hold that role''s rights',
                        p_what, p_function, v_owner::regrole, session_user
            USING ERRCODE = '42501',
                  HINT = 'Register functions owned by your own role (the event store runs them with their owner''s rights).';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_may_register(regprocedure, text) IS
'Internal: 42501 unless the session''s login role holds the rights of the owner of a function to be registered.';

-- Generated functions belong to their registration, never to the extension:
-- unregistering drops them, which a member of the extension refuses. Created
-- by an extension script (an upgrade regenerating them), a function becomes a
-- member all the same: this releases it.
CREATE OR REPLACE FUNCTION eventstore._release_from_extension(p_generated regprocedure)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_depend AS d
        WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p_generated AND d.deptype = 'e'
    ) THEN
        EXECUTE format('ALTER EXTENSION eventstore DROP FUNCTION %s', p_generated);
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._release_from_extension(regprocedure) IS
'Internal: releases a generated function from the extension when an extension script created it.';

-- sql/code/08_aggregates.sql
-- Aggregates: registering a fold, and loading an aggregate's state from its
-- latest valid snapshot plus the events after it.

-- What makes a fold's results comparable: the function itself (its name,
-- signature and definition) and the initial state. Snapshots carry it; a
-- changed fold or initial state makes every older snapshot invisible. Not the
-- oid: a dump restored elsewhere keeps its snapshots valid.
CREATE OR REPLACE FUNCTION eventstore._fold_identity(p_fold regprocedure, p_initial_state jsonb)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT md5(concat_ws('|', p.oid::regprocedure::text, p.prosrc, p.probin, p.provolatile, p_initial_state::text))
    FROM pg_catalog.pg_proc AS p
    WHERE p.oid = p_fold;
$$;

COMMENT ON FUNCTION eventstore._fold_identity(regprocedure, jsonb) IS
'Internal: identifies a fold (function definition and initial state); snapshots are valid only for the identity that made them.';

-- The registry row of a type; ES003 when it is not registered.
CREATE OR REPLACE FUNCTION eventstore._registered_type(p_aggregate_type text)
RETURNS eventstore.aggregate_types
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type eventstore.aggregate_types;
BEGIN
    PERFORM eventstore._check_not_empty(p_aggregate_type, 'p_aggregate_type');
    SELECT t.* INTO v_type FROM eventstore.aggregate_types AS t WHERE t.aggregate_type = p_aggregate_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'aggregate type % is not registered', p_aggregate_type
            USING ERRCODE = 'ES003',
                  HINT = 'Register it with eventstore.register_aggregate_type(type, fold, initial_state, snapshot_every).';
    END IF;
    RETURN v_type;
END;
$$;

COMMENT ON FUNCTION eventstore._registered_type(text) IS
'Internal: the registry row of an aggregate type; ES003 when it is not registered.';

-- Purpose: register (or re-register) the fold of an aggregate type. Wraps the
-- fold in a generated step function and aggregate, so loads fold in one
-- statement: the step starts from the given state and refuses a NULL result.
CREATE OR REPLACE FUNCTION eventstore.register_aggregate_type(
    p_aggregate_type text,
    p_fold regprocedure,
    p_initial_state jsonb DEFAULT '{}',
    p_snapshot_every integer DEFAULT 50
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fold record;
    v_step text := 'fold_step_' || md5(p_aggregate_type);
    v_aggregate text := 'fold_events_' || md5(p_aggregate_type);
    v_previous text;
BEGIN
    PERFORM eventstore._check_name(p_aggregate_type, 'p_aggregate_type');
    PERFORM eventstore._check_not_null(
        p_initial_state, 'p_initial_state', 'Pass the state of an aggregate before its first event, e.g. ''{}''.'
    );
    PERFORM eventstore._check_not_negative(p_snapshot_every, 'p_snapshot_every', '0: no automatic snapshots.');

    SELECT n.nspname, p.proname
    INTO v_fold
    FROM pg_catalog.pg_proc AS p
    INNER JOIN pg_catalog.pg_namespace AS n ON p.pronamespace = n.oid
    WHERE p.oid = p_fold
      AND p.prokind = 'f'
      AND NOT p.proretset
      AND p.prorettype = 'jsonb'::regtype
      AND p.proargtypes = ARRAY['jsonb'::regtype, 'eventstore.domain_events'::regtype]::oidvector;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'fold % does not have the signature (state jsonb, event eventstore.domain_events) RETURNS jsonb',
                        coalesce(p_fold::text, 'NULL')
            USING ERRCODE = 'ES002',
                  HINT = 'A fold takes the state and one event and returns the new state; it must be pure.';
    END IF;
    PERFORM eventstore._check_may_register(p_fold, 'fold');

    -- The body goes in as a literal (%L), never spliced into dollar quotes:
    -- the names of a fold and its schema may contain anything, $quotes$ too.
    EXECUTE format(
        $ddl$
        CREATE OR REPLACE FUNCTION eventstore.%I(p_state jsonb, p_start jsonb, p_event eventstore.domain_events)
        RETURNS jsonb
        LANGUAGE plpgsql
        SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS %L
        $ddl$,
        v_step,
        format(
            $step$
        DECLARE
            v_state pg_catalog.jsonb;
        BEGIN%1$s
            v_state := %2$I.%3$I(coalesce(p_state, p_start), p_event);
            IF v_state IS NULL THEN
                RAISE EXCEPTION 'fold %%.%% returned NULL for event %% of aggregate %%',
                                %4$L, %5$L, p_event.event_version, p_event.aggregate_id
                    USING ERRCODE = 'ES002', HINT = 'A fold must return the new state, never NULL.';
            END IF;
            RETURN v_state;
        END;
        $step$,
            eventstore._owner_guard(p_fold), v_fold.nspname, v_fold.proname, v_fold.nspname, v_fold.proname
        )
    );
    EXECUTE format(
        'CREATE OR REPLACE AGGREGATE eventstore.%I(jsonb, eventstore.domain_events) (SFUNC = eventstore.%I, STYPE = jsonb)',
        v_aggregate, v_step
    );
    PERFORM eventstore._hand_to_owner_of(
        format('eventstore.%I(jsonb, jsonb, eventstore.domain_events)', v_step)::regprocedure,
        p_fold,
        format('Generated by register_aggregate_type(): one fold step of aggregate type %s.', p_aggregate_type)
    );
    EXECUTE format('REVOKE ALL ON FUNCTION eventstore.%I(jsonb, eventstore.domain_events) FROM PUBLIC', v_aggregate);
    -- Their md5 names say nothing in \df+: the comments name the type.
    EXECUTE format(
        'COMMENT ON AGGREGATE eventstore.%I(jsonb, eventstore.domain_events) IS %L', v_aggregate,
        format('Generated by register_aggregate_type(): folds the events of aggregate type %s.', p_aggregate_type)
    );

    SELECT eventstore._fold_identity(t.fold, t.initial_state) INTO v_previous
    FROM eventstore.aggregate_types AS t
    WHERE t.aggregate_type = p_aggregate_type;

    INSERT INTO eventstore.aggregate_types AS t (aggregate_type, fold, initial_state, snapshot_every, fold_aggregate)
    VALUES (p_aggregate_type, p_fold, p_initial_state, p_snapshot_every, v_aggregate)
    ON CONFLICT (aggregate_type) DO UPDATE
    SET fold = excluded.fold,
        initial_state = excluded.initial_state,
        snapshot_every = excluded.snapshot_every,
        fold_aggregate = excluded.fold_aggregate,
        registered_at = pg_catalog.now();

    IF v_previous IS DISTINCT FROM eventstore._fold_identity(p_fold, p_initial_state) AND v_previous IS NOT NULL THEN
        RAISE NOTICE 'aggregate type % has a new fold: snapshots of the previous fold will not be used', p_aggregate_type
            USING HINT = 'eventstore.prune_snapshots() removes them.';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.register_aggregate_type(text, regprocedure, jsonb, integer) IS
'Registers or replaces the fold of an aggregate type: fold(state jsonb, event eventstore.domain_events) RETURNS jsonb, pure.
Snapshots are taken every p_snapshot_every versions (0: never automatically); a new fold or initial state never sees older snapshots.
Errors: ES002 (bad signature or argument).';

-- Purpose: the state of one aggregate at p_to_version (NULL: its latest), from
-- the latest valid snapshot at or before it plus the events after it, folded
-- in version order by one statement. No row when there is nothing to fold.
CREATE OR REPLACE FUNCTION eventstore._fold_state(
    p_type eventstore.aggregate_types,
    p_aggregate_id uuid,
    p_to_version integer
)
RETURNS TABLE (state jsonb, version integer)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_to_version integer := coalesce(p_to_version, 2147483647);
    v_start_version integer;
    v_start_state jsonb;
    v_state jsonb;
    v_version integer;
BEGIN
    SELECT s.version, s.state
    INTO v_start_version, v_start_state
    FROM eventstore.aggregate_snapshots AS s
    WHERE s.aggregate_type = p_type.aggregate_type
      AND s.aggregate_id = p_aggregate_id
      AND s.version <= v_to_version
      AND s.fold_identity = eventstore._fold_identity(p_type.fold, p_type.initial_state)
    ORDER BY s.version DESC
    LIMIT 1;
    IF NOT FOUND THEN
        v_start_version := -1;
        v_start_state := p_type.initial_state;
    END IF;

    EXECUTE format(
        'SELECT eventstore.%I($1, d ORDER BY d.event_version), max(d.event_version)
         FROM eventstore.domain_events AS d
         WHERE d.aggregate_id = $2 AND d.event_version > $3 AND d.event_version <= $4',
        p_type.fold_aggregate
    )
    INTO v_state, v_version
    USING v_start_state, p_aggregate_id, v_start_version, v_to_version;

    IF v_version IS NOT NULL THEN
        RETURN QUERY SELECT v_state, v_version;
    ELSIF v_start_version >= 0 THEN
        RETURN QUERY SELECT v_start_state, v_start_version;
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._fold_state(eventstore.aggregate_types, uuid, integer) IS
'Internal: an aggregate''s state at a version (NULL: latest) from the latest valid snapshot at or before it plus the events after it.';

-- The stream row of an aggregate that must be of the given type; NULL when
-- the aggregate does not exist, ES002 when it is of another type.
CREATE OR REPLACE FUNCTION eventstore._typed_stream(p_aggregate_type text, p_aggregate_id uuid)
RETURNS eventstore.streams
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_stream eventstore.streams;
BEGIN
    PERFORM eventstore._check_not_null(p_aggregate_id, 'p_aggregate_id');
    SELECT s.* INTO v_stream FROM eventstore.streams AS s WHERE s.aggregate_id = p_aggregate_id;
    IF FOUND AND v_stream.aggregate_type <> p_aggregate_type THEN
        RAISE EXCEPTION 'aggregate % is of type %, not %', p_aggregate_id, v_stream.aggregate_type, p_aggregate_type
            USING ERRCODE = 'ES002';
    END IF;
    RETURN v_stream;
END;
$$;

COMMENT ON FUNCTION eventstore._typed_stream(text, uuid) IS
'Internal: the stream row of an aggregate of the given type; NULL when it does not exist, ES002 when it has another type.';

-- The current state of one aggregate.
CREATE OR REPLACE FUNCTION eventstore.load_aggregate(p_aggregate_type text, p_aggregate_id uuid)
RETURNS TABLE (state jsonb, version integer)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type eventstore.aggregate_types := eventstore._registered_type(p_aggregate_type);
BEGIN
    IF (eventstore._typed_stream(p_aggregate_type, p_aggregate_id)).aggregate_id IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM eventstore._fold_state(v_type, p_aggregate_id, NULL);
END;
$$;

COMMENT ON FUNCTION eventstore.load_aggregate(text, uuid) IS
'The current state and version of an aggregate: the latest valid snapshot plus the events after it, folded by the registered fold.
No row when the aggregate does not exist. Errors: ES002 (NULL argument, aggregate of another type), ES003 (type not registered).';

-- sql/code/09_snapshots.sql
-- Snapshots: cached aggregate states, taken automatically by append_events()
-- and by operators, and pruned by operators.

-- Stores the state at p_to_version (NULL: latest) as a snapshot of the
-- current fold; returns the version stored, NULL when there is nothing to fold.
CREATE OR REPLACE FUNCTION eventstore._save_snapshot(
    p_type eventstore.aggregate_types,
    p_aggregate_id uuid,
    p_to_version integer
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_folded record;
BEGIN
    SELECT f.state, f.version INTO v_folded
    FROM eventstore._fold_state(p_type, p_aggregate_id, p_to_version) AS f;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO eventstore.aggregate_snapshots AS s (aggregate_type, aggregate_id, version, state, fold_identity)
    VALUES (
        p_type.aggregate_type, p_aggregate_id, v_folded.version, v_folded.state,
        eventstore._fold_identity(p_type.fold, p_type.initial_state)
    )
    ON CONFLICT (aggregate_type, aggregate_id, version) DO UPDATE
    SET state = excluded.state, fold_identity = excluded.fold_identity, created_at = excluded.created_at
    WHERE s.fold_identity <> excluded.fold_identity;
    RETURN v_folded.version;
END;
$$;

COMMENT ON FUNCTION eventstore._save_snapshot(eventstore.aggregate_types, uuid, integer) IS
'Internal: stores an aggregate''s state at a version as a snapshot of the current fold.';

-- Called by append_events() when an append reached or crossed a multiple of
-- the type's snapshot_every: snapshots the append's last version. A snapshot
-- is a cache: if the fold fails here, the append goes on with a WARNING
-- (loading the aggregate will raise the same error).
CREATE OR REPLACE FUNCTION eventstore._take_automatic_snapshot(
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
        PERFORM eventstore._save_snapshot(v_type, p_aggregate_id, p_version);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT;
        RAISE WARNING 'no snapshot of % % at version %: %', p_aggregate_type, p_aggregate_id, p_version, v_error
            USING HINT = 'The events are stored; fix the fold and run eventstore.take_snapshot().';
    END;
END;
$$;

COMMENT ON FUNCTION eventstore._take_automatic_snapshot(text, uuid, integer) IS
'Internal: the automatic snapshot of an append''s last version, taken when append_events() finds it due; a failing fold only WARNs.';

-- Snapshot an aggregate's current state now.
CREATE OR REPLACE FUNCTION eventstore.take_snapshot(p_aggregate_type text, p_aggregate_id uuid)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type eventstore.aggregate_types := eventstore._registered_type(p_aggregate_type);
BEGIN
    IF (eventstore._typed_stream(p_aggregate_type, p_aggregate_id)).aggregate_id IS NULL THEN
        RAISE EXCEPTION 'aggregate % does not exist', p_aggregate_id
            USING ERRCODE = 'ES002';
    END IF;
    RETURN eventstore._save_snapshot(v_type, p_aggregate_id, NULL);
END;
$$;

COMMENT ON FUNCTION eventstore.take_snapshot(text, uuid) IS
'Snapshots the current state of an aggregate with the registered fold; returns the version snapshotted.
Errors: ES002 (NULL argument, unknown aggregate or one of another type), ES003 (type not registered).';

-- Delete snapshots no fold will use again (made by another fold, or of an
-- unregistered type), and all but the latest p_keep valid ones per aggregate.
CREATE OR REPLACE FUNCTION eventstore.prune_snapshots(p_aggregate_type text DEFAULT NULL, p_keep integer DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    PERFORM eventstore._check_not_negative(p_keep, 'p_keep');
    IF p_aggregate_type IS NOT NULL THEN
        PERFORM eventstore._registered_type(p_aggregate_type);
    END IF;

    WITH ranked AS (
        SELECT
            s.aggregate_type,
            s.aggregate_id,
            s.version,
            s.fold_identity IS NOT DISTINCT FROM eventstore._fold_identity(t.fold, t.initial_state) AS valid,
            row_number() OVER (
                PARTITION BY
                    s.aggregate_type,
                    s.aggregate_id,
                    s.fold_identity IS NOT DISTINCT FROM eventstore._fold_identity(t.fold, t.initial_state)
                ORDER BY s.version DESC
            ) AS newest_first
        FROM eventstore.aggregate_snapshots AS s
        LEFT JOIN eventstore.aggregate_types AS t ON s.aggregate_type = t.aggregate_type
        WHERE p_aggregate_type IS NULL OR s.aggregate_type = p_aggregate_type
    )

    DELETE FROM eventstore.aggregate_snapshots AS s
    USING ranked AS r
    WHERE s.aggregate_type = r.aggregate_type
      AND s.aggregate_id = r.aggregate_id
      AND s.version = r.version
      AND (NOT r.valid OR r.newest_first > p_keep);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;

COMMENT ON FUNCTION eventstore.prune_snapshots(text, integer) IS
'Deletes snapshots that no fold will use (another fold, unregistered type) and all but the latest p_keep valid ones per aggregate,
of one type or (NULL) of all. Returns the number deleted. Errors: ES002, ES003.';

-- sql/code/10_temporal.sql
-- Temporal queries and analytics: state at a version or a time, an
-- aggregate's history with the state after each event, event counts.

-- An aggregate's state right after its event p_version.
CREATE OR REPLACE FUNCTION eventstore.aggregate_state_at_version(
    p_aggregate_type text,
    p_aggregate_id uuid,
    p_version integer
)
RETURNS TABLE (state jsonb, version integer)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type eventstore.aggregate_types := eventstore._registered_type(p_aggregate_type);
    v_current integer;
BEGIN
    PERFORM eventstore._check_not_negative(p_version, 'p_version', 'Versions start at 0.');
    v_current := (eventstore._typed_stream(p_aggregate_type, p_aggregate_id)).version;
    IF v_current IS NULL OR p_version > v_current THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM eventstore._fold_state(v_type, p_aggregate_id, p_version);
END;
$$;

COMMENT ON FUNCTION eventstore.aggregate_state_at_version(text, uuid, integer) IS
'The state of an aggregate right after its event p_version (using a snapshot at or before it).
No row when the aggregate or that version does not exist. Errors: ES002, ES003.';

-- An aggregate's state as of a moment: after its last event that occurred at
-- or before it. occurred_at never decreases along an aggregate, so this is
-- well defined.
CREATE OR REPLACE FUNCTION eventstore.aggregate_state_at(
    p_aggregate_type text,
    p_aggregate_id uuid,
    p_as_of timestamptz
)
RETURNS TABLE (state jsonb, version integer)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type eventstore.aggregate_types := eventstore._registered_type(p_aggregate_type);
    v_version integer;
BEGIN
    PERFORM eventstore._check_not_null(p_as_of, 'p_as_of');
    IF (eventstore._typed_stream(p_aggregate_type, p_aggregate_id)).aggregate_id IS NULL THEN
        RETURN;
    END IF;
    SELECT max(d.event_version) INTO v_version
    FROM eventstore.domain_events AS d
    WHERE d.aggregate_id = p_aggregate_id AND d.occurred_at <= p_as_of;
    IF v_version IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM eventstore._fold_state(v_type, p_aggregate_id, v_version);
END;
$$;

COMMENT ON FUNCTION eventstore.aggregate_state_at(text, uuid, timestamptz) IS
'The state of an aggregate as of p_as_of: after its last event that occurred at or before it (using a snapshot when one lies at or before).
No row before the first event or for an unknown aggregate. Errors: ES002, ES003.';

-- Purpose: replay for debugging: every event of an aggregate in version order
-- with the state right after it (NULL when its type has no registered fold).
-- The generated fold aggregate runs as a window function: one statement.
CREATE OR REPLACE FUNCTION eventstore.aggregate_history(p_aggregate_id uuid)
RETURNS TABLE (
    event_version integer,
    event_type text,
    payload jsonb,
    metadata jsonb,
    occurred_at timestamptz,
    state_after jsonb
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type eventstore.aggregate_types;
BEGIN
    PERFORM eventstore._check_not_null(p_aggregate_id, 'p_aggregate_id');
    SELECT t.* INTO v_type
    FROM eventstore.streams AS s
    INNER JOIN eventstore.aggregate_types AS t ON s.aggregate_type = t.aggregate_type
    WHERE s.aggregate_id = p_aggregate_id;

    IF NOT FOUND THEN
        RETURN QUERY
        SELECT d.event_version, d.event_type, d.payload, d.metadata, d.occurred_at, NULL::jsonb
        FROM eventstore.domain_events AS d
        WHERE d.aggregate_id = p_aggregate_id
        ORDER BY d.event_version;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT d.event_version, d.event_type, d.payload, d.metadata, d.occurred_at,
                eventstore.%I($1, d) OVER (ORDER BY d.event_version)
         FROM eventstore.domain_events AS d
         WHERE d.aggregate_id = $2
         ORDER BY d.event_version',
        v_type.fold_aggregate
    )
    USING v_type.initial_state, p_aggregate_id;
END;
$$;

COMMENT ON FUNCTION eventstore.aggregate_history(uuid) IS
'Replay for debugging: every event of an aggregate in version order with the state right after it
(NULL when the type has no registered fold). Errors: ES002.';

-- Operational analytics: events per time bucket and event type.
CREATE OR REPLACE FUNCTION eventstore.event_counts(
    p_from timestamptz,
    p_to timestamptz,
    p_bucket text DEFAULT 'day'
)
RETURNS TABLE (bucket timestamptz, event_type text, event_count bigint)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF p_bucket IS NULL OR p_bucket NOT IN ('minute', 'hour', 'day', 'week', 'month', 'year') THEN
        RAISE EXCEPTION 'p_bucket must be one of minute, hour, day, week, month, year; got %',
                        coalesce(p_bucket, 'NULL')
            USING ERRCODE = 'ES002';
    END IF;
    RETURN QUERY
    SELECT date_trunc(p_bucket, d.occurred_at), d.event_type, count(*)
    FROM eventstore.domain_events AS d
    WHERE (p_from IS NULL OR d.occurred_at >= p_from)
      AND (p_to IS NULL OR d.occurred_at < p_to)
    GROUP BY 1, 2
    ORDER BY 1 DESC, 3 DESC, 2;
END;
$$;

COMMENT ON FUNCTION eventstore.event_counts(timestamptz, timestamptz, text) IS
'Events per bucket (minute, hour, day, week, month, year) and event type with occurred_at in [p_from, p_to); NULL bounds are open.
Newest bucket first. Errors: ES002.';

-- sql/code/11_projection_registry.sql
-- Projections (read models), the registry: registering and unregistering,
-- the registry row and its guards, and the generated handler wrappers.

-- The registry row of a projection; ES003 when it is not registered.
CREATE OR REPLACE FUNCTION eventstore._registered_projection(p_name text)
RETURNS eventstore.projections
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_projection eventstore.projections;
BEGIN
    PERFORM eventstore._check_not_empty(p_name, 'p_name');
    SELECT p.* INTO v_projection FROM eventstore.projections AS p WHERE p.name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'projection % is not registered', p_name
            USING ERRCODE = 'ES003',
                  HINT = 'See eventstore.projection_status for the registered projections.';
    END IF;
    RETURN v_projection;
END;
$$;

COMMENT ON FUNCTION eventstore._registered_projection(text) IS
'Internal: the registry row of a projection; ES003 when it is not registered.';

-- The registry row of a projection, locked for this transaction; a row of
-- NULLs when another transaction holds it (SKIP LOCKED: runners and clients
-- never wait for each other). One runner per projection rests on this.
CREATE OR REPLACE FUNCTION eventstore._try_lock_projection(p_name text)
RETURNS eventstore.projections
LANGUAGE plpgsql
AS $$
DECLARE
    v_projection eventstore.projections;
BEGIN
    SELECT p.* INTO v_projection
    FROM eventstore.projections AS p
    WHERE p.name = p_name
    FOR UPDATE SKIP LOCKED;
    RETURN v_projection;
END;
$$;

COMMENT ON FUNCTION eventstore._try_lock_projection(text) IS
'Internal: locks a projection''s registry row and returns it; NULLs when another transaction holds it.';

-- ES002 unless a projection runs in the mode a function is for.
CREATE OR REPLACE FUNCTION eventstore._check_projection_mode(p_projection eventstore.projections, p_mode text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_projection.mode <> p_mode THEN
        RAISE EXCEPTION 'projection % is %, not %', p_projection.name, p_projection.mode, p_mode
            USING ERRCODE = 'ES002',
                  HINT = 'Inline projections run with every append, async ones through run_projection(), external ones in their client.';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_projection_mode(eventstore.projections, text) IS
'Internal: ES002 unless the projection is of the given mode (inline, async, external).';

-- The name (in schema eventstore) of the generated wrapper through which a projection's handler (p_kind
-- 'handler') or reset function (p_kind 'reset') is called; see
-- _hand_to_owner_of() for why user code is never called directly.
CREATE OR REPLACE FUNCTION eventstore._projection_wrapper(p_name text, p_kind text)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'projection_' || p_kind || '_' || md5(p_name);
$$;

COMMENT ON FUNCTION eventstore._projection_wrapper(text, text) IS
'Internal: the name of the generated wrapper calling a projection''s handler or reset function.';

-- (Re)creates the generated wrappers of a projection: the handler wrapper,
-- which takes a batch of events, and the reset wrapper (dropped when there is
-- no reset function). See _hand_to_owner_of() for why user code is never
-- called directly. Also used by the upgrade from 0.1.0, whose handler
-- wrappers took one event.
CREATE OR REPLACE FUNCTION eventstore._create_projection_wrappers(
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
        eventstore._projection_wrapper(p_name, 'handler'),
        format(
            E'BEGIN%s\n    PERFORM %s(e) FROM pg_catalog.unnest(p_events) AS e;\nEND;',
            eventstore._owner_guard(p_handler), eventstore._qualified_name(p_handler)
        )
    );
    PERFORM eventstore._hand_to_owner_of(
        format('eventstore.%I(eventstore.domain_events[])', eventstore._projection_wrapper(p_name, 'handler'))::regprocedure,
        p_handler,
        format('Generated by register_projection(): calls the handler of projection %s for each event of a batch.', p_name)
    );
    IF to_regprocedure(format('eventstore.%I()', eventstore._projection_wrapper(p_name, 'reset'))) IS NOT NULL THEN
        EXECUTE format('DROP FUNCTION eventstore.%I()', eventstore._projection_wrapper(p_name, 'reset'));
    END IF;
    IF p_reset IS NOT NULL THEN
        EXECUTE format(
            'CREATE FUNCTION eventstore.%I() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
             SET search_path = pg_catalog, pg_temp AS %L',
            eventstore._projection_wrapper(p_name, 'reset'),
            format(E'BEGIN%s\n    PERFORM %s();\nEND;', eventstore._owner_guard(p_reset), eventstore._qualified_name(p_reset))
        );
        PERFORM eventstore._hand_to_owner_of(
            format('eventstore.%I()', eventstore._projection_wrapper(p_name, 'reset'))::regprocedure,
            p_reset,
            format('Generated by register_projection(): calls the reset function of projection %s.', p_name)
        );
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._create_projection_wrappers(text, regprocedure, regprocedure) IS
'Internal: (re)creates the generated handler (batch) and reset wrappers of a projection.';

-- Raises ES002 unless p_event_types is NULL or a non-empty list of non-empty names.
CREATE OR REPLACE FUNCTION eventstore._check_event_types(p_event_types text[])
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_event_types IS NOT NULL AND (
        cardinality(p_event_types) = 0
        OR EXISTS (SELECT FROM unnest(p_event_types) AS t (name) WHERE t.name IS NULL OR btrim(t.name) = '')
    ) THEN
        RAISE EXCEPTION 'p_event_types must be NULL (all events) or a non-empty list of event type names'
            USING ERRCODE = 'ES002';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._check_event_types(text[]) IS
'Internal: ES002 unless the list of event types is NULL or non-empty without NULL or empty names.';

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
    PERFORM eventstore._check_name(p_name, 'p_name');
    IF p_mode IS NULL OR p_mode NOT IN ('inline', 'async') THEN
        RAISE EXCEPTION 'p_mode must be ''inline'' or ''async''; got %', coalesce(p_mode, 'NULL')
            USING ERRCODE = 'ES002',
                  HINT = 'Client-side handlers register with eventstore.register_external_projection().';
    END IF;
    PERFORM eventstore._check_event_types(p_event_types);
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
    PERFORM eventstore._check_may_register(p_handler, 'handler');
    IF p_reset IS NOT NULL THEN
        PERFORM eventstore._check_may_register(p_reset, 'reset function');
    END IF;

    PERFORM eventstore._create_projection_wrappers(p_name, p_handler, p_reset);

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
    PERFORM eventstore._refresh_inline_projections();
END;
$$;

COMMENT ON FUNCTION eventstore.register_projection(text, regprocedure, text[], text, regprocedure) IS
'Registers or replaces a projection: handler(event eventstore.domain_events) RETURNS void, applied to p_event_types (NULL: all).
p_mode ''inline'' runs it in the appending transaction; ''async'' runs it through run_projection(). p_reset() empties the read model for rebuild_projection().
Errors: ES002.';

-- Register a projection whose handler runs in a client (e.g. Python): the
-- database keeps its checkpoint and failures; lock_projection(),
-- save_projection_checkpoint() and fail_projection() drive it.
CREATE OR REPLACE FUNCTION eventstore.register_external_projection(p_name text, p_event_types text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM eventstore._check_name(p_name, 'p_name');
    PERFORM eventstore._check_event_types(p_event_types);
    INSERT INTO eventstore.projections AS p (name, event_types, mode)
    VALUES (p_name, p_event_types, 'external')
    ON CONFLICT (name) DO UPDATE
    SET event_types = excluded.event_types, updated_at = pg_catalog.now()
    WHERE p.mode = 'external';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'projection % is registered with a database handler', p_name
            USING ERRCODE = 'ES002', HINT = 'Unregister it first, or pick another name.';
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.register_external_projection(text, text[]) IS
'Registers a projection whose handler runs in a client; the database keeps its checkpoint. Errors: ES002.';

-- Remove a projection (its read model is left as it is).
CREATE OR REPLACE FUNCTION eventstore.unregister_projection(p_name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM eventstore._registered_projection(p_name);
    DELETE FROM eventstore.projections AS p WHERE p.name = p_name;
    PERFORM eventstore._refresh_inline_projections();
    -- External projections have no wrappers; others may lack a reset wrapper.
    IF to_regprocedure(format('eventstore.%I(eventstore.domain_events[])', eventstore._projection_wrapper(p_name, 'handler')))
       IS NOT NULL THEN
        EXECUTE format('DROP FUNCTION eventstore.%I(eventstore.domain_events[])', eventstore._projection_wrapper(p_name, 'handler'));
    END IF;
    IF to_regprocedure(format('eventstore.%I()', eventstore._projection_wrapper(p_name, 'reset'))) IS NOT NULL THEN
        EXECUTE format('DROP FUNCTION eventstore.%I()', eventstore._projection_wrapper(p_name, 'reset'));
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.unregister_projection(text) IS
'Removes a projection and, for inline ones, its call from the trigger; the read model is left as it is. Errors: ES002, ES003.';

-- sql/code/12_inline_projections.sql
-- Projections, inline: the generated trigger that runs the inline projections
-- inside every append, and the report of a handler that refused an event.

-- Purpose: (re)write the trigger that runs inline projections. The trigger
-- function is generated with a static call per inline projection, so it is
-- planned once per session; with no inline projection there is no trigger
-- at all, and appends cost what they cost before projections existed. It
-- fires once per append (a statement trigger over the appended rows): one
-- handler call per projection for the whole batch, in one subtransaction
-- whose only job is to say, when the handler fails, which projection refused
-- which event (see _raise_inline_failure()).
CREATE OR REPLACE FUNCTION eventstore._refresh_inline_projections()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_calls text;
BEGIN
    SELECT string_agg(
        format(
            $call$
    v_batch := ARRAY(SELECT e FROM new_events AS e%s ORDER BY e.id);
    IF v_batch <> '{}' THEN
        BEGIN
            PERFORM eventstore.%I(v_batch);
        EXCEPTION WHEN OTHERS THEN
            PERFORM eventstore._raise_inline_failure(%L, v_batch, SQLSTATE, SQLERRM);
        END;
    END IF;$call$,
            CASE WHEN p.event_types IS NOT NULL THEN format(' WHERE e.event_type = ANY (%L::text[])', p.event_types) END,
            eventstore._projection_wrapper(p.name, 'handler'),
            p.name
        ),
        '' ORDER BY p.name
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
        E'DECLARE\n    v_batch eventstore.domain_events[];\nBEGIN' || v_calls || E'\n    RETURN NULL;\nEND;'
    );
    REVOKE ALL ON FUNCTION eventstore.apply_inline_projections() FROM PUBLIC;
    COMMENT ON FUNCTION eventstore.apply_inline_projections() IS
    'Generated by the projection functions: runs every inline projection''s handler on the events of each append.';
    PERFORM eventstore._release_from_extension('eventstore.apply_inline_projections()');
    -- Only when missing (or the row trigger of 0.2.0): the statement would
    -- lock appends out of domain_events until this transaction ends.
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_trigger AS t
        WHERE t.tgrelid = 'eventstore.domain_events'::regclass
          AND t.tgname = 'domain_events_inline_projections'
          AND t.tgnewtable = 'new_events'
    ) THEN
        CREATE OR REPLACE TRIGGER domain_events_inline_projections
        AFTER INSERT ON eventstore.domain_events
        REFERENCING NEW TABLE AS new_events
        FOR EACH STATEMENT EXECUTE FUNCTION eventstore.apply_inline_projections();
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._refresh_inline_projections() IS
'Internal: regenerates the trigger that runs the inline projections (dropped when there is none).';

-- Purpose: say which inline projection refused which event. Called by the
-- generated trigger when a handler failed on an append's events: applying
-- them again one at a time finds the event, and the handler's error is raised
-- again with its own SQLSTATE, naming the projection, the event type and the
-- aggregate. The append fails either way, so what this applies is undone.
CREATE OR REPLACE FUNCTION eventstore._raise_inline_failure(
    p_name text,
    p_events eventstore.domain_events[],
    p_sqlstate text,
    p_message text
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_call text := format('SELECT eventstore.%I($1)', eventstore._projection_wrapper(p_name, 'handler'));
    v_event eventstore.domain_events;
    v_sqlstate text := p_sqlstate;
    v_message text := p_message;
    v_detail text;
    v_hint text;
BEGIN
    BEGIN
        FOREACH v_event IN ARRAY p_events LOOP
            EXECUTE v_call USING ARRAY[v_event];
        END LOOP;
        v_event := NULL;  -- each event alone passed: the batch as a whole failed
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_sqlstate = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                                v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    END;
    RAISE EXCEPTION USING
        ERRCODE = v_sqlstate,
        MESSAGE = format(
            'inline projection %s refused %s of aggregate %s %s: %s',
            p_name, coalesce(v_event.event_type, format('a batch of %s events', cardinality(p_events))),
            (p_events[1]).aggregate_type, (p_events[1]).aggregate_id, v_message
        ),
        DETAIL = concat_ws(
            E'\n',
            format(
                'projection: %s, event_type: %s, aggregate_type: %s, aggregate_id: %s, event_version: %s',
                p_name, coalesce(v_event.event_type, 'several'), (p_events[1]).aggregate_type,
                (p_events[1]).aggregate_id, coalesce(v_event.event_version::text, 'several')
            ),
            nullif(v_detail, '')
        ),
        HINT = coalesce(
            nullif(v_hint, ''),
            'Nothing was appended: an inline projection runs inside the append. Fix the handler or the event, or unregister the projection.'
        );
END;
$$;

COMMENT ON FUNCTION eventstore._raise_inline_failure(text, eventstore.domain_events[], text, text) IS
'Internal: raises an inline projection''s failure again, with its SQLSTATE, naming the projection, the event type and the aggregate.';

-- sql/code/13_projection_runs.sql
-- Projections, the runs: async runs with checkpoints, pausing, failure
-- handling (retry, skip), and rebuilds.

-- Sets a projection's state from one of p_from to p_to; ES002 for inline
-- projections, which run with every append and cannot stop.
CREATE OR REPLACE FUNCTION eventstore._change_projection_state(p_name text, p_from text[], p_to text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_projection eventstore.projections := eventstore._registered_projection(p_name);
BEGIN
    IF v_projection.mode = 'inline' THEN
        RAISE EXCEPTION 'projection % is inline: it runs inside every append and cannot be paused', p_name
            USING ERRCODE = 'ES002',
                  HINT = 'Register it as async to control when it runs, or unregister it.';
    END IF;
    UPDATE eventstore.projections AS p
    SET state = p_to,
        -- Running again means trying the failed event (if any) again: its error is history.
        last_error = CASE WHEN p_to = 'running' THEN NULL ELSE p.last_error END,
        failed_event_id = CASE WHEN p_to = 'running' THEN NULL ELSE p.failed_event_id END,
        failed_feed_key = CASE WHEN p_to = 'running' THEN NULL ELSE p.failed_feed_key END,
        updated_at = pg_catalog.now()
    WHERE p.name = p_name AND p.state = ANY(p_from);
    IF NOT FOUND THEN
        RAISE NOTICE 'projection % is %; nothing to do', p_name, v_projection.state;
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore._change_projection_state(text, text[], text) IS
'Internal: moves a projection between states; a NOTICE when it is not in one of the expected states.';

-- Stop an async or external projection; run_projection() returns 0 until it is resumed.
CREATE OR REPLACE FUNCTION eventstore.pause_projection(p_name text)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT eventstore._change_projection_state(p_name, ARRAY['running', 'failed'], 'paused');
$$;

COMMENT ON FUNCTION eventstore.pause_projection(text) IS
'Pauses an async or external projection. Errors: ES002 (inline projection), ES003.';

-- Let a paused projection run again.
CREATE OR REPLACE FUNCTION eventstore.resume_projection(p_name text)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT eventstore._change_projection_state(p_name, ARRAY['paused'], 'running');
$$;

COMMENT ON FUNCTION eventstore.resume_projection(text) IS
'Resumes a paused projection. Errors: ES002 (inline projection), ES003.';

-- Retry a failed projection: the next run starts again at the failed event.
CREATE OR REPLACE FUNCTION eventstore.retry_projection(p_name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM eventstore._change_projection_state(p_name, ARRAY['failed'], 'running');
    UPDATE eventstore.projections AS p
    SET last_error = NULL, failed_event_id = NULL, failed_feed_key = NULL
    WHERE p.name = p_name AND p.state = 'running';
END;
$$;

COMMENT ON FUNCTION eventstore.retry_projection(text) IS
'Lets a failed projection run again from the event that failed (after the cause is fixed). Errors: ES002, ES003.';

-- Skip the event a projection failed on: move the checkpoint past it and run again.
CREATE OR REPLACE FUNCTION eventstore.skip_projection_event(p_name text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_projection eventstore.projections := eventstore._registered_projection(p_name);
BEGIN
    IF v_projection.state <> 'failed' OR v_projection.failed_event_id IS NULL THEN
        RAISE EXCEPTION 'projection % has not failed; there is no event to skip', p_name
            USING ERRCODE = 'ES002';
    END IF;
    UPDATE eventstore.projections AS p
    SET checkpoint_feed_key = v_projection.failed_feed_key,
        checkpoint_id = v_projection.failed_event_id,
        state = 'running',
        last_error = NULL,
        failed_event_id = NULL,
        failed_feed_key = NULL,
        updated_at = pg_catalog.now()
    WHERE p.name = p_name;
    RAISE WARNING 'projection % skipped event %: its effect is missing from the read model',
                  p_name, v_projection.failed_event_id;
    RETURN v_projection.failed_event_id;
END;
$$;

COMMENT ON FUNCTION eventstore.skip_projection_event(text) IS
'Moves a failed projection''s checkpoint past the event it failed on and lets it run again; returns that event''s id. Errors: ES002, ES003.';

-- The next events of the feed for a projection: after its checkpoint, below
-- the fence (or all committed ones when p_fence is NULL), of its event types.
CREATE OR REPLACE FUNCTION eventstore._projection_batch(
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

COMMENT ON FUNCTION eventstore._projection_batch(eventstore.projections, bigint, integer) IS
'Internal: the next events of the feed for a projection, in feed order.';

-- Purpose: apply one batch of events to a projection's handler, all in one
-- statement (unnest returns the elements in array order, which is feed order). When that fails, the batch is undone and applied one event at a
-- time to find the failing event, which is recorded (state failed); the
-- events before it stay applied. Returns the events applied.
CREATE OR REPLACE FUNCTION eventstore._apply_projection_batch(
    p_projection eventstore.projections,
    p_batch eventstore.domain_events[]
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_call text := format('SELECT eventstore.%I($1)', eventstore._projection_wrapper(p_projection.name, 'handler'));
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

COMMENT ON FUNCTION eventstore._apply_projection_batch(eventstore.projections, eventstore.domain_events[]) IS
'Internal: applies a batch to a projection''s handler; on failure finds, records and stops at the failing event.';

-- Purpose: run the next batch of an async projection. Handler effects and the
-- checkpoint commit together (effectively exactly once). A second runner of
-- the same projection does not wait: it gets 0 at once.
CREATE OR REPLACE FUNCTION eventstore.run_projection(p_name text, p_max_events integer DEFAULT 1000)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_projection eventstore.projections := eventstore._registered_projection(p_name);
    v_fence bigint := eventstore.feed_fence();
    v_batch eventstore.domain_events[];
    v_applied integer := 0;
    v_last eventstore.domain_events;
    v_head record;
BEGIN
    PERFORM eventstore._check_positive(p_max_events, 'p_max_events');
    PERFORM eventstore._check_projection_mode(v_projection, 'async');

    v_projection := eventstore._try_lock_projection(p_name);
    IF v_projection.name IS NULL THEN
        RETURN 0;  -- another runner holds it
    END IF;
    IF v_projection.state <> 'running' THEN
        RAISE NOTICE 'projection % is %; nothing run', p_name, v_projection.state;
        RETURN 0;
    END IF;

    v_batch := eventstore._projection_batch(v_projection, v_fence, p_max_events);
    IF v_batch IS NOT NULL THEN
        v_applied := eventstore._apply_projection_batch(v_projection, v_batch);
    END IF;
    IF v_applied > 0 THEN
        v_last := v_batch[v_applied];
        UPDATE eventstore.projections AS p
        SET checkpoint_feed_key = v_last.feed_key,
            checkpoint_id = v_last.id,
            events_applied = p.events_applied + v_applied,
            updated_at = pg_catalog.now()
        WHERE p.name = p_name;
    END IF;

    -- Caught up on a filtered feed: move past the events of other types too,
    -- so lag reads 0 and the next run does not scan them again.
    IF coalesce(cardinality(v_batch), 0) < p_max_events AND v_applied = coalesce(cardinality(v_batch), 0) THEN
        SELECT d.feed_key, d.id INTO v_head
        FROM eventstore.domain_events AS d
        WHERE d.feed_key < v_fence
        ORDER BY d.feed_key DESC, d.id DESC
        LIMIT 1;
        UPDATE eventstore.projections AS p
        SET checkpoint_feed_key = v_head.feed_key, checkpoint_id = v_head.id
        WHERE p.name = p_name
          AND (p.checkpoint_feed_key, p.checkpoint_id) < (v_head.feed_key, v_head.id);
    END IF;
    RETURN v_applied;
END;
$$;

COMMENT ON FUNCTION eventstore.run_projection(text, integer) IS
'Applies the next batch (at most p_max_events) of the feed to an async projection and moves its checkpoint in the same transaction.
Returns the events applied: 0 when caught up, paused, failed, or when another runner holds the projection.
A failing handler stops the projection at that event (state failed, error recorded). Errors: ES002, ES003.';

-- Rebuild progress of sessions running rebuild_projection(): they show it in
-- their application_name, the one thing another session can see before the
-- rebuild commits. SECURITY DEFINER: pg_stat_activity hides other users'.
CREATE OR REPLACE FUNCTION eventstore.rebuild_progress()
RETURNS TABLE (name text, progress text, pid integer)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        substring(a.application_name FROM '^eventstore rebuild (.*): [0-9]+/[0-9]+ events$'),
        substring(a.application_name FROM '([0-9]+/[0-9]+) events$'),
        a.pid
    FROM pg_catalog.pg_stat_activity AS a
    WHERE a.application_name ~ '^eventstore rebuild .*: [0-9]+/[0-9]+ events$';
$$;

COMMENT ON FUNCTION eventstore.rebuild_progress() IS
'Projections being rebuilt right now by another session: name, progress ''done/total'', and the pid of the rebuilding session.';

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
    v_projection eventstore.projections := eventstore._registered_projection(p_name);
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

    EXECUTE format('SELECT eventstore.%I()', eventstore._projection_wrapper(p_name, 'reset'));
    v_projection.checkpoint_feed_key := -1;
    v_projection.checkpoint_id := 0;
    SELECT count(*) INTO v_total
    FROM eventstore.domain_events AS d
    WHERE (v_fence IS NULL OR d.feed_key < v_fence)
      AND (v_projection.event_types IS NULL OR d.event_type = ANY(v_projection.event_types));

    LOOP
        PERFORM set_config('application_name', format('eventstore rebuild %s: %s/%s events', p_name, v_done, v_total),
                           TRUE);
        v_batch := eventstore._projection_batch(v_projection, v_fence, v_batch_size);
        EXIT WHEN v_batch IS NULL;
        EXECUTE format('SELECT eventstore.%I($1)', eventstore._projection_wrapper(p_name, 'handler')) USING v_batch;
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

-- sql/code/14_projection_checkpoints.sql
-- Projections, external checkpoints: a client-side handler (Python, say)
-- keeps its checkpoint and failures in the database.

-- External projections: lock the projection for this transaction and get
-- its checkpoint; no row when another client holds it.
CREATE OR REPLACE FUNCTION eventstore.lock_projection(p_name text)
RETURNS TABLE (after eventstore.feed_position, state text, event_types text[])
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_projection eventstore.projections := eventstore._registered_projection(p_name);
BEGIN
    PERFORM eventstore._check_projection_mode(v_projection, 'external');
    v_projection := eventstore._try_lock_projection(p_name);
    IF v_projection.name IS NOT NULL THEN
        RETURN QUERY SELECT
            ROW(v_projection.checkpoint_feed_key, v_projection.checkpoint_id)::eventstore.feed_position,
            v_projection.state,
            v_projection.event_types;
    END IF;
END;
$$;

COMMENT ON FUNCTION eventstore.lock_projection(text) IS
'For client-side (external) projections: locks the projection for this transaction and returns its checkpoint, state and event types;
no row when another client holds it. Errors: ES002, ES003.';

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
    v_projection eventstore.projections := eventstore._registered_projection(p_name);
BEGIN
    PERFORM eventstore._check_feed_position(p_position, 'p_position');
    PERFORM eventstore._check_not_negative(p_events_applied, 'p_events_applied');
    PERFORM eventstore._check_projection_mode(v_projection, 'external');
    -- Only the client that holds the projection may move its checkpoint: one
    -- that does not would overwrite the holder's. The lock is granted when
    -- this transaction holds it (or nobody does: then it takes it).
    v_projection := eventstore._try_lock_projection(p_name);
    IF v_projection.name IS NULL THEN
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

-- External projections: record that the handler failed on an event.
CREATE OR REPLACE FUNCTION eventstore.fail_projection(p_name text, p_position eventstore.feed_position, p_error text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_projection eventstore.projections := eventstore._registered_projection(p_name);
BEGIN
    PERFORM eventstore._check_feed_position(p_position, 'p_position');
    PERFORM eventstore._check_projection_mode(v_projection, 'external');
    UPDATE eventstore.projections AS p
    SET state = 'failed',
        last_error = coalesce(p_error, 'unknown error'),
        failed_event_id = (p_position).id,
        failed_feed_key = (p_position).feed_key,
        updated_at = pg_catalog.now()
    WHERE p.name = p_name;
END;
$$;

COMMENT ON FUNCTION eventstore.fail_projection(text, eventstore.feed_position, text) IS
'For external projections: records that the handler failed on the event at p_position (state failed). Errors: ES002, ES003.';

-- sql/code/15_projection_status.sql
-- Projections, the status: what operators look at.

-- Lag in events: how many events of the projection's types lie after its checkpoint.
-- Public: projection_status shows it, and readers may call it themselves.
CREATE OR REPLACE FUNCTION eventstore.projection_lag(p_projection eventstore.projections)
RETURNS bigint
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)
    FROM eventstore.domain_events AS d
    WHERE p_projection.mode <> 'inline'
      AND (d.feed_key, d.id) > (p_projection.checkpoint_feed_key, p_projection.checkpoint_id)
      AND (p_projection.event_types IS NULL OR d.event_type = ANY(p_projection.event_types));
$$;

COMMENT ON FUNCTION eventstore.projection_lag(eventstore.projections) IS
'Events of a projection''s types after its checkpoint (0 for inline projections, current at every commit): the lag column of projection_status.';

-- One row per projection: what operators look at, in the contract's column
-- order (hence noqa: ST06, which wants plain columns before computed ones).
CREATE OR REPLACE VIEW eventstore.projection_status AS
SELECT  -- noqa: ST06
    p.name,
    p.mode,
    CASE WHEN r.name IS NOT NULL THEN 'rebuilding' ELSE p.state END AS state,
    -- An inline projection has no checkpoint of its own: it is current at every commit.
    CASE WHEN p.mode <> 'inline' THEN ROW(p.checkpoint_feed_key, p.checkpoint_id)::eventstore.feed_position END
        AS position,
    eventstore.projection_lag(p) AS lag,
    CASE WHEN p.mode <> 'inline' THEN p.events_applied END AS events_applied,
    p.last_error,
    p.failed_event_id,
    r.progress AS rebuild_progress,
    p.event_types,
    p.handler,
    p.updated_at
FROM eventstore.projections AS p
LEFT JOIN eventstore.rebuild_progress() AS r ON p.name = r.name;

COMMENT ON VIEW eventstore.projection_status IS
'One row per projection: mode, state (running, paused, failed, rebuilding), checkpoint position, lag in events, last error, rebuild progress.';

-- sql/code/90_security.sql
-- Privileges. Nobody but the owner writes to the tables; the roles reach the
-- data through SECURITY DEFINER functions, and readers may SELECT the tables
-- so DBAs can run their own temporal SQL.

REVOKE ALL ON ALL TABLES IN SCHEMA eventstore FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA eventstore FROM PUBLIC;

GRANT USAGE ON SCHEMA eventstore TO eventstore_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA eventstore TO eventstore_reader;

GRANT EXECUTE ON FUNCTION eventstore.load_events(uuid, integer) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.read_all(eventstore.feed_position, integer, text[], text[]) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.read_all(text, integer, text[], text[]) TO eventstore_reader;

GRANT EXECUTE ON FUNCTION eventstore.load_aggregate(text, uuid) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.aggregate_state_at(text, uuid, timestamptz) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.aggregate_state_at_version(text, uuid, integer) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.aggregate_history(uuid) TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.event_counts(timestamptz, timestamptz, text) TO eventstore_reader;

-- The view projection_status calls these, and a view's functions are checked
-- against the role that queries the view, not against the view's owner.
GRANT EXECUTE ON FUNCTION eventstore.rebuild_progress() TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.feed_fence() TO eventstore_reader;
GRANT EXECUTE ON FUNCTION eventstore.projection_lag(eventstore.projections) TO eventstore_reader;

GRANT EXECUTE ON FUNCTION eventstore.append_events(text, uuid, integer, jsonb) TO eventstore_writer;
-- Projection workers run as writers: they apply batches and move checkpoints.
GRANT EXECUTE ON FUNCTION eventstore.run_projection(text, integer) TO eventstore_writer;
GRANT EXECUTE ON FUNCTION eventstore.lock_projection(text) TO eventstore_writer;
GRANT EXECUTE ON FUNCTION eventstore.save_projection_checkpoint(text, eventstore.feed_position, integer)
TO eventstore_writer;
GRANT EXECUTE ON FUNCTION eventstore.fail_projection(text, eventstore.feed_position, text) TO eventstore_writer;

GRANT EXECUTE ON FUNCTION eventstore.after_restore() TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.register_aggregate_type(text, regprocedure, jsonb, integer) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.take_snapshot(text, uuid) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.prune_snapshots(text, integer) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.register_projection(text, regprocedure, text[], text, regprocedure)
TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.register_external_projection(text, text[]) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.unregister_projection(text) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.pause_projection(text) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.resume_projection(text) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.retry_projection(text) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.skip_projection_event(text) TO eventstore_admin;
GRANT EXECUTE ON FUNCTION eventstore.rebuild_projection(text) TO eventstore_admin;

-- migrations/0.2.0--0.3.0/post.sql
-- pg_eventstore 0.2.0 -> 0.3.0, the hand-written part that runs AFTER the code.

-- Internal functions carry a leading underscore now; the code created them
-- under their new names, and nothing calls the old ones any more (the
-- triggers and the status view were re-created by the code).
DROP FUNCTION
eventstore.next_transaction_id(),
eventstore.checked_feed_key_offset(),
eventstore.validate_append(text, uuid, integer, jsonb),
eventstore.stored_retry(text, uuid, jsonb),
eventstore.check_page_size(integer),
eventstore.feed_page(bigint, bigint, bigint, integer, text[], text[]),
eventstore.qualified_name(regprocedure),
eventstore.registered_projection(text),
eventstore.projection_wrapper(text, text),
eventstore.refresh_inline_projections(),
eventstore.create_projection_wrappers(text, regprocedure, regprocedure),
eventstore.validate_event_types(text[]),
eventstore.change_projection_state(text, text[], text),
eventstore.projection_batch(eventstore.projections, bigint, integer),
eventstore.apply_projection_batch(eventstore.projections, eventstore.domain_events[]),
eventstore.fold_identity(regprocedure, jsonb),
eventstore.registered_type(text),
eventstore.hand_to_owner_of(regprocedure, regprocedure, text),
eventstore.owner_guard(regprocedure),
eventstore.check_may_register(regprocedure, text),
eventstore.fold_state(eventstore.aggregate_types, uuid, integer),
eventstore.typed_stream(text, uuid),
eventstore.save_snapshot(eventstore.aggregate_types, uuid, integer),
eventstore.take_automatic_snapshot(text, uuid, integer),
eventstore.refuse_event_change(),
eventstore.notify_append();

-- Inline projections run from a statement trigger now (0.2.0: a row trigger):
-- regenerate it. Dropped first: an extension script may not replace a
-- function the extension does not own (the generated one is released again).
DROP TRIGGER IF EXISTS domain_events_inline_projections ON eventstore.domain_events;
DROP FUNCTION IF EXISTS eventstore.apply_inline_projections();
DO $refresh$
BEGIN
    PERFORM eventstore._refresh_inline_projections();
END
$refresh$;

-- sql/version.sql
-- Record the installed version; 0.3.0 is replaced by the build from VERSION.
INSERT INTO eventstore.schema_migrations (version) VALUES ('0.3.0');
