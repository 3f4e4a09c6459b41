"""Handing message ids to the broker, after the ledger rows are committed.

A row is stored first and published second, so a broker outage can delay a message but never
lose it: rows left unpublished are found by ``unpublished`` and published again by beat.
Only the id crosses the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from celery import Celery
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError
from sqlalchemy.engine import Engine

from postier import tasknames
from postier.ledger.db import session_scope
from postier.ledger.queries import mark_published

log = logging.getLogger(__name__)


class Publisher:
    """Publishes ``send_message`` tasks over one pooled broker connection."""

    def __init__(self, app: Celery, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    def publish(self, message_ids: Sequence[str], *, countdown: float | None = None) -> int:
        """Publish ids in order; return how many reached the broker (the rest wait for beat)."""
        done: list[str] = []
        try:
            with self.app.producer_or_acquire() as producer:
                for message_id in message_ids:
                    self.app.send_task(
                        tasknames.SEND_MESSAGE,
                        args=[message_id],
                        queue=tasknames.QUEUE_SEND,
                        producer=producer,
                        countdown=countdown,
                    )
                    done.append(message_id)
        except (OperationalError, RedisError, OSError) as exc:
            log.warning(
                "broker unavailable: %d of %d published; the rest will be republished by beat",
                len(done),
                len(message_ids),
                extra={"error": str(exc)},
            )
        if done:
            with session_scope(self.engine) as session:
                mark_published(session, done, datetime.now(UTC))
        return len(done)
