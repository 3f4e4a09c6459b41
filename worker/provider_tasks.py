"""The send task: a message id in, one attempt out (the work is in ``postier.dispatch``)."""

from __future__ import annotations

from postier import tasknames
from postier.dispatch.batching import send_chunk
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
    """Send a chunk of messages of a bulk enqueue; returns how many were sent.

    Octopush SMS of the chunk with one same text go in one request each (``batching``); the
    others are sent one claim each. A chunk cut short (worker lost) leaves its remaining rows
    ``queued``; beat republishes them.
    """
    dispatcher, publisher = process_context(app)
    result = send_chunk(dispatcher, message_ids)
    if result.republish:
        publisher.publish(result.republish)
    return result.sent
