"""Starting the local stack: Redis, the SQLite ledger, the sandbox, a worker, beat and Flower.

``postier up`` and ``postier demo`` use it, and so do the integration tests, so the stack a
newcomer runs is the one the tests exercise. Each role is started the ordinary way
(``celery -A worker worker``, ``celery -A scheduler beat``, ``celery -A worker flower``) as
a child process with its settings in the environment.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from postier import tasknames
from postier.config import FlowerSettings, Settings, get_settings
from postier.flower import FLOWER_ARGS, flower_environment, uses_oauth, with_generated_password
from postier.ledger.db import make_engine, upgrade
from postier.redis_server import RedisHandle, ensure_redis, start_private_redis
from postier.sandbox.server import SandboxServer
from postier.stack_record import StackRecord

#: the role names of the two workers (``postier.dispatch.lanes``: a worker per lane)
TRANSACTIONAL_WORKER = "worker"
BULK_WORKER = "worker-bulk"
#: the worker of status callbacks (``postier.dispatch.callbacks``): a receiver that hangs holds
#: only its threads
CALLBACK_WORKER = "worker-callbacks"
#: bulk processes per core: one, with ``dispatch.max_in_flight`` (48) requests in flight each.
#: Since provider requests cost half the CPU (``providers.connections``), two processes of 48
#: drained as fast as four of 24 on 2 cores, at 0 ms and at 80 ms provider latency, for 175
#: instead of 248 MiB (each child dirties about 30 MiB of the shared heap): README, "Benchmarks"
BULK_PROCESSES_PER_CPU = 1


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
    #: Flower's basic-auth password (None: settings' ``flower.password``, else a random one)
    flower_password: str | None = None
    #: the first worker's /metrics port (None: settings' ``metrics.port``; 0: a free port);
    #: every other worker gets a free port
    metrics_port: int | None = None
    #: the webhook receiver (Octopush receipts); 0 picks a free port
    webhooks: bool = True
    webhooks_port: int = 0
    #: the HTTP API (``postier api``); 0 picks a free port
    api: bool = True
    api_port: int = 0
    #: the transactional worker (codes, notifications, WhatsApp; beat's passes, hooks)
    worker_pool: str = "threads"
    worker_concurrency: int = 8
    #: a worker per lane (``postier.dispatch.lanes``); False: one worker on every queue
    lanes: bool = True
    #: the bulk worker: prefork, so chunks run on every core (each sends its requests
    #: concurrently on threads of its own); concurrency 0: the number of CPUs
    bulk_worker_pool: str = "prefork"
    bulk_worker_concurrency: int = 0
    #: the callbacks worker: threads, as each attempt mostly waits on the application
    callback_worker_concurrency: int = 8
    #: the settings every role runs with (default: the environment's); the stack fills in
    #: the Redis URL, the ledger URL and the sandbox it starts
    settings: Settings | None = None
    log_level: str = "warning"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _absolute_sqlite(url: str) -> str:
    """A SQLite URL with an absolute path, so it means the same file from any directory."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return url
    if Path(database).is_absolute():
        return url
    return parsed.set(database=str(Path(database).resolve())).render_as_string(hide_password=False)


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
        self.api_url = ""
        #: each worker's /metrics port, by role name
        self.metrics_ports: dict[str, int] = {}
        self._flower_settings: FlowerSettings | None = None
        self._webhooks_secret = secrets.token_urlsafe(24)

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
        if not settings.webhooks.secret.get_secret_value():
            # a local stack gets a callback secret of its own, like Flower's password
            settings = settings.model_copy(
                update={
                    "webhooks": settings.webhooks.model_copy(
                        update={"secret": SecretStr(self._webhooks_secret)}
                    )
                }
            )
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
        if opts.api:
            self.start_api()
        if opts.lanes:
            self.start_worker(TRANSACTIONAL_WORKER)
            self.start_worker(BULK_WORKER)
            self.start_worker(CALLBACK_WORKER)
        else:
            self.start_worker(TRANSACTIONAL_WORKER, queues=tasknames.ALL_QUEUES)
        if opts.beat:
            self.start_beat()
        if opts.flower:
            self.start_flower()
        return self

    def _spawn(
        self,
        name: str,
        args: list[str],
        module: str = "celery",
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", module, *args],
            env={**self._child_env(), **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def _metrics_port(self, name: str) -> int:
        wanted = self.options.metrics_port
        if wanted is None:
            wanted = self.settings.metrics.port
        if wanted == 0 or any(p == wanted for p in self.metrics_ports.values()):
            return _free_port()
        return wanted

    def start_worker(
        self, name: str = TRANSACTIONAL_WORKER, *, queues: Sequence[str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start the worker ``name``: ``worker`` takes the transactional lane, beat's passes
        and the hooks; ``worker-bulk`` the bulk lane; ``worker-callbacks`` the status callbacks
        (``queues`` overrides)."""
        opts = self.options
        bulk = name.startswith(BULK_WORKER)
        callbacks = name.startswith(CALLBACK_WORKER)
        if queues is None:
            queues = (
                tasknames.BULK_QUEUES
                if bulk
                else tasknames.CALLBACK_QUEUES
                if callbacks
                else tasknames.TRANSACTIONAL_QUEUES
            )
        pool = opts.bulk_worker_pool if bulk else opts.worker_pool
        concurrency = (
            opts.bulk_worker_concurrency or BULK_PROCESSES_PER_CPU * (os.cpu_count() or 1)
            if bulk
            else opts.callback_worker_concurrency
            if callbacks
            else opts.worker_concurrency
        )
        if callbacks:
            pool = "threads"
        port = self._metrics_port(name)
        self.metrics_ports[name] = port
        return self._spawn(
            name,
            [
                "-A",
                "worker",
                "worker",
                "-Q",
                ",".join(queues),
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--loglevel",
                opts.log_level,
                "-n",
                f"{name}@%h",
                "-E",
            ],
            extra_env={"POSTIER_METRICS__PORT": str(port)},
        )

    def metrics_url(self, name: str = "worker") -> str:
        """The /metrics URL of the worker ``name``."""
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    def start_webhooks(self) -> subprocess.Popen[bytes]:
        """The webhook receiver, and the sandbox's Octopush callbacks pointed at it."""
        port = self.options.webhooks_port or _free_port()
        self.webhooks_url = f"http://127.0.0.1:{port}"
        # `postier webhooks`, as deploy/compose.yaml runs it (masked, structured logs)
        process = self._spawn(
            "webhooks",
            ["webhooks", "--host", "127.0.0.1", "--port", str(port)],
            module="postier.cli",
        )
        deadline = time.monotonic() + 30
        while not _port_open(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the webhook receiver did not start; see webhooks.log")
            time.sleep(0.05)
        sandbox_url = self.sandbox.url if self.sandbox is not None else self.options.sandbox_url
        if sandbox_url:
            self.point_sandbox_callbacks(sandbox_url)
        return process

    def start_api(self) -> subprocess.Popen[bytes]:
        """The HTTP API (``postier api``), answering its readiness probe before this returns."""
        port = self.options.api_port or _free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        process = self._spawn(
            "api", ["api", "--host", "127.0.0.1", "--port", str(port)], module="postier.cli"
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.api_url}/v1/health", timeout=1).status_code == 200:
                    return process
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start; see api.log")
            time.sleep(0.05)

    def point_sandbox_callbacks(self, sandbox_url: str) -> None:
        """The sandbox at ``sandbox_url`` pushes Octopush receipts and inbound SMS to this
        stack's webhook receiver, at its secret URLs."""
        from postier.webhooks import inbound_path, receipts_path

        secret = self.settings.webhooks.secret.get_secret_value()
        httpx.put(
            f"{sandbox_url}/_sandbox/octopush/callbacks",
            json={
                "receipts_url": self.webhooks_url + receipts_path(secret),
                "inbound_url": self.webhooks_url + inbound_path(secret),
            },
            timeout=5,
        ).raise_for_status()

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

    @property
    def flower_settings(self) -> FlowerSettings:
        """Flower's settings in this stack: on 127.0.0.1, always behind authentication."""
        if self._flower_settings is None:
            flower = self.settings.flower.model_copy(
                update={"host": "127.0.0.1", "port": self.options.flower_port}
            )
            if self.options.flower_password is not None:
                flower = flower.model_copy(
                    update={"password": SecretStr(self.options.flower_password)}
                )
            if flower.persistent:
                flower = flower.model_copy(update={"db": str(self.workdir / "flower.db")})
            self._flower_settings = with_generated_password(flower)
        return self._flower_settings

    @property
    def flower_credentials(self) -> tuple[str, str] | None:
        """Flower's basic-auth user and password (None when OAuth is configured instead)."""
        flower = self.flower_settings
        if uses_oauth(flower):
            return None
        return flower.user, flower.password.get_secret_value()

    def start_flower(self) -> subprocess.Popen[bytes]:
        """``celery -A worker flower`` with its options (and credentials) in the environment."""
        return self._spawn(
            "flower", list(FLOWER_ARGS), extra_env=flower_environment(self.flower_settings)
        )

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.options.flower_port}"

    def wait_for_worker(self, timeout: float = 30.0) -> bool:
        """True once every worker started answers a ping over the broker."""
        from postier.celery_app import create_celery_app

        app = create_celery_app(self.settings, main="probe")
        deadline = time.monotonic() + timeout
        wanted = {name for name in self.processes if name.startswith(TRANSACTIONAL_WORKER)}
        try:
            while time.monotonic() < deadline:
                answered = {
                    node.partition("@")[0]
                    for reply in app.control.ping(timeout=0.5)
                    for node in reply
                }
                if wanted <= answered:
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

    def record(self, command: str) -> StackRecord:
        """What ``postier up`` writes for the commands run beside this stack (its addresses)."""
        return StackRecord(
            pid=os.getpid(),
            command=command,
            workdir=str(self.workdir),
            redis_url=self.redis_url,
            database_url=_absolute_sqlite(self.database_url),
            sandbox_url=self.settings.sandbox_url,
            webhooks_url=self.webhooks_url or None,
            api_url=self.api_url or None,
            flower_url=self.flower_url if "flower" in self.processes else None,
            metrics_url=self.metrics_url() if "worker" in self.metrics_ports else None,
        )

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
