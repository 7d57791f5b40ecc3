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

SCHEMA_INSTALLED = "SELECT to_regclass('eventstore.schema_migrations') IS NOT NULL"

INSTALLED_VERSION = "SELECT version FROM eventstore.schema_migrations ORDER BY installed_at DESC, version DESC LIMIT 1"
