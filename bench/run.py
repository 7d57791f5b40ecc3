"""pg_eventstore benchmarks: every figure next to a ceiling measured in the same run.

    .venv/bin/python bench/run.py          (what `make bench` runs)

Starts its own throwaway cluster with fixed, durable settings (bench/config.py), installs
build/eventstore.sql, examples/orders/orders.sql and bench/setup.sql, runs every workload
of the table in bench/workloads.py (with the peers: Message DB and eventsourcing) BENCH_RUNS
times for BENCH_SECONDS each (pgbench with the scripts of bench/pgbench/ for SQL-level
workloads, Python threads for client-level ones),
alternating with its ceiling, and writes the medians to bench/results/<date>.md and
bench/results/latest.md (bench/report.py).

Environment:
    BENCH_SECONDS      seconds per timed run of a write workload (default 10)
    BENCH_RUNS         runs per workload, the median is reported (default 3)
    BENCH_QUICK=1      smoke run: 1 s, 1 run, small data; writes bench/results/quick.md
    BENCH_ONLY         comma-separated groups to run (default all): core, reads,
                       python, peers, feed, projections, diagnostics, notify (the
                       notify modes alone; diagnostics includes them)
    BENCH_MESSAGE_DB   the folder of the npm package @eventide/message-db, for the
                       peers group (make bench installs it and sets this)
    BENCH_DIAGNOSTICS  0 skips the diagnostic measurements (default 1)

What each workload measures and how to read the table: bench/README.md.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import pgcluster  # noqa: E402
from bench import report  # noqa: E402
from bench.config import CORE_DB, FEED_DB, SETTINGS, Config  # noqa: E402
from bench.harness import Harness  # noqa: E402
from bench.measure import log  # noqa: E402
from bench.sections import core, diagnostics, feed, peers, projections, python_client, reads  # noqa: E402


def main() -> int:
    config = Config.from_environment()
    if not (ROOT / "build" / "eventstore.sql").exists():
        raise SystemExit("build/eventstore.sql is missing: run `make sql` (make bench does)")
    commit = report.git_commit()
    started_at = datetime.now(UTC)
    started = time.monotonic()
    load = os.getloadavg()
    log(
        f"pg_eventstore benchmarks: {config.runs} run(s) of {config.seconds} s,"
        f" groups {','.join(sorted(config.groups))}"
    )
    if load[0] > 0.5:
        log(f"load average is {load[0]:.2f}: other work on this machine will show in the figures")
    with pgcluster.throwaway_cluster(settings=SETTINGS) as cluster:
        harness = Harness(cluster, config)
        harness.create_database(CORE_DB)
        if "core" in config.groups:
            core.run(harness)
        if "reads" in config.groups:
            reads.run(harness)
        if "python" in config.groups:
            python_client.run(harness)
        if "peers" in config.groups:
            peers.run(harness)
        if config.groups & {"feed", "projections"}:
            harness.create_database(FEED_DB)
            feed.generate_history(harness)
            if "feed" in config.groups:
                feed.run(harness)
            if "projections" in config.groups:
                projections.run(harness)
        if "diagnostics" in config.groups and config.diagnostics:
            diagnostics.run(harness)
        elif "notify" in config.groups:
            diagnostics.notify_modes(harness)
        elapsed = time.monotonic() - started
        target = report.write(harness, commit, started_at, elapsed, load)
    log(f"done in {elapsed / 60:.1f} min: {target.relative_to(ROOT)}")
    print(target.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
