-- Projections, the runs: async runs with checkpoints, pausing, failure
-- handling (retry, skip), and rebuilds.

-- Sets a projection's state from one of p_from to p_to; ES002 for inline
-- projections, which run with every append and cannot stop. The one body of
-- pause_projection(), resume_projection() and retry_projection().
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

-- Retry a failed projection: the next run starts again at the failed event
-- (running again clears the failure: see _change_projection_state()).
CREATE OR REPLACE FUNCTION eventstore.retry_projection(p_name text)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT eventstore._change_projection_state(p_name, ARRAY['failed'], 'running');
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
