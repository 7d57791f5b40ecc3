-- Peers, W2: Message DB's write_message() to the client's own stream ('order-' || md5(run tag || client_id)::uuid,
-- written at position 0 before the run) with the position it last wrote as the expected version.
-- -D run, -D v=0, -D payload.
SELECT message_store.write_message(
    gen_random_uuid()::varchar, 'order-' || md5(:run::text || '-' || :client_id::text)::uuid::text, 'OrderShipped',
    :payload::jsonb, '{}'::jsonb, :v
) AS v \gset
