"""Reads: R1 and aggregate loads with and without snapshots, 1 client, ms per call (group `reads`)."""

from __future__ import annotations

import statistics
import uuid
from functools import partial

from psycopg.types.json import Jsonb

from bench.config import CORE_DB
from bench.harness import Harness
from bench.measure import Result, log
from bench.workloads import (
    CEILING_COLUMNS,
    LOAD_AGGREGATE_NO_SNAPSHOTS,
    LOAD_FLATNESS,
    LOAD_WITHOUT_SNAPSHOTS,
    PLACED_PAYLOAD,
    R1,
    load_with_snapshots,
)


def build_aggregate(harness: Harness, aggregate_type: str, size: int) -> uuid.UUID:
    """An Order-like aggregate of `size` events: placed, then shipped/delivered-like events.

    Appended in calls of up to 1,000 events, then the last 25 one by one, so that
    with snapshots every 50 versions the latest snapshot lies 25 events behind the
    head (the middle case between two snapshots).
    """
    aggregate = uuid.uuid4()
    types = ("OrderShipped", "OrderDelivered", "OrderCancelled", "OrderPlaced")
    tail = 25 if size >= 100 else 0
    with harness.connect(CORE_DB) as conn:
        version = -1
        while version + 1 < size:
            # Up to 1,000 events a call until the tail, then one a call.
            count = min(1000, size - tail - version - 1) if version + 1 < size - tail else 1
            batch = [
                {"event_type": "OrderPlaced" if v == 0 else types[v % 4], "payload": PLACED_PAYLOAD}
                for v in range(version + 1, version + 1 + count)
            ]
            conn.execute(
                "SELECT count(*) FROM eventstore.append_events(%s, %s, %s, %s)",
                (aggregate_type, aggregate, version, Jsonb(batch)),
            )
            version += count
    return aggregate


def run(harness: Harness) -> None:
    config = harness.config
    log("building the aggregates for R1 and the aggregate loads")
    with_snapshots = {size: build_aggregate(harness, "Order", size) for size in config.aggregate_sizes}
    without = {size: build_aggregate(harness, "OrderNoSnapshots", size) for size in config.aggregate_sizes}
    # The same events in the ceiling table, for the plain SELECT.
    for aggregate in [*with_snapshots.values(), *without.values()]:
        harness.execute(
            CORE_DB,
            f"INSERT INTO bench.ceiling_events ({CEILING_COLUMNS})"
            f" SELECT {CEILING_COLUMNS} FROM eventstore.domain_events WHERE aggregate_id = %s ORDER BY id",
            (aggregate,),
        )
    harness.vacuum(CORE_DB)

    harness.measure(R1, variables={"aggregate": str(with_snapshots[config.r1_size])}, size=config.r1_size)
    loads = {
        size: statistics.median(
            harness.measure(load_with_snapshots(size), variables={"aggregate": str(with_snapshots[size])})
        )
        for size in config.aggregate_sizes
    }
    for size in config.aggregate_sizes:
        harness.measure(LOAD_WITHOUT_SNAPSHOTS, variables={"aggregate": str(without[size])}, size=size)
    if config.diagnostics:
        fold_diagnostic(harness, without[config.r1_size])
    largest = max(config.aggregate_sizes)
    if 1_000 in loads and largest > 1_000:
        harness.add(LOAD_FLATNESS.result([loads[largest] / loads[1_000]], largest=largest))


def fold_diagnostic(harness: Harness, aggregate: uuid.UUID) -> None:
    """The Order fold's SQL functions with and without a SET search_path clause (bench-only change).

    A SET clause keeps the planner from inlining a LANGUAGE sql function, so every call
    starts and ends an executor (examples/orders dropped the clause for that reason).
    The fold's identity, and so its snapshots, does not depend on the clause. The
    functions' settings are put back as installed afterwards.
    """
    functions = ("orders.utc_text(timestamptz)", "orders.order_fold(jsonb, eventstore.domain_events)")
    installed = {
        function: harness.scalar(
            CORE_DB, "SELECT proconfig IS NOT NULL FROM pg_proc WHERE oid = %s::regprocedure", (function,)
        )
        for function in functions
    }

    def set_clause(function: str, with_set: bool) -> None:
        clause = "SET search_path = pg_catalog, pg_temp" if with_set else "RESET search_path"
        harness.execute(CORE_DB, f"ALTER FUNCTION {function} {clause}")

    def load(with_set: bool) -> float:
        for function in functions:
            set_clause(function, with_set)
        return harness.run_script(
            LOAD_AGGREGATE_NO_SNAPSHOTS,
            CORE_DB,
            1,
            harness.config.read_seconds,
            latency=True,
            variables={"aggregate": str(aggregate)},
        )

    size = harness.config.r1_size
    with_set = f"load_aggregate, {size:,} events, no snapshots, fold functions with SET search_path"
    log("diagnostic: the Order fold with and without SET search_path")
    try:
        figures = harness.compare_many(
            "fold",
            {
                with_set: partial(load, True),
                "the same with the fold's SQL functions inlinable (no SET search_path)": partial(load, False),
            },
        )
    finally:
        for function, had_set in installed.items():
            set_clause(function, bool(had_set))
    for name, runs in figures.items():
        harness.diagnostics.append(Result(name, "ms", runs, figures[with_set], with_set))
