-- pg_eventstore 0.1.0: install script built from sql/ by make sql. Do not edit.

-- sql/00_schema.sql
-- pg_eventstore: the schema and the roles every later file refers to.
-- Roles are cluster-wide, so they are created only when missing: a second
-- database in the same cluster reuses them.

CREATE SCHEMA eventstore;

COMMENT ON SCHEMA eventstore IS
'pg_eventstore: an append-only event log with optimistic concurrency, a gap-free global feed, aggregates, snapshots and projections.';

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventstore_reader') THEN
        CREATE ROLE eventstore_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventstore_writer') THEN
        CREATE ROLE eventstore_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventstore_admin') THEN
        CREATE ROLE eventstore_admin NOLOGIN;
    END IF;
END
$roles$;

-- Each role includes the one below it: admin > writer > reader.
GRANT eventstore_reader TO eventstore_writer;
GRANT eventstore_writer TO eventstore_admin;

-- sql/01_tables.sql
-- The tables of the event store. Only the owner writes to them, and only
-- through the functions in the following files.

-- Which schema version is installed; upgrades read it to know where they stand.
CREATE TABLE eventstore.schema_migrations (
    version text PRIMARY KEY,
    installed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- One-row settings. feed_key_offset is added to transaction ids to make feed
-- keys; after_restore() raises it when a dump lands in a cluster whose
-- transaction-id counter is behind the restored keys.
CREATE TABLE eventstore.settings (
    singleton boolean PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    feed_key_offset bigint NOT NULL DEFAULT 0 CHECK (feed_key_offset >= 0)
);

INSERT INTO eventstore.settings DEFAULT VALUES;

-- A position in the global feed: the event's feed key, then its id.
-- Its text form '(feed_key,id)' is what clients store as a checkpoint.
CREATE TYPE eventstore.feed_position AS (
    feed_key bigint,
    id bigint
);

-- The log. The seed's columns and names, so DBAs' SQL runs unchanged, plus
-- feed_key: the order key of the global feed (see read_all).
CREATE TABLE eventstore.domain_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    aggregate_type text NOT NULL,
    aggregate_id uuid NOT NULL,
    event_type text NOT NULL,
    event_version integer NOT NULL CHECK (event_version >= 0),
    payload jsonb NOT NULL CHECK (pg_catalog.jsonb_typeof(payload) = 'object'),
    metadata jsonb NOT NULL DEFAULT '{}' CHECK (pg_catalog.jsonb_typeof(metadata) = 'object'),
    occurred_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    feed_key bigint NOT NULL,
    UNIQUE (aggregate_id, event_version)
);

-- The feed reads in (feed_key, id) order.
CREATE INDEX domain_events_feed_idx ON eventstore.domain_events (feed_key, id);
-- Temporal and analytics queries filter on time.
CREATE INDEX domain_events_occurred_at_idx ON eventstore.domain_events (occurred_at);

COMMENT ON TABLE eventstore.domain_events IS
'The append-only event log. Write through eventstore.append_events(); UPDATE, DELETE and TRUNCATE are refused (ES004).';
COMMENT ON COLUMN eventstore.domain_events.id IS
'Insertion sequence. Not the feed order: ids are taken at insert but become visible at commit.';
COMMENT ON COLUMN eventstore.domain_events.event_version IS
'0-based position of the event in its aggregate; dense, unique per aggregate.';
COMMENT ON COLUMN eventstore.domain_events.occurred_at IS
'Insert time of the append, never earlier than the previous event of the same aggregate.';
COMMENT ON COLUMN eventstore.domain_events.feed_key IS
'Order key of the global feed: the appending transaction id plus the settings offset, never below the previous key of the same aggregate.';

-- One row per aggregate: its type, current version, and the last feed key
-- and time, which the next append must not go below. The row is the lock
-- that serializes writers of one aggregate, and only of that aggregate.
CREATE TABLE eventstore.streams (
    aggregate_id uuid PRIMARY KEY,
    aggregate_type text NOT NULL,
    version integer NOT NULL CHECK (version >= 0),
    last_feed_key bigint NOT NULL,
    last_occurred_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE eventstore.streams IS
'One row per aggregate: its type and current version (the version of its last event).';

-- In an extension install the data of these tables belongs in pg_dump's output.
-- settings and schema_migrations are filled by the install itself; a restored
-- cluster needs after_restore() anyway, which recomputes the offset.
DO $config_dump$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'eventstore') THEN
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.domain_events', '');
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.domain_events_id_seq', '');
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.streams', '');
    END IF;
END
$config_dump$;

-- sql/02_immutability.sql
-- Events are immutable: UPDATE, DELETE and TRUNCATE on the log are refused
-- for everyone, the owner and superusers included.

-- Raises ES004 for whatever statement fired it.
CREATE FUNCTION eventstore.refuse_event_change()
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

