-- pg_eventstore 0.2.0 -> 0.3.0, the hand-written part that runs BEFORE the code
-- (sql/code/, re-run in full by the upgrade): state changes, and what
-- CREATE OR REPLACE cannot change. See migrations/README.md.

-- read_all() returns the new row type feed_event instead of a TABLE (the same
-- columns): a result type CREATE OR REPLACE cannot change.
CREATE TYPE eventstore.feed_event AS (
    id bigint,
    event_id uuid,
    aggregate_type text,
    aggregate_id uuid,
    event_type text,
    event_version integer,
    payload jsonb,
    metadata jsonb,
    occurred_at timestamptz,
    feed_key bigint,
    feed_position eventstore.feed_position
);
DROP FUNCTION eventstore.read_all(eventstore.feed_position, integer, text[], text[]);
DROP FUNCTION eventstore.read_all(text, integer, text[], text[]);
