"""The worker role: ``celery -A worker worker -Q postier.send,postier.scheduled``.

Importing the package registers every task on ``app``.
"""

from worker import provider_tasks, scheduled_tasks
from worker.app import app

__all__ = ["app", "provider_tasks", "scheduled_tasks"]
