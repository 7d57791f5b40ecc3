"""Examples built on pg_eventstore."""
