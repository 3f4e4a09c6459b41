"""deploy/systemd: units read as INI, commands parsed by the real CLI, and
``systemd-analyze verify`` on copies whose paths point at this virtualenv."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from postier import tasknames
from tests.deploy.commands import assert_both_lanes, parse_command

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
VENV_BIN = "/opt/postier/venv/bin"
#: a templated unit per lane (postier/dispatch/lanes.py): its node name and metrics ports
WORKERS = {
    "postier-worker@.service": ("worker", "954%i"),
    "postier-worker-bulk@.service": ("worker-bulk", "955%i"),
    "postier-worker-callbacks@.service": ("worker-callbacks", "956%i"),
}


def exec_start(name: str, instance: str = "1") -> str:
    """A unit's ExecStart with the instance and host specifiers filled in."""
    command = read_unit(name)["Service"]["ExecStart"]
    return command.replace("%i", instance).replace("%H", "host")


def read_unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text())
    return parser


def test_units_are_the_roles() -> None:
    names = sorted(p.name for p in UNITS.iterdir())
    assert names == [
        "postier-api.service",
        "postier-beat.service",
        "postier-flower.service",
        "postier-migrate.service",
        "postier-webhooks.service",
        "postier-worker-bulk@.service",
        "postier-worker-callbacks@.service",
        "postier-worker@.service",
        "postier.target",
    ]
    paths = {}
    for name in names:
        if not name.endswith(".service"):
            continue
        service = read_unit(name)["Service"]
        assert service["User"] == "postier"
        assert service["EnvironmentFile"] == "/etc/postier/postier.env"
        exec_start = service["ExecStart"]
        assert exec_start.startswith(VENV_BIN + "/")
        paths[name] = parse_command(exec_start.replace("%i", "1").replace("%H", "host")).path
    assert paths == {
        "postier-api.service": ("api",),
        "postier-beat.service": ("scheduler", "beat"),
        "postier-flower.service": ("flower",),
        "postier-migrate.service": ("db", "upgrade"),
        "postier-webhooks.service": ("webhooks",),
        "postier-worker-bulk@.service": ("worker", "worker"),
        "postier-worker-callbacks@.service": ("worker", "worker"),
        "postier-worker@.service": ("worker", "worker"),
    }


def test_a_worker_unit_per_lane_and_every_queue_consumed() -> None:
    workers = {name: parse_command(exec_start(name)) for name in WORKERS}
    assert_both_lanes(workers)
    bulk = workers["postier-worker-bulk@.service"].params
    assert bulk["queues"] == list(tasknames.BULK_QUEUES)
    assert bulk["hostname"] == "worker-bulk1@host"
    assert bulk["concurrency"] == 2, "one process per core (the unit is written for 2 cores)"
    target = (UNITS / "postier.target").read_text()
    assert "postier-worker@1" in target and "postier-worker-bulk@1" in target
    assert "postier-worker-callbacks@1" in target
    callbacks = workers["postier-worker-callbacks@.service"].params
    assert callbacks["queues"] == list(tasknames.CALLBACK_QUEUES)


def test_workers_shut_down_warm_and_start_after_migrations() -> None:
    for name, (node, port) in WORKERS.items():
        service = read_unit(name)["Service"]
        assert service["KillSignal"] == "SIGTERM"
        assert service["KillMode"] == "mixed", "SIGTERM to celery's main process only"
        assert int(service["TimeoutStopSec"]) >= 60
        assert service["Environment"] == f"POSTIER_METRICS__PORT={port}"
        assert f"-n {node}%i@%H" in service["ExecStart"]
        # prefork's metrics files go to a temporary directory: /tmp must be writable
        assert service["PrivateTmp"] == "yes"
    transactional, *others = (dict(read_unit(name)["Service"]) for name in WORKERS)
    different = {"Environment", "ExecStart"}
    for other in others:
        assert {k: v for k, v in other.items() if k not in different} == {
            k: v for k, v in transactional.items() if k not in different
        }
    for name in (
        *WORKERS,
        "postier-beat.service",
        "postier-webhooks.service",
        "postier-api.service",
    ):
        section = read_unit(name)["Unit"]
        assert section["Requires"] == "postier-migrate.service"
        assert "postier-migrate.service" in section["After"]
        assert read_unit(name)["Install"]["WantedBy"] == "postier.target"
    migrate = read_unit("postier-migrate.service")["Service"]
    assert migrate["Type"] == "oneshot" and migrate["RemainAfterExit"] == "yes"


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    """Every directive known, every dependency found: systemd's own check, on copies whose
    ExecStart points at this virtualenv's binaries (verify wants them to exist)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: make services installs it (Debian: systemd)")
    venv_bin = str(Path(sys.executable).parent)
    for unit in UNITS.iterdir():
        text = unit.read_text().replace(VENV_BIN, venv_bin)
        (tmp_path / unit.name).write_text(text)
    for template in WORKERS:
        instance = template.replace("@.", "@1.")
        (tmp_path / instance).write_text((tmp_path / template).read_text())
    targets = [
        str(tmp_path / name)
        for name in (
            "postier-worker@1.service",
            "postier-worker-bulk@1.service",
            "postier-worker-callbacks@1.service",
            "postier-beat.service",
            "postier-flower.service",
            "postier-webhooks.service",
            "postier-api.service",
            "postier-migrate.service",
            "postier.target",
        )
    ]
    result = subprocess.run(
        [analyze, "verify", *targets],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
