"""``make bench-scale``: the ledger's periodic work and lookups at 0.1M, 1M and 5M messages.

For each backend (SQLite, PostgreSQL) and size: a synthetic ledger is built by
``benchmarks.scale.loader``, each periodic pass and lookup of ``benchmarks.scale.workload`` is
timed (median of ``repeat`` runs) and its plan asked of the database, and on SQLite one-row
writes are timed while every pass loops (``benchmarks.scale.writes``). The report
(``benchmarks.scale.report``) prints a table with the growth from the smallest to the largest
size and writes ``var/bench-scale/report.json``.

``--keep`` keeps the ledgers (``var/bench-scale/ledger-<size>.sqlite`` and the PostgreSQL
database ``postier_scale_<size>``) and reuses them on the next run after running the
migrations on them, so a schema change is measured as a deployment would meet it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

from rich.console import Console
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError

from benchmarks.scale.loader import (
    LoadedLedger,
    default_now,
    load_postgresql,
    load_sqlite,
    prepare,
)
from benchmarks.scale.report import Load, Measurement, Report, Writes, print_report
from benchmarks.scale.workload import QUERIES, find_targets, measure
from benchmarks.scale.writes import write_latency
from postier.ledger.db import make_engine, upgrade

DEFAULT_SIZES: Final = (100_000, 1_000_000, 5_000_000)
DEFAULT_PG_URL: Final = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True, slots=True)
class ScaleOptions:
    """What one run measures."""

    sizes: tuple[int, ...] = DEFAULT_SIZES
    backends: tuple[str, ...] = ("sqlite", "postgresql")
    workdir: Path = Path("var/bench-scale")
    #: the PostgreSQL server (its maintenance database): ledgers are made as new databases
    pg_url: str = DEFAULT_PG_URL
    #: timed runs of each query (after three unmeasured ones)
    repeat: int = 15
    #: seconds of one-row writes while the passes loop (SQLite); 0 leaves the check out
    write_seconds: float = 10.0
    #: keep the ledgers, and reuse kept ones
    keep: bool = False
    queries: tuple[str, ...] = field(default_factory=tuple)


def run_scale(options: ScaleOptions, console: Console) -> Report:
    """Build, measure and (unless ``keep``) drop each ledger; the report."""
    report = Report(sizes=sorted(options.sizes), backends=list(options.backends))
    options.workdir.mkdir(parents=True, exist_ok=True)
    for backend in options.backends:
        if backend == "postgresql":
            reason = _pg_unreachable(options.pg_url)
            if reason is not None:
                report.skipped.append(f"postgresql: {reason}")
                continue
        for size in sorted(options.sizes):
            console.print(f"[bold]{backend}, {size:,} messages[/]")
            with _ledger(options, backend, size, report, console.print) as ledger:
                _measure_ledger(options, backend, ledger, report, console)
    return report


def _measure_ledger(
    options: ScaleOptions, backend: str, ledger: LoadedLedger, report: Report, console: Console
) -> None:
    engine = make_engine(ledger.url)
    try:
        targets = find_targets(engine, ledger.now)
        for query in QUERIES:
            if options.queries and query.name not in options.queries:
                continue
            timing = measure(engine, query, targets, repeat=options.repeat)
            report.measurements.append(
                Measurement(
                    query=query.name,
                    kind=query.kind,
                    period=query.period,
                    backend=backend,
                    size=ledger.size,
                    ms=round(timing.median_ms, 3),
                    p90_ms=round(timing.p90_ms, 3),
                    max_ms=round(timing.max_ms, 3),
                    plan=timing.plan.label if timing.statements else "none",
                    plan_detail=timing.plan.detail,
                    target_ms=query.target_ms,
                    statements=timing.statements,
                    cpu_ms=round(timing.cpu_ms, 3),
                )
            )
            console.print(
                f"  {query.name}: {timing.median_ms:.2f} ms, CPU {timing.cpu_ms:.2f} ms"
                f" ({timing.plan.label})",
                highlight=False,
            )
    finally:
        engine.dispose()
    if backend == "sqlite" and options.write_seconds > 0:
        found = write_latency(
            ledger.url,
            ledger.now,
            seconds=options.write_seconds,
        )
        report.writes.append(
            Writes(
                backend,
                ledger.size,
                found.writes,
                round(found.median_ms, 3),
                round(found.p99_ms, 3),
                round(found.max_ms, 3),
                found.beat_loops,
                found.longest_hold_ms,
                round(found.max_insert_ms, 3),
                round(found.max_commit_ms, 3),
                found.max_wal_bytes,
                found.slow_writes_during,
            )
        )
        console.print(
            f"  one-row writes while beat loops: median {found.median_ms:.2f} ms,"
            f" worst {found.max_ms:.1f} ms"
        )


# -- ledgers: fresh, or kept and reused ------------------------------------------------------

_KEPT: Final = "ledgers.json"


def _kept(workdir: Path) -> dict[str, str]:
    path = workdir / _KEPT
    if not path.exists():
        return {}
    loaded: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _remember(workdir: Path, key: str, now: datetime | None) -> None:
    kept = _kept(workdir)
    if now is None:
        kept.pop(key, None)
    else:
        kept[key] = now.isoformat()
    (workdir / _KEPT).write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")


@contextmanager
def _ledger(
    options: ScaleOptions,
    backend: str,
    size: int,
    report: Report,
    progress: Callable[[str], None],
) -> Iterator[LoadedLedger]:
    key = f"{backend}:{size}"
    kept_now = _kept(options.workdir).get(key) if options.keep else None
    if backend == "sqlite":
        path = options.workdir / (f"ledger-{size}.sqlite" if options.keep else f"run-{size}.sqlite")
        url = f"sqlite:///{path}"
        if kept_now is not None and path.exists():
            yield _reuse(url, size, datetime.fromisoformat(kept_now), backend, report)
            return
        _remember(options.workdir, key, None)
        ledger = load_sqlite(path, size, now=default_now(), progress=progress)
        report.loads.append(Load(backend, size, round(ledger.seconds, 1), "loaded"))
        if options.keep:
            _remember(options.workdir, key, ledger.now)
        try:
            yield ledger
        finally:
            if not options.keep:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    # kept ledgers have a fixed name to be found again; others a unique one (parallel runs)
    name = (
        f"postier_scale_{size}" if options.keep else f"postier_scale_{size}_{uuid.uuid4().hex[:8]}"
    )
    admin = create_engine(make_url(options.pg_url), isolation_level="AUTOCOMMIT")
    url = make_url(options.pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if kept_now is not None and exists:
                yield _reuse(url, size, datetime.fromisoformat(kept_now), backend, report)
                return
            _remember(options.workdir, key, None)
            _drop(connection, name)
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        ledger = load_postgresql(url, size, now=default_now(), progress=progress)
        report.loads.append(Load(backend, size, round(ledger.seconds, 1), "loaded"))
        if options.keep:
            _remember(options.workdir, key, ledger.now)
        try:
            yield ledger
        finally:
            if not options.keep:
                with admin.connect() as connection:
                    _drop(connection, name)
    finally:
        admin.dispose()


def _drop(connection: Connection, name: str) -> None:
    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _reuse(url: str, size: int, now: datetime, backend: str, report: Report) -> LoadedLedger:
    """A kept ledger, brought to the newest schema and made ready to measure again."""
    started = time.perf_counter()
    upgrade(url)
    migrated = time.perf_counter() - started
    prepare(url, now)
    report.loads.append(Load(backend, size, 0.0, "reused", round(migrated, 1)))
    return LoadedLedger(url, size, now, 0.0)


def _pg_unreachable(url: str) -> str | None:
    engine = create_engine(make_url(url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return None
    except OperationalError as exc:
        return f"not reachable at {make_url(url).render_as_string(hide_password=True)}: {exc.orig}"
    finally:
        engine.dispose()


__all__ = ["DEFAULT_SIZES", "ScaleOptions", "print_report", "run_scale"]
