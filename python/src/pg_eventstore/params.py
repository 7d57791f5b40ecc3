"""Checking and shaping call parameters, shared by the sync and async clients."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from pg_eventstore import queries
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


def aware(name: str, value: datetime | None) -> datetime | None:
    """value, refused when it has no time zone: the database would read it in the session's time zone."""
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(timezone.utc)), got {value!r}")
    return value


def register_params(
    aggregate_type: str, fold: str, initial_state: Mapping[str, Any] | None, snapshot_every: int
) -> dict[str, Any]:
    return {
        "aggregate_type": aggregate_type,
        "fold": fold,
        "initial_state": Jsonb({} if initial_state is None else dict(initial_state)),
        "snapshot_every": snapshot_every,
    }


def aggregate_params(aggregate_type: str, aggregate_id: uuid.UUID) -> dict[str, Any]:
    return {"aggregate_type": aggregate_type, "aggregate_id": aggregate_id}


def state_at_query(
    aggregate_type: str, aggregate_id: uuid.UUID, at: datetime | None, version: int | None
) -> tuple[str, dict[str, Any]]:
    """The query state_at runs, and its parameters: exactly one of at and version must be given."""
    if (at is None) == (version is None):
        raise ValueError("state_at takes exactly one of at= and version=")
    params = aggregate_params(aggregate_type, aggregate_id)
    if at is not None:
        return queries.AGGREGATE_STATE_AT, {**params, "as_of": aware("at", at)}
    return queries.AGGREGATE_STATE_AT_VERSION, {**params, "version": version}


def event_counts_params(from_: datetime | None, to: datetime | None, bucket: str) -> dict[str, Any]:
    return {"from": aware("from_", from_), "to": aware("to", to), "bucket": bucket}


def prune_params(aggregate_type: str | None, keep: int) -> dict[str, Any]:
    return {"aggregate_type": aggregate_type, "keep": keep}
