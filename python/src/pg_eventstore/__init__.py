"""pg_eventstore: event sourcing inside PostgreSQL.

The database does the work (append with optimistic concurrency, the gap-free
feed, aggregates, projections); this package is a thin, typed client for it.
"""

from importlib.metadata import version as _version

from pg_eventstore.aggregate import Aggregate, AggregateRepository, AsyncAggregateRepository, DomainError
from pg_eventstore.async_projections import AsyncProjections, AsyncProjectionWorker, AsyncPythonProjection
from pg_eventstore.async_store import AsyncEventStore
from pg_eventstore.errors import (
    ConcurrencyError,
    EventIdConflictError,
    EventStoreError,
    ImmutableEventError,
    InsufficientPrivilegeError,
    InvalidEventError,
    RestoreNotFinishedError,
    UnknownTypeError,
)
from pg_eventstore.models import (
    AggregateState,
    EventCount,
    FeedPosition,
    HistoryEntry,
    NewEvent,
    OpenTransaction,
    PreparedTransaction,
    ProjectionInfo,
    ProjectionStatus,
    RecordedEvent,
    StoreStatus,
)
from pg_eventstore.projections import Projections, ProjectionWorker, PythonProjection
from pg_eventstore.store import ANY_VERSION, NO_STREAM, EventStore

__version__ = _version("pg_eventstore")

__all__ = [
    "ANY_VERSION",
    "NO_STREAM",
    "Aggregate",
    "AggregateRepository",
    "AggregateState",
    "AsyncAggregateRepository",
    "AsyncEventStore",
    "AsyncProjectionWorker",
    "AsyncProjections",
    "AsyncPythonProjection",
    "ConcurrencyError",
    "DomainError",
    "EventCount",
    "EventIdConflictError",
    "EventStore",
    "EventStoreError",
    "FeedPosition",
    "HistoryEntry",
    "ImmutableEventError",
    "InsufficientPrivilegeError",
    "InvalidEventError",
    "NewEvent",
    "OpenTransaction",
    "PreparedTransaction",
    "ProjectionInfo",
    "ProjectionStatus",
    "ProjectionWorker",
    "Projections",
    "PythonProjection",
    "RecordedEvent",
    "RestoreNotFinishedError",
    "StoreStatus",
    "UnknownTypeError",
]
