"""The shared transport: requests built as ``httpx.Client`` built them, failures classified.

The provider tests cover the classification against the sandbox's faults over real HTTP;
these pin what the transport itself promises with a scripted pool (``httpx.MockTransport``)
where the sandbox cannot say it: the headers, the timeouts, no redirect or cookie followed,
the short retries counted per call even when threads share one transport.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from postier.config import HttpSettings
from postier.providers.connections import StdlibTransport
from postier.providers.errors import AmbiguousError, RetryableError
from postier.providers.results import Provider
from postier.providers.transport import DEFAULT_HEADERS, Transport, build_http_transport

URL = "https://provider.test/api/sms"
FAST = HttpSettings(
    connect_timeout=1.5,
    read_timeout=4.0,
    pool_timeout=0.5,
    short_retry_attempts=3,
    max_inline_wait=0.01,
)

Handler = Callable[[httpx.Request], httpx.Response]


class Scripted(httpx.MockTransport):
    """A pool answering with ``handler``, keeping each request and whether it was closed."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.closed = False

        def keep(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        super().__init__(keep)

    def close(self) -> None:
        self.closed = True


def transport(handler: Handler, settings: HttpSettings = FAST) -> tuple[Transport, Scripted]:
    pool = Scripted(handler)
    return Transport(Provider.OCTOPUSH, settings, pool), pool


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


def test_a_request_carries_the_client_defaults_and_the_timeouts() -> None:
    sender, pool = transport(ok)
    response = sender.request("POST", URL, data={"sms_text": "Zoé & co"}, changes_state=True)
    (request,) = pool.requests
    assert response.json() == {"ok": True}
    assert response.request is request
    for name, value in DEFAULT_HEADERS.items():
        assert request.headers[name] == value
    assert request.headers["user-agent"] == "postier/0.1"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.content == b"sms_text=Zo%C3%A9+%26+co"
    assert request.extensions["timeout"] == {
        "connect": 1.5,
        "read": 4.0,
        "write": 4.0,
        "pool": 0.5,
    }


def test_headers_params_and_json_as_httpx_client_builds_them() -> None:
    sender, pool = transport(ok)
    sender.request(
        "GET",
        URL,
        params={"page": "2", "q": "a b"},
        headers={"user-agent": "other", "X-Api-Key": "k"},
        json=None,
        changes_state=False,
    )
    sender.request("POST", URL, json={"number": "+33612345678"}, changes_state=True)
    first, second = pool.requests
    with httpx.Client(transport=Scripted(ok), headers={"User-Agent": "postier/0.1"}) as client:
        expected = client.build_request(
            "GET",
            URL,
            params={"page": "2", "q": "a b"},
            headers={"user-agent": "other", "X-Api-Key": "k"},
        )
    assert first.url == expected.url

    # the same headers, but for the encodings: httpx adds br/zstd when their packages are in
    def headers(request: httpx.Request) -> list[tuple[str, str]]:
        return sorted(i for i in request.headers.multi_items() if i[0] != "accept-encoding")

    assert headers(first) == headers(expected)
    assert first.headers["accept-encoding"] == "gzip, deflate"
    assert second.headers["content-type"] == "application/json"
    assert second.content == b'{"number":"+33612345678"}'


def test_basic_auth_is_the_header_httpx_would_send() -> None:
    sender, pool = transport(ok)
    sender.request("POST", URL, auth=("jeanne@exemple.fr", "mot dé passe:1"), changes_state=True)
    sender.request("POST", URL, auth=("autre", "secret"), changes_state=True)
    sender.request("POST", URL, changes_state=True)
    for request, credentials in zip(
        pool.requests, [("jeanne@exemple.fr", "mot dé passe:1"), ("autre", "secret")], strict=False
    ):
        reference = next(httpx.BasicAuth(*credentials).sync_auth_flow(httpx.Request("GET", URL)))
        assert request.headers["authorization"] == reference.headers["authorization"]
        assert credentials[1] not in str(request.url)
    assert "authorization" not in pool.requests[2].headers


def test_a_redirect_is_returned_not_followed_and_no_cookie_is_kept() -> None:
    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            302, headers={"Location": "https://elsewhere.test/", "Set-Cookie": "session=1"}
        )

    sender, pool = transport(redirect)
    assert sender.request("POST", URL, changes_state=True).status_code == 302
    sender.request("POST", URL, changes_state=True)
    assert [str(r.url) for r in pool.requests] == [URL, URL]
    assert "cookie" not in pool.requests[1].headers


