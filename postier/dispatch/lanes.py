"""Lanes: a one-time code never waits behind bulk traffic.

Every message travels on one of two lanes, each a broker queue of its own:

- **transactional** (``postier.send``): single producer calls of the notification category,
  WhatsApp sends, and their retries, failovers and deferred releases;
- **bulk** (``postier.bulk``): ``send_many`` calls above ``dispatch.bulk_threshold``
  messages, campaigns (planning, fan-out, batches) and marketing.

A producer may choose with ``priority="transactional" | "bulk"``. The lane is stored on the
row (``messages.lane``), so whatever republishes a row later (beat's release of a retry, a
failover, the republish pass) puts it back on the same lane.

**Why a worker per lane.** Celery has no per-queue concurrency inside one worker: a worker
consuming both queues gives each free slot to whichever task comes next, and a backlog of bulk
chunks holds every slot. So capacity is reserved by process: ``postier up``, compose, the
Kubernetes base and the systemd units start a transactional worker (``-Q postier.send,
postier.scheduled,postier.hooks``, threads) and a bulk worker (``-Q postier.bulk``). Bulk
work can never take the transactional worker's slots, whatever its backlog, and the two lanes
scale apart. Beat's passes ride with the transactional worker, so releases of retried codes
never queue behind a campaign either.

**The rate limit is shared, with a reserve.** Both lanes draw on the provider account's one
GCRA budget (``postier.ratelimit``), but bulk may only use ``burst - reserve`` of its burst:
however hard bulk pushes, ``reserve`` tokens stay free for the transactional lane, which
therefore gets its tokens first.
"""

from __future__ import annotations

from typing import Literal

from postier import tasknames
from postier.ledger.models import Lane

__all__ = ["Lane", "Priority", "lane_for", "queue_for", "reserve_for"]

#: what a producer may ask for with ``priority=``
Priority = Literal["transactional", "bulk"]

_QUEUES = {Lane.TRANSACTIONAL: tasknames.QUEUE_SEND, Lane.BULK: tasknames.QUEUE_BULK}


def lane_for(
    category: str,
    *,
    count: int = 1,
    threshold: int,
    priority: Priority | str | None = None,
) -> Lane:
    """The lane of a message of ``category`` enqueued among ``count`` in one producer call.

    ``priority`` wins when given; else marketing and calls of more than ``threshold`` messages
    are bulk, and the rest (a code, a notification, a small batch of them) transactional.
    """
    if priority is not None:
        try:
            return Lane(priority)
        except ValueError:
            from postier.rules.errors import RuleViolation

            raise RuleViolation(
                "priority", "priority.value", "use 'transactional' or 'bulk'"
            ) from None
    if category == "marketing" or count > threshold:
        return Lane.BULK
    return Lane.TRANSACTIONAL


def queue_for(lane: Lane | str) -> str:
    """The broker queue of ``lane``."""
    return _QUEUES[Lane(lane)]


def reserve_for(lane: Lane | str, burst: int, share: float) -> int:
    """Tokens of a ``burst`` the lane may not take: ``share`` of it (at least one) for bulk,
    none for transactional. A burst of one leaves bulk nothing to reserve."""
    if Lane(lane) is Lane.TRANSACTIONAL or burst <= 1:
        return 0
    return min(burst - 1, max(1, round(burst * share)))
