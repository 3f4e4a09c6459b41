"""Starting the local stack: Redis, the SQLite ledger, the sandbox, a worker, beat and Flower.

``postier up`` and ``postier demo`` use it, and so do the integration tests, so the stack a
newcomer runs is the one the tests exercise. Each role is started the ordinary way
(``celery -A worker worker``, ``celery -A scheduler beat``, ``celery -A worker flower``) as
a child process with its settings in the environment.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from postier import tasknames
from postier.config import Settings, get_settings
from postier.ledger.db import make_engine, upgrade
from postier.redis_server import RedisHandle, ensure_redis, start_private_redis
from postier.sandbox.server import SandboxServer


@dataclass
class StackOptions:
    """What to start, and where the stack keeps its files."""

    workdir: Path = Path("var")
    database_url: str | None = None
    redis_url: str | None = None
    #: start a private Redis even when one answers at ``redis_url``
    private_redis: bool = False
    #: start the sandbox and point every provider at it (False: real providers from settings)
    sandbox: bool = True
    #: use a sandbox already running at this URL instead of starting one
    sandbox_url: str | None = None
    sandbox_port: int = 0
    sandbox_delivery_delay: float = 1.0
    beat: bool = True
    flower: bool = True
    flower_port: int = 5555
    #: the webhook receiver (Octopush receipts); 0 picks a free port
    webhooks: bool = True
    webhooks_port: int = 0
    worker_pool: str = "threads"
    worker_concurrency: int = 8
    #: the settings every role runs with (default: the environment's); the stack fills in
    #: the Redis URL, the ledger URL and the sandbox it starts
    settings: Settings | None = None
    log_level: str = "warning"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Stack:
    """The running processes of a local Postier, stopped together."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.redis: RedisHandle | None = None
        self.sandbox: SandboxServer | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.workdir = options.workdir.resolve()
        self.database_url = options.database_url or f"sqlite:///{self.workdir / 'postier.db'}"
        self.redis_url = ""
        self.webhooks_url = ""

    # -- settings ------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """The settings of every role of this stack (also what a producer here should use)."""
        base = self.options.settings or get_settings()
        settings = base.model_copy(
            update={"redis_url": self.redis_url, "database_url": self.database_url}
        )
        sandbox_url = self.sandbox.url if self.sandbox is not None else self.options.sandbox_url
        if sandbox_url:
            settings = settings.model_copy(update={"sandbox_url": sandbox_url})
            settings = settings.pointed_at_sandbox(sandbox_url)
        return settings

    def environment(self) -> dict[str, str]:
        """The POSTIER_* variables the roles are started with."""
        return self.settings.to_env()

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.environment())
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    # -- start ---------------------------------------------------------------------------
    def start(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        opts = self.options
        if opts.private_redis:
            self.redis = start_private_redis(data_dir=self.workdir / "redis")
        else:
            self.redis = ensure_redis(opts.redis_url, data_dir=self.workdir / "redis")
        self.redis_url = self.redis.url
        if opts.sandbox and opts.sandbox_url is None:
            from postier.sandbox.app import Sandbox

            self.sandbox = SandboxServer(
                Sandbox(delivery_delay=opts.sandbox_delivery_delay), port=opts.sandbox_port
            ).start()
        upgrade(make_engine(self.database_url))
        if opts.webhooks:
            self.start_webhooks()
        self.start_worker()
        if opts.beat:
            self.start_beat()
        if opts.flower:
            self.start_flower()
        return self

    def _spawn(self, name: str, args: list[str], module: str = "celery") -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", module, *args],
            env=self._child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        opts = self.options
        return self._spawn(
            name,
            [
                "-A",
                "worker",
                "worker",
                "-Q",
                ",".join(tasknames.ALL_QUEUES),
                "--pool",
                opts.worker_pool,
                "--concurrency",
                str(opts.worker_concurrency),
                "--loglevel",
                opts.log_level,
                "-n",
                f"{name}@%h",
                "-E",
            ],
        )

    def start_webhooks(self) -> subprocess.Popen[bytes]:
        """The webhook receiver, and the sandbox's Octopush callbacks pointed at it."""
        port = self.options.webhooks_port or _free_port()
        self.webhooks_url = f"http://127.0.0.1:{port}"
        process = self._spawn(
            "webhooks",
            [
                "postier.webhooks:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                self.options.log_level,
                "--no-access-log",
            ],
            module="uvicorn",
        )
        deadline = time.monotonic() + 30
        while not _port_open(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the webhook receiver did not start; see webhooks.log")
            time.sleep(0.05)
        sandbox_url = self.sandbox.url if self.sandbox is not None else self.options.sandbox_url
        if sandbox_url:
            from postier.webhooks import INBOUND_PATH, RECEIPTS_PATH

            httpx.put(
                f"{sandbox_url}/_sandbox/octopush/callbacks",
                json={
                    "receipts_url": self.webhooks_url + RECEIPTS_PATH,
                    "inbound_url": self.webhooks_url + INBOUND_PATH,
                },
                timeout=5,
            ).raise_for_status()
        return process

    def start_beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        return self._spawn(
            name,
            [
                "-A",
                "scheduler",
                "beat",
                "--loglevel",
                self.options.log_level,
                "-s",
                str(self.workdir / f"{name}-schedule"),
            ],
        )

    def start_flower(self) -> subprocess.Popen[bytes]:
        return self._spawn(
            "flower",
            [
                "-A",
                "worker",
                "flower",
                f"--port={self.options.flower_port}",
                "--address=127.0.0.1",
                "--purge_offline_workers=60",
            ],
        )

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.options.flower_port}"

    def wait_for_worker(self, timeout: float = 30.0) -> bool:
        """True once a worker answers a ping over the broker."""
        from postier.celery_app import create_celery_app

        app = create_celery_app(self.settings, main="probe")
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if app.control.ping(timeout=0.5):
                    return True
                for name, process in self.processes.items():
                    if process.poll() is not None:
                        raise RuntimeError(f"{name} exited with {process.returncode}; see its log")
            return False
        finally:
            app.close()

    # -- stop ----------------------------------------------------------------------------
    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a role's whole process group (its pool children too)."""
        process = self.processes.get(name)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, sig)
            process.wait(timeout=30)

    def stop(self) -> None:
        for process in list(self.processes.values()):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.processes.clear()
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
