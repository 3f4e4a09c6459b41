"""Running the sandbox: in the foreground (``postier sandbox``) or in a background thread."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from postier.sandbox.app import Sandbox


def _config(sandbox: Sandbox) -> uvicorn.Config:
    return uvicorn.Config(
        sandbox.asgi(),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        backlog=2048,
        # the sandbox listens on 127.0.0.1 behind no proxy: no X-Forwarded-* rewriting per request
        proxy_headers=False,
        # "auto" picks uvloop and httptools when installed (they are dependencies): the C parser
        # and loop cost the sandbox less CPU per request than h11 and asyncio's own loop
        loop="auto",
        http="auto",
    )


def serve_forever(sandbox: Sandbox, host: str, port: int) -> None:
    """Serve until interrupted (the CLI's foreground mode)."""
    config = _config(sandbox)
    config.host, config.port = host, port
    uvicorn.Server(config).run()


class SandboxServer:
    """The sandbox in a daemon thread on a port of its own, for tests, the demo and benchmarks."""

    def __init__(self, sandbox: Sandbox | None = None, host: str = "127.0.0.1", port: int = 0):
        self.sandbox = sandbox if sandbox is not None else Sandbox()
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(_config(self.sandbox))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            daemon=True,
            name="postier-sandbox",
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
