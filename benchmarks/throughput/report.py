"""The benchmark's results: figures with their ratio to the baseline, targets with PASS/MISS.

Printed as rich tables; every missed target carries what limits it (from a profile), so the
output is the note the issue asks for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure, and the baseline's for the same thing when there is one."""

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    #: "higher" when more is better (rates), "lower" otherwise (memory, CPU, lateness)
    better: str = "higher"
    detail: str = ""
    #: shown instead of the value when there is none (e.g. "n/a: campaigns not built")
    missing: str = ""
    #: what ``baseline`` is a figure of
    peer: str = "plain Celery"

    @property
    def ratio(self) -> float | None:
        """Postier's figure over the baseline's (for "lower is better" figures too: a ratio
        under 1 is then the better one)."""
        if self.value is None or self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


@dataclass(frozen=True, slots=True)
class Target:
    """A target of the issue, whether it was met, and what limits it when not."""

    name: str
    measured: str
    met: bool | None
    limit: str = ""


@dataclass
class BenchReport:
    """Everything one run measured."""

    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)


def as_json(report: BenchReport) -> dict[str, Any]:
    """Every measure (name, Postier, peer, ratio, unit) and every target (name, measured,
    goal, pass), as ``var/bench/report.json`` holds them."""
    return {
        "measures": [
            {
                "name": f.name,
                "postier": f.value,
                "peer": f.peer if f.baseline is not None else None,
                "peer_value": f.baseline,
                "ratio": f.ratio,
                "unit": f.unit,
                "better": f.better,
                "detail": f.detail or f.missing,
            }
            for f in report.figures
        ],
        "targets": [
            {
                "name": t.name,
                "measured": t.measured,
                "goal": t.name,
                "pass": t.met,
                "limit": t.limit,
            }
            for t in report.targets
        ],
        "findings": list(report.findings),
        "errors": list(report.errors),
    }


def write_json(report: BenchReport, path: Path) -> None:
    """Write ``as_json(report)`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(as_json(report), indent=2, ensure_ascii=False) + "\n")


def _number(value: float, unit: str) -> str:
    if unit in ("msg/s", "req/s"):
        return f"{value:,.0f} {unit}"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:g} {unit}"


def print_report(report: BenchReport, console: Console) -> None:
    """The figures table, the targets table, then the profile findings and any errors."""
    figures = Table(title="Postier benchmark (same run, same sandbox, same Redis)")
    figures.add_column("measure")
    figures.add_column("Postier", justify="right")
    figures.add_column("peer", justify="right")
    figures.add_column("ratio", justify="right")
    figures.add_column("notes", overflow="fold")
    for figure in report.figures:
        value = _number(figure.value, figure.unit) if figure.value is not None else figure.missing
        base = (
            f"{_number(figure.baseline, figure.unit)} ({figure.peer})"
            if figure.baseline is not None
            else "—"
        )
        ratio = figure.ratio
        shown = "—" if ratio is None else f"{ratio:.2f}x"
        figures.add_row(figure.name, value, base, shown, figure.detail)
    console.print(figures)
    targets = Table(title="Targets on this machine")
    targets.add_column("target")
    targets.add_column("measured", justify="right")
    targets.add_column("result")
    targets.add_column("what limits it", overflow="fold")
    for target in report.targets:
        result = {True: "[green]PASS[/]", False: "[red]MISS[/]", None: "[yellow]n/a[/]"}[target.met]
        targets.add_row(target.name, target.measured, result, target.limit)
    console.print(targets)
    for finding in report.findings:
        console.print(f"[bold]profile[/] {finding}")
    for error in report.errors:
        console.print(f"[red]error[/] {error}")
