"""The results file: the table, the ceilings, every run, the diagnostics and profiles, the notes."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime
from pathlib import Path

from bench.config import REPORTED_SETTINGS
from bench.harness import ROOT, Harness
from bench.measure import PeerResult, Result, format_number
from bench.workloads import CEILING, OURS, PEER_COLUMNS

RESULTS = ROOT / "bench" / "results"


def write(harness: Harness, commit: str, started: datetime, elapsed: float, load: tuple[float, float, float]) -> Path:
    """Writes bench/results/<date>.md and latest.md, or quick.md for a quick run; returns the file."""
    config = harness.config
    lines = [
        f"# pg_eventstore benchmarks, {started:%Y-%m-%d}",
        "",
        f"Run by `make bench` (bench/run.py) on {started:%Y-%m-%d %H:%M} UTC in {elapsed / 60:.1f} min.",
        f"Each figure is the median of {config.runs} run(s) of {config.seconds} s"
        f" (reads: {config.read_seconds} s), alternating with its ceiling in the same cluster."
        + (" **Quick smoke run: sizes and times are reduced; not a result.**" if config.quick else ""),
        "",
        *[f"- {name}: {value}" for name, value in machine_facts(harness, commit)],
        f"- Load average (1 min) before / after: {load[0]:.2f} / {os.getloadavg()[0]:.2f}",
        "",
        "| workload | figure | unit | ceiling | ratio | goal | met? |",
        "|---|---:|---|---:|---:|---|---|",
        *[_table_row(result) for result in harness.results],
        "",
        "Ratio: figure / ceiling (for ms, a time ratio: lower is better).",
        *_peers(harness),
        "",
        "## Ceilings",
        "",
        *[f"- {result.workload}: {result.ceiling}." for result in harness.results if result.ceiling],
        "",
        "## All runs",
        "",
        "| workload | runs | ceiling runs |",
        "|---|---|---|",
    ]
    for result in [*harness.results, *harness.diagnostics]:
        runs = ", ".join(format_number(v, result.unit) for v in result.runs)
        ceiling_runs = ", ".join(format_number(v, result.unit) for v in result.ceiling_runs or [])
        lines.append(f"| {result.workload} | {runs} | {ceiling_runs} |")
    for peer in harness.peers:
        ceiling_runs = ", ".join(format_number(v, peer.unit) for v in peer.runs[peer.ceiling])
        for name, values in peer.runs.items():
            if name != peer.ceiling:
                runs = ", ".join(format_number(v, peer.unit) for v in values)
                lines.append(f"| Peers, {peer.level}, {peer.workload}: {name} | {runs} | {ceiling_runs} |")
    if harness.diagnostics:
        lines += [
            "",
            "## Diagnostics (not our configuration)",
            "",
            "Each line adds one cost of append_events() to a plain statement, or removes one from",
            "append_events() in a bench-only copy database, to price it. See bench/README.md.",
            "",
            "| diagnostic | figure | unit | compared with | that figure | ratio |",
            "|---|---:|---|---|---:|---:|",
        ]
        for result in harness.diagnostics:
            lines.append(
                f"| {result.workload} | {format_number(result.figure, result.unit)} | {result.unit} |"
                f" {result.ceiling} | {format_number(result.ceiling_figure or 0, result.unit)} |"
                f" {result.ratio or 0:.2f} |"
            )
    for label, statements in harness.statements.items():
        lines += _section(
            f"Where append_events() spends its time: {label} (pg_stat_statements, nested statements)",
            ["statement", "calls", "ms per transaction", "mean ms"],
            [
                (f"`{query.replace('|', '¦')}`", f"{calls:,}", f"{per_call:.4f}", f"{mean:.4f}")
                for query, calls, per_call, mean in statements
            ],
        )
    for label, waits in harness.waits.items():
        lines += _section(
            f"Wait events: {label} (pg_stat_activity sampled every 5 ms)",
            ["backend state", "share of samples"],
            [(state, f"{share:.1f}%") for state, share in waits],
        )
    if harness.notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in harness.notes]]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    if config.quick:
        target = RESULTS / "quick.md"
        target.write_text(text)
        return target
    target = RESULTS / f"{started:%Y-%m-%d}.md"
    target.write_text(text)
    (RESULTS / "latest.md").write_text(text)
    return target


def machine_facts(harness: Harness, commit: str) -> list[tuple[str, str]]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    version = harness.scalar("postgres", "SELECT version()")
    settings = harness.execute(
        "postgres",
        "SELECT name, setting, coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
        (list(REPORTED_SETTINGS),),
    )
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} cores (nproc)"),
        ("Memory", memory),
        ("Kernel", platform.release()),
        ("PostgreSQL", str(version)),
        ("Settings", ", ".join(f"{n}={_setting(s, u)}" for n, s, u in settings)),
        ("Commit", commit),
    ]


def git_commit() -> str:
    """The code measured: the checkout when the run starts (the install scripts are read then)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "sql", "python/src", "examples"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}{' + uncommitted changes in sql/, python/src or examples/' if dirty else ''}"


