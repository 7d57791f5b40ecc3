-- Diagnostic: the W1 ceiling plus pg_notify() in the same transaction. -D payload.
WITH e AS (
    INSERT INTO bench.ceiling_events (
        event_id, aggregate_type, aggregate_id, event_type, event_version, payload, metadata, occurred_at, feed_key
    )
    VALUES (
        gen_random_uuid(), 'Order', gen_random_uuid(), 'OrderPlaced', 0, :payload::jsonb, '{}'::jsonb,
        clock_timestamp(), pg_current_xact_id()::text::bigint
    )
    RETURNING *
)
SELECT e.*, pg_notify('bench_events', pg_current_xact_id()::text) FROM e;
