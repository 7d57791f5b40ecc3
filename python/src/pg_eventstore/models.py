"""The values the client hands out and takes in."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JsonObject = dict[str, Any]

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
class RecordedEvent:
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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RecordedEvent:
        return cls(
            id=row["id"],
            event_id=row["event_id"],
            aggregate_type=row["aggregate_type"],
            aggregate_id=row["aggregate_id"],
            event_type=row["event_type"],
            event_version=row["event_version"],
            payload=row["payload"],
            metadata=row["metadata"],
            occurred_at=row["occurred_at"],
            feed_key=row["feed_key"],
        )


@dataclass(frozen=True)
class AggregateState:
    """An aggregate's state as its registered SQL fold computed it, and the version it reflects."""

    state: JsonObject
    version: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AggregateState:
        return cls(state=row["state"], version=row["version"])


@dataclass(frozen=True)
class HistoryEntry:
    """One event of an aggregate's history with the state right after it (None when its type has no fold)."""

    event_version: int
    event_type: str
    payload: JsonObject
    metadata: JsonObject
    occurred_at: datetime
    state_after: JsonObject | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> HistoryEntry:
        return cls(
            event_version=row["event_version"],
            event_type=row["event_type"],
            payload=row["payload"],
            metadata=row["metadata"],
            occurred_at=row["occurred_at"],
            state_after=row["state_after"],
        )


@dataclass(frozen=True)
class EventCount:
    """How many events of one type occurred in one time bucket (the bucket's start)."""

    bucket: datetime
    event_type: str
    event_count: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EventCount:
        return cls(bucket=row["bucket"], event_type=row["event_type"], event_count=row["event_count"])
