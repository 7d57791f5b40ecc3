-- 0.3.0 -> 0.4.0, after the code: drop what is gone, regenerate what registrations generated (see migrations/README.md).

-- 0.3.0 notified from every appending transaction with a statement trigger on
-- domain_events; the deferred trigger on streams (06_notify.sql) replaces it.
DROP TRIGGER domain_events_notify ON eventstore.domain_events;
DROP FUNCTION eventstore._notify_append();

-- Replaced by _key_ceiling() (issue 13 item 4).
DROP FUNCTION eventstore._next_transaction_id();
