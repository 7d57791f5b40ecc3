-- The W1 ceiling: the row append_events() stores, in one plain INSERT. -D payload: the event's JSON.
INSERT INTO bench.ceiling_events (
    event_id, aggregate_type, aggregate_id, event_type, event_version, payload, metadata, occurred_at, feed_key
)
VALUES (
    gen_random_uuid(), 'Order', gen_random_uuid(), 'OrderPlaced', 0, :payload::jsonb, '{}'::jsonb,
    clock_timestamp(), pg_current_xact_id()::text::bigint
)
RETURNING *;
