-- The checks of an append_events() call: each bad argument or event is ES002
-- with a message naming it, raised before anything is written.

-- The first key of an event that append_events() does not know, in
-- alphabetical order; NULL when it has none. A function of its own so that
-- the query runs only for an event that has one: as a subquery inside
-- _event_problem() it would make every check start a subplan.
CREATE OR REPLACE FUNCTION eventstore._first_unknown_key(p_event jsonb)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT k.key
    FROM jsonb_object_keys(p_event - ARRAY['event_type', 'payload', 'metadata', 'event_id']) AS k (key)
    ORDER BY k.key
    LIMIT 1;
$$;

COMMENT ON FUNCTION eventstore._first_unknown_key(jsonb) IS
'Internal: the alphabetically first key of an event that is not event_type, payload, metadata or event_id.';

-- What is wrong with one element of p_events, as the end of an ES002
-- message; NULL when it is a well-formed event. The one place of the rules
-- for an event: one expression, which PostgreSQL inlines into the query over
-- all the elements, and which a single-event call evaluates without a query.
CREATE OR REPLACE FUNCTION eventstore._event_problem(p_event jsonb)
RETURNS text
LANGUAGE sql
-- STABLE as format(), to_json() and pg_column_size() are: PostgreSQL inlines
-- a function only when it is declared no less volatile than its body.
STABLE
RETURN CASE
    WHEN jsonb_typeof(p_event) <> 'object'
        THEN 'is not a JSON object'
    WHEN p_event - ARRAY['event_type', 'payload', 'metadata', 'event_id'] <> '{}'::jsonb
        THEN format(
            'has an unknown key %s; expected event_type, payload, metadata, event_id',
            to_json(eventstore._first_unknown_key(p_event))::text
        )
    WHEN
        jsonb_typeof(p_event -> 'event_type') IS DISTINCT FROM 'string'
        OR btrim(p_event ->> 'event_type') = ''
        THEN 'needs "event_type": a non-empty string'
    WHEN length(p_event ->> 'event_type') > 255
        THEN 'has an event_type longer than 255 characters'
    WHEN jsonb_typeof(p_event -> 'payload') IS DISTINCT FROM 'object'
        THEN 'needs "payload": a JSON object'
    WHEN coalesce(jsonb_typeof(p_event -> 'metadata'), 'null') NOT IN ('object', 'null')
        THEN 'has "metadata" that is not a JSON object'
    WHEN
        coalesce(jsonb_typeof(p_event -> 'event_id'), 'null') NOT IN ('string', 'null')
        OR (p_event ->> 'event_id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        THEN 'has an "event_id" that is not a UUID string'
    WHEN pg_column_size(p_event) > 1048576
        THEN 'is larger than 1 MiB'
END;

COMMENT ON FUNCTION eventstore._event_problem(jsonb) IS
'Internal: what makes one element of append_events()''s p_events malformed (the end of the ES002 message), NULL when nothing does.';

-- Raises ES002 naming the first bad argument or event; returns nothing when
-- the call is well formed. Nothing has been written when it raises.
-- No SET search_path (see the note in 02_feed_keys.sql): append_events() sets it.
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
    v_position integer;
    v_event_problem text;
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

    -- The first malformed element, in array order (0-based, as in JSON). A
    -- single event, the common call, is checked without a query.
    IF jsonb_array_length(p_events) = 1 THEN
        v_position := 0;
        v_event_problem := eventstore._event_problem(p_events -> 0);
    ELSE
        SELECT t.ord - 1, check_result.problem
        INTO v_position, v_event_problem
        FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t (e, ord)
        CROSS JOIN LATERAL (SELECT eventstore._event_problem(t.e) AS problem) AS check_result
        WHERE check_result.problem IS NOT NULL
        ORDER BY t.ord
        LIMIT 1;
    END IF;

    IF v_event_problem IS NOT NULL THEN
        RAISE EXCEPTION 'p_events[%] %', v_position, v_event_problem
            USING ERRCODE = 'ES002',
                  HINT = 'Each event is {"event_type": text, "payload": object, "metadata": object?, "event_id": uuid?}; events are at most 1 MiB.';
    END IF;

    -- Only calls of several events that carry event_ids can repeat one: most
    -- appends skip this query.
    IF jsonb_array_length(p_events) = 1 OR NOT jsonb_path_exists(p_events, '$[*].event_id ? (@ != null)') THEN
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
