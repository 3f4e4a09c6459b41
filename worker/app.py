"""The worker role's Celery app (``celery -A worker worker``)."""

from __future__ import annotations

from postier.celery_app import create_celery_app

app = create_celery_app(main="worker")
