"""The bulk worker yields the CPU to the transactional one (``dispatch.bulk_niceness``).

When both workers share a host's cores, a bulk send of personalised texts keeps every core
busy, and a one-time code's task waits for a time slice behind it: measured at a provider 80 ms
away, codes under a bulk send took up to 0.66 s instead of 0.17 s idle (make bench). The
kernel's scheduler settles it: a worker that consumes only the bulk queues lowers its own
priority before it forks its pool, so its children inherit it. Hosts of their own (containers,
systemd units) lose nothing by it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from typing import Any

from postier import tasknames
from postier.config import get_settings

log = logging.getLogger(__name__)


def lower_bulk_priority(queues: Collection[str], niceness: int) -> int:
    """``os.nice`` by ``niceness`` for a worker consuming only bulk queues; the increment
    applied (0 for any other worker, or when it is already at least that nice)."""
    if niceness <= 0 or not queues or not set(queues) <= set(tasknames.BULK_QUEUES):
        return 0
    current = os.nice(0)
    increment = max(0, niceness - current)
    if increment:
        os.nice(increment)
        log.info("bulk worker: CPU priority lowered", extra={"niceness": niceness})
    return increment


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    queues = list(sender.app.amqp.queues.consume_from) if sender is not None else []
    lower_bulk_priority(queues, get_settings().dispatch.bulk_niceness)


def connect_worker_signals() -> None:
    """At ``worker_init``: in the main process, before the pool forks."""
    from celery import signals

    signals.worker_init.connect(_on_worker_init, dispatch_uid="postier.priority.init", weak=False)
