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
BEGIN
    PERFORM eventstore._check_not_negative(p_version, 'p_version', 'Versions start at 0.');
    RETURN QUERY SELECT * FROM eventstore._aggregate_state(v_type, p_aggregate_id, p_version);
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
BEGIN
    PERFORM eventstore._check_not_null(p_as_of, 'p_as_of');
    -- Its last version by then; -1 (no row) when it had none.
    RETURN QUERY SELECT * FROM eventstore._aggregate_state(
        v_type,
        p_aggregate_id,
        (
            SELECT coalesce(max(d.event_version), -1)
            FROM eventstore.domain_events AS d
            WHERE d.aggregate_id = p_aggregate_id AND d.occurred_at <= p_as_of
        )
    );
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
