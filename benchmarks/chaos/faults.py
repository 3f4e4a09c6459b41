"""Faults the chaos scenarios inject into the services Postier depends on.

- ``restart_redis``: the stack's private Redis (``postier.redis_server``) stopped and started
  again on the same port. It keeps no data (``--save ""``, no AOF), so queued tasks are lost,
  as after a crash of a Redis without persistence: the ledger must make up for it.
- ``PrivateCluster``: a PostgreSQL cluster of our own (``initdb`` into a temporary directory,
  its own port on 127.0.0.1, run as the ``postgres`` user when we are root), so restarting it
  (``pg_ctl restart -m fast``: every connection is cut) touches no other database. Where the
  server binaries are missing, ``terminate_connections`` on a fresh database of the local
  server is the fallback (``benchmarks.throughput.postgres``): connections cut, server left running.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from postier.redis_server import RedisHandle, redis_answers

# -- Redis -----------------------------------------------------------------------------------


def restart_redis(handle: RedisHandle, *, downtime: float = 1.0, timeout: float = 10.0) -> None:
    """Stop the private Redis of ``handle`` and start it again on the same port and arguments."""
    process = handle.process
    if process is None:
        raise RuntimeError("only a Redis this process started can be restarted")
    args = list(process.args) if isinstance(process.args, list | tuple) else None
    if args is None:
        raise RuntimeError("unexpected Redis command line")
    process.terminate()
    process.wait(timeout=10)
    time.sleep(downtime)
    handle.process = subprocess.Popen(  # noqa: S603 - the same redis-server command line
        [str(arg) for arg in args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while not redis_answers(handle.url, timeout=0.2):
        if time.monotonic() > deadline or handle.process.poll() is not None:
            raise RuntimeError("Redis did not come back")
        time.sleep(0.05)


# -- PostgreSQL ------------------------------------------------------------------------------


def _server_bin() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: Debian's newest, else PATH's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path and shutil.which("initdb") else None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateCluster:
    """A throw-away PostgreSQL cluster on a free port of 127.0.0.1, trust auth."""

    def __init__(self) -> None:
        self.bin = _server_bin()
        self.port = _free_port()
        self.dir: Path | None = None
        self.as_postgres = os.geteuid() == 0

    @staticmethod
    def unavailable() -> str | None:
        """Why a private cluster cannot be made here, or None."""
        if _server_bin() is None:
            return "no initdb/pg_ctl (PostgreSQL server binaries) on this machine"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser to drop to the postgres user"
        return None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(arg) for arg in args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(  # noqa: S603 - PostgreSQL's own tools, fixed arguments
            command, check=True, capture_output=True, timeout=timeout
        )

    def start(self) -> PrivateCluster:
        assert self.bin is not None, PrivateCluster.unavailable()
        self.dir = Path(tempfile.mkdtemp(prefix="postier-pg-"))
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self._pg_ctl("start")
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        assert self.bin is not None and self.dir is not None
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=100"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-l",
            str(self.dir / "server.log"),
            "-o",
            options,
            "-w",
            *extra,
            action,
        )

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is cut, the server is back in a second."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        if self.dir is None:
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> PrivateCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