COMMENT ON FUNCTION eventstore.refuse_event_change() IS
'Trigger function: refuses UPDATE, DELETE and TRUNCATE on eventstore.domain_events with ES004.';

CREATE TRIGGER domain_events_refuse_update_delete
BEFORE UPDATE OR DELETE ON eventstore.domain_events
FOR EACH STATEMENT EXECUTE FUNCTION eventstore.refuse_event_change();

CREATE TRIGGER domain_events_refuse_truncate
BEFORE TRUNCATE ON eventstore.domain_events
FOR EACH STATEMENT EXECUTE FUNCTION eventstore.refuse_event_change();

-- ALWAYS: the triggers fire under session_replication_role = replica too,
-- which would otherwise let a superuser slip past them.
ALTER TABLE eventstore.domain_events ENABLE ALWAYS TRIGGER domain_events_refuse_update_delete;
ALTER TABLE eventstore.domain_events ENABLE ALWAYS TRIGGER domain_events_refuse_truncate;

-- sql/03_feed_key.sql
-- Feed keys: the order of the global feed.
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
CREATE FUNCTION eventstore.next_transaction_id()
RETURNS bigint
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
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
CREATE FUNCTION eventstore.checked_feed_key_offset()
RETURNS bigint
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
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

-- Operator step after restoring a dump into a new cluster: lift the offset so
-- that new keys (and the fence) are above every restored key. Idempotent.
CREATE FUNCTION eventstore.after_restore()
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
    SELECT max(d.feed_key) - eventstore.next_transaction_id() + 1
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

-- sql/04_append.sql
-- Appending events: validation, idempotent retries, and append_events().

