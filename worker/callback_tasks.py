"""Status callback tasks: one attempt at an event (its outbox row id), and beat's pass.

Thin, like the send task: the work is ``postier.dispatch.callbacks``. The delivery task runs
on ``postier.callbacks``, consumed by a worker of its own (``worker-callbacks``), so an
application that answers slowly or not at all never holds a send worker's thread.
"""

from __future__ import annotations

import os
import threading

from postier import tasknames
from postier.dispatch.callbacks import CallbackDelivery, republish_due_events
from worker.app import app
from worker.context import process_context
from worker.scheduled_tasks import run_once

_lock = threading.Lock()
_deliveries: dict[int, CallbackDelivery] = {}


def delivery() -> CallbackDelivery:
    """This process's deliverer (engine, HTTP client), built on first use (never before a fork)."""
    pid = os.getpid()
    found = _deliveries.get(pid)
    if found is not None:
        return found
    with _lock:
        found = _deliveries.get(pid)
        if found is None:
            dispatcher, _ = process_context(app)
            found = CallbackDelivery(dispatcher.settings, dispatcher.engine, app)
            _deliveries.clear()
            _deliveries[pid] = found
    return found


@app.task(name=tasknames.DELIVER_CALLBACK)
def deliver_callback(event_id: int) -> str:
    """One attempt at callback event ``event_id``; a failure is retried by beat's pass."""
    return delivery().deliver(event_id).value


@app.task(name=tasknames.REPUBLISH_CALLBACKS)
def republish_callbacks() -> int:
    """Callback events due (first attempt or retry) or lost by the broker: publish them."""
    dispatcher, _ = process_context(app)
    settings = dispatcher.settings.callbacks
    return run_once(
        "callbacks",
        settings.pass_interval,
        lambda: republish_due_events(dispatcher.engine, app, settings),
    )
