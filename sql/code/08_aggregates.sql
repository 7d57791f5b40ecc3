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

    IF NOT eventstore._has_signature(p_fold, 'jsonb', ARRAY['jsonb', 'eventstore.domain_events']::regtype[]) THEN
        RAISE EXCEPTION 'fold % does not have the signature (state jsonb, event eventstore.domain_events) RETURNS jsonb',
                        coalesce(p_fold::text, 'NULL')
            USING ERRCODE = 'ES002',
                  HINT = 'A fold takes the state and one event and returns the new state; it must be pure.';
    END IF;
    PERFORM eventstore._check_may_register(p_fold, 'fold');
    SELECT n.nspname, p.proname
    INTO v_fold
    FROM pg_catalog.pg_proc AS p
    INNER JOIN pg_catalog.pg_namespace AS n ON p.pronamespace = n.oid
    WHERE p.oid = p_fold;

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

-- Purpose: the state of an aggregate of type p_type right after its event
-- p_to_version (NULL: its latest). No row when the aggregate does not exist or
-- has no such version (negative, or past its last event); ES002 when it is of
-- another type. The one body of load_aggregate() and the temporal queries,
-- whose own checks come first.
CREATE OR REPLACE FUNCTION eventstore._aggregate_state(
    p_type eventstore.aggregate_types,
    p_aggregate_id uuid,
    p_to_version integer
)
RETURNS TABLE (state jsonb, version integer)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_current integer := (eventstore._typed_stream(p_type.aggregate_type, p_aggregate_id)).version;
BEGIN
    IF v_current IS NULL OR p_to_version NOT BETWEEN 0 AND v_current THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM eventstore._fold_state(p_type, p_aggregate_id, p_to_version);
END;
$$;

COMMENT ON FUNCTION eventstore._aggregate_state(eventstore.aggregate_types, uuid, integer) IS
'Internal: an aggregate''s state right after a version (NULL: latest); no row when the aggregate or the version does not exist.';

-- The current state of one aggregate.
CREATE OR REPLACE FUNCTION eventstore.load_aggregate(p_aggregate_type text, p_aggregate_id uuid)
RETURNS TABLE (state jsonb, version integer)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT * FROM eventstore._aggregate_state(eventstore._registered_type(p_aggregate_type), p_aggregate_id, NULL);
END;
$$;

COMMENT ON FUNCTION eventstore.load_aggregate(text, uuid) IS
'The current state and version of an aggregate: the latest valid snapshot plus the events after it, folded by the registered fold.
No row when the aggregate does not exist. Errors: ES002 (NULL argument, aggregate of another type), ES003 (type not registered).';
