"""Core writes, W1-W4: append_events() through pgbench against plain INSERTs (group `core`)."""

from __future__ import annotations

from bench.harness import Harness
from bench.workloads import APPEND_CONTENDED, CORE_WRITES, INSERT_CONTENDED, W4_CONFLICT_RATE


def run(harness: Harness) -> None:
    for workload in CORE_WRITES:
        harness.measure(workload)
    rates = harness.conflict_rates
    harness.add(W4_CONFLICT_RATE.result(rates.pop(APPEND_CONTENDED.file), rates.pop(INSERT_CONTENDED.file)))
