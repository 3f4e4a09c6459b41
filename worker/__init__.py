"""The worker role: ``celery -A worker worker -Q postier.send,postier.scheduled`` (and
``-Q postier.callbacks`` for the callbacks worker).

Importing the package registers every task on ``app``.
"""

from worker import callback_tasks, campaign_tasks, provider_tasks, scheduled_tasks
from worker.app import app

__all__ = ["app", "callback_tasks", "campaign_tasks", "provider_tasks", "scheduled_tasks"]
