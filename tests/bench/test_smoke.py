"""The benchmark harness end to end at a very small size: every measure runs and reports.

No timing is asserted (the machine is shared); the point is that ``make bench`` works: the
baseline worker, Postier's stacks on SQLite and PostgreSQL, the producer, a campaign, deferred
sends, the sandbox's ceiling, the profiles and the report with its targets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from benchmarks.throughput import BenchOptions, print_report, run_bench
from benchmarks.throughput.profiling import summarise
from benchmarks.throughput.report import write_json

pytestmark = pytest.mark.integration


@pytest.mark.timeout(480)  # some twenty stacks and peers started one after another
def test_every_measure_runs_and_the_report_has_its_targets(tmp_path: Path) -> None:
    options = BenchOptions(
        workdir=tmp_path / "bench",
        baseline_messages=40,
        e2e_messages=120,
        personalised_messages=20,
        bulk_messages=200,
        campaign_recipients=60,
        deferred_messages=200,
        deferred_span=4.0,
        deferred_window=2.0,
        ceiling_seconds=1.0,
        profile_seconds=1.0,
        slow_baseline_messages=10,
        peer_messages=40,
        lane_codes=2,
        lane_bulk=40,
    )
    console = Console(width=200, record=True)
    report = run_bench(options, console)
    print_report(report, console)
    assert report.errors == []
    names = {figure.name for figure in report.figures}
    for wanted in (
        "provider endpoint ceiling (sandbox alone)",
        "baseline: one task per message",
        "end to end, SQLite ledger, one text",
        "end to end, SQLite ledger, personalised texts",
        "end to end, PostgreSQL ledger, one text",
        "producer: one bulk call of 200, SQLite",
        "producer: one bulk call of 200, PostgreSQL",
        "campaign fan-out (create → message rows)",
        "deferred lateness p99",
        "worker peak RSS (the larger worker)",
        "worker memory, peak PSS (the larger worker)",
        "beat peak RSS",
        "end to end, PostgreSQL ledger, personalised texts",
        "asyncio peer, personalised texts",
        "baseline at 80 ms",
        "asyncio peer at 80 ms",
        "end to end at 80 ms, personalised texts",
        "code latency at 0 ms, under bulk (p50)",
        "code latency at 80 ms, idle (p50)",
        "bulk throughput at 80 ms with codes going through",
        "sandbox CPU per request, ceiling (sandbox alone)",
        "sandbox CPU per request, baseline",
        "sandbox CPU per request, SQLite ledger, personalised texts",
        "sandbox CPU per request, PostgreSQL ledger, personalised texts",
        "sandbox CPU per request, asyncio peer",
        "sandbox CPU per request, personalised texts at 80 ms",
    ):
        assert wanted in names, sorted(names)
    for figure in report.figures:
        if figure.name.startswith(("end to end", "baseline")):
            assert figure.value is not None and figure.value > 0
            assert figure.ratio is not None
    assert {t.name for t in report.targets} >= {
        "100,000 accepted by one bulk call < 5 s, SQLite",
        "100,000 accepted by one bulk call < 5 s, PostgreSQL",
        "a campaign of 100,000 fanned out < 5 s",
        "deferred p99 lateness < 1.5 s",
        "worker RSS < 200 MB",
        "personalised texts at 0 ms ≥ 1.5x plain Celery (SQLite ledger)",
        "personalised texts at 0 ms ≥ 1.2x plain Celery (PostgreSQL ledger)",
        "personalised texts at 80 ms ≥ the asyncio peer",
        "every code sent ≤ 0.5 s under a personalised bulk send (80 ms)",
        "bulk throughput drops ≤ 10% with codes going through (0 ms)",
    }
    assert all(t.met is not None for t in report.targets)
    assert "PASS" in console.export_text() or "MISS" in console.export_text()
    write_json(report, options.workdir / "report.json")
    written = json.loads((options.workdir / "report.json").read_text())
    assert {m["name"] for m in written["measures"]} == names
    assert all(
        {"name", "postier", "peer", "ratio", "unit"} <= m.keys() for m in written["measures"]
    )
    assert all({"name", "measured", "goal", "pass"} <= t.keys() for t in written["targets"])


def test_a_py_spy_profile_is_put_in_categories() -> None:
    raw = "\n".join(
        [
            "run (celery/app/trace.py:1);send_chunk (/src/postier/dispatch/batching.py:9);"
            "execute (sqlalchemy/engine/base.py:3) 6",
            "run (celery/app/trace.py:1);send_sms (/src/postier/providers/octopush/client.py:2);"
            "send (httpx/_client.py:5) 3",
            "drain (kombu/transport/redis.py:7);read (redis/connection.py:8) 1",
        ]
    )
    profile = summarise(raw)
    assert profile.samples == 10
    assert profile.categories["ledger: SQLAlchemy + driver"] == pytest.approx(0.6)
    assert profile.categories["HTTP client (httpx)"] == pytest.approx(0.3)
    assert profile.categories["Celery + kombu"] == pytest.approx(0.1)
    assert dict(profile.functions)["postier.dispatch.batching.send_chunk"] == pytest.approx(0.6)
    assert "ledger: SQLAlchemy + driver 60%" in profile.finding()
