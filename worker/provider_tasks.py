"""The send task: a message id in, one attempt out (the work is in ``postier.dispatch``)."""

from __future__ import annotations

from postier import tasknames
from worker.app import app
from worker.context import process_context


@app.task(name=tasknames.SEND_MESSAGE)
def send_message(message_id: str) -> str | None:
    """Send one message of the ledger.

    Attempts are counted in the ledger, not by Celery; a delayed retry is a ``scheduled`` row
    that beat releases, so this task never sleeps in the broker with an ETA.
    """
    dispatcher, publisher = process_context(app)
    outcome = dispatcher.send(message_id)
    if outcome.republish:
        publisher.publish([message_id])
    return outcome.status.value if outcome.status is not None else None


@app.task(name=tasknames.SEND_MESSAGES)
def send_messages(message_ids: list[str]) -> int:
    """Send a chunk of messages of a bulk enqueue, one claim each; returns how many were sent.

    A chunk cut short (worker lost) leaves its remaining rows ``queued``; beat republishes them.
    """
    dispatcher, publisher = process_context(app)
    sent = 0
    again: list[str] = []
    for message_id in message_ids:
        outcome = dispatcher.send(message_id)
        if outcome.republish:
            again.append(message_id)
        if outcome.status is not None and outcome.status.value == "sent":
            sent += 1
    if again:
        publisher.publish(again)
    return sent
