"""Liveness checks for probes: Redis answers, the ledger answers, optionally a worker answers.

``postier health`` runs them and exits 0 when all pass, 1 otherwise, so a container probe, a
systemd watchdog script or a load balancer can use it as is (``--json`` for a machine). Each
check has its own timeout. ``--providers`` also checks each configured provider account with
a call that sends nothing (its balance), which is how to try real credentials before a send;
a provider without credentials is skipped, one with only some of them fails.

It also shows each provider account's health state (``postier.dispatch.health``: closed,
open, half-open), which never changes the exit code: a provider's outage is routed around,
it is no reason to restart Postier.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from postier.config import HttpSettings, Settings
from postier.credentials import CREDENTIAL_FIELDS, missing_credentials
from postier.dispatch.health import HealthState, ProviderStatus
from postier.providers.errors import ProviderError


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: its name, whether it passed, what it saw and how long it took."""

    name: str
    ok: bool
    detail: str
    seconds: float
    #: a provider's balance as it states it (amount per unit or SMS type), when read
    balance: dict[str, str] | None = None
    #: nothing was checked (a provider without credentials); ``ok`` stays True
    skipped: bool = False

    def as_json(self) -> dict[str, Any]:
        """The result as a JSON object (``postier health --json``)."""
        data: dict[str, Any] = {
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "ms": round(self.seconds * 1000, 1),
        }
        if self.balance is not None:
            data["balance"] = self.balance
        if self.skipped:
            data["skipped"] = True
        return data


