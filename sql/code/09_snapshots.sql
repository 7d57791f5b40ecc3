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
