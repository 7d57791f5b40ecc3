# Generated from async_repository.py by tools/async_to_sync.py; do not edit (run `make generate`).
"""AggregateRepository: loads aggregates of one class through load_aggregate and saves their
recorded events. The source of both repositories: repository.py (AggregateRepository) is generated
from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Generic

from pg_eventstore.domain import A, aggregate_type_of, check_retries, from_loaded
from pg_eventstore.errors import ConcurrencyError
from pg_eventstore.models import RecordedEvent
from pg_eventstore.store import EventStore


class AggregateRepository(Generic[A]):
    """Loads aggregates of one class through load_aggregate and saves their recorded events with EventStore.

    With a pool each load and save is its own transaction. With a connection
    that is not in autocommit, a ConcurrencyError aborts your transaction, so
    run_command cannot retry inside it: roll back and call again.
    """

    def __init__(self, store: EventStore, aggregate_class: type[A]) -> None:
        self.store = store
        self.aggregate_class = aggregate_class
        self.aggregate_type = aggregate_type_of(aggregate_class)

    def load(self, aggregate_id: uuid.UUID) -> A | None:
        """The aggregate with its state and version from the database; None when it has no events."""
        loaded = self.store.load_aggregate(self.aggregate_type, aggregate_id)
        return from_loaded(self.aggregate_class, aggregate_id, loaded)

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
        check_retries(retries)
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


__all__ = ["AggregateRepository"]
