-- The W1 and W3 contract ceiling: the stream row, the event rows and one NOTIFY, in one plain statement.
-- -D payload: each event's JSON; -D count: how many (1 or 10); -D notify=false leaves the NOTIFY out
-- (a diagnostic: the W1 ceiling plus a streams row INSERT).
WITH s AS (
    INSERT INTO bench.ceiling_streams (aggregate_id, aggregate_type, version, last_feed_key, last_occurred_at)
    VALUES (gen_random_uuid(), 'Order', :count - 1, pg_current_xact_id()::text::bigint, clock_timestamp())
    RETURNING aggregate_id
),
e AS (
    INSERT INTO bench.ceiling_events (
        event_id, aggregate_type, aggregate_id, event_type, event_version, payload, metadata, occurred_at, feed_key
    )
    SELECT
        gen_random_uuid(), 'Order', s.aggregate_id, 'OrderPlaced', v.event_version, :payload::jsonb, '{}'::jsonb,
        clock_timestamp(), pg_current_xact_id()::text::bigint
    FROM s CROSS JOIN (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS v (event_version)
    WHERE v.event_version < :count
    RETURNING *
)
SELECT e.*, CASE WHEN :notify THEN pg_notify('bench_events', pg_current_xact_id()::text) END AS notified FROM e;
