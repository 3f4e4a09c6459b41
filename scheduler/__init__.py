"""The beat role: ``celery -A scheduler beat``. It only sends; workers run the tasks."""

from scheduler.schedule import app, beat_schedule

__all__ = ["app", "beat_schedule"]
