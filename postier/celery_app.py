"""The one Celery app factory, with the reliability settings of docs/ARCHITECTURE.md.

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a task is acknowledged after it ran,
  so a killed worker's task is delivered again (the ledger's conditional claim makes that
  second delivery harmless).
- prefetch 1: a worker holds one unacknowledged message per process, not a backlog.
- ``task_ignore_result``: the ledger is the source of truth; no result backend.
- Only message ids cross the broker; task arguments never hold personal data or secrets.
"""

from __future__ import annotations

from celery import Celery

from postier import tasknames
from postier.config import Settings, get_settings

#: Redis redelivers an unacknowledged task after this long; longer than any task may run
VISIBILITY_TIMEOUT = 3600


def create_celery_app(settings: Settings | None = None, *, main: str = "postier") -> Celery:
    """A Celery app configured from ``settings``; roles add their tasks or schedule to it."""
    settings = settings or get_settings()
    app = Celery(main, broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        task_default_queue=tasknames.QUEUE_SEND,
        task_routes={
            tasknames.SEND_MESSAGE: {"queue": tasknames.QUEUE_SEND},
            tasknames.SEND_MESSAGES: {"queue": tasknames.QUEUE_SEND},
            "postier.campaigns.*": {"queue": tasknames.QUEUE_BULK},
            "postier.release_*": {"queue": tasknames.QUEUE_SCHEDULED},
            "postier.republish_*": {"queue": tasknames.QUEUE_SCHEDULED},
            "postier.poll_*": {"queue": tasknames.QUEUE_SCHEDULED},
            "postier.reap_*": {"queue": tasknames.QUEUE_SCHEDULED},
            tasknames.OPTIMIZE_LEDGER: {"queue": tasknames.QUEUE_SCHEDULED},
            tasknames.REFRESH_PROVIDER_BALANCES: {"queue": tasknames.QUEUE_SCHEDULED},
            tasknames.FOLD_LEDGER_COUNTS: {"queue": tasknames.QUEUE_SCHEDULED},
            "postier.hooks.*": {"queue": tasknames.QUEUE_HOOKS},
            tasknames.DELIVER_CALLBACK: {"queue": tasknames.QUEUE_CALLBACKS},
        },
        # Flower shows tasks live from the workers' events; a "task-sent" event per publish
        # would double the producer's cost for little (Flower sees the task when received).
        worker_send_task_events=True,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
    )
    return app
