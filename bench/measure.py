"""The measuring method: timed runs alternating with the ceiling, medians, ratios and goals."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Goal:
    """A goal on the ratio to the ceiling (ratio_at_least / ratio_at_most) or on the figure (at_most / at_least)."""

    kind: str
    threshold: float

    def text(self, unit: str) -> str:
        return {
            "ratio_at_least": f"ratio ≥ {self.threshold:.2f}",
            "ratio_at_most": f"ratio ≤ {self.threshold:.2f}",
            "at_most": f"≤ {format_number(self.threshold, unit)} {unit}",
            "at_least": f"≥ {format_number(self.threshold, unit)} {unit}",
        }[self.kind]

    def met(self, figure: float, ratio: float | None) -> bool | None:
        if self.kind == "at_most":
            return figure <= self.threshold
        if self.kind == "at_least":
            return figure >= self.threshold
        if ratio is None:
            return None
        return ratio >= self.threshold if self.kind == "ratio_at_least" else ratio <= self.threshold


@dataclass
class Result:
    """One line of the table: the median of the runs, next to the ceiling's median."""

    workload: str
    unit: str
    runs: list[float]
    ceiling_runs: list[float] | None = None
    ceiling: str = ""
    goal: Goal | None = None
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def figure(self) -> float:
        return statistics.median(self.runs)

    @property
    def ceiling_figure(self) -> float | None:
        return statistics.median(self.ceiling_runs) if self.ceiling_runs else None

    @property
    def ratio(self) -> float | None:
        ceiling = self.ceiling_figure
        return None if ceiling is None or ceiling == 0 else self.figure / ceiling


@dataclass
class PeerResult:
    """One row of the peers table: the runs of every column measured, the first one the bare ceiling."""

    workload: str
    level: str
    runs: dict[str, list[float]]
    unit: str = "events/s"

    @property
    def ceiling(self) -> str:
        return next(iter(self.runs))

    def figure(self, name: str) -> float:
        return statistics.median(self.runs[name])

    def ratio(self, name: str) -> float:
        """The column's median over the bare ceiling's median, measured in the same run."""
        ceiling = self.figure(self.ceiling)
        return self.figure(name) / ceiling if ceiling else 0.0

    def ours_over(self, ours: str, name: str) -> float | None:
        """Our median over the column's (the same as our ratio over theirs); None if not measured."""
        if name not in self.runs or ours not in self.runs or not self.figure(name):
            return None
        return self.figure(ours) / self.figure(name)


def format_number(value: float, unit: str) -> str:
    if unit in ("events/s", "calls/s"):
        return f"{value:,.0f}"
    if unit == "x":
        return f"{value:.2f}"
    if unit == "%":
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def alternate(
    label: str,
    runs: int,
    measures: Mapping[str, Callable[[], float]],
    before_each: Callable[[], None],
) -> dict[str, list[float]]:
    """`runs` rounds of every measure, the order rotating by one each round; before_each (a checkpoint) first."""
    figures: dict[str, list[float]] = {name: [] for name in measures}
    names = list(measures)
    for index in range(runs):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            before_each()
            figures[name].append(measures[name]())
            log(f"  {label} run {index + 1} {name}: {figures[name][-1]:,.3f}")
    return figures
