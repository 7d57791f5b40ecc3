-- The W4 ceiling: read max(event_version), INSERT the next one unless another client did. -D run, -D payload.
\set a random(1, 4)
SELECT max(c.event_version) AS v FROM bench.ceiling_events AS c
WHERE c.aggregate_id = md5(:run::text || '-w4-' || :a::text)::uuid \gset
INSERT INTO bench.ceiling_events (
    event_id, aggregate_type, aggregate_id, event_type, event_version, payload, metadata, occurred_at, feed_key
)
VALUES (
    gen_random_uuid(), 'Order', md5(:run::text || '-w4-' || :a::text)::uuid, 'OrderShipped', :v + 1,
    :payload::jsonb, '{}'::jsonb, clock_timestamp(), pg_current_xact_id()::text::bigint
)
ON CONFLICT (aggregate_id, event_version) DO NOTHING;
