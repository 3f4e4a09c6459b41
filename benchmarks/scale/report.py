"""The bench-scale report: one table on the console, and ``report.json`` for tools.

The table has one row per query and, per backend, the median at each size, the growth from
the smallest to the largest size, the plan at the largest size and PASS/MISS against the
target (the kind's ceiling at the largest size, and growth ≤ ``MAX_GROWTH``).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.table import Table

#: the issue's ceiling on growth from the smallest to the largest ledger
MAX_GROWTH: Final = 2.0
#: the issue's ceiling on a one-row write's wait on SQLite while beat runs (ms)
MAX_WRITE_WAIT_MS: Final = 50.0


@dataclass(frozen=True, slots=True)
class Measurement:
    """One query, on one backend, at one size."""

    query: str
    kind: str
    period: str
    backend: str
    size: int
    ms: float
    p90_ms: float
    max_ms: float
    #: "index" or "scan" (see ``benchmarks.scale.plans``)
    plan: str
    plan_detail: str
    target_ms: float
    #: statements one run sends; 0 when the work does not exist on this backend
    statements: int = 1
    #: median CPU ms of the measuring process (SQLite: the database work itself)
    cpu_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Load:
    backend: str
    size: int
    seconds: float
    #: "loaded" or "reused" (``--keep`` and an earlier run's ledger)
    how: str
    #: seconds ``upgrade()`` took on a reused ledger (its migrations); 0 on a fresh one
    migrate_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Writes:
    backend: str
    size: int
    writes: int
    median_ms: float
    p99_ms: float
    max_ms: float
    beat_loops: int
    #: per pass, the longest it kept a write transaction open meanwhile (ms)
    longest_hold_ms: dict[str, float] = field(default_factory=dict)
    #: the worst write's split: its INSERT (the wait for the lock) and its COMMIT (ms)
    max_insert_ms: float = 0.0
    max_commit_ms: float = 0.0
    #: the largest the ``-wal`` file grew meanwhile (bytes)
    max_wal_bytes: int = 0
    #: writes slower than 25 ms, by the beat loop's step they overlapped
    slow_writes_during: dict[str, int] = field(default_factory=dict)


@dataclass
class Report:
    sizes: list[int]
    backends: list[str]
    measurements: list[Measurement] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    writes: list[Writes] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def growth(self) -> list[dict[str, Any]]:
        """Per query and backend: largest size's median over the smallest's, and the verdict."""
        found: list[dict[str, Any]] = []
        if len(self.sizes) < 2:
            return found
        small, large = min(self.sizes), max(self.sizes)
        by_key = {(m.query, m.backend, m.size): m for m in self.measurements}
        for query in dict.fromkeys(m.query for m in self.measurements):
            for backend in self.backends:
                first, last = (
                    by_key.get((query, backend, small)),
                    by_key.get((query, backend, large)),
                )
                if first is None or last is None or last.statements == 0:
                    continue
                ratio = last.ms / first.ms if first.ms > 0 else float("inf")
                found.append(
                    {
                        "query": query,
                        "backend": backend,
                        "from_size": small,
                        "to_size": large,
                        "ratio": round(ratio, 2),
                        "ms_at_largest": round(last.ms, 3),
                        "target_ms": last.target_ms,
                        "meets_target": last.ms <= last.target_ms and ratio <= MAX_GROWTH,
                        "plan_at_largest": last.plan,
                    }
                )
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "sizes": self.sizes,
            "backends": self.backends,
            "targets": {
                "pass_ms": 20.0,
                "lookup_ms": 5.0,
                "listing_ms": 20.0,
                "max_growth": MAX_GROWTH,
                "sqlite_write_wait_ms": MAX_WRITE_WAIT_MS,
            },
            "measurements": [asdict(m) for m in self.measurements],
            "growth": self.growth(),
            "loads": [asdict(load) for load in self.loads],
            "sqlite_writes_while_beat_runs": [asdict(w) for w in self.writes],
            "skipped": self.skipped,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")


def _size(size: int) -> str:
    return f"{size / 1_000_000:g}M" if size >= 100_000 else f"{size:,}"


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def print_report(report: Report, console: Console) -> None:
    """The table of medians, growth, plans and verdicts; then the loads and the write check."""
    sizes = sorted(report.sizes)
    by_key = {(m.query, m.backend, m.size): m for m in report.measurements}
    growth = {(g["query"], g["backend"]): g for g in report.growth()}
    table = Table(title="Ledger work by size (median ms)", show_lines=False)
    table.add_column("database work (its period)")
    for backend in report.backends:
        table.add_column(f"{backend}\n{' / '.join(_size(s) for s in sizes)}", justify="right")
        table.add_column("growth", justify="right")
        table.add_column(f"plan at {_size(sizes[-1])}")
        table.add_column("target")
    for query in dict.fromkeys(m.query for m in report.measurements):
        first = next(m for m in report.measurements if m.query == query)
        label = f"{query} ({first.period})" if first.period else query
        cells = [label]
        for backend in report.backends:
            values = [by_key.get((query, backend, size)) for size in sizes]
            cells.append(" / ".join(_ms(v.ms) if v else "-" for v in values))
            found = growth.get((query, backend))
            last = values[-1]
            cells.append(f"{found['ratio']:.1f}x" if found else "-")
            cells.append(last.plan if last else "-")
            if last is None or last.statements == 0:
                cells.append("n/a" if last is not None else "-")
            else:
                ok = found["meets_target"] if found else last.ms <= last.target_ms
                verdict = "[green]PASS[/]" if ok else "[red]MISS[/]"
                cells.append(f"{verdict} ≤{last.target_ms:g}")
        table.add_row(*cells)
    console.print(table)
    for load in report.loads:
        extra = f", migrations {load.migrate_seconds:.1f} s" if load.migrate_seconds else ""
        console.print(
            f"ledger {load.backend} {_size(load.size)}: {load.how} in {load.seconds:.0f} s{extra}"
        )
    for w in report.writes:
        verdict = "[green]PASS[/]" if w.max_ms <= MAX_WRITE_WAIT_MS else "[red]MISS[/]"
        console.print(
            f"SQLite {_size(w.size)}: one-row write while beat loops ({w.beat_loops} loops):"
            f" median {_ms(w.median_ms)} ms, p99 {_ms(w.p99_ms)} ms, worst {_ms(w.max_ms)} ms"
            f" over {w.writes} writes — {verdict} ≤{MAX_WRITE_WAIT_MS:g} ms"
        )
        console.print(
            f"  worst INSERT {_ms(w.max_insert_ms)} ms, worst COMMIT"
            f" {_ms(w.max_commit_ms)} ms, log at most {w.max_wal_bytes / 2**20:.1f} MiB"
        )
        if w.slow_writes_during:
            during = ", ".join(f"{name} {count}" for name, count in w.slow_writes_during.items())
            console.print(f"  writes over 25 ms, by the step of the loop they overlapped: {during}")
        if w.longest_hold_ms:
            holds = ", ".join(f"{name} {_ms(ms)}" for name, ms in w.longest_hold_ms.items())
            console.print(f"  longest write transaction of each pass (ms): {holds}")
    misses = [
        m
        for m in report.measurements
        if m.size == sizes[-1]
        and m.statements > 0
        and not growth.get((m.query, m.backend), {"meets_target": m.ms <= m.target_ms})[
            "meets_target"
        ]
    ]
    for m in misses:
        console.print(f"[red]MISS[/] {m.query} on {m.backend}: {_ms(m.ms)} ms — {m.plan_detail}")
    for reason in report.skipped:
        console.print(f"[yellow]skipped[/] {reason}")


__all__ = [
    "MAX_GROWTH",
    "MAX_WRITE_WAIT_MS",
    "Load",
    "Measurement",
    "Report",
    "Writes",
    "print_report",
]