-- Raises ES002 naming the first bad argument or event; returns nothing when
-- the call is well formed. Nothing has been written when it raises.
CREATE FUNCTION eventstore.validate_append(
    p_aggregate_type text,
    p_aggregate_id uuid,
    p_expected_version integer,
    p_events jsonb
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
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
    SELECT t.ord - 1 AS position, check_result.problem
    INTO v_problem
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t (e, ord)
    CROSS JOIN LATERAL (
        SELECT CASE
            WHEN jsonb_typeof(t.e) <> 'object'
                THEN 'is not a JSON object'
            WHEN EXISTS (
                SELECT FROM jsonb_object_keys(t.e) AS k (key)
                WHERE k.key NOT IN ('event_type', 'payload', 'metadata', 'event_id')
            )
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
CREATE FUNCTION eventstore.stored_retry(
    p_aggregate_type text,
    p_aggregate_id uuid,
    p_events jsonb
)
RETURNS SETOF eventstore.domain_events
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
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
CREATE FUNCTION eventstore.append_events(
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
    v_stored integer;
BEGIN
    PERFORM eventstore.validate_append(p_aggregate_type, p_aggregate_id, p_expected_version, p_events);
    v_count := jsonb_array_length(p_events);
    v_own_key := pg_current_xact_id()::text::bigint + eventstore.checked_feed_key_offset();

    SELECT s.* INTO v_stream
    FROM eventstore.streams AS s
    WHERE s.aggregate_id = p_aggregate_id
    FOR UPDATE;

    IF NOT FOUND THEN
        IF p_expected_version >= 0 THEN
            RAISE EXCEPTION 'aggregate % does not exist, expected version %', p_aggregate_id, p_expected_version
                USING ERRCODE = 'ES001',
                      DETAIL = format('stream %s, expected version %s, actual version -1 (no events)',
                                      p_aggregate_id, p_expected_version),
                      HINT = 'Use expected version -1 to create an aggregate.';
        END IF;
        -- A new aggregate: its first key is our own.
        v_key := v_own_key;
        v_occurred_at := clock_timestamp();
        INSERT INTO eventstore.streams AS s (aggregate_id, aggregate_type, version, last_feed_key, last_occurred_at)
        VALUES (p_aggregate_id, p_aggregate_type, v_count - 1, v_key, v_occurred_at)
        ON CONFLICT (aggregate_id) DO NOTHING;
        IF FOUND THEN
            v_first_version := 0;
        ELSE
            -- Another transaction created it since our look-up; it has
            -- committed now, so treat the aggregate as existing.
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
        IF jsonb_path_exists(p_events, '$[*].event_id ? (@ != null)') THEN
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

    -- ON CONFLICT: an event_id taken meanwhile by another aggregate's append
    -- must surface as ES005, not as a unique violation.
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
                  DETAIL = format('aggregate %s: %s of %s events conflicted', p_aggregate_id, v_count - v_stored, v_count),
                  HINT = 'An event_id identifies one event; generate a new one for a new event.';
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
-- Reading: one aggregate's events, and the global feed.

-- One aggregate's events from a version on, in version order.
CREATE FUNCTION eventstore.load_events(p_aggregate_id uuid, p_from_version integer DEFAULT 0)
RETURNS SETOF eventstore.domain_events
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_aggregate_id IS NULL THEN
        RAISE EXCEPTION 'p_aggregate_id must not be NULL' USING ERRCODE = 'ES002';
    END IF;
    IF p_from_version IS NULL OR p_from_version < 0 THEN
        RAISE EXCEPTION 'p_from_version must be a version >= 0; got %', coalesce(p_from_version::text, 'NULL')
            USING ERRCODE = 'ES002', HINT = 'Versions start at 0.';
    END IF;
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

-- Purpose: the global feed. Rows come in (feed_key, id) order and only below
-- the fence: the oldest transaction still running (plus the offset). Every
-- transaction below the fence has ended, so nothing can commit behind a
-- reader's position later: the feed never skips, and never repeats.
CREATE FUNCTION eventstore.read_all(
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
AS $$
#variable_conflict use_column
DECLARE
    v_offset bigint := eventstore.checked_feed_key_offset();
    v_fence bigint := pg_snapshot_xmin(pg_current_snapshot())::text::bigint + v_offset;
    v_after_key bigint := -1;
    v_after_id bigint := 0;
BEGIN
    IF p_max_count IS NULL OR p_max_count < 1 THEN
        RAISE EXCEPTION 'p_max_count must be a positive integer; got %', coalesce(p_max_count::text, 'NULL')
            USING ERRCODE = 'ES002';
    END IF;
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
    SELECT
        d.id, d.event_id, d.aggregate_type, d.aggregate_id, d.event_type, d.event_version,
        d.payload, d.metadata, d.occurred_at, d.feed_key,
        ROW(d.feed_key, d.id)::eventstore.feed_position
    FROM eventstore.domain_events AS d
    WHERE (d.feed_key, d.id) > (v_after_key, v_after_id)
      AND d.feed_key < v_fence
      AND (p_event_types IS NULL OR d.event_type = ANY(p_event_types))
      AND (p_aggregate_types IS NULL OR d.aggregate_type = ANY(p_aggregate_types))
    ORDER BY d.feed_key, d.id
    LIMIT p_max_count;
END;
$$;

COMMENT ON FUNCTION eventstore.read_all(eventstore.feed_position, integer, text[], text[]) IS
'The global feed after p_after (NULL: from the start), at most p_max_count rows, optionally only the given event and aggregate types.
Gap-free: a row never appears behind a position already returned. Each aggregate comes in version order.
Pass the last row''s feed_position back as p_after to resume. Errors: ES002, ES006.';

-- The same feed, with the position in its text form '(feed_key,id)', as
-- clients store it. NULL starts from the beginning.
CREATE FUNCTION eventstore.read_all(
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
AS $$
BEGIN
    -- Two unsigned integers, each within bigint: anything else is ES002, not a
    -- cast error. The second test is NULL when the first fails, whatever the order.
    IF p_after !~ '^\([0-9]+,[0-9]+\)$'
       OR (SELECT max(n::numeric) FROM unnest(regexp_match(p_after, '^\(([0-9]+),([0-9]+)\)$')) AS n)
          > 9223372036854775807 THEN
        RAISE EXCEPTION 'p_after is not a feed position: %', p_after
            USING ERRCODE = 'ES002', HINT = 'A feed position reads ''(feed_key,id)'', e.g. ''(1234,56)''.';
    END IF;
    RETURN QUERY
    SELECT * FROM eventstore.read_all(p_after::eventstore.feed_position, p_max_count, p_event_types, p_aggregate_types);
END;
$$;

COMMENT ON FUNCTION eventstore.read_all(text, integer, text[], text[]) IS
'read_all() with the position in its text form ''(feed_key,id)''; NULL starts from the beginning. Errors: ES002, ES006.';

-- sql/06_notify.sql
-- Wake-up hints for consumers: one NOTIFY per appending transaction.
-- The payload is the transaction id, the same for every statement of the
-- transaction, so PostgreSQL folds repeated notifications into one.
-- It is only a hint: consumers re-read the feed, which is the truth.

CREATE FUNCTION eventstore.notify_append()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('eventstore_events', pg_current_xact_id()::text);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION eventstore.notify_append() IS
'Trigger function: NOTIFY eventstore_events once per appending transaction (payload: the transaction id).';

CREATE TRIGGER domain_events_notify
AFTER INSERT ON eventstore.domain_events
FOR EACH STATEMENT EXECUTE FUNCTION eventstore.notify_append();

-- sql/90_security.sql
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

GRANT EXECUTE ON FUNCTION eventstore.append_events(text, uuid, integer, jsonb) TO eventstore_writer;

GRANT EXECUTE ON FUNCTION eventstore.after_restore() TO eventstore_admin;

-- sql/99_record_install.sql
-- Record the installed version; 0.1.0 is replaced by the build from VERSION.
INSERT INTO eventstore.schema_migrations (version) VALUES ('0.1.0');
