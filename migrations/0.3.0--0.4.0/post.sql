-- 0.3.0 -> 0.4.0, after the code: drop what is gone, regenerate what registrations generated (see migrations/README.md).

-- Replaced by _key_ceiling() (issue 13 item 4).
DROP FUNCTION eventstore._next_transaction_id();
