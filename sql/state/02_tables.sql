-- The tables of the event store. Only the owner writes to them, and only
-- through the functions in the following files.

-- Which schema version is installed; upgrades read it to know where they stand.
CREATE TABLE eventstore.schema_migrations (
    version text PRIMARY KEY,
    installed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- One-row settings. feed_key_offset is added to transaction ids to make feed
-- keys; after_restore() raises it when a dump lands in a cluster whose
-- transaction-id counter is behind the restored keys. notify_mode says which
-- committing append transactions send the wake-up NOTIFY (06_notify.sql).
CREATE TABLE eventstore.settings (
    singleton boolean PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    feed_key_offset bigint NOT NULL DEFAULT 0 CHECK (feed_key_offset >= 0),
    notify_mode text NOT NULL DEFAULT 'uncontended'
    CHECK (notify_mode IN ('uncontended', 'every_append', 'off'))
);

INSERT INTO eventstore.settings DEFAULT VALUES;

-- A position in the global feed: the event's feed key, then its id.
-- Its text form '(feed_key,id)' is what clients store as a checkpoint.
CREATE TYPE eventstore.feed_position AS (
    feed_key bigint,
    id bigint
);

-- An event as the feed delivers it: the stored row and its position. The
-- result of read_all() (both overloads) and of the page query they share.
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

-- Aggregate types whose state the database folds. The fold is a pure
-- function (state jsonb, event eventstore.domain_events) RETURNS jsonb;
-- fold_aggregate names the aggregate function register_aggregate_type()
-- generates around it, so a load is one set-based statement.
CREATE TABLE eventstore.aggregate_types (
    aggregate_type text PRIMARY KEY,
    fold regprocedure NOT NULL,
    initial_state jsonb NOT NULL,
    snapshot_every integer NOT NULL CHECK (snapshot_every >= 0),
    fold_aggregate text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE eventstore.aggregate_types IS
'Registered aggregate types: the fold that computes their state, the initial state, and how often to snapshot (0 = never automatically).';

-- Cached states. A snapshot is served only while fold_identity matches the
-- registered fold (its definition and initial state), so changing the fold
-- never serves a state the new fold would not compute.
CREATE TABLE eventstore.aggregate_snapshots (
    aggregate_type text NOT NULL,
    aggregate_id uuid NOT NULL,
    version integer NOT NULL CHECK (version >= 0),
    state jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    fold_identity text NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, version)
);

COMMENT ON TABLE eventstore.aggregate_snapshots IS
'Aggregate states at a version, taken by append_events() every snapshot_every versions or by take_snapshot(); valid only for the fold_identity that made them.';

-- Projections (read models) and their checkpoints. inline: the handler runs
-- in the appending transaction (a trigger); async: run_projection() applies
-- the feed after the checkpoint; external: a client-side handler (Python)
-- keeps its checkpoint here. The checkpoint is a feed position, (-1, 0)
-- before the first event.
CREATE TABLE eventstore.projections (
    name text PRIMARY KEY CHECK (btrim(name) <> '' AND length(name) <= 255),
    handler regprocedure,
    event_types text[],
    mode text NOT NULL CHECK (mode IN ('inline', 'async', 'external')),
    reset regprocedure,
    state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'paused', 'failed', 'rebuilding')),
    checkpoint_feed_key bigint NOT NULL DEFAULT -1,
    checkpoint_id bigint NOT NULL DEFAULT 0,
    events_applied bigint NOT NULL DEFAULT 0,
    last_error text,
    failed_event_id bigint,
    failed_feed_key bigint,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((handler IS NULL) = (mode = 'external'))
);

COMMENT ON TABLE eventstore.projections IS
'Registered projections: handler, event types, mode (inline, async, external), state and checkpoint (a feed position).';

-- No rows, ever: _fresh_transaction_id() inserts one in a subtransaction it
-- rolls back, to be assigned a transaction id. Unlogged: nothing to keep.
CREATE UNLOGGED TABLE eventstore.key_floor_probe ();

COMMENT ON TABLE eventstore.key_floor_probe IS
'Internal, always empty: a rolled-back insert here gives an appender a fresh transaction id (see _fresh_transaction_id()).';

-- In an extension install the data of these tables belongs in pg_dump's output.
-- settings and schema_migrations are filled by the install itself; a restored
-- cluster needs after_restore() anyway, which recomputes the offset.
DO $config_dump$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'eventstore') THEN
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.domain_events', '');
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.domain_events_id_seq', '');
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.streams', '');
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.aggregate_types', '');
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.aggregate_snapshots', '');
        PERFORM pg_catalog.pg_extension_config_dump('eventstore.projections', '');
    END IF;
END
$config_dump$;
