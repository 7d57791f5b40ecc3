-- The W2 ceiling: the next version's row in one plain INSERT. -D run, -D v=0, -D payload.
INSERT INTO bench.ceiling_events (
    event_id, aggregate_type, aggregate_id, event_type, event_version, payload, metadata, occurred_at, feed_key
)
VALUES (
    gen_random_uuid(), 'Order', md5(:run::text || '-' || :client_id::text)::uuid, 'OrderShipped', :v + 1,
    :payload::jsonb, '{}'::jsonb, clock_timestamp(), pg_current_xact_id()::text::bigint
)
RETURNING event_version AS v \gset
