"""Provider account balances, read by a beat pass and kept in Redis for the metrics.

A provider stops sending when its account runs dry (Afilnet and Primotexto count credits,
Octopush a wallet in euros): an alert before that happens needs the balance as a metric. The
calls send nothing (``postier health --providers`` uses the same ones), but each is an HTTP
request to the provider, so a beat pass makes them every ``metrics.balance_interval`` seconds
(15 minutes by default) and stores the answers in one Redis hash; every worker's ``/metrics``
reads the hash at scrape time (``postier_provider_balance{provider,unit}`` and the time of
each reading), so a scrape never calls a provider. Accounts without credentials are skipped;
a failed reading keeps the previous value, whose timestamp then ages.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal

import redis

from postier.config import Settings
from postier.credentials import CREDENTIAL_FIELDS, missing_credentials
from postier.dispatch.clients import ProviderClients
from postier.providers.errors import ProviderError
from postier.providers.registry import profile_of

log = logging.getLogger(__name__)

#: the Redis hash of the last readings: ``<provider>`` -> ``<unit> <amount> <unix time>``
BALANCES_KEY = "postier:balances"


@dataclass(frozen=True, slots=True)
class Balance:
    """One account's balance as last read: its amount in ``unit``, and when."""

    provider: str
    unit: str
    amount: Decimal
    read_at: float


def read_balance(clients: ProviderClients, provider: str) -> dict[str, Decimal | None]:
    """The account's balance by the provider's call that reads it and sends nothing, per unit
    as the provider states it (Octopush legacy: per SMS type)."""
    return dict(profile_of(provider).balance(clients.sms(provider)))


def read_funds(clients: ProviderClients, provider: str) -> tuple[str, Decimal]:
    """The one figure an alert compares with its threshold: ``(unit, amount)``, one unit per
    provider whatever its API (the profile's ``funds``)."""
    try:
        return profile_of(provider).read_funds(clients.sms(provider))
    except ValueError as exc:
        raise ProviderError(str(exc), provider=provider) from exc


def configured_providers(settings: Settings) -> list[str]:
    """Providers whose credentials are all set (the others have no account to watch)."""
    return [p for p in CREDENTIAL_FIELDS if not missing_credentials(settings, p)]


def refresh_balances(
    settings: Settings, client: redis.Redis, clients: ProviderClients | None = None
) -> list[Balance]:
    """Read each configured account's funds and store them in ``BALANCES_KEY``.

    A provider that fails is logged and keeps its previous reading (its timestamp shows how
    old it is); the readings made are returned.
    """
    own = clients is None
    clients = clients or ProviderClients(settings)
    read: list[Balance] = []
    try:
        for provider in configured_providers(settings):
            try:
                unit, amount = read_funds(clients, provider)
            except (ProviderError, OSError) as exc:
                log.warning(
                    "balance not read",
                    extra={"provider": provider, "error": f"{type(exc).__name__}: {exc}"},
                )
                continue
            read.append(Balance(provider, unit, amount, time.time()))
    finally:
        if own:
            clients.close()
    if read:
        client.hset(
            BALANCES_KEY,
            mapping={b.provider: f"{b.unit} {b.amount} {b.read_at:.3f}" for b in read},
        )
    return read


def stored_balances(client: redis.Redis) -> list[Balance]:
    """The last reading of each account, from Redis (what the metrics serve)."""
    found: list[Balance] = []
    stored: dict[bytes, bytes] = client.hgetall(BALANCES_KEY)  # type: ignore[assignment]
    for provider, value in stored.items():
        parsed = _parse(provider.decode(), value.decode())
        if parsed is not None:
            found.append(parsed)
    return sorted(found, key=lambda b: b.provider)


def _parse(provider: str, value: str) -> Balance | None:
    parts = value.split()
    if len(parts) != 3:
        return None
    unit, amount, read_at = parts
    try:
        return Balance(provider, unit, Decimal(amount), float(read_at))
    except (ArithmeticError, ValueError):
        return None


__all__ = [
    "BALANCES_KEY",
    "Balance",
    "configured_providers",
    "read_balance",
    "read_funds",
    "refresh_balances",
    "stored_balances",
]
