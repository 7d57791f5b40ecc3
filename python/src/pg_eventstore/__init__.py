"""pg_eventstore: event sourcing inside PostgreSQL.

The database does the work (append with optimistic concurrency, the gap-free
feed, aggregates, projections); this package is a thin, typed client for it.
"""

from importlib.metadata import version as _version

__version__ = _version("pg_eventstore")
