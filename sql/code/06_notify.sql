-- Wake-up hints for consumers: one NOTIFY per appending transaction.
-- The payload is the transaction id, the same for every statement of the
-- transaction, so PostgreSQL folds repeated notifications into one.
-- It is only a hint: consumers re-read the feed, which is the truth.

-- No SET search_path (see _next_transaction_id()): it fires inside the
-- functions that insert events, which set it, once per append.
CREATE OR REPLACE FUNCTION eventstore._notify_append()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('eventstore_events', pg_current_xact_id()::text);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION eventstore._notify_append() IS
'Internal: trigger function that sends NOTIFY eventstore_events once per appending transaction (payload: the transaction id).';

CREATE OR REPLACE TRIGGER domain_events_notify
AFTER INSERT ON eventstore.domain_events
FOR EACH STATEMENT EXECUTE FUNCTION eventstore._notify_append();
