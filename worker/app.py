"""The worker role's Celery app (``celery -A worker worker``)."""

from __future__ import annotations

from postier import logs, metrics
from postier.celery_app import create_celery_app

app = create_celery_app(main="worker")
# structured, masked logs; /metrics served by the worker's main process (postier.metrics)
logs.connect_celery_signals()
metrics.connect_worker_signals()
