"""What a benchmark run is configured with: the cluster's fixed settings and the BENCH_* knobs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Durable settings, the same for every workload and its ceiling. Checkpoints are
# spaced out (and forced before every timed run) so none lands inside a run;
# JIT is off so a plan's cost estimate cannot switch compilation on mid-series.
SETTINGS = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "wal_sync_method": "fdatasync",
    "shared_buffers": "512MB",
    "max_connections": "100",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "256MB",
    "jit": "off",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "none",
    "log_min_messages": "warning",
}

# The settings shown with the results.
REPORTED_SETTINGS = (
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_sync_method",
    "shared_buffers",
    "max_connections",
    "max_wal_size",
    "checkpoint_timeout",
    "work_mem",
    "wal_buffers",
    "jit",
    "autovacuum",
)

CORE_DB = "bench_core"
FEED_DB = "bench_feed"
NO_NOTIFY_DB = "bench_diag_no_notify"
# The peers' databases (group `peers`): Message DB's, made by its own install.sh, and eventsourcing's.
MESSAGE_DB_DB = "bench_message_db"
EVENTSOURCING_DB = "bench_eventsourcing"
EVERY_APPEND_DB = "bench_diag_every_append"
GROUPS = ("core", "reads", "python", "peers", "feed", "projections", "diagnostics", "notify")


@dataclass(frozen=True)
class Config:
    seconds: int
    runs: int
    quick: bool
    read_seconds: int
    feed_events: int
    aggregate_sizes: tuple[int, ...]
    r1_size: int
    lag_appends: int
    lag_rate: float
    groups: frozenset[str]
    diagnostics: bool
    # The npm package @eventide/message-db as `make bench` installs it (BENCH_MESSAGE_DB); None without.
    message_db: Path | None

    @classmethod
    def from_environment(cls) -> Config:
        quick = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
        seconds = int(os.environ.get("BENCH_SECONDS", "1" if quick else "10"))
        runs = int(os.environ.get("BENCH_RUNS", "1" if quick else "3"))
        only = os.environ.get("BENCH_ONLY", "")
        groups = frozenset(g.strip() for g in only.split(",") if g.strip()) or frozenset(GROUPS)
        unknown = groups - set(GROUPS)
        if unknown:
            raise SystemExit(f"BENCH_ONLY: unknown groups {sorted(unknown)}; known: {', '.join(GROUPS)}")
        if seconds < 1 or runs < 1:
            raise SystemExit("BENCH_SECONDS and BENCH_RUNS must be at least 1")
        message_db = Path(os.environ["BENCH_MESSAGE_DB"]) if os.environ.get("BENCH_MESSAGE_DB") else None
        if "peers" in groups and (message_db is None or not (message_db / "database" / "install.sh").is_file()):
            raise SystemExit(
                "the peers group needs Message DB (BENCH_MESSAGE_DB: the folder of the npm package"
                " @eventide/message-db) and eventsourcing: run it with `make bench`, which installs both"
            )
        return cls(
            seconds=seconds,
            runs=runs,
            quick=quick,
            read_seconds=1 if quick else max(2, seconds // 4),
            feed_events=20_000 if quick else 1_000_000,
            aggregate_sizes=(100, 1_000, 10_000) if quick else (100, 1_000, 10_000, 100_000),
            r1_size=10_000,
            lag_appends=300 if quick else 10_000,
            lag_rate=500.0,
            groups=groups,
            diagnostics=os.environ.get("BENCH_DIAGNOSTICS", "1") not in ("", "0"),
            message_db=message_db,
        )
