"""The periodic tasks beat sends; they run on the workers' ``postier.scheduled`` queue."""

from __future__ import annotations

from postier import tasknames
from postier.dispatch import polling
from worker.app import app
from worker.context import process_context


@app.task(name=tasknames.RELEASE_DUE_MESSAGES)
def release_due_messages() -> int:
    """Scheduled messages whose time has come: queue and publish them."""
    dispatcher, publisher = process_context(app)
    return polling.release_due_messages(dispatcher, publisher)


@app.task(name=tasknames.REPUBLISH_UNPUBLISHED)
def republish_unpublished() -> int:
    """Queued messages the broker never got (it was down): publish them again."""
    dispatcher, publisher = process_context(app)
    return polling.republish_unpublished(dispatcher, publisher)


@app.task(name=tasknames.REAP_STUCK_SENDS)
def reap_stuck_sends() -> int:
    """Messages stuck in ``sending``: reconcile them by lookup."""
    dispatcher, publisher = process_context(app)
    return polling.reap_stuck_sends(dispatcher, publisher)


@app.task(name=tasknames.POLL_DELIVERY_STATES)
def poll_delivery_states() -> int:
    """Ask the providers for the delivery state of sent messages."""
    dispatcher, _ = process_context(app)
    return polling.poll_delivery_states(dispatcher)


@app.task(name=tasknames.POLL_WHATSAPP_INBOX)
def poll_whatsapp_inbox() -> int:
    """Store unread WhatsApp messages once and call the application's hook."""
    dispatcher, _ = process_context(app)
    return len(polling.poll_whatsapp_inbox(dispatcher, app))
