"""The beat schedule: periods come from ``dispatch`` settings, task names from ``tasknames``.

Each entry expires after its own period so a backlog of periodic tasks never piles up while
the workers are down.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import signals

from postier import logs, tasknames
from postier.celery_app import create_celery_app
from postier.config import (
    CallbackSettings,
    CampaignSettings,
    DispatchSettings,
    MetricsSettings,
    RetentionSettings,
    Settings,
    get_settings,
)
from postier.dispatch.heartbeat import BeatHeartbeat


def beat_schedule(
    dispatch: DispatchSettings,
    campaigns: CampaignSettings | None = None,
    retention: RetentionSettings | None = None,
    metrics: MetricsSettings | None = None,
    callbacks: CallbackSettings | None = None,
) -> dict[str, dict[str, Any]]:
    """The periodic tasks and their periods (seconds); with ``campaigns``, the campaigns'
    passes too; with ``retention``, the pass redacting expired personal data; with
    ``metrics``, the pass reading the provider balances (unless its interval is 0); with
    ``callbacks``, the pass publishing due status callback events."""
    entries = {
        "release-due-messages": (tasknames.RELEASE_DUE_MESSAGES, dispatch.release_interval),
        "republish-unpublished": (tasknames.REPUBLISH_UNPUBLISHED, dispatch.republish_interval),
        "poll-delivery-states": (tasknames.POLL_DELIVERY_STATES, dispatch.poll_delivery_interval),
        "poll-whatsapp-inbox": (tasknames.POLL_WHATSAPP_INBOX, dispatch.poll_inbox_interval),
        "reap-stuck-sends": (tasknames.REAP_STUCK_SENDS, dispatch.reap_interval),
        "optimize-ledger": (tasknames.OPTIMIZE_LEDGER, dispatch.optimize_interval),
        "fold-ledger-counts": (tasknames.FOLD_LEDGER_COUNTS, dispatch.count_fold_interval),
    }
    # Octopush batches (campaigns' and bulk chunks'): settled after batch_stuck_after (or half
    # the single-send reaper's stuck_after), so this pass runs twice as often
    stuck = dispatch.stuck_after / 2
    if campaigns is not None:
        stuck = min(campaigns.batch_stuck_after, stuck)
        entries["release-due-campaigns"] = (
            tasknames.RELEASE_DUE_CAMPAIGNS,
            campaigns.tick_interval,
        )
    entries["reap-batches"] = (tasknames.REAP_BATCHES, max(0.5, stuck / 2))
    if retention is not None:
        entries["reap-expired-personal-data"] = (
            tasknames.REAP_EXPIRED_PERSONAL_DATA,
            retention.interval,
        )
    if metrics is not None and metrics.balance_interval > 0:
        entries["refresh-provider-balances"] = (
            tasknames.REFRESH_PROVIDER_BALANCES,
            metrics.balance_interval,
        )
    if callbacks is not None:
        entries["republish-callbacks"] = (tasknames.REPUBLISH_CALLBACKS, callbacks.pass_interval)
    return {
        name: {
            "task": task,
            "schedule": period,
            "options": {"queue": tasknames.QUEUE_SCHEDULED, "expires": max(period, 1.0)},
        }
        for name, (task, period) in entries.items()
    }


def connect_heartbeat(settings: Settings) -> BeatHeartbeat:
    """Record beat's publishes in Redis (``postier.dispatch.heartbeat``), for the metrics."""
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    heartbeat = BeatHeartbeat(client)

    def on_publish(**_: Any) -> None:
        heartbeat.beat()

    signals.after_task_publish.connect(
        on_publish, dispatch_uid="postier.beat.heartbeat", weak=False
    )
    return heartbeat


app = create_celery_app(main="scheduler")
logs.connect_celery_signals()
app.conf.beat_schedule = beat_schedule(
    get_settings().dispatch,
    get_settings().campaigns,
    get_settings().retention,
    metrics=get_settings().metrics,
    callbacks=get_settings().callbacks,
)
connect_heartbeat(get_settings())
