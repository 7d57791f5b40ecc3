-- The W3 ceiling: the 10 rows append_events() stores, in one plain INSERT. -D payload: each event's JSON.
INSERT INTO bench.ceiling_events (
    event_id, aggregate_type, aggregate_id, event_type, event_version, payload, metadata, occurred_at, feed_key
)
SELECT
    gen_random_uuid(), 'Order', a.id, 'OrderPlaced', v.event_version, :payload::jsonb, '{}'::jsonb,
    clock_timestamp(), pg_current_xact_id()::text::bigint
FROM (SELECT gen_random_uuid() AS id) AS a
CROSS JOIN (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS v (event_version)
RETURNING *;
