"""The sandbox's CPU per request over a window: its process's CPU over the provider requests."""

from __future__ import annotations

from pathlib import Path

import httpx

from benchmarks.throughput.baseline import octopush_form
from benchmarks.throughput.harness import SANDBOX_CPU, _sandbox_figure
from benchmarks.throughput.provider import SEND_PATH, SandboxLoad, SandboxProcess
from benchmarks.throughput.report import BenchReport


def test_a_window_counts_the_provider_requests_and_the_sandbox_cpu(tmp_path: Path) -> None:
    sandbox = SandboxProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=sandbox.url) as client:
            client.post(SEND_PATH, data=octopush_form("+33600000001", "avant"))
            before = sandbox.snapshot()
            assert before.requests == 1
            for i in range(300):
                answer = client.post(SEND_PATH, data=octopush_form(f"+336{i:08d}", "Bonjour"))
                assert answer.json()["error_code"] == "000"
            client.get("/_sandbox/messages")  # an admin call: CPU, but no provider request
        load = sandbox.load_since(before)
    finally:
        sandbox.stop()
    assert load.requests == 300
    assert load.cpu_seconds > 0  # 300 sends take some tens of ms, several clock ticks
    assert load.cpu_per_request_ms == 1000 * load.cpu_seconds / 300


def test_no_request_no_figure() -> None:
    assert SandboxLoad(0.5, 0).cpu_per_request_ms is None
    report = BenchReport()
    _sandbox_figure(report, "idle", SandboxLoad(0.5, 0))
    _sandbox_figure(report, "nothing", None)
    assert report.figures == []


def test_the_figure_sits_beside_plain_celerys() -> None:
    report = BenchReport()
    _sandbox_figure(report, "x", SandboxLoad(0.9, 2_000), SandboxLoad(1.2, 2_000))
    (figure,) = report.figures
    assert figure.name == f"{SANDBOX_CPU}, x"
    assert (figure.value, figure.baseline, figure.unit, figure.better) == (0.45, 0.6, "ms", "lower")
    assert figure.ratio == 0.75
