"""Aggregates in Python: commands that check rules and record events, and repositories that save them.

The fold lives once, in SQL: a repository loads an aggregate's state and
version through eventstore.load_aggregate, so Python never replays history.
An Aggregate subclass implements commands (check a rule on `state`, then
`record` an event) and `apply`, which updates `state` for what the next
command's rules need (e.g. the status) -- not a second copy of the fold.

    class Order(Aggregate):
        aggregate_type = "Order"

        def ship(self, carrier: str) -> None:
            if self.state.get("status") != "placed":
                raise DomainError("only a placed order can be shipped")
            self.record("OrderShipped", {"carrier": carrier})

        def apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
            if event_type == "OrderShipped":
                self.state["status"] = "shipped"

    orders = AggregateRepository(EventStore(pool), Order)
    orders.run_command(order_id, lambda order: order.ship("DHL"))
"""

from __future__ import annotations

import copy
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pg_eventstore.async_store import AsyncEventStore
from pg_eventstore.errors import ConcurrencyError
from pg_eventstore.models import AggregateState, JsonObject, NewEvent, RecordedEvent
from pg_eventstore.store import NO_STREAM, EventStore


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


def _aggregate_type(aggregate_class: type[Aggregate]) -> str:
    aggregate_type = getattr(aggregate_class, "aggregate_type", None)
    if not isinstance(aggregate_type, str) or not aggregate_type:
        raise TypeError(f"{aggregate_class.__name__} must set the class attribute aggregate_type")
    return aggregate_type


def _from_loaded(aggregate_class: type[A], aggregate_id: uuid.UUID, loaded: AggregateState | None) -> A | None:
    return None if loaded is None else aggregate_class(aggregate_id, state=loaded.state, version=loaded.version)


def _check_retries(retries: int) -> None:
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")


class AggregateRepository(Generic[A]):
    """Loads aggregates of one class through load_aggregate and saves their recorded events with EventStore.

    With a pool each load and save is its own transaction. With a connection
    that is not in autocommit, a ConcurrencyError aborts your transaction, so
    run_command cannot retry inside it: roll back and call again.
    """

    def __init__(self, store: EventStore, aggregate_class: type[A]) -> None:
        self.store = store
        self.aggregate_class = aggregate_class
        self.aggregate_type = _aggregate_type(aggregate_class)

    def load(self, aggregate_id: uuid.UUID) -> A | None:
        """The aggregate with its state and version from the database; None when it has no events."""
        loaded = self.store.load_aggregate(self.aggregate_type, aggregate_id)
        return _from_loaded(self.aggregate_class, aggregate_id, loaded)

    def new(self, aggregate_id: uuid.UUID | None = None) -> A:
        """A new aggregate (version NO_STREAM) in its initial state; a fresh id when none is given."""
        return self.aggregate_class(uuid.uuid4() if aggregate_id is None else aggregate_id)

    def save(self, aggregate: A) -> list[RecordedEvent]:
        """Append the aggregate's uncommitted events, expecting the version it was loaded at.

        Raises ConcurrencyError when another writer appended since (the
        aggregate is left as it was: reload and re-run the command). On success
        the aggregate is at the last stored version with nothing uncommitted.
        Returns the stored events ([] when there was nothing to save).
        """
        events = aggregate.uncommitted_events
        if not events:
            return []
        stored = self.store.append(self.aggregate_type, aggregate.id, events, expected_version=aggregate.version)
        aggregate.mark_saved(stored[-1].event_version)
        return stored

    def run_command(self, aggregate_id: uuid.UUID, command: Callable[[A], object], *, retries: int = 3) -> A:
        """Load the aggregate (or start a new one), run the command on it, and save.

        On a ConcurrencyError it reloads and runs the command again, up to
        `retries` more times, then lets the error through. A DomainError from
        the command passes through and nothing is saved. Returns the saved
        aggregate (its state is what apply made of it; load it again for the
        state the fold computes).
        """
        _check_retries(retries)
        attempt = 0
        while True:
            aggregate = self.load(aggregate_id)
            if aggregate is None:
                aggregate = self.new(aggregate_id)
            command(aggregate)
            try:
                self.save(aggregate)
            except ConcurrencyError:
                if attempt == retries:
                    raise
                attempt += 1
            else:
                return aggregate


class AsyncAggregateRepository(Generic[A]):
    """AggregateRepository for AsyncEventStore: the same API, awaited."""

    def __init__(self, store: AsyncEventStore, aggregate_class: type[A]) -> None:
        self.store = store
        self.aggregate_class = aggregate_class
        self.aggregate_type = _aggregate_type(aggregate_class)

    async def load(self, aggregate_id: uuid.UUID) -> A | None:
        """The aggregate with its state and version from the database; None when it has no events."""
        loaded = await self.store.load_aggregate(self.aggregate_type, aggregate_id)
        return _from_loaded(self.aggregate_class, aggregate_id, loaded)

    def new(self, aggregate_id: uuid.UUID | None = None) -> A:
        """A new aggregate (version NO_STREAM) in its initial state; a fresh id when none is given."""
        return self.aggregate_class(uuid.uuid4() if aggregate_id is None else aggregate_id)

    async def save(self, aggregate: A) -> list[RecordedEvent]:
        """Append the aggregate's uncommitted events, expecting its loaded version; see AggregateRepository.save."""
        events = aggregate.uncommitted_events
        if not events:
            return []
        stored = await self.store.append(self.aggregate_type, aggregate.id, events, expected_version=aggregate.version)
        aggregate.mark_saved(stored[-1].event_version)
        return stored

    async def run_command(self, aggregate_id: uuid.UUID, command: Callable[[A], object], *, retries: int = 3) -> A:
        """Load (or start), run the command, save; retry on ConcurrencyError; see AggregateRepository.run_command."""
        _check_retries(retries)
        attempt = 0
        while True:
            aggregate = await self.load(aggregate_id)
            if aggregate is None:
                aggregate = self.new(aggregate_id)
            command(aggregate)
            try:
                await self.save(aggregate)
            except ConcurrencyError:
                if attempt == retries:
                    raise
                attempt += 1
            else:
                return aggregate


__all__ = ["NO_STREAM", "Aggregate", "AggregateRepository", "AsyncAggregateRepository", "DomainError"]