def _peers(harness: Harness) -> list[str]:
    """The peers table: each column's median events/s with its ratio to the bare ceiling, and ours over theirs."""
    if not harness.peers:
        return []
    others = [name for name in PEER_COLUMNS if name not in (CEILING, OURS)]
    lines = [
        "",
        "## Peers",
        "",
        "The same workloads on the peers, alternating with pg_eventstore and the bare ceiling in this run:",
        "median events/s (ratio to the bare ceiling of the same level); `ours ÷ X` is pg_eventstore's",
        'median over X\'s (above 1: we are faster). See bench/README.md, "Peers".',
        "",
        *[f"- {name}: {text}" for name, text in harness.peer_versions.items()],
        "",
        f"| workload | level | {' | '.join(PEER_COLUMNS)} | {' | '.join(f'ours ÷ {name}' for name in others)} |",
        "|---|---|" + "---:|" * (len(PEER_COLUMNS) + len(others)),
    ]
    for peer in harness.peers:
        lines.append(
            f"| {peer.workload} | {peer.level} | {' | '.join(_peer_cell(peer, name) for name in PEER_COLUMNS)} | "
            + " | ".join(_ours_over(peer, name) for name in others)
            + " |"
        )
    return lines


def _peer_cell(peer: PeerResult, name: str) -> str:
    if name not in peer.runs:
        return "—"
    figure = format_number(peer.figure(name), peer.unit)
    return figure if name == peer.ceiling else f"{figure} ({peer.ratio(name):.2f})"


def _ours_over(peer: PeerResult, name: str) -> str:
    ratio = peer.ours_over(OURS, name)
    return "—" if ratio is None else f"{ratio:.2f}"


def _section(title: str, columns: list[str], rows: list[tuple[str, ...]]) -> list[str]:
    """A heading and a table whose first column is text and the others figures (right-aligned)."""
    return [
        "",
        f"## {title}",
        "",
        f"| {' | '.join(columns)} |",
        "|---|" + "---:|" * (len(columns) - 1),
        *[f"| {' | '.join(row)} |" for row in rows],
    ]


def _table_row(result: Result) -> str:
    ceiling = result.ceiling_figure
    ratio = result.ratio
    met = result.goal.met(result.figure, ratio) if result.goal else None
    return (
        f"| {result.workload} | {format_number(result.figure, result.unit)} | {result.unit} | "
        f"{format_number(ceiling, result.unit) if ceiling is not None else '—'} | "
        f"{f'{ratio:.2f}' if ratio is not None else '—'} | "
        f"{result.goal.text(result.unit) if result.goal else '—'} | "
        f"{'—' if met is None else ('yes' if met else '**no**')} |"
    )


def _setting(value: str, unit: str) -> str:
    units = {"8kB": 8, "kB": 1, "MB": 1024}
    if unit in units and value.lstrip("-").isdigit() and int(value) > 0:
        kib = int(value) * units[unit]
        return f"{kib // 1024}MB" if kib >= 1024 else f"{kib}kB"
    return f"{value}{unit}"
