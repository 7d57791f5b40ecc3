-- Peers, W1: Message DB's write_message() to a new stream of the `order` category, expected version -1
-- (no stream yet). -D payload: the message's JSON.
SELECT message_store.write_message(
    gen_random_uuid()::varchar, 'order-' || gen_random_uuid()::text, 'OrderPlaced', :payload::jsonb, '{}'::jsonb, -1
);