def _timed(name: str, check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except (redis.RedisError, OSError, SQLAlchemyError, RuntimeError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        ok = False
    return CheckResult(name, ok, detail, time.perf_counter() - started)


def check_redis(settings: Settings, timeout: float) -> CheckResult:
    """PING the broker (also the rate limiter's store)."""

    def ping() -> str:
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        try:
            if not client.ping():
                raise RuntimeError("no PONG")
        finally:
            client.close()
        return "PONG"

    return _timed("redis", ping)


def check_ledger(settings: Settings, timeout: float) -> CheckResult:
    """``SELECT 1`` on the ledger database."""
    from postier.ledger.db import make_engine

    def select_one() -> str:
        url = make_url(settings.database_url)
        kwargs: dict[str, Any] = {}
        if url.get_backend_name() == "sqlite":
            # connecting would create an empty file; a missing ledger is a failure
            database = url.database or ""
            if database and database != ":memory:" and not Path(database).exists():
                raise RuntimeError(f"no ledger file {database} (run `postier db upgrade`)")
        else:
            kwargs["connect_args"] = {"connect_timeout": max(1, round(timeout))}
        engine = make_engine(settings.database_url, **kwargs)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return engine.dialect.name
        finally:
            engine.dispose()

    return _timed("ledger", select_one)


def check_worker(settings: Settings, timeout: float, name: str | None = None) -> CheckResult:
    """A worker (``name``, e.g. ``worker@host``, or any) answers a ping over the broker."""
    from postier.celery_app import create_celery_app

    def ping() -> str:
        app = create_celery_app(settings, main="health")
        try:
            # limit=1: answer as soon as one worker replies instead of waiting out the timeout
            destination = [name] if name else None
            replies = app.control.ping(destination=destination, timeout=timeout, limit=1)
        finally:
            app.close()
        answered = sorted(node for reply in replies or [] for node in reply)
        if not answered:
            raise RuntimeError(f"no answer from {name or 'any worker'} within {timeout}s")
        return ", ".join(answered)

    return _timed("worker", ping)


def api_url(settings: Settings) -> str:
    """Where the HTTP API of these settings answers: the local stack's, else ``api.host``."""
    from postier.stack_record import read_record

    record = read_record()
    if record is not None and record.api_url:
        return record.api_url
    host = settings.api.host
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a listening address, read not bound
        host = "127.0.0.1"
    return f"http://{host}:{settings.api.port}"


def check_api(url: str, timeout: float) -> CheckResult:
    """The HTTP API's readiness probe (``/v1/health``: its ledger and Redis answer)."""

    def probe() -> str:
        try:
            response = httpx.get(f"{url.rstrip('/')}/v1/health", timeout=timeout)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"{type(exc).__name__} at {url}") from exc
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")
        return f"ready at {url}"

    return _timed("api", probe)


def _read_balance(settings: Settings, provider: str) -> dict[str, Decimal | None]:
    """The account's balance, by the provider's call that reads it and sends nothing."""
    from postier.dispatch.balances import read_balance
    from postier.dispatch.clients import ProviderClients

    clients = ProviderClients(settings)
    try:
        return read_balance(clients, provider)
    finally:
        clients.close()


def check_provider(settings: Settings, provider: str, timeout: float) -> CheckResult:
    """The credentials of ``provider``'s account, checked by reading its balance.

    Skipped (ok) without any credential; failed with only some of them, or when the provider
    refuses them or cannot be reached.
    """
    missing = missing_credentials(settings, provider)
    if len(missing) == len(CREDENTIAL_FIELDS[provider]):
        detail = f"skipped: no credentials (set {' and '.join(missing)})"
        return CheckResult(provider, True, detail, 0.0, skipped=True)
    if missing:
        return CheckResult(
            provider, False, f"incomplete credentials: set {' and '.join(missing)}", 0.0
        )
    # one short attempt: a probe must answer within its timeout, not retry for a minute
    http = HttpSettings(
        connect_timeout=timeout,
        read_timeout=timeout,
        pool_timeout=timeout,
        max_connections=1,
        short_retry_attempts=1,
        max_inline_wait=0.0,
    )
    quick = settings.model_copy(update={"http": http})
    where = " (sandbox)" if settings.sandbox_url else ""
    started = time.perf_counter()
    try:
        amounts = _read_balance(quick, provider)
    except (ProviderError, OSError) as exc:
        detail = f"{type(exc).__name__}: {exc}{where}"
        return CheckResult(provider, False, detail, time.perf_counter() - started)
    balance = {unit: str(amount) for unit, amount in amounts.items() if amount is not None}
    shown = ", ".join(f"{amount} {unit}" for unit, amount in balance.items()) or "not stated"
    return CheckResult(
        provider,
        True,
        f"credentials accepted, balance {shown}{where}",
        time.perf_counter() - started,
        balance=balance,
    )


def provider_health(settings: Settings, timeout: float) -> list[ProviderStatus]:
    """Each SMS provider account's health state, as the workers share it in Redis."""
    from postier.dispatch.health import ProviderHealth
    from postier.dispatch.routing import SMS_PROVIDERS

    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        health = ProviderHealth(client, settings)
        return [health.status(provider) for provider in SMS_PROVIDERS]
    finally:
        client.close()


def describe(status: ProviderStatus) -> str:
    """One line for a person: the state, until when, why, the window's counts."""
    if status.until is not None:
        until = datetime.fromtimestamp(status.until, UTC).isoformat(timespec="seconds")
        return f"{status.state.value} until {until}: {status.reason}"
    if status.state is HealthState.HALF_OPEN:
        return f"half_open (probing): {status.reason}"
    return f"{status.state.value} ({status.failures} failures, {status.successes} sent in window)"


def run_checks(
    settings: Settings,
    *,
    timeout: float = 3.0,
    worker: bool = False,
    worker_name: str | None = None,
    providers: bool = False,
    api: str | None = None,
) -> list[CheckResult]:
    """Redis and the ledger, plus a worker ping when ``worker`` or ``worker_name`` is given,
    plus the HTTP API's readiness at the URL ``api``, plus every provider account when
    ``providers``."""
    results = [check_redis(settings, timeout), check_ledger(settings, timeout)]
    if worker or worker_name:
        results.append(check_worker(settings, timeout, worker_name))
    if api is not None:
        results.append(check_api(api, timeout))
    if providers:
        results += [check_provider(settings, name, timeout) for name in CREDENTIAL_FIELDS]
    return results


__all__ = [
    "CheckResult",
    "api_url",
    "check_api",
    "check_ledger",
    "check_provider",
    "check_redis",
    "check_worker",
    "describe",
    "provider_health",
    "run_checks",
]
