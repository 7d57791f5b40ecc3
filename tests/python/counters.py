"""Counter: a test-only aggregate type whose SQL fold counts events and sums their payload's n, so a
Python fold of the stored events says exactly what the state must be (test_aggregates_async.py and
test_aggregates_threads.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from pg_eventstore.aggregate import Aggregate, DomainError
from pg_eventstore.models import NewEvent, RecordedEvent

COUNTER_FOLDS = b"""
CREATE SCHEMA test_folds;
CREATE FUNCTION test_folds.counter(p_state jsonb, p_event eventstore.domain_events) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'count', (p_state ->> 'count')::integer + 1,
        'sum', (p_state ->> 'sum')::bigint + (p_event.payload ->> 'n')::bigint,
        'last', p_event.event_version
    )
$$;
CREATE FUNCTION test_folds.tally(p_state jsonb, p_event eventstore.domain_events) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'events', (p_state ->> 'events')::integer + 1,
        'total', (p_state ->> 'total')::bigint + 2 * (p_event.payload ->> 'n')::bigint
    )
$$;
"""
COUNTER_FOLD = "test_folds.counter(jsonb, eventstore.domain_events)"
TALLY_FOLD = "test_folds.tally(jsonb, eventstore.domain_events)"
COUNTER_START = {"count": 0, "sum": 0, "last": None}
TALLY_START = {"events": 0, "total": 0}


def counter_fold(events: Sequence[RecordedEvent]) -> dict[str, Any]:
    """What test_folds.counter makes of these events."""
    state: dict[str, Any] = dict(COUNTER_START)
    for event in events:
        state = {"count": state["count"] + 1, "sum": state["sum"] + event.payload["n"], "last": event.event_version}
    return state


def tally_fold(events: Sequence[RecordedEvent]) -> dict[str, Any]:
    """What test_folds.tally makes of these events."""
    return {"events": len(events), "total": sum(2 * event.payload["n"] for event in events)}


class Counter(Aggregate):
    aggregate_type = "Counter"
    initial_state = MappingProxyType(COUNTER_START)

    def add(self, n: int) -> None:
        if n <= 0:
            raise DomainError("a counter only goes up")
        self.record("Added", {"n": n})

    def apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
        self.state["count"] += 1
        self.state["sum"] += payload["n"]


def added(*numbers: int) -> list[NewEvent]:
    return [NewEvent("Added", {"n": n}) for n in numbers]
