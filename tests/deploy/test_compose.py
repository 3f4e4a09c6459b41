"""deploy/compose.yaml and deploy/Dockerfile: structure, commands and variables.

No Docker engine runs here and this docker CLI has no compose plugin, so the file is checked
by reading it: every service's command is parsed by the real CLI (Typer for ``postier``, Celery's
click commands for ``celery``), every ``POSTIER_*`` variable must name a setting and the
values, interpolated with their defaults, must validate. Where ``docker compose`` exists,
``docker compose config`` validates it too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from postier import tasknames
from postier.flower import FLOWER_ARGS
from tests.deploy.commands import (
    BULK_WORKER,
    CALLBACK_WORKER,
    TRANSACTIONAL_WORKER,
    ParsedCommand,
    assert_both_lanes,
    parse_command,
    setting_exists,
    settings_from,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
#: what a container listens on
ANY_ADDRESS = "0.0.0.0"  # noqa: S104
#: a worker per lane (postier/dispatch/lanes.py)
WORKERS = {TRANSACTIONAL_WORKER, BULK_WORKER, CALLBACK_WORKER}
IMAGE_SERVICES = {
    "migrate",
    "beat",
    "flower",
    "webhooks",
    "api",
    "sandbox",
    "sandbox-callbacks",
} | WORKERS
#: the "monitoring" profile (deploy/monitoring, checked in test_monitoring.py)
MONITORING = {"prometheus", "grafana"}

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<rest>.*))?\}")


class RequiredVariable(AssertionError):
    """A ``${VAR:?message}`` without a value: ``docker compose`` would refuse to start."""


#: what deploy/.env must set (no default passwords); the tests' values
REQUIRED = {
    "POSTGRES_PASSWORD": "pg-pass",
    "REDIS_PASSWORD": "redis-pass",
    "POSTIER_WEBHOOKS__SECRET": "a-callback-secret-for-tests",
}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` (nested) and ``$$``, from ``env``."""
    out: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith("$$", index):
            out.append("$")
            index += 2
        elif text.startswith("${", index):
            depth, end = 0, index
            while end < len(text):
                if text.startswith("${", end):
                    depth += 1
                    end += 2
                    continue
                if text[end] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                end += 1
            match = _VARIABLE.fullmatch(text[index : end + 1])
            assert match, f"bad interpolation {text[index : end + 1]!r}"
            name, op, rest = match["name"], match["op"], match["rest"] or ""
            value = env.get(name)
            if op in (":?", "?"):
                if not value:
                    raise RequiredVariable(f"{name}: {rest}")
                out.append(value)
            else:
                out.append(value if value else interpolate(rest, env) if op else "")
            index = end + 1
        else:
            out.append(text[index])
            index += 1
    return "".join(out)


