"""Checking the commands and variables of the deploy files against the real CLI and settings.

Compose, Kubernetes and systemd all start the same roles; each test reads its file and hands
every command here, where it is parsed by the very click commands that would run it
(``postier …`` by Typer, ``celery -A … worker|beat|flower`` by Celery), and every
``POSTIER_*`` variable is resolved against the settings model.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import typer
from pydantic import BaseModel

from postier import tasknames
from postier.cli import app as postier_app
from postier.config import Settings

#: the queues of each lane's worker (``postier.dispatch.lanes``: a worker per lane), by the
#: role name its node name starts with (``-n worker@%h``, ``-n worker-bulk@%h``)
TRANSACTIONAL_WORKER = "worker"
BULK_WORKER = "worker-bulk"
#: the status callbacks' worker (``postier.dispatch.callbacks``)
CALLBACK_WORKER = "worker-callbacks"
LANE_QUEUES = {
    TRANSACTIONAL_WORKER: set(tasknames.TRANSACTIONAL_QUEUES),
    BULK_WORKER: set(tasknames.BULK_QUEUES),
    CALLBACK_WORKER: set(tasknames.CALLBACK_QUEUES),
}


@dataclass(frozen=True)
class ParsedCommand:
    """A command that parsed: which program, its sub-command path and its parameters."""

    program: str
    path: tuple[str, ...]
    params: Mapping[str, Any]


def parse_postier(args: Sequence[str]) -> ParsedCommand:
    """Parse ``postier <args>`` with the real Typer app (unknown commands/options raise)."""
    command: Any = typer.main.get_command(postier_app)
    rest = list(args)
    path: list[str] = []
    while hasattr(command, "commands"):
        assert rest, f"postier {' '.join(args)}: no sub-command"
        name = rest.pop(0)
        assert name in command.commands, f"postier has no command {name!r}"
        path.append(name)
        command = command.commands[name]
    context = command.make_context(" ".join(["postier", *path]), rest)
    return ParsedCommand("postier", tuple(path), dict(context.params))


def parse_celery(args: Sequence[str]) -> ParsedCommand:
    """Parse ``celery -A <app> <worker|beat|flower> …`` with Celery's own click commands."""
    from celery.bin.base import CLIContext

    rest = list(args)
    assert rest[:1] == ["-A"], f"celery {' '.join(args)}: the app must come first (-A)"
    module = rest[1]
    role = rest[2]
    options = rest[3:]
    assert module in ("worker", "scheduler"), f"unknown Celery app module {module!r}"
    celery_app = __import__(module).app
    if role == "flower":
        assert module == "worker" and not options, "Flower takes its options from FLOWER_* vars"
        return ParsedCommand("celery", (module, role), {})
    if role == "worker":
        from celery.bin.worker import worker as command
    elif role == "beat":
        from celery.bin.beat import beat as command
    else:
        raise AssertionError(f"unknown Celery role {role!r}")
    obj = CLIContext(app=celery_app, no_color=True, workdir=None, quiet=True)
    context = command.make_context(role, options, obj=obj)
    params = dict(context.params)
    if role == "worker":
        assert module == "worker", "the worker role is celery -A worker worker"
        role_name = worker_role(params["hostname"])
        queues = set(params["queues"] or ())
        assert queues == LANE_QUEUES[role_name], f"{role_name}: queues {params['queues']}"
    else:
        assert module == "scheduler", "beat is celery -A scheduler beat"
    return ParsedCommand("celery", (module, role), params)


def worker_role(hostname: str | None) -> str:
    """The role of a worker by its node name: ``worker-bulk…@…`` is the bulk worker,
    ``worker…@…`` (``worker@%h``, systemd's ``worker1@%H``) the transactional one."""
    assert hostname, "a worker names its node (-n <role>@%h): probes and Flower use it"
    name = hostname.partition("@")[0]
    if name.startswith(BULK_WORKER):
        return BULK_WORKER
    if name.startswith(CALLBACK_WORKER):
        return CALLBACK_WORKER
    assert name.startswith(TRANSACTIONAL_WORKER), f"unknown worker role in -n {hostname}"
    return TRANSACTIONAL_WORKER


def assert_both_lanes(workers: Mapping[str, ParsedCommand]) -> None:
    """A deployment form's worker commands (by service, Deployment or unit): one transactional
    worker and one bulk worker, each with its pool, and every queue consumed by some worker."""
    roles: dict[str, list[str]] = {}
    consumed: set[str] = set()
    for name, parsed in workers.items():
        assert parsed.path == ("worker", "worker"), name
        role = worker_role(parsed.params["hostname"])
        roles.setdefault(role, []).append(name)
        consumed |= set(parsed.params["queues"] or ())
        pool = parsed.params["pool"].__module__
        wanted = "prefork" if role == BULK_WORKER else "thread"
        assert pool == f"celery.concurrency.{wanted}", f"{name}: pool {pool}"
        assert parsed.params["task_events"] is True, f"{name}: -E (Flower, events)"
    assert {role: len(names) for role, names in roles.items()} == {
        TRANSACTIONAL_WORKER: 1,
        BULK_WORKER: 1,
        CALLBACK_WORKER: 1,
    }, f"one worker per lane and one for callbacks, got {roles}"
    assert consumed == set(tasknames.ALL_QUEUES), f"queues nobody consumes: {consumed}"


def parse_command(argv: Sequence[str] | str) -> ParsedCommand:
    """Parse a role's command line; ``argv`` may be a string (systemd's ExecStart)."""
    args = shlex.split(argv) if isinstance(argv, str) else list(argv)
    program = args[0].rsplit("/", 1)[-1]
    if program == "postier":
        return parse_postier(args[1:])
    if program == "celery":
        return parse_celery(args[1:])
    if program in ("python", "python3") and args[1] == "-c":
        compile(args[2], "<command>", "exec")
        return ParsedCommand("python", ("-c",), {"code": args[2]})
    if program == "sh" and args[1] == "-c":
        inner = shlex.split(args[2])
        return parse_command(inner)
    raise AssertionError(f"unexpected program {program!r} in {args}")


def setting_exists(name: str) -> bool:
    """Whether ``POSTIER_A__B`` names a field of the settings model (maps allow any key)."""
    if not name.startswith("POSTIER_"):
        return False
    model: Any = Settings
    parts = name[len("POSTIER_") :].lower().split("__")
    for index, part in enumerate(parts):
        fields = model.model_fields
        if part not in fields:
            return False
        annotation = fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        origin = getattr(annotation, "__origin__", None)
        if origin is dict:
            # rate_limits: POSTIER_RATE_LIMITS__<PROVIDER>__<FIELD>
            value_type = annotation.__args__[1]
            rest = parts[index + 1 :]
            if not rest:
                return True
            if isinstance(value_type, type) and issubclass(value_type, BaseModel):
                return len(rest) == 2 and rest[1] in value_type.model_fields
            return len(rest) == 1
        return index == len(parts) - 1
    return False


def settings_from(env: Mapping[str, str]) -> Settings:
    """Settings validated from ``env`` alone (no .env file, no process environment)."""
    nested: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith("POSTIER_"):
            continue
        parts = key[len("POSTIER_") :].lower().split("__")
        target = nested
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return Settings.model_validate(nested)
