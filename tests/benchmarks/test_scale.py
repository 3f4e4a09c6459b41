"""``make bench-scale`` end to end at tiny sizes: every ledger loads, every query is timed and
explained, the write check runs, the table prints and ``report.json`` holds it all.

No timing is asserted (the machine is shared); the sizes only show the harness works.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from benchmarks.scale import ScaleOptions, print_report, run_scale
from benchmarks.scale.__main__ import main
from benchmarks.scale.workload import QUERIES
from benchmarks.scale.writes import slow_writes_by_step
from tests.ledger.conftest import PG_URL, pg_admin  # noqa: F401 (the fixture)

SIZES = (1_000, 3_000)


def test_every_query_is_measured_on_both_backends_and_reported(
    tmp_path: Path,
    pg_admin: Engine,  # noqa: F811 - the imported fixture: skips or fails without PostgreSQL
) -> None:
    options = ScaleOptions(
        sizes=SIZES, workdir=tmp_path, pg_url=PG_URL, repeat=1, write_seconds=0.5
    )
    console = Console(width=250, record=True)
    report = run_scale(options, console)
    print_report(report, console)
    report.write(tmp_path / "report.json")

    assert report.skipped == []
    found = {(m.query, m.backend, m.size) for m in report.measurements}
    wanted = {(q.name, b, s) for q in QUERIES for b in ("sqlite", "postgresql") for s in SIZES}
    assert found == wanted
    assert {m.plan for m in report.measurements} <= {"index", "scan", "none"}
    document = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert {"query", "backend", "size", "ms", "plan"} <= set(document["measurements"][0])
    # PostgreSQL has no statistics pass to time (autovacuum's job), SQLite no deltas to fold
    assert len(document["growth"]) == 2 * len(QUERIES) - 2
    writes = document["sqlite_writes_while_beat_runs"]
    assert [w["size"] for w in writes] == list(SIZES)
    assert all(w["writes"] > 0 for w in writes)
    assert all("delivery poll: mark asked" in w["longest_hold_ms"] for w in writes)
    assert all(w["max_insert_ms"] > 0 and w["max_commit_ms"] > 0 for w in writes)
    assert all(w["max_wal_bytes"] > 0 for w in writes)
    text = console.export_text()
    assert "growth" in text and "release due rows" in text
    # nothing is left behind without --keep
    assert not list(tmp_path.glob("*.sqlite"))


def test_the_command_line_keeps_and_reuses_a_ledger(tmp_path: Path) -> None:
    args = ["--sizes", "1000", "--backends", "sqlite", "--workdir", str(tmp_path)]
    args += ["--repeat", "1", "--write-seconds", "0", "--keep", "--query", "message by id"]
    assert main(args) == 0
    assert (tmp_path / "ledger-1000.sqlite").exists()
    assert main(args) == 0
    document = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert [load["how"] for load in document["loads"]] == ["reused"]
    assert [m["query"] for m in document["measurements"]] == ["message by id"]


def test_slow_writes_are_matched_with_the_steps_theyslow_writes_by_step() -> None:
    spans = [("mark asked", 1.00, 1.05), ("checkpoint", 1.04, 1.20), ("read", 2.0, 2.1)]
    writes = [(1.03, 1.07), (1.10, 1.111), (1.5, 1.6), (0.0, 0.01)]
    # the second write took 11 ms (not slow), the last 10 ms; the third overlapped nothing
    assert slow_writes_by_step(writes, spans) == {
        "mark asked": 1,
        "checkpoint": 1,
        "nothing noted": 1,
    }
