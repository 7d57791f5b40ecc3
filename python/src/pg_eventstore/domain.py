"""The domain side of aggregates: the Aggregate base class (commands record events, apply updates
state) and DomainError. The repositories that load and save aggregates are in async_repository.py
(AsyncAggregateRepository) and repository.py (AggregateRepository, generated from it); aggregate.py
gathers them under the names the package has always exported.
"""

from __future__ import annotations

import copy
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pg_eventstore.models import NO_STREAM, AggregateState, JsonObject, NewEvent


class DomainError(Exception):
    """A command broke a domain rule; nothing was recorded for it, so a save appends nothing.

    Not an EventStoreError: the database did not refuse anything, the model did.
    """


class Aggregate(ABC):
    """One aggregate: its id, the state its SQL fold computed, its version, and the events not yet saved.

    version is the version of the last saved event (NO_STREAM, -1, for an
    aggregate with no saved events); a repository saves with it as the
    expected version. Subclasses set aggregate_type (the registered type),
    may set initial_state (the state of a new aggregate; keep it equal to the
    registered initial_state), and implement apply.
    """

    aggregate_type: ClassVar[str]
    initial_state: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, aggregate_id: uuid.UUID, *, state: Mapping[str, Any] | None = None, version: int = NO_STREAM):
        self.id = aggregate_id
        self.version = version
        self.state: JsonObject = copy.deepcopy(dict(self.initial_state if state is None else state))
        self._uncommitted: list[NewEvent] = []

    @property
    def is_new(self) -> bool:
        """True until the aggregate has saved events."""
        return self.version == NO_STREAM

    @property
    def uncommitted_events(self) -> list[NewEvent]:
        """The events recorded since the last load or save, in order."""
        return list(self._uncommitted)

    def record(
        self, event_type: str, payload: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> NewEvent:
        """Record an event: apply it to the state at once and keep it for the next save.

        Each event gets a fresh event_id here, so saving the same recorded
        events again (a retry after a lost connection) is idempotent.
        """
        event = NewEvent(event_type, dict(payload), None if metadata is None else dict(metadata), uuid.uuid4())
        self.apply(event.event_type, event.payload)
        self._uncommitted.append(event)
        return event

    @abstractmethod
    def apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
        """Update `state` for a just-recorded event, as far as the commands' rules need it."""

    def mark_saved(self, version: int) -> None:
        """The uncommitted events are stored and the aggregate is now at `version` (a repository calls this)."""
        self.version = version
        self._uncommitted.clear()

    def __repr__(self) -> str:
        pending = len(self._uncommitted)
        return f"<{type(self).__name__} {self.id} version={self.version} uncommitted={pending}>"


A = TypeVar("A", bound=Aggregate)


def aggregate_type_of(aggregate_class: type[Aggregate]) -> str:
    aggregate_type = getattr(aggregate_class, "aggregate_type", None)
    if not isinstance(aggregate_type, str) or not aggregate_type:
        raise TypeError(f"{aggregate_class.__name__} must set the class attribute aggregate_type")
    return aggregate_type


def from_loaded(aggregate_class: type[A], aggregate_id: uuid.UUID, loaded: AggregateState | None) -> A | None:
    return None if loaded is None else aggregate_class(aggregate_id, state=loaded.state, version=loaded.version)


def check_retries(retries: int) -> None:
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")


__all__ = ["Aggregate", "DomainError", "aggregate_type_of", "check_retries", "from_loaded"]
