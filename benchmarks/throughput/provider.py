"""The provider endpoint of the benchmark: the sandbox in a process of its own, and its ceiling.

The sandbox runs apart from the benchmark's process (``postier sandbox``) so the producer and
the measuring loops never take its interpreter lock. Its own ceiling is measured with ``wrk``
when it is installed, else with httpx threads in two client processes; either way it must
exceed what the dispatcher achieves, or the dispatcher's figure would be the sandbox's.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx

from benchmarks.throughput import procfs
from benchmarks.throughput.baseline import octopush_form

#: the endpoint every measured send goes to (Octopush legacy form API, JSON answers)
SEND_PATH = "/api/sms/json"


def free_port() -> int:
    """A free TCP port of 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class SandboxSnapshot:
    """The sandbox process's CPU seconds and the provider requests it had received."""

    cpu_seconds: float
    requests: int


@dataclass(frozen=True, slots=True)
class SandboxLoad:
    """The sandbox's CPU over a measured window and the provider requests it served in it.

    The sandbox shares the machine with the processes measured: every millisecond it spends
    per request is taken from them. Its admin calls in the window (the harness polling its
    request counter) are in the CPU, not in the requests: a small overestimate.
    """

    cpu_seconds: float
    requests: int

    @property
    def cpu_per_request_ms(self) -> float | None:
        return 1000 * self.cpu_seconds / self.requests if self.requests > 0 else None


class SandboxProcess:
    """``postier sandbox`` as a child process on a free port of 127.0.0.1."""

    def __init__(self, workdir: Path, *, delivery_delay: float = 1.0) -> None:
        self.workdir = workdir
        self.delivery_delay = delivery_delay
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(timeout=30.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "start() first"
        return self.process.pid

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["POSTIER_SANDBOX__DELIVERY_DELAY"] = str(self.delivery_delay)
        log = open(self.workdir / "sandbox.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            [sys.executable, "-m", "postier.cli", "sandbox", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the sandbox exited; see {self.workdir / 'sandbox.log'}")
            try:
                if self.client.get(f"{self.url}/_sandbox/health", timeout=1.0).is_success:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the sandbox did not answer")

    def reset(self) -> None:
        """Forget every message, fault and callback state of the previous measure."""
        self.client.post(f"{self.url}/_sandbox/reset").raise_for_status()

    def set_faults(self, provider: str, **plan: Any) -> None:
        self.client.put(f"{self.url}/_sandbox/faults/{provider}", json=plan).raise_for_status()

    def request_count(self, provider: str | None = None) -> int:
        """Requests the sandbox received for ``provider`` (every provider: None) since the
        last reset."""
        health = self.client.get(f"{self.url}/_sandbox/health").json()
        counts: dict[str, int] = health.get("requests", {})
        if provider is None:
            return sum(int(count) for count in counts.values())
        return int(counts.get(provider, 0))

    def snapshot(self) -> SandboxSnapshot:
        """The sandbox's CPU seconds and provider requests so far: the start of a window
        (take it after any ``reset``, which zeroes the request counter)."""
        return SandboxSnapshot(procfs.cpu_seconds(self.pid), self.request_count())

    def load_since(self, before: SandboxSnapshot) -> SandboxLoad:
        """What the sandbox spent since ``before``: read before anything costly (``records``)
        is asked of it, or that would be counted too."""
        now = self.snapshot()
        return SandboxLoad(now.cpu_seconds - before.cpu_seconds, now.requests - before.requests)

    def records(self, provider: str | None = None) -> list[dict[str, Any]]:
        """The provider's record of accepted messages (one per recipient)."""
        params = {"provider": provider} if provider else {}
        answer = self.client.get(f"{self.url}/_sandbox/messages", params=params, timeout=120.0)
        answer.raise_for_status()
        records: list[dict[str, Any]] = answer.json()
        return records

    def stop(self) -> None:
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass(frozen=True, slots=True)
class Ceiling:
    """Requests per second the sandbox served to a load generator that does nothing else."""

    requests_per_second: float
    tool: str


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
counter = 0
request = function()
  counter = counter + 1
  local body = "%s&sms_recipients=%%2B336" .. string.format("%%08d", 10000000 + counter)
  return wrk.format(nil, "%s", nil, body)
end
"""


def measure_ceiling(url: str, *, seconds: float = 5.0, connections: int = 16) -> Ceiling:
    """The sandbox's own rate for one-recipient sends, with a trivial client load."""
    wrk = shutil.which("wrk")
    if wrk is not None:
        return _ceiling_wrk(wrk, url, seconds, connections)
    return _ceiling_httpx(url, seconds, connections)


def _ceiling_wrk(wrk: str, url: str, seconds: float, connections: int) -> Ceiling:
    form = octopush_form("", "Bonjour")
    form.pop("sms_recipients")
    body = str(httpx.QueryParams(form))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % (body, SEND_PATH))
    try:
        done = subprocess.run(  # noqa: S603 - wrk from PATH, fixed arguments
            [
                wrk,
                "-t2",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        )
    finally:
        os.unlink(script.name)
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if found is None:
        raise RuntimeError(f"unexpected wrk output: {done.stdout[-300:]}")
    return Ceiling(float(found.group(1)), f"wrk, 2 threads, {connections} connections")


def _httpx_load(url: str, seconds: float, threads: int, offset: int) -> int:
    """Send one-recipient SMS from ``threads`` threads for ``seconds``; how many succeeded.

    The seconds start once every thread has its client: on a loaded machine making them can
    take longer than the load lasts (a quick run once measured 0 requests).
    """
    stop = [0.0]
    ready = threading.Barrier(
        threads, action=lambda: stop.__setitem__(0, time.monotonic() + seconds)
    )
    counts = [0] * threads

    def run(index: int) -> None:
        with httpx.Client(timeout=10.0) as client:
            number = 10_000_000 + offset + index * 1_000_000
            ready.wait()
            while time.monotonic() < stop[0]:
                number += 1
                form = octopush_form(f"+336{number:08d}", "Bonjour")
                if client.post(url + SEND_PATH, data=form).is_success:
                    counts[index] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts)


def _ceiling_httpx(url: str, seconds: float, connections: int) -> Ceiling:
    processes = 2
    threads = max(1, connections // processes)
    started = time.monotonic()
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(_httpx_load, url, seconds, threads, i * 50_000_000)
            for i in range(processes)
        ]
        total = sum(future.result() for future in futures)
    elapsed = max(seconds, time.monotonic() - started - 1.0)
    return Ceiling(total / elapsed, f"httpx, {processes} processes x {threads} threads")
