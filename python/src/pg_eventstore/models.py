"""The values the client hands out and takes in."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from psycopg._cursor_base import BaseCursor
    from psycopg.pq.abc import PGresult
    from psycopg.rows import RowMaker

JsonObject = dict[str, Any]

# Expected versions with a name: the aggregate must not exist yet / no check.
NO_STREAM = -1
ANY_VERSION = None


_FIELD_NAMES: dict[type[Any], tuple[tuple[str, ...], tuple[bytes, ...]]] = {}


def _field_names(cls: type[Any]) -> tuple[tuple[str, ...], tuple[bytes, ...]]:
    """A dataclass's field names in the order its constructor takes them, and the same in bytes: column
    names arrive in the client encoding, and every encoding PostgreSQL offers a client agrees with
    ASCII on these names' characters."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        text = tuple(item.name for item in fields(cls))
        names = _FIELD_NAMES[cls] = (text, tuple(name.encode("ascii") for name in text))
    return names


class FromRow:
    """A dataclass read from rows whose column names are its field names: from_row() takes a dict_row,
    rows is the psycopg row factory that builds it straight from the row's values."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(*[row[name] for name in _field_names(cls)[0]])

    @classmethod
    def rows(cls, cursor: BaseCursor[Any, Any]) -> RowMaker[Self]:
        """A psycopg row factory (cursor(row_factory=RecordedEvent.rows)): columns in field order are passed
        as they come; others are picked by name, and a missing one raises KeyError, as from_row does."""
        result = cursor.pgresult
        # Compared as the result has them: cursor.description would cost more than building the rows.
        if result is None or not result.nfields or _column_names(result) == _field_names(cls)[1]:
            return lambda values: cls(*values)
        index = {column.name: position for position, column in enumerate(cursor.description or ())}
        positions = [index[name] for name in _field_names(cls)[0]]
        return lambda values: cls(*[values[position] for position in positions])


def _column_names(result: PGresult) -> tuple[bytes | None, ...]:
    return tuple(map(result.fname, range(result.nfields)))


_POSITION = re.compile(r"^\((-?\d+),(-?\d+)\)$")


@dataclass(frozen=True, order=True)
class FeedPosition:
    """A position in the global feed; its text form '(feed_key,id)' is what to store as a checkpoint."""

    feed_key: int
    id: int

    def __str__(self) -> str:
        return f"({self.feed_key},{self.id})"

    @classmethod
    def parse(cls, text: str) -> FeedPosition:
        match = _POSITION.match(text.strip())
        if match is None:
            raise ValueError(f"not a feed position: {text!r} (expected '(feed_key,id)')")
        return cls(int(match[1]), int(match[2]))


@dataclass(frozen=True)
class NewEvent:
    """An event to append. event_id makes retries idempotent; the store generates one when it is None."""

    event_type: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] | None = None
    event_id: uuid.UUID | None = None

    def to_json(self) -> JsonObject:
        event: JsonObject = {"event_type": self.event_type, "payload": dict(self.payload)}
        if self.metadata is not None:
            event["metadata"] = dict(self.metadata)
        if self.event_id is not None:
            event["event_id"] = str(self.event_id)
        return event


@dataclass(frozen=True)
class RecordedEvent(FromRow):
    """A stored event, as append, load_events and read_all return it."""

    id: int
    event_id: uuid.UUID
    aggregate_type: str
    aggregate_id: uuid.UUID
    event_type: str
    event_version: int
    payload: JsonObject
    metadata: JsonObject
    occurred_at: datetime
    feed_key: int

    @property
    def feed_position(self) -> FeedPosition:
        """Pass back to read_all() or subscribe() to resume right after this event."""
        return FeedPosition(self.feed_key, self.id)


@dataclass(frozen=True)
class AggregateState(FromRow):
    """An aggregate's state as its registered SQL fold computed it, and the version it reflects."""

    state: JsonObject
    version: int


@dataclass(frozen=True)
class HistoryEntry(FromRow):
    """One event of an aggregate's history with the state right after it (None when its type has no fold)."""

    event_version: int
    event_type: str
    payload: JsonObject
    metadata: JsonObject
    occurred_at: datetime
    state_after: JsonObject | None


@dataclass(frozen=True)
class EventCount(FromRow):
    """How many events of one type occurred in one time bucket (the bucket's start)."""

    bucket: datetime
    event_type: str
    event_count: int


@dataclass(frozen=True)
class ProjectionInfo(FromRow):
    """A projection's registration: its handler and reset function (None for external ones) and event types."""

    name: str
    mode: str
    handler: str | None
    reset: str | None
    event_types: list[str] | None
    registered_at: datetime


@dataclass(frozen=True)
class ProjectionStatus:
    """A projection at work, as eventstore.projection_status shows it.

    An inline projection runs inside every append and has no checkpoint of
    its own: its position and events_applied are None (and lag may be), so
    format them as "-" or similar, never as a number.
    """

    name: str
    mode: str
    state: str
    position: FeedPosition | None
    lag: int | None
    events_applied: int | None
    last_error: str | None
    failed_event_id: int | None
    rebuild_progress: str | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ProjectionStatus:
        position = row["position"]
        return cls(
            name=row["name"],
            mode=row["mode"],
            state=row["state"],
            position=None if position is None else FeedPosition.parse(position),
            lag=row["lag"],
            events_applied=row["events_applied"],
            last_error=row["last_error"],
            failed_event_id=row["failed_event_id"],
            rebuild_progress=row["rebuild_progress"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True)
class OpenTransaction(FromRow):
    """A transaction holding a transaction id, in any database of the cluster: the feed fence cannot pass it."""

    pid: int
    database: str | None
    user_name: str | None
    xid: str
    xid_age: int
    xact_start: datetime | None
    state: str | None
    query: str | None


@dataclass(frozen=True)
class PreparedTransaction(FromRow):
    """A prepared (two-phase) transaction: it holds its transaction id, and the fence, until it is finished."""

    gid: str
    database: str
    owner: str
    xid: str
    xid_age: int
    prepared: datetime


@dataclass(frozen=True)
class StoreStatus:
    """What `pg-eventstore status` shows: the installed schema, counts, the feed fence, projections, and
    the transactions that hold the fence back.

    feed_fence is None when it cannot be computed; feed_fence_error then says why
    (RestoreNotFinishedError, ES006, after a restore into a new cluster).
    """

    installed_version: str
    events: int
    aggregates: int
    aggregate_types: int
    snapshots: int
    feed_fence: int | None
    feed_fence_error: Exception | None
    projections: list[ProjectionStatus]
    oldest_transaction: OpenTransaction | None
    prepared_transactions: list[PreparedTransaction]
