"""The periodic tasks beat sends; they run on the workers' ``postier.scheduled`` queue."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import redis
from redis.exceptions import LockError

from postier import tasknames
from postier.config import get_settings
from postier.dispatch import batches, polling
from postier.ledger.db import optimize
from worker.app import app
from worker.context import process_context

#: a pass holds its lock at most this many of its periods (and at least ``MIN_LOCK_SECONDS``):
#: a worker killed mid-pass keeps the next passes out only that long
LOCK_PERIODS = 3
MIN_LOCK_SECONDS = 10.0


@contextmanager
def single_pass(name: str, period: float) -> Iterator[bool]:
    """True when no other worker runs the pass ``name`` now (beat may send the next one
    while a slow pass still runs: passes must not pile up on the worker threads)."""
    client = redis.Redis.from_url(get_settings().redis_url)
    ttl = max(MIN_LOCK_SECONDS, LOCK_PERIODS * period)
    lock = client.lock(f"postier:pass:{name}", timeout=ttl, blocking=False)
    acquired = bool(lock.acquire(blocking=False))
    try:
        yield acquired
    finally:
        if acquired:
            with suppress(LockError):  # a pass longer than its lock: the lock already lapsed
                lock.release()
        client.close()


def run_once(name: str, period: float, run: Callable[[], int]) -> int:
    """``run()`` when no other worker runs the pass ``name`` now; else 0."""
    with single_pass(name, period) as mine:
        return run() if mine else 0


@app.task(name=tasknames.RELEASE_DUE_MESSAGES)
def release_due_messages() -> int:
    """Scheduled messages whose time has come: queue and publish them."""
    dispatcher, publisher = process_context(app)
    return polling.release_due_messages(dispatcher, publisher)


@app.task(name=tasknames.REPUBLISH_UNPUBLISHED)
def republish_unpublished() -> int:
    """Queued messages the broker never got (it was down): publish them again."""
    dispatcher, publisher = process_context(app)
    return polling.republish_unpublished(dispatcher, publisher)


@app.task(name=tasknames.REAP_STUCK_SENDS)
def reap_stuck_sends() -> int:
    """Messages stuck in ``sending``: reconcile them by lookup."""
    dispatcher, publisher = process_context(app)
    return run_once(
        "reap",
        dispatcher.settings.dispatch.reap_interval,
        lambda: polling.reap_stuck_sends(dispatcher, publisher),
    )


@app.task(name=tasknames.REAP_BATCHES)
def reap_batches() -> int:
    """Octopush batches lost with their worker, or whose answer was lost: settled by sending
    each again under its request_id; messages settled."""
    dispatcher, _ = process_context(app)
    return run_once(
        "reap-batches",
        batches.stuck_after(dispatcher) / 2,
        lambda: batches.reap_batches(dispatcher),
    )


@app.task(name=tasknames.POLL_DELIVERY_STATES)
def poll_delivery_states() -> int:
    """Ask the providers for the delivery state of sent messages."""
    dispatcher, _ = process_context(app)
    return run_once(
        "delivery",
        dispatcher.settings.dispatch.poll_delivery_interval,
        lambda: polling.poll_delivery_states(dispatcher),
    )


@app.task(name=tasknames.POLL_WHATSAPP_INBOX)
def poll_whatsapp_inbox() -> int:
    """Store unread WhatsApp messages once and call the application's hook."""
    dispatcher, _ = process_context(app)
    return run_once(
        "inbox",
        dispatcher.settings.dispatch.poll_inbox_interval,
        lambda: len(polling.poll_whatsapp_inbox(dispatcher, app)),
    )


@app.task(name=tasknames.REAP_EXPIRED_PERSONAL_DATA)
def reap_expired_personal_data() -> int:
    """Redact personal data older than its retention period (``postier.privacy.retention``)."""
    from postier.privacy.retention import redact_expired

    dispatcher, _ = process_context(app)
    retention = dispatcher.settings.retention
    return run_once(
        "retention",
        max(retention.interval, retention.pass_budget),
        lambda: redact_expired(dispatcher.engine, retention).total,
    )


@app.task(name=tasknames.OPTIMIZE_LEDGER)
def optimize_ledger() -> int:
    """Keep the ledger's planner statistics current (SQLite: ``PRAGMA optimize``)."""
    dispatcher, _ = process_context(app)
    return run_once(
        "optimize",
        dispatcher.settings.dispatch.optimize_interval,
        lambda: len(optimize(dispatcher.engine)),
    )


@app.task(name=tasknames.REFRESH_PROVIDER_BALANCES)
def refresh_provider_balances() -> int:
    """Read each configured provider account's balance into Redis, for the metrics."""
    from postier.dispatch.balances import refresh_balances

    dispatcher, _ = process_context(app)
    settings = dispatcher.settings

    def refresh() -> int:
        client = redis.Redis.from_url(settings.redis_url)
        try:
            return len(refresh_balances(settings, client, dispatcher.clients))
        finally:
            client.close()

    return run_once("balances", settings.metrics.balance_interval, refresh)


@app.task(name=tasknames.FOLD_LEDGER_COUNTS)
def fold_ledger_counts() -> int:
    """Fold the ledger's count deltas into its counters (PostgreSQL; ``postier.ledger.counts``)."""
    from postier.ledger.counts import fold_pending

    dispatcher, _ = process_context(app)
    return run_once(
        "fold-counts",
        dispatcher.settings.dispatch.count_fold_interval,
        lambda: fold_pending(dispatcher.engine),
    )
