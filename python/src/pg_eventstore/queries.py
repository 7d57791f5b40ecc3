"""The SQL the client sends, in one place. Every statement calls a public function."""

from typing import LiteralString

APPEND = (
    "SELECT * FROM eventstore.append_events(%(aggregate_type)s, %(aggregate_id)s, %(expected_version)s, %(events)s)"
)

LOAD_EVENTS = "SELECT * FROM eventstore.load_events(%(aggregate_id)s, %(from_version)s)"

# The position goes in its text form, so the text overload of read_all parses it.
READ_ALL: LiteralString = (
    "SELECT * FROM eventstore.read_all(%(after)s::text, %(max_count)s, %(event_types)s, %(aggregate_types)s)"
)

LISTEN = "LISTEN eventstore_events"

# Aggregates, snapshots, temporal queries and analytics.
REGISTER_AGGREGATE_TYPE = (
    "SELECT eventstore.register_aggregate_type("
    "%(aggregate_type)s, %(fold)s::regprocedure, %(initial_state)s, %(snapshot_every)s)"
)

LOAD_AGGREGATE = "SELECT state, version FROM eventstore.load_aggregate(%(aggregate_type)s, %(aggregate_id)s)"

AGGREGATE_STATE_AT = (
    "SELECT state, version FROM eventstore.aggregate_state_at(%(aggregate_type)s, %(aggregate_id)s, %(as_of)s)"
)

AGGREGATE_STATE_AT_VERSION = (
    "SELECT state, version FROM eventstore.aggregate_state_at_version("
    "%(aggregate_type)s, %(aggregate_id)s, %(version)s)"
)

AGGREGATE_HISTORY = (
    "SELECT event_version, event_type, payload, metadata, occurred_at, state_after"
    " FROM eventstore.aggregate_history(%(aggregate_id)s)"
)

EVENT_COUNTS = "SELECT bucket, event_type, event_count FROM eventstore.event_counts(%(from)s, %(to)s, %(bucket)s)"

TAKE_SNAPSHOT = "SELECT eventstore.take_snapshot(%(aggregate_type)s, %(aggregate_id)s)"

PRUNE_SNAPSHOTS = "SELECT eventstore.prune_snapshots(%(aggregate_type)s, %(keep)s)"

SCHEMA_INSTALLED = "SELECT to_regclass('eventstore.schema_migrations') IS NOT NULL"

# Highest version by its numeric parts ('0.10.0' > '0.9.0'): one upgrade transaction records several.
INSTALLED_VERSION = (
    "SELECT version FROM eventstore.schema_migrations ORDER BY string_to_array(version, '.')::int[] DESC LIMIT 1"
)

# Projections.
RUN_PROJECTION = "SELECT eventstore.run_projection(%(name)s, %(max_events)s)"

REGISTER_EXTERNAL_PROJECTION = "SELECT eventstore.register_external_projection(%(name)s, %(event_types)s)"

LOCK_PROJECTION = "SELECT after::text AS after, state, event_types FROM eventstore.lock_projection(%(name)s)"

SAVE_PROJECTION_CHECKPOINT = (
    "SELECT eventstore.save_projection_checkpoint(%(name)s, %(position)s::eventstore.feed_position, %(count)s)"
)

FAIL_PROJECTION = "SELECT eventstore.fail_projection(%(name)s, %(position)s::eventstore.feed_position, %(error)s)"