def resolved(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [resolved(v, env) for v in value]
    if isinstance(value, dict):
        return {k: resolved(v, env) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    found: dict[str, Any] = resolved(data, REQUIRED)
    return found


def test_services_are_the_roles_and_their_stores(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "postgres"} | IMAGE_SERVICES | MONITORING
    for name in IMAGE_SERVICES:
        service = services[name]
        assert service["image"] == "postier:local", name
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["env_file"] == [{"path": ".env", "required": False}]
    profiled = {name for name, s in services.items() if s.get("profiles")}
    assert profiled == {"sandbox", "sandbox-callbacks"} | MONITORING
    assert all(services[n]["profiles"] == ["sandbox"] for n in profiled - MONITORING)
    assert all(services[n]["profiles"] == ["monitoring"] for n in MONITORING)
    # `docker compose config` needs no engine: where a client with compose exists it must
    # accept the file (this machine's docker CLI has no compose plugin: the parsing here is it)
    cli = _compose_cli() or []
    for profile in ([], ["--profile", "sandbox"], ["--profile", "monitoring"]) if cli else ():
        result = subprocess.run(
            [*cli, "-f", str(COMPOSE), *profile, "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COMPOSE_PROJECT_NAME": "postier-test"},
        )
        assert result.returncode == 0, result.stderr


def test_redis_never_evicts_and_keeps_an_append_only_file(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--maxmemory-policy"] == "noeviction"
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"


def test_every_command_parses_with_the_real_cli(compose: dict[str, Any]) -> None:
    services = compose["services"]
    parsed = {name: parse_command(services[name]["command"]) for name in IMAGE_SERVICES}
    assert parsed["migrate"].path == ("db", "upgrade")
    assert parsed["worker"].path == ("worker", "worker")
    assert parsed["worker"].params["pool"].__module__ == "celery.concurrency.thread"
    assert parsed["worker"].params["task_events"] is True
    assert parsed["worker-bulk"].path == ("worker", "worker")
    assert parsed["worker-bulk"].params["pool"].__module__ == "celery.concurrency.prefork"
    assert parsed["worker-bulk"].params["queues"] == list(tasknames.BULK_QUEUES)
    assert parsed["beat"].path == ("scheduler", "beat")
    assert parsed["beat"].params["schedule"] == "/var/lib/postier/beat-schedule"
    assert parsed["flower"].path == ("flower",)
    assert parsed["webhooks"].path == ("webhooks",)
    assert parsed["webhooks"].params == {"host": ANY_ADDRESS, "port": 8026}
    assert parsed["api"].path == ("api",)
    assert parsed["api"].params == {"host": ANY_ADDRESS, "port": 8027}
    api_probe = services["api"]["healthcheck"]["test"]
    assert api_probe[0] == "CMD" and parse_command(api_probe[1:]).path == ("health",)
    assert parse_command(api_probe[1:]).params["api_at"] == "http://127.0.0.1:8027"
    assert parsed["sandbox"].path == ("sandbox",)
    assert parsed["sandbox"].params == {"host": ANY_ADDRESS, "port": 8025}
    assert parsed["sandbox-callbacks"].program == "python"
    for name in WORKERS:
        probe = services[name]["healthcheck"]["test"]
        assert probe[0] == "CMD-SHELL"
        assert parse_command(probe[1]).params["worker_name"] == f"{name}@$HOSTNAME"
    beat_probe = services["beat"]["healthcheck"]["test"]
    assert beat_probe[0] == "CMD" and parse_command(beat_probe[1:]).path == ("health",)


def test_every_queue_has_its_lane_worker(compose: dict[str, Any]) -> None:
    """One transactional and one bulk worker, and no queue left without a consumer."""
    services = compose["services"]
    workers = {
        name: parse_command(service["command"])
        for name, service in services.items()
        if service.get("command", [])[:4] == ["celery", "-A", "worker", "worker"]
    }
    assert set(workers) == WORKERS
    assert_both_lanes(workers)
    bulk = services["worker-bulk"]["command"]
    assert bulk[bulk.index("--concurrency") + 1] == "2", "one process per core, for 2 cores"
    header = COMPOSE.read_text().split("\nname:", 1)[0]
    assert "--scale worker-bulk=" in header and "--scale worker=" in header


def stack_worker_commands() -> dict[str, ParsedCommand]:
    """The worker commands ``postier up`` runs (``Stack.start_worker``), parsed, unspawned."""
    from postier.stack import BULK_WORKER as STACK_BULK
    from postier.stack import CALLBACK_WORKER as STACK_CALLBACKS
    from postier.stack import TRANSACTIONAL_WORKER as STACK_TRANSACTIONAL
    from postier.stack import Stack, StackOptions

    assert (STACK_TRANSACTIONAL, STACK_BULK, STACK_CALLBACKS) == (
        TRANSACTIONAL_WORKER,
        BULK_WORKER,
        CALLBACK_WORKER,
    )
    stack = Stack(StackOptions(metrics_port=0))
    started: dict[str, list[str]] = {}

    def spawn(name: str, args: list[str], **_: Any) -> Any:
        started[name] = args
        return None

    stack._spawn = spawn  # type: ignore[method-assign,assignment]
    for name in (STACK_TRANSACTIONAL, STACK_BULK, STACK_CALLBACKS):
        stack.start_worker(name)
    return {name: parse_command(["celery", *args]) for name, args in started.items()}


def test_the_commands_are_the_ones_the_stack_runs(compose: dict[str, Any]) -> None:
    """``postier up`` and the tests start the same roles (postier/stack.py)."""
    from postier.stack import BULK_PROCESSES_PER_CPU, StackOptions

    options = StackOptions()
    started = stack_worker_commands()
    assert set(started) == WORKERS
    assert_both_lanes(started)
    for name in WORKERS:
        deployed = parse_command(compose["services"][name]["command"]).params
        ours = started[name].params
        assert deployed["queues"] == ours["queues"], name
        assert deployed["pool"] is ours["pool"], name
        assert deployed["hostname"] == ours["hostname"], name
    pool = compose["services"]["worker"]["command"]
    assert options.worker_pool == pool[pool.index("--pool") + 1]
    bulk = compose["services"]["worker-bulk"]["command"]
    assert options.bulk_worker_pool == bulk[bulk.index("--pool") + 1]
    # the bulk worker: BULK_PROCESSES_PER_CPU processes per core (compose is for 2 cores)
    assert options.bulk_worker_concurrency == 0
    assert started[BULK_WORKER].params["concurrency"] == BULK_PROCESSES_PER_CPU * (
        os.cpu_count() or 1
    )
    assert parse_command(bulk).params["concurrency"] == 2 * BULK_PROCESSES_PER_CPU
    # `postier flower` execs `celery -A worker flower`, as the stack starts it
    assert FLOWER_ARGS == ("-A", "worker", "flower")
    callbacks = compose["services"]["sandbox-callbacks"]["command"][2]
    from postier.webhooks import inbound_path, receipts_path

    secret = REQUIRED["POSTIER_WEBHOOKS__SECRET"]
    assert receipts_path(secret) in callbacks and inbound_path(secret) in callbacks


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_no_default_password_compose_refuses_without_each(missing: str) -> None:
    data = yaml.safe_load(COMPOSE.read_text())
    env = {name: value for name, value in REQUIRED.items() if name != missing}
    with pytest.raises(RequiredVariable, match=missing):
        resolved(data, env)


def test_redis_asks_for_its_password(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == REQUIRED["REDIS_PASSWORD"]
    assert redis["environment"]["REDISCLI_AUTH"] == REQUIRED["REDIS_PASSWORD"]
    text = COMPOSE.read_text()
    assert ":-postier}" not in text and "PASSWORD:-" not in text


def test_every_variable_is_a_setting_and_validates(compose: dict[str, Any]) -> None:
    for name in IMAGE_SERVICES:
        env = compose["services"][name].get("environment", {})
        unknown = [key for key in env if not setting_exists(key)]
        assert not unknown, f"{name}: {unknown} are not settings"
        settings = settings_from(env)
        assert settings.redis_url == "redis://:redis-pass@redis:6379/0"
        assert settings.database_url == "postgresql+psycopg://postier:pg-pass@postgres:5432/postier"
        assert settings.log.format == "json"
    worker = settings_from(compose["services"]["worker"]["environment"])
    assert (worker.metrics.host, worker.metrics.port) == (ANY_ADDRESS, 9540)
    assert "9540" in compose["services"]["worker"]["expose"]
    bulk = settings_from(compose["services"]["worker-bulk"]["environment"])
    assert (bulk.metrics.host, bulk.metrics.port) == (ANY_ADDRESS, 9541)
    assert compose["services"]["worker-bulk"]["expose"] == ["9541"]
    assert bulk.metrics.multiprocess_dir is None, "a temporary directory (writable /tmp)"
    flower = settings_from(compose["services"]["flower"]["environment"])
    assert (flower.flower.host, flower.flower.port, flower.flower.persistent) == (
        ANY_ADDRESS,
        5555,
        True,
    )
    assert compose["services"]["flower"]["ports"] == ["127.0.0.1:5555:5555"]


def test_interpolation_takes_the_env_file_values() -> None:
    data = yaml.safe_load(COMPOSE.read_text())
    env = {**REQUIRED, "POSTGRES_PASSWORD": "s3cret", "POSTIER_LOG__FORMAT": "text"}
    worker = resolved(data, env)["services"]["worker"]["environment"]
    assert worker["POSTIER_DATABASE_URL"].endswith("postier:s3cret@postgres:5432/postier")
    assert worker["POSTIER_LOG__FORMAT"] == "text"


def test_roles_start_after_migrations_and_workers_shut_down_warm(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("worker", "worker-bulk", "beat", "webhooks", "api"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["worker-bulk"]["depends_on"] == services["worker"]["depends_on"]
    for name in WORKERS:
        worker = services[name]
        assert worker["stop_signal"] == "SIGTERM", name
        assert int(worker["stop_grace_period"].rstrip("s")) >= 60, name
        assert "deploy" not in worker, f"{name}: scaled with --scale, not pinned to replicas"
    assert "deploy" not in services["beat"], "one beat: never replicated"


def test_the_dockerfile_builds_from_files_that_exist() -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [
        line.split()[1:-1] for line in lines if line.startswith("COPY ") and "--from" not in line
    ]
    for sources in copies:
        for source in sources:
            assert (ROOT / source).exists(), source
    packaged = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    copied = {source for sources in copies for source in sources}
    assert {"postier", "producers", "worker", "scheduler"} <= packaged & copied
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert 'CMD ["postier", "--help"]' in lines
    assert "STOPSIGNAL SIGTERM" in lines
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "**" in ignore and "!postier/**" in ignore


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30
    )
    return [docker, "compose"] if probe.returncode == 0 else None
