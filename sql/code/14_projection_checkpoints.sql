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
