"""The HTTP transport every provider client shares: timeouts, error classes, short retries.

A provider module builds requests and parses answers; this module decides what a failure
means. Transport failures are classified by whether the request can have reached the
provider (docs/ARCHITECTURE.md, "Decisions, and why"):

- connect errors, connect/pool timeouts: nothing was sent -> ``RetryableError``;
- 429, and 503 (service refused the request): not processed -> ``RetryableError`` with the
  ``Retry-After`` delay when the provider gave one;
- read/write timeouts, a dropped connection, other 5xx: the body may have been processed ->
  ``AmbiguousError`` for a call that changes state, ``RetryableError`` for a read.

``RetryableError``s whose wait is short are retried in-process with tenacity; longer waits
and exhausted attempts propagate so the Celery task can reschedule.
"""

from __future__ import annotations

import base64
import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from postier.config import HttpSettings
from postier.providers.connections import StdlibTransport
from postier.providers.errors import AmbiguousError, RetryableError
from postier.providers.results import Provider

#: what ``httpx.Client`` sends by default, with our User-Agent; gzip and deflate only, the
#: encodings httpx decodes without optional packages
DEFAULT_HEADERS: Mapping[str, str] = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
    "User-Agent": "postier/0.1",
}


def build_http_transport(settings: HttpSettings) -> httpx.BaseTransport:
    """One keep-alive connection pool per process; every provider's ``Transport`` may share it.

    A pool of ``http.client`` connections (``connections.StdlibTransport``): it serves the
    same ``httpx.Request`` and raises the same httpx errors as ``httpx.HTTPTransport`` at about
    half the CPU per request. Through a proxy (``http.proxy``), ``httpx.HTTPTransport``, which
    speaks to proxies. Either way a transport, not an ``httpx.Client``: the client's
    per-request layer (URL merging, auth and redirect generators, cookie jar, event hooks) was
    about a third of httpx's CPU per provider request, and Postier uses none of it. No proxy
    is read from the environment (``httpx.Client``'s ``trust_env``).
    """
    if settings.proxy:
        return httpx.HTTPTransport(
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
            proxy=settings.proxy,
        )
    return StdlibTransport(max_connections=settings.max_connections)


def timeouts_of(settings: HttpSettings) -> dict[str, float | None]:
    """The ``timeout`` extension of every request, as ``httpx.Timeout.as_dict`` gives it."""
    return httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.pool_timeout,
    ).as_dict()


def basic_auth_header(user: str, password: str) -> str:
    """The ``Authorization`` value of HTTP basic auth, UTF-8 as ``httpx.BasicAuth`` encodes it."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


@lru_cache(maxsize=256)
def _parsed_url(url: str) -> httpx.URL:
    """A provider's URLs are few: parse each once (``httpx.URL`` is immutable)."""
    return httpx.URL(url)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def _short_wait(settings: HttpSettings) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            return exc.retry_after
        # 0.05, 0.1, 0.2 … capped well under the inline budget
        return float(min(settings.max_inline_wait, 0.05 * 2 ** (state.attempt_number - 1)))

    return wait


class Transport:
    """Sends one provider's requests through a shared connection pool and classifies failures.

    Each request is built here as ``httpx.Client`` would build it (our default headers, the
    timeouts in the ``timeout`` extension, basic auth as a precomputed header) and handed to
    the pool's ``handle_request``, which raises httpx's errors. As with the
    client's defaults: redirects are not followed, cookies are not kept, the body is read
    before returning. ``pool`` may be any ``httpx.BaseTransport`` (tests wrap the real one to
    see the requests, or give an ``httpx.MockTransport``).
    """

    def __init__(
        self,
        provider: Provider,
        settings: HttpSettings,
        pool: httpx.BaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self._owns_pool = pool is None
        self.pool: httpx.BaseTransport = (
            pool if pool is not None else build_http_transport(settings)
        )
        self._timeout = timeouts_of(settings)
        self._auth: tuple[tuple[str, str], str] | None = None
        # one per transport: tenacity keeps each thread's attempt state apart (threading.local)
        self._retrying = Retrying(
            retry=retry_if_exception(self._inline_retryable),
            stop=stop_after_attempt(max(1, settings.short_retry_attempts)),
            wait=_short_wait(settings),
            reraise=True,
        )

    def _inline_retryable(self, exc: BaseException) -> bool:
        if not isinstance(exc, RetryableError):
            return False
        return exc.retry_after is None or exc.retry_after <= self.settings.max_inline_wait

    def request(
        self,
        method: str,
        url: str,
        *,
        changes_state: bool,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> httpx.Response:
        """Send with short retries; return any response that is not a transport-level failure.

        4xx answers other than 429 are returned: their meaning is the provider module's call.
        ``auth`` is HTTP basic auth (user, password).
        """
        request = httpx.Request(
            method,
            _parsed_url(url),
            data=data,
            json=json,
            params=params,
            headers=self._headers(headers, auth),
            extensions={"timeout": self._timeout},
        )
        response: httpx.Response = self._retrying(self._once, request, changes_state)
        return response

    def _headers(
        self, headers: Mapping[str, str] | None, auth: tuple[str, str] | None
    ) -> Mapping[str, str] | httpx.Headers:
        if headers is None and auth is None:
            return DEFAULT_HEADERS
        merged = httpx.Headers(DEFAULT_HEADERS)
        if headers is not None:
            merged.update(headers)
        if auth is not None:
            if self._auth is None or self._auth[0] != auth:
                self._auth = (auth, basic_auth_header(*auth))
            merged["Authorization"] = self._auth[1]
        return merged

    def _once(self, request: httpx.Request, changes_state: bool) -> httpx.Response:
        name = self.provider.value
        try:
            response = self.pool.handle_request(request)
            response.request = request
            try:
                response.read()
            except BaseException:
                response.close()
                raise
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RetryableError(
                f"could not reach the provider ({type(exc).__name__})", provider=name
            ) from exc
        except httpx.TransportError as exc:
            message = f"no complete answer ({type(exc).__name__})"
            if changes_state:
                raise AmbiguousError(message, provider=name) from exc
            raise RetryableError(message, provider=name) from exc

        status = response.status_code
        if status in (429, 503):
            raise RetryableError(
                f"HTTP {status}",
                provider=name,
                code=str(status),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                raw=_safe_text(response),
            )
        if status >= 500:
            message = f"HTTP {status}"
            if changes_state:
                raise AmbiguousError(
                    message, provider=name, code=str(status), raw=_safe_text(response)
                )
            raise RetryableError(message, provider=name, code=str(status), raw=_safe_text(response))
        return response

    def close(self) -> None:
        """Close the pool if this transport built it; a shared pool is its owner's to close."""
        if self._owns_pool:
            self.pool.close()


def _safe_text(response: httpx.Response) -> str:
    return response.text[:500]


def now_utc() -> datetime:
    """The current time, timezone-aware (kept here so providers share one clock)."""
    return datetime.now(UTC)
