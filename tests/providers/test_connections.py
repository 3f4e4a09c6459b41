"""The ``http.client`` connection pool: keep-alive, stale connections, errors as httpx's.

Real sockets on 127.0.0.1: a scripted server answers each request as the test says, so each
rule is seen on the wire (what was sent, on which connection).
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from postier.providers.connections import StdlibTransport, _HTTPConnection

TIMEOUTS = {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0}

#: what the scripted server does with one request: the bytes to send back, or None to close
Answer = Callable[[bytes], bytes | None]


def ok(body: bytes = b'{"ok": true}', extra: str = "") -> Callable[[bytes], bytes]:
    def answer(_: bytes) -> bytes:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        return head.encode() + body

    return answer


@dataclass
class ScriptedServer:
    """Accepts connections; answers the n-th request with ``answers[n]`` (the last repeats)."""

    answers: list[Answer]
    #: TLS on every accepted connection (its certificate and key)
    tls: ssl.SSLContext | None = None
    sock: socket.socket = field(default_factory=socket.socket)
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    connections: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _open: list[socket.socket] = field(default_factory=list)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.sock.getsockname()[1]}"

    def start(self) -> ScriptedServer:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buffer = b""
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:
                return  # the client refused our certificate
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                head, sep, rest = buffer.partition(b"\r\n\r\n")
                if not sep:
                    continue
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(rest) < length:
                    continue
                request, buffer = head + sep + rest[:length], rest[length:]
                self.requests.append((number, request))
                answer = self.answers[min(len(self.requests), len(self.answers)) - 1](request)
                if answer is None:
                    return
                conn.sendall(answer)

    def close_idle(self) -> None:
        """The server drops every connection it holds (as at its keep-alive timeout)."""
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self.close_idle()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(*answers: Answer) -> ScriptedServer:
        server = ScriptedServer(list(answers) or [ok()]).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def post(pool: StdlibTransport, url: str, **kwargs: object) -> httpx.Response:
    request = httpx.Request("POST", url, extensions={"timeout": TIMEOUTS}, **kwargs)  # type: ignore[arg-type]
    response = pool.handle_request(request)
    response.read()
    return response


def test_the_request_goes_out_as_httpx_built_it(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve()
    with StdlibTransport(max_connections=4) as pool:
        response = post(
            pool, f"{server.url}/api/sms/json?x=1&y=%C3%A9", data={"a": "b c", "d": "é"}
        )
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert response.http_version == "HTTP/1.1"
    _, raw = server.requests[0]
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/sms/json?x=1&y=%C3%A9 HTTP/1.1"
    expected = httpx.Request("POST", f"{server.url}/api", data={"a": "b c", "d": "é"})
    assert lines[1:] == [b"%s: %s" % pair for pair in expected.headers.raw]
    assert body == b"a=b+c&d=%C3%A9"


def test_head_and_body_leave_in_one_write() -> None:
    """``http.client`` writes them apart: two segments, the second held by Nagle's algorithm
    until the server acknowledges the first."""
    writes: list[bytes] = []
    connection = _HTTPConnection("provider.test", 80)
    connection.sock = SimpleNamespace(sendall=writes.append)
    connection.putrequest("POST", "/api", skip_host=True, skip_accept_encoding=True)
    connection.putheader(b"Content-Length", b"3")
    connection.body = b"a=b"
    connection.endheaders()
    assert writes == [b"POST /api HTTP/1.1\r\nContent-Length: 3\r\n\r\na=b"]
    assert connection.body == b""


def test_one_connection_carries_requests_one_after_another(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve()
    with StdlibTransport(max_connections=4) as pool:
        for _ in range(5):
            post(pool, server.url, content=b"x")
    assert server.connections == 1
    assert [number for number, _ in server.requests] == [1] * 5


def test_a_connection_the_server_closed_is_never_used_again(
    serve: Callable[..., ScriptedServer],
) -> None:
    """Sending on it would make a send ambiguous for nothing: a new connection is opened."""
    server = serve()
    with StdlibTransport(max_connections=4) as pool:
        post(pool, server.url, content=b"first")
        server.close_idle()
        response = post(pool, server.url, content=b"second")
    assert response.status_code == 200
    assert server.connections == 2
    assert [number for number, _ in server.requests] == [1, 2]


def test_an_idle_connection_past_its_keepalive_expiry_is_closed(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve()
    with StdlibTransport(max_connections=4, keepalive_expiry=0.05) as pool:
        post(pool, server.url, content=b"1")
        time.sleep(0.1)
        post(pool, server.url, content=b"2")
    assert server.connections == 2


def test_connection_close_in_the_answer_is_honoured(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(ok(extra="Connection: close\r\n"))
    with StdlibTransport(max_connections=4) as pool:
        post(pool, server.url, content=b"1")
        post(pool, server.url, content=b"2")
    assert server.connections == 2


def test_chunked_and_gzip_answers_are_read_and_decoded(
    serve: Callable[..., ScriptedServer],
) -> None:
    packed = gzip.compress(b'{"n": 1}')

    def chunked(_: bytes) -> bytes:
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(packed), packed)
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
        return head + body

    server = serve(chunked)
    with StdlibTransport(max_connections=4) as pool:
        response = post(pool, server.url, content=b"x")
        again = post(pool, server.url, content=b"y")
    assert response.json() == {"n": 1} == again.json()
    assert server.connections == 1


def test_a_server_that_closes_without_answering_is_a_protocol_error(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(lambda _: None)
    with StdlibTransport(max_connections=4) as pool, pytest.raises(httpx.RemoteProtocolError):
        post(pool, server.url, content=b"x")


def test_garbage_instead_of_http_is_a_protocol_error(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(lambda _: b"SMTP ready\r\n\r\n")
    with StdlibTransport(max_connections=4) as pool, pytest.raises(httpx.RemoteProtocolError):
        post(pool, server.url, content=b"x")


def test_a_silent_server_is_a_read_timeout(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(lambda _: b"")
    with StdlibTransport(max_connections=4) as pool:
        request = httpx.Request(
            "POST", server.url, content=b"x", extensions={"timeout": {**TIMEOUTS, "read": 0.1}}
        )
        with pytest.raises(httpx.ReadTimeout):
            pool.handle_request(request)


def test_nobody_listening_is_a_connect_error() -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with StdlibTransport(max_connections=4) as pool, pytest.raises(httpx.ConnectError):
        post(pool, f"http://127.0.0.1:{port}/", content=b"x")


def test_an_unsupported_scheme_is_refused() -> None:
    with StdlibTransport(max_connections=1) as pool, pytest.raises(httpx.UnsupportedProtocol):
        post(pool, "ftp://127.0.0.1/file")


def test_no_free_connection_within_the_pool_timeout_is_a_pool_timeout(
    serve: Callable[..., ScriptedServer],
) -> None:
    release = threading.Event()

    def slow(_: bytes) -> bytes:
        release.wait(2.0)
        return ok()(b"")

    server = serve(slow)
    with StdlibTransport(max_connections=1) as pool, ThreadPoolExecutor(1) as other:
        busy = other.submit(post, pool, server.url, content=b"first")
        time.sleep(0.1)
        request = httpx.Request(
            "POST", server.url, content=b"x", extensions={"timeout": {**TIMEOUTS, "pool": 0.1}}
        )
        with pytest.raises(httpx.PoolTimeout):
            pool.handle_request(request)
        release.set()
        assert busy.result().status_code == 200


def test_concurrent_requests_use_at_most_max_connections(
    serve: Callable[..., ScriptedServer],
) -> None:
    def slowish(_: bytes) -> bytes:
        time.sleep(0.02)
        return ok()(b"")

    server = serve(slowish)
    with StdlibTransport(max_connections=3) as pool, ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(lambda n: post(pool, server.url, content=b"%d" % n), range(40)))
    assert all(answer.status_code == 200 for answer in answers)
    assert len(server.requests) == 40
    assert server.connections <= 3


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_connections must be at least 1"):
        StdlibTransport(max_connections=0)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (openssl, as a provider's CA would)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_https_verifies_the_certificate_and_keeps_the_connection(
    serve: Callable[..., ScriptedServer], certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    server = ScriptedServer([ok()], tls=server_side).start()
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        with StdlibTransport(max_connections=2, ssl_context=trusting) as pool:
            assert post(pool, server.url, content=b"1").json() == {"ok": True}
            assert post(pool, server.url, content=b"2").status_code == 200
        assert server.connections == 1
        # the default context (certifi's roots, as httpx's) does not know this certificate
        with (
            StdlibTransport(max_connections=2) as pool,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            post(pool, server.url, content=b"3")
    finally:
        server.stop()


def test_a_connection_on_a_descriptor_past_1024_is_reused(
    serve: Callable[..., ScriptedServer],
) -> None:
    """``select`` fails past descriptor 1,024: the staleness check must not call every
    connection closed there (a worker with many sockets would reconnect for each request)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if max(soft, hard) < 2100:
        pytest.skip(f"this process may open at most {hard} descriptors")
    if soft < 2100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (2100, hard))
    held = []
    try:
        while True:  # push the next descriptors past 1,024
            extra = socket.socket()
            held.append(extra)
            if extra.fileno() > 1100:
                break
        server = serve()
        with StdlibTransport(max_connections=2) as pool:
            for _ in range(3):
                post(pool, server.url, content=b"x")
        assert server.connections == 1
    finally:
        for extra in held:
            extra.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_header_bytes_outside_ascii_come_through_as_sent(
    serve: Callable[..., ScriptedServer],
) -> None:
    server = serve(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Note: caf\xe9\r\n\r\nok")
    with StdlibTransport(max_connections=1) as pool:
        response = post(pool, server.url, content=b"x")
    assert response.headers.raw[-1] == (b"X-Note", b"caf\xe9")
    assert response.text == "ok"
