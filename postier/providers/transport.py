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

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from postier.config import HttpSettings
from postier.providers.errors import AmbiguousError, RetryableError
from postier.providers.results import Provider


def build_http_client(settings: HttpSettings) -> httpx.Client:
    """One pooled client per process; every provider client may share it."""
    return httpx.Client(
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=settings.pool_timeout,
        ),
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        ),
        headers={"User-Agent": "postier/0.1"},
    )


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
    """Sends one provider's requests over a shared ``httpx.Client`` and classifies failures."""

    def __init__(
        self,
        provider: Provider,
        settings: HttpSettings,
        client: httpx.Client | None = None,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.client = client if client is not None else build_http_client(settings)

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
        auth: httpx.Auth | tuple[str, str] | None = None,
    ) -> httpx.Response:
        """Send with short retries; return any response that is not a transport-level failure.

        4xx answers other than 429 are returned: their meaning is the provider module's call.
        """
        retrying = Retrying(
            retry=retry_if_exception(self._inline_retryable),
            stop=stop_after_attempt(max(1, self.settings.short_retry_attempts)),
            wait=_short_wait(self.settings),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._once(
                    method,
                    url,
                    changes_state=changes_state,
                    data=data,
                    json=json,
                    params=params,
                    headers=headers,
                    auth=auth,
                )
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _once(
        self,
        method: str,
        url: str,
        *,
        changes_state: bool,
        data: Mapping[str, Any] | None,
        json: Any,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        auth: httpx.Auth | tuple[str, str] | None,
    ) -> httpx.Response:
        name = self.provider.value
        try:
            response = self.client.request(
                method,
                url,
                data=data,
                json=json,
                params=params,
                headers=headers,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
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
        self.client.close()


def _safe_text(response: httpx.Response) -> str:
    return response.text[:500]


def now_utc() -> datetime:
    """The current time, timezone-aware (kept here so providers share one clock)."""
    return datetime.now(UTC)
