"""The Python client: EventStore.append over a ConnectionPool against plain psycopg INSERTs over the same
pool, W1 and W2 shapes, 1 and 8 threads (group `python`). Figures include the client's CPU."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from bench.config import CORE_DB
from bench.harness import Harness
from bench.workloads import CEILING_COLUMNS, PLACED_PAYLOAD, PYTHON_CLIENT
from pg_eventstore.models import NewEvent
from pg_eventstore.store import EventStore


class PythonClientWorkloads:
    """The Python-client workloads: each method sets up one thread and returns the call it repeats."""

    INSERT = (
        f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS}) VALUES (gen_random_uuid(), 'Order', %s, %s, %s, %s,"
        " '{}', clock_timestamp(), pg_current_xact_id()::text::bigint) RETURNING *"
    )

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool
        self.store = EventStore(pool)
        self.placed = NewEvent("OrderPlaced", PLACED_PAYLOAD)
        self.shipped = NewEvent("OrderShipped", PLACED_PAYLOAD)

    def _insert(self, aggregate: uuid.UUID, event_type: str, version: int) -> int:
        with self.pool.connection() as conn:
            rows = conn.execute(self.INSERT, (aggregate, event_type, version, Jsonb(PLACED_PAYLOAD))).fetchall()
        return int(rows[-1][5])

    def append_new(self) -> Callable[[], None]:
        def call() -> None:
            self.store.append("Order", uuid.uuid4(), [self.placed], expected_version=-1)

        return call

    def insert_new(self) -> Callable[[], None]:
        def call() -> None:
            self._insert(uuid.uuid4(), "OrderPlaced", 0)

        return call

    def append_next(self) -> Callable[[], None]:
        aggregate = uuid.uuid4()
        version = self.store.append("Order", aggregate, [self.placed], expected_version=-1)[-1].event_version

        def call() -> None:
            nonlocal version
            version = self.store.append("Order", aggregate, [self.shipped], expected_version=version)[-1].event_version

        return call

    def insert_next(self) -> Callable[[], None]:
        aggregate = uuid.uuid4()
        version = self._insert(aggregate, "OrderPlaced", 0)

        def call() -> None:
            nonlocal version
            version = self._insert(aggregate, "OrderShipped", version + 1)

        return call


def threaded(seconds: int, threads: int, setup: Callable[[], Callable[[], None]], cpu: list[float]) -> float:
    """Each thread calls setup() once, then the call it returns in a loop for `seconds`; returns calls/s.

    Appends the Python process's CPU time per call (all threads), in microseconds, to cpu.
    """
    counts = [0] * threads
    deadline: list[float] = []
    # The barrier's action runs once every thread is set up, before any is released.
    barrier = threading.Barrier(threads + 1, action=lambda: deadline.append(time.monotonic() + seconds))
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            call = setup()
            barrier.wait()
            end = deadline[0]
            done = 0
            while time.monotonic() < end:
                call()
                done += 1
            counts[index] = done
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    with suppress(threading.BrokenBarrierError):
        barrier.wait()
    cpu_started = time.process_time()
    for thread in workers:
        thread.join()
    used = time.process_time() - cpu_started
    if errors:
        raise errors[0]
    cpu.append(1e6 * used / max(1, sum(counts)))
    return sum(counts) / seconds


def run(harness: Harness) -> None:
    seconds = harness.config.seconds
    for threads in (1, 8):
        plural = "s" if threads > 1 else ""
        with ConnectionPool(harness.dsn(CORE_DB), min_size=threads, max_size=threads, open=True) as pool:
            pool.wait()
            client = PythonClientWorkloads(pool)
            shapes = ((client.append_new, client.insert_new), (client.append_next, client.insert_next))
            for workload, (ours, plain) in zip(PYTHON_CLIENT, shapes, strict=True):
                ours_cpu: list[float] = []
                plain_cpu: list[float] = []
                harness.measure(
                    workload,
                    ours=partial(threaded, seconds, threads, ours, ours_cpu),
                    ceiling=partial(threaded, seconds, threads, plain, plain_cpu),
                    threads=threads,
                    plural=plural,
                )
                # The Python process's CPU per call, EventStore against plain psycopg: the client's share.
                harness.notes.append(
                    f"Python client, {threads} thread(s), {ours.__name__} vs {plain.__name__}: client CPU"
                    f" {statistics.median(ours_cpu):.0f} µs vs {statistics.median(plain_cpu):.0f} µs per call"
                    " (process CPU time / calls, median of the runs)."
                )
