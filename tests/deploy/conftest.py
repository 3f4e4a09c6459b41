"""The deploy tests' stack: the roles of deploy/compose.yaml as plain processes (postier/stack.py).

Started once for the package: a private Redis (noeviction), the ledger, its own sandbox (the
session's sandbox belongs to tests/integration, whose receipts go to its own webhooks), the
webhook receiver, the two workers (transactional and bulk, each serving /metrics), beat,
and Flower behind basic auth. Logs are JSON so tests can read the records.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from postier.cli import app as postier_app
from postier.config import LogSettings, MetricsSettings, get_settings
from postier.stack import Stack, StackOptions
from tests.integration.conftest import integration_settings

FLOWER_PASSWORD = "flower-test-password"
#: Debian's Chromium, for the browser tests (Flower, the support page)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: set by .ci/run: a missing Chromium fails the browser tests instead of skipping them
REQUIRE_CHROMIUM = bool(os.environ.get("POSTIER_TEST_REQUIRE_CHROMIUM"))


def need_chromium() -> str:
    """Chromium's path; a skip with the reason when it is missing (a failure in CI)."""
    if CHROMIUM is None:
        reason = "no chromium: `make services` installs it (apt-get install chromium)"
        if REQUIRE_CHROMIUM:
            pytest.fail(f"{reason} (POSTIER_TEST_REQUIRE_CHROMIUM is set)")
        pytest.skip(reason)
    return CHROMIUM


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshot-dir",
        default=None,
        help="where the browser tests write flower.png and support.png (make screenshots)",
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="package")
def deploy_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("deploy-stack")
    settings = integration_settings().model_copy(
        update={
            "log": LogSettings(format="json"),
            # ledger counts refreshed within a test, not every 30 s
            "metrics": MetricsSettings(ledger_interval=0.2),
        }
    )
    options = StackOptions(
        workdir=workdir,
        private_redis=True,
        sandbox=True,
        sandbox_delivery_delay=0.3,
        flower=True,
        flower_port=_free_port(),
        flower_password=FLOWER_PASSWORD,
        metrics_port=0,
        worker_concurrency=4,
        settings=settings,
        log_level="info",
    )
    with Stack(options) as running:
        if not running.wait_for_worker(timeout=60):
            raise RuntimeError(f"a worker did not answer; see {workdir}/worker*.log")
        yield running


@pytest.fixture
def screenshot_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """``--screenshot-dir`` (``make screenshots``), else the test's temporary directory."""
    given = request.config.getoption("--screenshot-dir", default=None)
    path = Path(given) if given else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


RunCli = Callable[..., Result]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RunCli]:
    """``postier <args>`` in this process, with exactly ``env`` as its POSTIER_/FLOWER_ vars
    (and no .env file: the working directory is empty)."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith(("POSTIER_", "FLOWER_")):
            monkeypatch.delenv(key)

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(postier_app, list(args), env=env or {})
        finally:
            get_settings.cache_clear()

    yield run
    get_settings.cache_clear()
