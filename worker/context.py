"""The objects one worker process reuses: settings, ledger engine, provider clients, limiter.

Built lazily in the process that uses them, never before a fork: an httpx pool or a database
connection must not be shared between prefork children.
"""

from __future__ import annotations

import os
import threading

import redis
from celery import Celery

from postier.config import get_settings
from postier.dispatch.clients import ProviderClients
from postier.dispatch.health import ProviderHealth
from postier.dispatch.publishing import Publisher
from postier.dispatch.sending import Dispatcher
from postier.ledger.db import make_engine
from postier.ratelimit import RateLimiter

_lock = threading.Lock()
_state: dict[int, tuple[Dispatcher, Publisher]] = {}


def process_context(app: Celery) -> tuple[Dispatcher, Publisher]:
    """This process's dispatcher and publisher, built on first use."""
    pid = os.getpid()
    found = _state.get(pid)
    if found is not None:
        return found
    with _lock:
        found = _state.get(pid)
        if found is None:
            settings = get_settings()
            engine = make_engine(settings.database_url)
            clients = ProviderClients(settings)
            client = redis.Redis.from_url(settings.redis_url)
            limiter = RateLimiter(client)
            health = ProviderHealth(client, settings) if settings.health.enabled else None
            found = (
                Dispatcher(settings, engine, clients, limiter, health=health),
                Publisher(app, engine),
            )
            _state.clear()
            _state[pid] = found
    return found
