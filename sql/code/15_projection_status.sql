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
