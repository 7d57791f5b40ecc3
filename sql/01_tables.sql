-- The tables of the event store. Only the owner writes to them, and only
-- through the functions in the following files.

-- Which schema version is installed; upgrades read it to know where they stand.
CREATE TABLE eventstore.schema_migrations (
    version text PRIMARY KEY,
    installed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- One-row settings. feed_key_offset is added to transaction ids to make feed
-- keys; after_restore() raises it when a dump lands in a cluster whose
-- transaction-id counter is behind the restored keys.
CREATE TABLE eventstore.settings (
    singleton boolean PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    feed_key_offset bigint NOT NULL DEFAULT 0 CHECK (feed_key_offset >= 0)
);

INSERT INTO eventstore.settings DEFAULT VALUES;

-- A position in the global feed: the event's feed key, then its id.
-- Its text form '(feed_key,id)' is what clients store as a checkpoint.
CREATE TYPE eventstore.feed_position AS (
    feed_key bigint,
    id bigint
);

-- The log. The seed's columns and names, so DBAs' SQL runs unchanged, plus
-- feed_key: the order key of the global feed (see read_all).
CREATE TABLE eventstore.domain_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    aggregate_type text NOT NULL,
    aggregate_id uuid NOT NULL,
    event_type text NOT NULL,
    event_version integer NOT NULL CHECK (event_version >= 0),
    payload jsonb NOT NULL CHECK (pg_catalog.jsonb_typeof(payload) = 'object'),
    metadata jsonb NOT NULL DEFAULT '{}' CHECK (pg_catalog.jsonb_typeof(metadata) = 'object'),
    occurred_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    feed_key bigint NOT NULL,
    UNIQUE (aggregate_id, event_version)
);

-- The feed reads in (feed_key, id) order.
CREATE INDEX domain_events_feed_idx ON eventstore.domain_events (feed_key, id);
-- Temporal and analytics queries filter on time.
CREATE INDEX domain_events_occurred_at_idx ON eventstore.domain_events (occurred_at);

COMMENT ON TABLE eventstore.domain_events IS
'The append-only event log. Write through eventstore.append_events(); UPDATE, DELETE and TRUNCATE are refused (ES004).';
COMMENT ON COLUMN eventstore.domain_events.id IS
'Insertion sequence. Not the feed order: ids are taken at insert but become visible at commit.';
COMMENT ON COLUMN eventstore.domain_events.event_version IS
'0-based position of the event in its aggregate; dense, unique per aggregate.';
COMMENT ON COLUMN eventstore.domain_events.occurred_at IS
'Insert time of the append, never earlier than the previous event of the same aggregate.';
COMMENT ON COLUMN eventstore.domain_events.feed_key IS
'Order key of the global feed: the appending transaction id plus the settings offset, never below the previous key of the same aggregate.';

-- One row per aggregate: its type, current version, and the last feed key
-- and time, which the next append must not go below. The row is the lock
-- that serializes writers of one aggregate, and only of that aggregate.
CREATE TABLE eventstore.streams (
    aggregate_id uuid PRIMARY KEY,
    aggregate_type text NOT NULL,
    version integer NOT NULL CHECK (version >= 0),
    last_feed_key bigint NOT NULL,
    last_occurred_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE eventstore.streams IS
'One row per aggregate: its type and current version (the version of its last event).';

-- In an extension install the data of these tables belongs in pg_dump's output.
-- settings and schema_migrations are filled by the install itself; a restored
-- cluster needs after_restore() anyway, which recomputes the offset.
DO $config_dump$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'eventstore') THEN
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.domain_events', '');
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.domain_events_id_seq', '');
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.streams', '');
    END IF;
END
$config_dump$;
