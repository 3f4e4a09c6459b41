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
from postier.dispatch.lanes import queue_for
from postier.ledger.db import session_scope
from postier.ledger.models import Lane
from postier.ledger.queries import lanes_of, mark_published, mark_unpublished

log = logging.getLogger(__name__)


#: up to this many ids, one task per message; beyond, ids go in chunks (one task per chunk)
SINGLE_TASK_LIMIT = 64
#: the most ids one ``send_messages`` task carries
MAX_CHUNK = 100
#: the fewest ids a bulk task carries (unless fewer are published)
MIN_BULK_CHUNK = 25
#: the most ids a bulk task carries: its messages go out concurrently or in Octopush groups,
#: so a larger chunk costs the worker nothing and the producer fewer publishes (a publish is
#: most of a millisecond of Celery's Python). 500, one Octopush request's most recipients: a
#: chunk of one text is one request. What it costs is the chunk's latency: at 80 ms a request
#: and 48 in flight, its last message goes some 0.9 s after its first (0.4 s at 200), while
#: the transactional lane has a worker of its own.
MAX_BULK_CHUNK = 500


def plan_tasks(message_ids: Sequence[str]) -> list[list[str]]:
    """Split ids into tasks: single ids for small sets, else enough chunks to keep every
    worker thread busy (at least ``SINGLE_TASK_LIMIT`` tasks) and none over ``MAX_CHUNK``."""
    ids = list(message_ids)
    if len(ids) <= SINGLE_TASK_LIMIT:
        return [[i] for i in ids]
    # floor, not ceiling: n // (n // 64) chunks is at least 64 (a ceiling gave 50 for 197 ids)
    size = min(MAX_CHUNK, len(ids) // SINGLE_TASK_LIMIT)
    return [ids[start : start + size] for start in range(0, len(ids), size)]


#: tasks a batch released by beat is split into: enough to keep a worker's threads busy, few
#: enough that one text's messages still share Octopush requests (``batching``)
RELEASE_TASKS = 16


def plan_spread(message_ids: Sequence[str], tasks: int = RELEASE_TASKS) -> list[list[str]]:
    """Split ids into at most ``tasks`` chunks of equal size (none over ``MAX_CHUNK``)."""
    ids = list(message_ids)
    size = min(MAX_CHUNK, max(1, -(-len(ids) // max(1, tasks))))
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def plan_lane(message_ids: Sequence[str], lane: Lane, spread: int | None) -> list[list[str]]:
    """The tasks of ``lane``: the transactional lane as ``plan_tasks`` (a code is a task of its
    own), the bulk lane always in chunks (its worker sends a chunk's requests concurrently)."""
    if lane is Lane.BULK:
        # chunks, never lone ids: a chunk's messages share Octopush requests or go out
        # concurrently, and a handful of tasks keeps the bulk worker's processes busy
        ids = list(message_ids)
        tasks = spread or RELEASE_TASKS
        size = min(MAX_BULK_CHUNK, max(MIN_BULK_CHUNK, -(-len(ids) // tasks)))
        return [ids[start : start + size] for start in range(0, len(ids), size)]
    return plan_tasks(message_ids) if spread is None else plan_spread(message_ids, spread)


def _chunk_repr(chunk: Sequence[str]) -> str:
    """What Flower shows of a chunk's arguments: Celery's own ``saferepr`` of 500 ids cost a
    fifth of a bulk publish, and showed only the first 1,024 characters anyway."""
    return f"[['{chunk[0]}', … {len(chunk)} ids … '{chunk[-1]}']]"


class Publisher:
    """Publishes send tasks over one pooled broker connection, each on its lane's queue.

    A publish through kombu costs far more than the Redis push itself, so bulk sends go out as
    ``send_messages`` tasks of up to ``MAX_CHUNK`` ids; the worker claims each id on its own,
    so a chunk delivered twice still sends every message once.
    """

    def __init__(self, app: Celery, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    def publish(
        self,
        message_ids: Sequence[str],
        *,
        lane: Lane | None = None,
        spread: int | None = None,
        stamped: bool = False,
    ) -> int:
        """Publish ids in order; return how many reached the broker (the rest wait for beat).

        ``stamped``: the rows were stored with ``published_at`` already set (a producer does
        so, saving an UPDATE per 500 rows): only the ids the broker did not take are cleared.

        ``lane``: the queue of every id, when the caller knows it (a producer, a campaign);
        else each row's own lane is read from the ledger, so a retry, a failover or a release
        goes back on the lane it came from. ``spread``: split into at most that many tasks
        (``plan_spread``) rather than one task per id for small sets (``plan_tasks``).
        """
        if not message_ids:
            return 0
        if lane is None:
            with session_scope(self.engine) as session:
                lanes = lanes_of(session, message_ids)
            by_lane: dict[Lane, list[str]] = {}
            for id_ in message_ids:
                by_lane.setdefault(lanes.get(id_, Lane.TRANSACTIONAL), []).append(id_)
        else:
            by_lane = {Lane(lane): list(message_ids)}
        plan = [
            (queue_for(each), chunk)
            for each, ids in by_lane.items()
            for chunk in plan_lane(ids, each, spread)
        ]
        done: list[str] = []
        try:
            with self.app.producer_or_acquire() as producer:
                for queue, chunk in plan:
                    if len(chunk) == 1:
                        self.app.send_task(
                            tasknames.SEND_MESSAGE, args=[chunk[0]], queue=queue, producer=producer
                        )
                    else:
                        self.app.send_task(
                            tasknames.SEND_MESSAGES,
                            args=[chunk],
                            queue=queue,
                            producer=producer,
                            argsrepr=_chunk_repr(chunk),
                        )
                    done.extend(chunk)
        except (OperationalError, RedisError, OSError) as exc:
            log.warning(
                "broker unavailable: %d of %d published; the rest will be republished by beat",
                len(done),
                len(message_ids),
                extra={"error": str(exc)},
            )
        if stamped:
            if len(done) < len(message_ids):
                taken = set(done)
                with session_scope(self.engine) as session:
                    mark_unpublished(session, [i for i in message_ids if i not in taken])
        elif done:
            with session_scope(self.engine) as session:
                mark_published(session, done, datetime.now(UTC))
        return len(done)
