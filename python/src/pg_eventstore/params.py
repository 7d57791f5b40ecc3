"""Checking and shaping call parameters, shared by the sync and async clients."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from pg_eventstore.models import FeedPosition, NewEvent

EventLike = NewEvent | Mapping[str, Any]
PositionLike = FeedPosition | str | None


def event_json(event: EventLike) -> dict[str, Any]:
    """An event as append_events() takes it; a mapping passes as it is (the database validates it)."""
    return event.to_json() if isinstance(event, NewEvent) else dict(event)


def append_params(
    aggregate_type: str, aggregate_id: uuid.UUID, events: Sequence[EventLike], expected_version: int | None
) -> dict[str, Any]:
    return {
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "expected_version": expected_version,
        "events": Jsonb([event_json(event) for event in events]),
    }


def load_params(aggregate_id: uuid.UUID, from_version: int) -> dict[str, Any]:
    return {"aggregate_id": aggregate_id, "from_version": from_version}


def read_all_params(
    after: PositionLike,
    max_count: int,
    event_types: Sequence[str] | None,
    aggregate_types: Sequence[str] | None,
) -> dict[str, Any]:
    return {
        "after": None if after is None else str(after),
        "max_count": max_count,
        "event_types": None if event_types is None else list(event_types),
        "aggregate_types": None if aggregate_types is None else list(aggregate_types),
    }
