"""AggregateRepository.run_command from eight threads at once: retries on conflict lose no update.

Hand-written (not generated): it is about threads sharing one sync store; the rest of the
aggregate tests are test_aggregates_async.py and its generated twin test_aggregates.py.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from counters import COUNTER_FOLD, COUNTER_FOLDS, COUNTER_START, Counter

from pg_eventstore.aggregate import AggregateRepository
from pg_eventstore.models import AggregateState
from pg_eventstore.store import EventStore


@pytest.fixture
def counters(conn: psycopg.Connection[Any], store: EventStore) -> EventStore:
    conn.execute(COUNTER_FOLDS)
    store.register_aggregate_type("Counter", COUNTER_FOLD, COUNTER_START, snapshot_every=50)
    return store


def test_run_command_under_real_concurrency_loses_no_update(counters: EventStore) -> None:
    repository = AggregateRepository(counters, Counter)
    counter_id = uuid.uuid4()
    barrier = threading.Barrier(8)

    def add_next(counter: Counter) -> None:
        # Depends on the state read: a save that lost an update would repeat a number.
        counter.add(counter.state["count"] + 1)

    def add_five(worker: int) -> None:
        barrier.wait()
        for _ in range(5):
            repository.run_command(counter_id, add_next, retries=1000)

    with ThreadPoolExecutor(8) as executor:
        list(executor.map(add_five, range(8)))
    events = counters.load_events(counter_id)
    assert [(e.event_version, e.payload["n"]) for e in events] == [(n, n + 1) for n in range(40)]
    assert counters.load_aggregate("Counter", counter_id) == AggregateState(
        {"count": 40, "sum": sum(range(1, 41)), "last": 39}, 39
    )
