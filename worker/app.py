"""The worker role's Celery app (``celery -A worker worker``)."""

from __future__ import annotations

from functools import partial

from postier import logs, metrics
from postier.celery_app import create_celery_app
from postier.dispatch.callbacks import publish_events
from postier.ledger import outbox
from worker import forking

app = create_celery_app(main="worker")
# structured, masked logs; /metrics served by the worker's main process (postier.metrics)
logs.connect_celery_signals()
metrics.connect_worker_signals()
# prefork children keep the parent's heap shared instead of copying it (worker.forking)
forking.connect_worker_signals()
# new callback events are handed to the broker right after their move commits (ids only)
outbox.set_notifier(partial(publish_events, app))
