"""The harness: the throwaway cluster's databases, pgbench runs of the workloads' scripts, and the
measuring of a workload against its ceiling. The sections (bench/sections/) call it."""

from __future__ import annotations

import hashlib
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

import pgcluster
from bench.config import Config
from bench.measure import PeerResult, Result, alternate, format_number, log
from bench.workloads import START_VALUES, Script, Workload

ROOT = Path(__file__).resolve().parent.parent


class Harness:
    """The cluster, the configuration and the results collected so far."""

    def __init__(self, cluster: pgcluster.Cluster, config: Config) -> None:
        self.cluster = cluster
        self.config = config
        self.results: list[Result] = []
        self.diagnostics: list[Result] = []
        self.statements: dict[str, list[tuple[str, int, float, float]]] = {}
        self.waits: dict[str, list[tuple[str, float]]] = {}
        self.notes: list[str] = []
        # W4: the conflict rate of every run, in %, by script file.
        self.conflict_rates: dict[str, list[float]] = {}
        # The peers table (sections/peers.py) and the versions of the peers measured.
        self.peers: list[PeerResult] = []
        self.peer_versions: dict[str, str] = {}
        self._run_counter = 0

    # --- connections ----------------------------------------------------------------------------------

    def dsn(self, db: str) -> str:
        return f"host=127.0.0.1 port={self.cluster.port} user=postgres dbname={db}"

    @contextmanager
    def connect(self, db: str) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.dsn(db), autocommit=True) as conn:
            yield conn

    def execute(
        self, db: str, query: sql.SQL | sql.Composed | str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[Any]:
        with self.connect(db) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def scalar(self, db: str, query: sql.SQL | sql.Composed | str, params: Sequence[Any] | None = None) -> Any:
        rows = self.execute(db, query, params)
        return rows[0][0] if rows else None

    def checkpoint(self) -> None:
        """Before every timed run: no checkpoint lands inside it."""
        self.execute("postgres", "CHECKPOINT")

    def run_tag(self) -> str:
        self._run_counter += 1
        return f"r{self._run_counter}-{uuid.uuid4().hex[:8]}"

    # --- databases ------------------------------------------------------------------------------------

    def psql_file(self, db: str, path: Path) -> None:
        psql = [str(self.cluster.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        subprocess.run([*psql, "-d", self.dsn(db), "-f", str(path)], check=True, stdout=subprocess.DEVNULL)

    def create_database(self, name: str) -> None:
        self.execute("postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.psql_file(name, ROOT / "build" / "eventstore.sql")
        self.psql_file(name, ROOT / "examples" / "orders" / "orders.sql")
        self.psql_file(name, ROOT / "bench" / "setup.sql")
        # The Order fold once more without snapshots, for loads that fold every event.
        self.execute(
            name,
            "SELECT eventstore.register_aggregate_type('OrderNoSnapshots', t.fold, t.initial_state, 0)"
            " FROM eventstore.aggregate_types AS t WHERE t.aggregate_type = 'Order'",
        )
        self.execute(name, "CREATE EXTENSION pg_stat_statements")

    def vacuum(self, db: str) -> None:
        self.execute(db, "VACUUM (ANALYZE)")

    # --- pgbench --------------------------------------------------------------------------------------

    def pgbench(
        self, db: str, script: Script, clients: int, seconds: int, variables: Mapping[str, str]
    ) -> tuple[int, float, float]:
        """Run one pgbench script; returns (transactions, transactions/s, average latency in ms)."""
        command = [
            str(self.cluster.bindir / "pgbench"),
            "--no-vacuum",
            "--protocol=prepared",
            f"--client={clients}",
            f"--jobs={min(clients, 2)}",
            f"--time={seconds}",
            f"--file={script.path}",
            "--host=127.0.0.1",
            f"--port={self.cluster.port}",
            f"--username={script.user}",
            *[f"--define={name}={value}" for name, value in {**script.variables, **variables}.items()],
            db,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        output = done.stdout + done.stderr
        if done.returncode != 0 or "aborted" in output:
            raise RuntimeError(f"pgbench failed ({done.returncode}):\n{output}\nscript: {script.path}")
        transactions = int(_search(r"number of transactions actually processed: (\d+)", output))
        tps = float(_search(r"tps = ([0-9.]+) \(without initial connection time\)", output))
        latency = float(_search(r"latency average = ([0-9.]+) ms", output))
        return transactions, tps, latency

    def prepare(self, script: Script, db: str, clients: int) -> tuple[dict[str, str], list[uuid.UUID]]:
        """Create the aggregates a run of the script uses; returns its -D values (run tag, v) and them."""
        tag = self.run_tag()
        aggregates = {
            "none": [],
            "own": [md5_uuid(f"{tag}-{client}") for client in range(clients)],
            "contended": [md5_uuid(f"{tag}-w4-{a}") for a in range(1, 5)],
        }[script.aggregates]
        if script.start:
            with self.connect(db) as conn:
                for aggregate in aggregates:
                    for statement in script.start:
                        conn.execute(statement, {"aggregate": aggregate, **START_VALUES})
        return {"run": tag, "v": "0"}, aggregates

    def run_script(
        self,
        script: Script,
        db: str,
        clients: int,
        seconds: int,
        *,
        latency: bool = False,
        variables: Mapping[str, str] | None = None,
    ) -> float:
        """One timed run: ms per transaction if latency, else events/s (successful ones for W4)."""
        defined, aggregates = self.prepare(script, db, clients)
        transactions, tps, latency_ms = self.pgbench(db, script, clients, seconds, {**defined, **(variables or {})})
        if latency:
            return latency_ms
        if script.successes is None:
            return tps * script.events
        row = self.execute(db, script.successes, {"aggregates": aggregates})
        successes = int(row[0][0]) if row and row[0][0] is not None else 0
        rate = 100.0 * (transactions - successes) / transactions if transactions else 0.0
        self.conflict_rates.setdefault(script.file, []).append(rate)
        return successes / seconds

    # --- measuring ------------------------------------------------------------------------------------

    def compare_many(self, label: str, measures: Mapping[str, Callable[[], float]]) -> dict[str, list[float]]:
        """BENCH_RUNS rounds of every measure, the order rotating by one each round; a checkpoint before each."""
        return alternate(label, self.config.runs, measures, self.checkpoint)

    def measure(
        self,
        workload: Workload,
        *,
        ours: Callable[[], float] | None = None,
        ceiling: Callable[[], float] | None = None,
        variables: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> list[float]:
        """Timed runs of a workload alternating with its ceiling; adds its line and returns its runs.

        A workload with scripts runs them (with `variables` for both sides); one without is
        measured by the callables its section gives.
        """
        label = workload.label.format(**fields)
        log(label)
        measures = {"ours": ours or self.script_measure(workload, workload.ours, variables)}
        if ceiling is not None or workload.ceiling is not None:
            measures["ceiling"] = ceiling or self.script_measure(workload, workload.ceiling, variables)
        figures = self.compare_many(label, measures)
        self.add(workload.result(figures["ours"], figures.get("ceiling"), **fields))
        return figures["ours"]

    def script_measure(
        self, workload: Workload, script: Script | None, variables: Mapping[str, str] | None = None
    ) -> Callable[[], float]:
        if script is None:
            raise ValueError(f"{workload.label}: no script and no measure given")
        latency = workload.unit == "ms"
        seconds = self.config.read_seconds if latency else self.config.seconds
        return partial(
            self.run_script, script, workload.db, workload.clients, seconds, latency=latency, variables=variables
        )

    def add_peer(self, result: PeerResult) -> None:
        self.peers.append(result)
        log(
            f"= {result.workload} ({result.level}): "
            + ", ".join(
                f"{name} {format_number(result.figure(name), result.unit)} ({result.ratio(name):.2f})"
                for name in result.runs
            )
        )

    def add(self, result: Result) -> None:
        self.results.append(result)
        ratio = f" ratio {result.ratio:.2f}" if result.ratio is not None else ""
        log(f"= {result.workload}: {format_number(result.figure, result.unit)} {result.unit}{ratio}")


def md5_uuid(text: str) -> uuid.UUID:
    """The uuid md5(text)::uuid gives in SQL, so pgbench scripts and Python agree on aggregate ids."""
    return uuid.UUID(hashlib.md5(text.encode()).hexdigest())


def _search(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"pgbench output without {pattern!r}:\n{text}")
    return match[1]
