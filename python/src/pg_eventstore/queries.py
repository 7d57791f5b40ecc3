"""The SQL the library sends, in one place.

Most statements call public functions; EventStore.status() and the
projection status also read the catalog views an operator would. The
library is the only client of these statements: the command line calls
the library's methods, never this module.
"""

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

LATEST_SNAPSHOT = (
    "SELECT max(version) FROM eventstore.aggregate_snapshots"
    " WHERE aggregate_type = %(aggregate_type)s AND aggregate_id = %(aggregate_id)s"
)

DATABASE_CLOCK = "SELECT clock_timestamp()"

SCHEMA_INSTALLED = "SELECT to_regclass('eventstore.schema_migrations') IS NOT NULL"

AFTER_RESTORE = "SELECT eventstore.after_restore()"

INSTALLED_AS_EXTENSION = "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'eventstore')"

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

REGISTER_PROJECTION = (
    "SELECT eventstore.register_projection("
    "%(name)s, %(handler)s::regprocedure, %(event_types)s, %(mode)s, %(reset)s::regprocedure)"
)

REBUILD_PROJECTION = "SELECT eventstore.rebuild_projection(%(name)s)"

# Projections.registered(): the registrations.
LIST_PROJECTIONS = (
    "SELECT name, mode, handler::text AS handler, reset::text AS reset, event_types, registered_at"
    " FROM eventstore.projections ORDER BY name"
)

# Projections.status() and status_of(), and EventStore.status(): the projections at work.
PROJECTION_STATUS = (
    "SELECT name, mode, state, position::text AS position, lag, events_applied, last_error, failed_event_id,"
    " rebuild_progress, updated_at"
    " FROM eventstore.projection_status"
    " WHERE %(name)s::text IS NULL OR name = %(name)s"
    " ORDER BY name"
)

# The events a rebuild of the projection will replay: the total it reports before the first batch.
PROJECTION_EVENTS = (
    "SELECT count(*) FROM eventstore.domain_events AS d, eventstore.projections AS p"
    " WHERE p.name = %(name)s AND (p.event_types IS NULL OR d.event_type = ANY(p.event_types))"
)

PROJECTION_REGISTERED = "SELECT EXISTS (SELECT FROM eventstore.projections WHERE name = %(name)s)"

# An operator's controls.
UNREGISTER_PROJECTION = "SELECT eventstore.unregister_projection(%(name)s)"

PAUSE_PROJECTION = "SELECT eventstore.pause_projection(%(name)s)"

RESUME_PROJECTION = "SELECT eventstore.resume_projection(%(name)s)"

RETRY_PROJECTION = "SELECT eventstore.retry_projection(%(name)s)"

SKIP_PROJECTION_EVENT = "SELECT eventstore.skip_projection_event(%(name)s)"

# EventStore.status(): the counts.
STORE_COUNTS = (
    "SELECT (SELECT count(*) FROM eventstore.domain_events) AS events,"
    " (SELECT count(*) FROM eventstore.streams) AS aggregates,"
    " (SELECT count(*) FROM eventstore.aggregate_types) AS aggregate_types,"
    " (SELECT count(*) FROM eventstore.aggregate_snapshots) AS snapshots"
)

FEED_FENCE = "SELECT eventstore.feed_fence()"

# The transactions with the oldest transaction ids, in any database of the cluster: the fence
# (the oldest running transaction id) cannot pass them.
# Only a transaction that appended and is still open holds the fence back (docs/feed.md): it holds
# ROW EXCLUSIVE on domain_events in this database until it ends. Oldest transaction id first.
_APPENDER_LOCKS = (
    " FROM pg_catalog.pg_locks AS l"
    " WHERE l.locktype = 'relation' AND l.mode = 'RowExclusiveLock' AND l.granted"
    " AND l.database = (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname = current_database())"
    " AND l.relation = 'eventstore.domain_events'::regclass"
)
OLDEST_TRANSACTIONS = (
    "SELECT a.pid, a.datname AS database, a.usename AS user_name, a.backend_xid::text AS xid,"
    " age(a.backend_xid) AS xid_age, a.xact_start, a.state, a.query"
    " FROM pg_catalog.pg_stat_activity AS a"
    f" WHERE a.backend_xid IS NOT NULL AND a.pid IN (SELECT l.pid{_APPENDER_LOCKS})"
    " ORDER BY age(a.backend_xid) DESC"
    " LIMIT %(limit)s"
)

# Prepared (two-phase) transactions that appended keep their locks, and so hold the fence back, until
# COMMIT/ROLLBACK PREPARED; their lock rows keep the virtual transaction they were prepared in.
PREPARED_TRANSACTIONS = (
    "SELECT p.gid, p.database, p.owner, p.transaction::text AS xid, age(p.transaction) AS xid_age, p.prepared"
    " FROM pg_catalog.pg_prepared_xacts AS p"
    " WHERE p.database = current_database() AND EXISTS ("
    "SELECT 1 FROM pg_catalog.pg_locks AS x"
    " WHERE x.locktype = 'transactionid' AND x.transactionid = p.transaction"
    f" AND x.virtualtransaction IN (SELECT l.virtualtransaction{_APPENDER_LOCKS}))"
    " ORDER BY age(p.transaction) DESC"
)
