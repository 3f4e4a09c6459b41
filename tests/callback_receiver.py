"""A real HTTP receiver of status callbacks for tests: answers from a script, records all.

Runs in the test process on a free port of 127.0.0.1 (``http://`` on loopback is allowed).
Each request gets the next answer of its event's script (by ``Postier-Event-Id``) or the
default: an HTTP status, or ``HANG`` (hold the request until ``release()`` or the deadline).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from postier.callbacks import EVENT_ID_HEADER

#: an answer that never comes (until ``release``)
HANG = "hang"


@dataclass
class Received:
    """One request as it arrived, and what it was answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    answer: int | str
    #: when it arrived (``time.time()``)
    at: float = 0.0


@dataclass
class Receiver:
    url: str = ""
    #: answers given in turn to every event's first, second… request (then ``default``)
    script: list[int | str] = field(default_factory=list)
    default: int | str = 200
    received: list[Received] = field(default_factory=list)
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_for(self, event_id: str) -> int | str:
        with self._lock:
            seen = sum(1 for r in self.received if r.headers.get(EVENT_ID_HEADER) == event_id)
        return self.script[seen] if seen < len(self.script) else self.default

    def record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def release(self) -> None:
        """Let every hanging request go (each answers 200 then)."""
        self._released.set()

    def acknowledged(self) -> list[Received]:
        """The requests answered 2xx."""
        with self._lock:
            return [r for r in self.received if isinstance(r.answer, int) and r.answer < 300]

    def requests_of(self, event_id: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.headers.get(EVENT_ID_HEADER) == event_id]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers: Mapping[str, Any] = {k: v for k, v in self.headers.items()}
            answer = receiver.answer_for(str(headers.get(EVENT_ID_HEADER, "")))
            receiver.record(Received(self.path, dict(headers), body, answer, time.time()))
            if answer == HANG:
                receiver._released.wait(timeout=60)
                answer = 200
            try:
                self.send_response(int(answer))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the client gave up waiting (its timeout)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def running_receiver(
    script: list[int | str] | None = None, default: int | str = 200
) -> Iterator[Receiver]:
    """A receiver on a free loopback port for the block."""
    receiver = Receiver(script=list(script or []), default=default)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        server.shutdown()
        server.server_close()
