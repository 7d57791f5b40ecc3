-- Peers, W3: 10 messages to a new stream in one transaction, as Message DB's clients write a batch: one
-- write_message() each, the first expecting no stream (-1), every next one the position before it. The
-- stream's name comes from two random draws, so no round trip is spent on it. -D payload.
\set hi random(1, 1000000000000000)
\set lo random(1, 1000000000000000)
BEGIN;
SELECT message_store.write_message(gen_random_uuid()::varchar, 'order-' || md5(:hi || '-' || :lo)::uuid::text,
    'OrderPlaced', :payload::jsonb, '{}'::jsonb, -1);
SELECT message_store.write_message(gen_random_uuid()::varchar, 'order-' || md5(:hi || '-' || :lo)::uuid::text,
    'OrderPlaced', :payload::jsonb, '{}'::jsonb, 0);
SELECT message_store.write_message(gen_random_uuid()::varchar, 'order-' || md5(:hi || '-' || :lo)::uuid::text,
    'OrderPlaced', :payload::jsonb, '{}'::jsonb, 1);
SELECT message_store.write_message(gen_random_uuid()::varchar, 'order-' || md5(:hi || '-' || :lo)::uuid::text,
    'OrderPlaced', :payload::jsonb, '{}'::jsonb, 2);
SELECT message_store.write_message(gen_random_uuid()::varchar, 'order-' || md5(:hi || '-' || :lo)::uuid::text,
    'OrderPlaced', :payload::jsonb, '{}'::jsonb, 3);
SELECT message_store.write_message(gen_random_uuid()::varchar, 'order-' || md5(:hi || '-' || :lo)::uuid::text,
    'OrderPlaced', :payload::jsonb, '{}'::jsonb, 4);
SELECT message_store.write_message(gen_random_uuid()::varchar, 'order-' || md5(:hi || '-' || :lo)::uuid::text,
    'OrderPlaced', :payload::jsonb, '{}'::jsonb, 5);
SELECT message_store.write_message(gen_random_uuid()::varchar, 'order-' || md5(:hi || '-' || :lo)::uuid::text,
    'OrderPlaced', :payload::jsonb, '{}'::jsonb, 6);
SELECT message_store.write_message(gen_random_uuid()::varchar, 'order-' || md5(:hi || '-' || :lo)::uuid::text,
    'OrderPlaced', :payload::jsonb, '{}'::jsonb, 7);
SELECT message_store.write_message(gen_random_uuid()::varchar, 'order-' || md5(:hi || '-' || :lo)::uuid::text,
    'OrderPlaced', :payload::jsonb, '{}'::jsonb, 8);
COMMIT;
