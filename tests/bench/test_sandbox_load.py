"""The sandbox's CPU per request over a window: its process's CPU over the provider requests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.throughput.baseline import octopush_form
from benchmarks.throughput.harness import SANDBOX_CPU, _sandbox_figure
from benchmarks.throughput.provider import SEND_PATH, SandboxLoad, SandboxProcess, _httpx_load
from benchmarks.throughput.report import BenchReport
from postier.sandbox import SandboxServer


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


def test_the_httpx_ceiling_times_the_load_once_every_client_is_made(
    sandbox_server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients slower to make than the load lasts (a loaded machine) still send."""
    made = httpx.Client.__init__

    def slow_client(self: httpx.Client, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.3)
        made(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "__init__", slow_client)
    assert _httpx_load(sandbox_server.url, 0.2, 2, 0) > 0
