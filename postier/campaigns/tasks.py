"""Handing campaign tasks to the broker: only a campaign id, and chunk bounds, cross it.

The ledger is written first and the task published second (as for messages,
``dispatch/publishing.py``): when the broker is down the work is not lost, the campaign's
pass on beat (``lifecycle.tick``) publishes again what was never done.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from postier import tasknames

log = logging.getLogger(__name__)


class CampaignTasks:
    """Publishes the plan, fan-out and batch tasks of campaigns, all on the bulk lane."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def _send(self, name: str, calls: Sequence[list[Any]]) -> int:
        sent = 0
        try:
            with self.app.producer_or_acquire() as producer:
                for args in calls:
                    self.app.send_task(
                        name, args=args, queue=tasknames.QUEUE_BULK, producer=producer
                    )
                    sent += 1
        except (OperationalError, RedisError, OSError) as exc:
            log.warning(
                "broker unavailable: %d of %d %s tasks published; beat publishes the rest",
                sent,
                len(calls),
                name,
                extra={"error": str(exc)},
            )
        return sent

    def plan(self, campaign_id: str) -> bool:
        """Publish the task that reads the campaign's audience into chunks."""
        return self._send(tasknames.PLAN_CAMPAIGN, [[campaign_id]]) == 1

    def fan_out(self, campaign_id: str, bounds: Sequence[tuple[int, int]]) -> int:
        """Publish one fan-out task per chunk ``(start, stop)``."""
        return self._send(
            tasknames.FAN_OUT_CAMPAIGN_CHUNK, [[campaign_id, start, stop] for start, stop in bounds]
        )

    def send_batches(self, campaign_id: str, count: int) -> int:
        """Publish ``count`` Octopush batch tasks for the campaign's queued messages."""
        return self._send(tasknames.SEND_CAMPAIGN_BATCH, [[campaign_id] for _ in range(count)])
