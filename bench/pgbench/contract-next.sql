-- The W2 contract ceiling: the stream row moved on from the expected version, the event row and one
-- NOTIFY, in one plain statement. -D run, -D v=0, -D payload; -D notify=false leaves the NOTIFY out
-- (a diagnostic: the W2 ceiling plus the streams row UPDATE).
WITH s AS (
    UPDATE bench.ceiling_streams AS s SET version = :v + 1,
        last_feed_key = greatest(s.last_feed_key, pg_current_xact_id()::text::bigint),
        last_occurred_at = greatest(s.last_occurred_at, clock_timestamp())
    WHERE s.aggregate_id = md5(:run::text || '-' || :client_id::text)::uuid AND s.version = :v
    RETURNING s.aggregate_id
),
e AS (
    INSERT INTO bench.ceiling_events (
        event_id, aggregate_type, aggregate_id, event_type, event_version, payload, metadata, occurred_at, feed_key
    )
    SELECT v.* FROM s CROSS JOIN LATERAL (VALUES (
        gen_random_uuid(), 'Order', s.aggregate_id, 'OrderShipped', :v + 1, :payload::jsonb, '{}'::jsonb,
        clock_timestamp(), pg_current_xact_id()::text::bigint
    )) AS v
    RETURNING *
)
SELECT e.event_version AS v, CASE WHEN :notify THEN pg_notify('bench_events', pg_current_xact_id()::text) END AS notified
FROM e \gset
