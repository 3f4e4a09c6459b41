"""A keep-alive connection pool on the standard library's ``http.client``, as an httpx transport.

Why: at a provider that answers at once, a personalised send is bound by CPU, and most of a
request's CPU was httpcore's and h11's, which frame and parse HTTP/1.1 in Python at about
twice the cost of ``http.client`` (whose status line and header reading lean on C code).
Measured on the sandbox's Octopush send, one thread, keep-alive: ``httpx.HTTPTransport``
about 1,050 µs of client CPU per request, this pool about 520 µs (README, "Benchmarks").

Provider modules still build ``httpx.Request`` objects and read ``httpx.Response`` objects,
and every failure comes out as the httpx exception httpcore would have raised, so
``transport.Transport`` classifies them by the same rules:

- connecting: ``ConnectTimeout`` / ``ConnectError`` (nothing was sent);
- no free connection within the pool timeout: ``PoolTimeout`` (nothing was sent);
- writing the request: ``WriteTimeout`` / ``WriteError``;
- reading the answer: ``ReadTimeout``, ``RemoteProtocolError`` (the server closed or spoke
  no HTTP), ``ReadError``.

An idle connection is reused only if the server has not closed it in the meantime (its socket
is not readable) and it is younger than ``keepalive_expiry``; so a request never goes out on a
connection already closed, which would make a send ambiguous for no reason. HTTP/1.1 only,
as httpx's default; a proxy takes ``httpx.HTTPTransport`` instead (``transport.py``).
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
from collections import deque
from typing import Any

import httpx

#: seconds an idle connection is kept (httpcore's default too)
KEEPALIVE_EXPIRY = 5.0

_Origin = tuple[bytes, str, int]


class _Coalescing:
    """Sends the request head and its body in one write: ``http.client`` writes them apart,
    two segments where one does (with Nagle's algorithm on, the second would even wait for
    the server's delayed acknowledgement)."""

    body: bytes = b""

    def send(self, data: Any) -> None:
        if self.body:
            data, self.body = bytes(data) + self.body, b""
        super().send(data)  # type: ignore[misc]


class _HTTPConnection(_Coalescing, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Coalescing, http.client.HTTPSConnection):
    pass


class _Idle:
    """A connection waiting for its next request, and since when."""

    __slots__ = ("connection", "since")

    def __init__(self, connection: http.client.HTTPConnection, since: float) -> None:
        self.connection = connection
        self.since = since


class StdlibTransport(httpx.BaseTransport):
    """At most ``max_connections`` connections open at once, every origin together;
    thread-safe (one request per connection at a time)."""

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._slots = threading.BoundedSemaphore(max_connections)
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._idle: dict[_Origin, deque[_Idle]] = {}
        self._closed = False

    # -- httpx.BaseTransport ---------------------------------------------------------------
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{url.scheme}://'."
            )
        port = url.port or (443 if scheme == b"https" else 80)
        origin: _Origin = (scheme, url.host, port)
        body = request.read()
        if not self._slots.acquire(timeout=_or_forever(timeouts.get("pool"))):
            raise httpx.PoolTimeout("no free connection in the pool", request=request)
        try:
            connection = self._connection(origin, timeouts, request)
            try:
                answer, content = self._exchange(connection, request, body, timeouts)
            except BaseException:
                connection.close()
                raise
            if answer.will_close or self._closed:
                connection.close()
            else:
                self._put_idle(origin, connection)
        finally:
            self._slots.release()
        return httpx.Response(
            answer.status,
            # http.client decoded the header bytes as Latin-1: encoded back, they are the
            # server's own bytes, whatever they hold (httpx would refuse non-ASCII str)
            headers=[
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in answer.getheaders()
            ],
            stream=httpx.ByteStream(content),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": answer.reason.encode("ascii", "replace"),
            },
            request=request,
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for queue in idle.values():
            for entry in queue:
                entry.connection.close()

    # -- connections -------------------------------------------------------------------------
    def _connection(
        self, origin: _Origin, timeouts: dict[str, float | None], request: httpx.Request
    ) -> http.client.HTTPConnection:
        reused = self._take_idle(origin)
        if reused is not None:
            reused.sock.settimeout(timeouts.get("read"))
            return reused
        scheme, host, port = origin
        connection: http.client.HTTPConnection
        if scheme == b"https":
            context = self._ssl_context or httpx.create_ssl_context()
            self._ssl_context = context
            connection = _HTTPSConnection(
                host, port, timeout=timeouts.get("connect"), context=context
            )
        else:
            connection = _HTTPConnection(host, port, timeout=timeouts.get("connect"))
        try:
            connection.connect()
        except TimeoutError as exc:
            connection.close()
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except OSError as exc:
            connection.close()
            raise httpx.ConnectError(str(exc), request=request) from exc
        assert connection.sock is not None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sock.settimeout(timeouts.get("read"))
        return connection

    def _take_idle(self, origin: _Origin) -> http.client.HTTPConnection | None:
        now = time.monotonic()
        while True:
            with self._lock:
                queue = self._idle.get(origin)
                if not queue:
                    return None
                entry = queue.pop()  # the most recently used: the least likely to be closed
            connection = entry.connection
            if now - entry.since < self._keepalive_expiry and not _closed_by_peer(connection):
                return connection
            connection.close()

    def _put_idle(self, origin: _Origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault(origin, deque()).append(_Idle(connection, time.monotonic()))

    # -- one exchange -----------------------------------------------------------------------
    @staticmethod
    def _exchange(
        connection: http.client.HTTPConnection,
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, float | None],
    ) -> tuple[http.client.HTTPResponse, bytes]:
        sock = connection.sock
        assert sock is not None
        try:
            sock.settimeout(timeouts.get("write"))
            connection.putrequest(
                request.method,
                request.url.raw_path.decode("ascii"),
                skip_host=True,
                skip_accept_encoding=True,
            )
            for name, value in request.headers.raw:
                connection.putheader(name, value)
            connection.body = body  # type: ignore[attr-defined]
            connection.endheaders()
        except TimeoutError as exc:
            raise httpx.WriteTimeout(str(exc) or "write timed out", request=request) from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc), request=request) from exc
        try:
            sock.settimeout(timeouts.get("read"))
            answer = connection.getresponse()
            content = answer.read()
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
        except (http.client.HTTPException, ValueError) as exc:
            # RemoteDisconnected, BadStatusLine, IncompleteRead, LineTooLong, bad chunk sizes
            raise httpx.RemoteProtocolError(
                str(exc) or type(exc).__name__, request=request
            ) from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        return answer, content


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """An idle connection whose socket is readable has been closed by the server (or holds
    bytes no request asked for): either way it must not carry the next request. ``poll``,
    not ``select``: a worker may hold descriptors past ``select``'s 1,024."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _or_forever(timeout: float | None) -> float | None:
    return None if timeout is None else max(0.0, timeout)
