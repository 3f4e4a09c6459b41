"""The send task: a message id in, one attempt out (the work is in ``postier.dispatch``)."""

from __future__ import annotations

from celery import Task

from postier import tasknames
from worker.app import app
from worker.context import process_context


@app.task(name=tasknames.SEND_MESSAGE, bind=True, max_retries=None)
def send_message(self: Task, message_id: str) -> str | None:
    """Send one message of the ledger; ask Celery to run again when the attempt says so.

    Retries are counted in the ledger (``attempts``), not by Celery, so a rate-limit wait
    costs no attempt and a redelivered task sees the true count.
    """
    dispatcher, _ = process_context(app)
    outcome = dispatcher.send(message_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    return outcome.status.value if outcome.status is not None else None
