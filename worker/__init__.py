"""The worker role: ``celery -A worker worker -Q postier.send,postier.scheduled``.

Importing the package registers every task on ``app``.
"""

from worker import campaign_tasks, provider_tasks, scheduled_tasks
from worker.app import app

__all__ = ["app", "campaign_tasks", "provider_tasks", "scheduled_tasks"]