def raising(exc: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("scripted", request=request)

    return handler


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
@pytest.mark.parametrize("changes_state", [True, False])
def test_what_never_left_is_retried_then_retryable(
    exc: type[httpx.TransportError], changes_state: bool
) -> None:
    sender, pool = transport(raising(exc))
    with pytest.raises(RetryableError, match=exc.__name__):
        sender.request("POST", URL, changes_state=changes_state)
    assert len(pool.requests) == FAST.short_retry_attempts


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError]
)
def test_what_may_have_arrived_is_ambiguous_for_a_send(exc: type[httpx.TransportError]) -> None:
    sender, pool = transport(raising(exc))
    with pytest.raises(AmbiguousError):
        sender.request("POST", URL, changes_state=True)
    assert len(pool.requests) == 1
    with pytest.raises(RetryableError):
        sender.request("POST", URL, changes_state=False)


def test_statuses() -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "0"}),
            httpx.Response(200, text="fine"),
            httpx.Response(429, headers={"Retry-After": "120"}, text="slow down"),
            httpx.Response(500, text="oops"),
            *[httpx.Response(502)] * FAST.short_retry_attempts,
            httpx.Response(404, text="no such message"),
        ]
    )
    sender, pool = transport(lambda request: next(answers))
    assert sender.request("POST", URL, changes_state=True).text == "fine"
    with pytest.raises(RetryableError) as too_many:
        sender.request("POST", URL, changes_state=True)
    assert (too_many.value.retry_after, too_many.value.code) == (120.0, "429")
    with pytest.raises(AmbiguousError) as broken:
        sender.request("POST", URL, changes_state=True)
    assert broken.value.code == "500"
    with pytest.raises(RetryableError) as read_failed:
        sender.request("GET", URL, changes_state=False)
    assert read_failed.value.code == "502"
    assert sender.request("GET", URL, changes_state=False).status_code == 404
    assert len(pool.requests) == 5 + FAST.short_retry_attempts


def test_retries_are_counted_per_call_across_threads() -> None:
    """One transport serves a chunk's threads: each call has its own attempts."""
    lock = threading.Lock()
    seen: dict[str, int] = {}

    def first_refused(request: httpx.Request) -> httpx.Response:
        key = request.headers["x-call"]
        with lock:
            seen[key] = seen.get(key, 0) + 1
            attempt = seen[key]
        if key.startswith("dead") or attempt == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, text=key)

    sender, _ = transport(first_refused)

    def call(key: str) -> str:
        try:
            return sender.request("POST", URL, headers={"X-Call": key}, changes_state=True).text
        except RetryableError:
            return "failed"

    keys = [f"{'dead' if n % 5 == 0 else 'live'}-{n}" for n in range(80)]
    with ThreadPoolExecutor(8) as threads:
        results = list(threads.map(call, keys))
    assert results == [("failed" if k.startswith("dead") else k) for k in keys]
    assert seen == {k: (3 if k.startswith("dead") else 2) for k in keys}


def test_a_shared_pool_is_left_open_and_an_own_one_closed() -> None:
    sender, pool = transport(ok)
    sender.close()
    assert not pool.closed
    own = Transport(Provider.OCTOPUSH, FAST)
    assert isinstance(own.pool, StdlibTransport)
    own.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A socket that accepts and never answers: a provider that took the request and hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/api"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_the_real_pool_maps_its_errors(silent_server: str) -> None:
    """The pool's errors reach the classification as httpx's, through the real pool."""
    settings = FAST.model_copy(update={"read_timeout": 0.2})
    with build_http_transport(settings) as pool:
        sender = Transport(Provider.OCTOPUSH, settings, pool)
        with pytest.raises(AmbiguousError, match="ReadTimeout"):
            sender.request("POST", silent_server, data={"a": "1"}, changes_state=True)
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        with pytest.raises(RetryableError, match="ConnectError"):
            sender.request("POST", f"http://127.0.0.1:{port}/api", changes_state=True)


def test_a_proxy_is_used_when_set_and_checked() -> None:
    """``http.proxy`` replaces httpx.Client's reading of HTTP_PROXY: requests go through it."""
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen()
    received: list[bytes] = []

    def answer() -> None:
        conn, _ = proxy.accept()
        with conn:
            received.append(conn.recv(65536))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    settings = FAST.model_copy(update={"proxy": f"http://127.0.0.1:{proxy.getsockname()[1]}"})
    with build_http_transport(settings) as pool:
        response = Transport(Provider.OCTOPUSH, settings, pool).request(
            "GET", "http://provider.test/api/balance", changes_state=False
        )
    thread.join()
    proxy.close()
    assert response.text == "ok"
    assert received[0].startswith(b"GET http://provider.test/api/balance HTTP/1.1\r\n")
    with pytest.raises(ValueError, match=r"http\.proxy is an http:// or https:// URL"):
        HttpSettings(proxy="socks5://127.0.0.1:1080")
