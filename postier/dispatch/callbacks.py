"""Status callbacks: delivering the outbox's events to the application, at least once.

An event (``postier.ledger.outbox``) is written with its status move; this module delivers
it. One attempt is: claim the row (a conditional UPDATE that also leases it), build the
body, deliver it to the row's target, log the attempt on the row. A failed attempt is retried
with exponential backoff and jitter (``callbacks.backoff_base`` doubled each time, capped at
``callbacks.backoff_max``) until ``callbacks.max_age`` after the event; then it is given up
and stays visible (``postier callbacks``, ``postier_callbacks_total{outcome="given_up"}``).

Retries are due times on the row that beat's pass publishes, never Celery ETA tasks (the same
rule as messages: docs/ARCHITECTURE.md, "Decisions"). The delivery task runs on its own queue
and worker, so a receiver that hangs holds only callback threads, never a send.

Targets: an https URL (a signed JSON POST; ``postier.callbacks`` verifies it), a Celery task
name (``send_task`` with the body less personal data: only ids cross the broker) or
``module:function`` (called in the callbacks worker with the body).
"""

from __future__ import annotations

import importlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import httpx
from celery import Celery
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError
from sqlalchemy import or_, select, text, update
from sqlalchemy.engine import Engine

from postier import metrics, tasknames
from postier.callbacks.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_header,
)
from postier.config import CallbackSettings, Settings
from postier.ledger.db import session_scope
from postier.ledger.models import (
    PENDING_CALLBACKS_SQL,
    CallbackEvent,
    CallbackKind,
    callback_events_table,
    inbound_messages_table,
)
from postier.rules.callback_targets import TargetKind, check_target
from postier.rules.errors import RuleViolation

log = logging.getLogger(__name__)

#: the body's ``type`` of each kind of event
EVENT_TYPES: Final[Mapping[CallbackKind, str]] = {
    CallbackKind.STATUS: "message.status",
    CallbackKind.INBOUND: "message.inbound",
}
#: body fields that are personal data: never handed to the broker (Celery task targets)
PERSONAL_FIELDS: Final = frozenset({"sender", "text"})
#: characters of an error kept in the attempt log
MAX_ERROR_CHARS: Final = 300
#: a claimed attempt owns its row this much longer than its timeouts (a lost worker's row
#: becomes due again after it)
LEASE_MARGIN: Final = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


class Outcome(StrEnum):
    """How one delivery task ended."""

    DELIVERED = "delivered"
    RETRIED = "retried"
    GIVEN_UP = "given_up"
    #: nothing to do: delivered already, not due yet, or claimed by another worker
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try: when, how long, and the HTTP status or the error."""

    at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and (self.status_code is None or 200 <= self.status_code < 300)

    def as_log(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"at": self.at.isoformat(), "duration_ms": self.duration_ms}
        if self.status_code is not None:
            entry["status_code"] = self.status_code
        if self.error is not None:
            entry["error"] = self.error
        return entry


def backoff_delay(attempts: int, settings: CallbackSettings, rng: random.Random) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1 for the first).

    ``backoff_base * 2**(attempts-1)``, capped at ``backoff_max``, with "equal jitter": half
    of it fixed, half random, so receivers coming back from an outage are not hit by every
    event at once and no retry comes sooner than half its step.
    """
    step = min(settings.backoff_max, settings.backoff_base * 2.0 ** max(0, attempts - 1))
    return step / 2 + rng.uniform(0, step / 2)


def next_attempt_at(
    created_at: datetime,
    attempts: int,
    now: datetime,
    settings: CallbackSettings,
    rng: random.Random,
) -> datetime | None:
    """When to try again after ``attempts`` failures; None once past ``max_age`` (give up)."""
    due = now + timedelta(seconds=backoff_delay(attempts, settings, rng))
    if due > created_at + timedelta(seconds=settings.max_age):
        return None
    return due


def event_body(event: CallbackEvent, inbound: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of ``event``, the same on every attempt.

    A status event carries no phone number: the application knows its message by
    ``message_id`` and ``idempotency_key``. An inbound event carries the sender and text,
    read from the inbound row (the reply is what the application needs).
    """
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "type": EVENT_TYPES[event.kind],
        "occurred_at": event.occurred_at.isoformat(),
        "created_at": event.created_at.isoformat(),
        "provider": event.provider,
    }
    if event.kind is CallbackKind.STATUS:
        body.update(
            message_id=event.message_id,
            idempotency_key=event.idempotency_key,
            sequence=event.sequence,
            status=None if event.status is None else str(event.status),
            previous_status=None if event.from_status is None else str(event.from_status),
            provider_status=event.provider_status,
            reason=event.reason,
        )
    else:
        found = inbound or {}
        received = found.get("received_at")
        body.update(
            inbound_id=event.inbound_id,
            channel=found.get("channel"),
            sender=found.get("sender"),
            text=found.get("text"),
            received_at=received.isoformat() if isinstance(received, datetime) else None,
        )
    return body


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The exact bytes POSTed and signed (compact, keys sorted)."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def signing_secrets(settings: CallbackSettings) -> list[str]:
    """The secrets POSTs are signed with: the current one, and the previous during a rotation."""
    secrets = [settings.secret.get_secret_value(), settings.previous_secret.get_secret_value()]
    return [secret for secret in secrets if secret]


def _short(error: BaseException | str) -> str:
    text_ = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text_[:MAX_ERROR_CHARS]


class CallbackDelivery:
    """Delivers events for one worker process: its engine, HTTP client and Celery app."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        app: Celery | None = None,
        *,
        client: httpx.Client | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.callbacks = settings.callbacks
        self.engine = engine
        self.app = app
        self.rng = rng or random.Random()  # jitter, not a secret
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(self.callbacks.timeout, connect=self.callbacks.connect_timeout),
            follow_redirects=False,
            headers={"User-Agent": "Postier-Callbacks/1"},
        )

    def close(self) -> None:
        self.client.close()

    # -- one attempt -------------------------------------------------------------------------
    def deliver(self, event_id: int) -> Outcome:
        """One attempt at event ``event_id`` (an outbox row id), logged on its row."""
        now = _now()
        event = self._claim(event_id, now)
        if event is None:
            return Outcome.SKIPPED
        body = self._body(event)
        attempt = self._attempt(event, body)
        return self._record(event, attempt)

    def _claim(self, event_id: int, now: datetime) -> CallbackEvent | None:
        """The row, leased for this attempt, when it is undelivered and due; else None."""
        table = callback_events_table
        lease = self.callbacks.timeout + self.callbacks.connect_timeout + LEASE_MARGIN
        with session_scope(self.engine) as session:
            claimed = session.execute(
                update(table)
                .where(
                    table.c.id == event_id,
                    table.c.delivered_at.is_(None),
                    table.c.given_up_at.is_(None),
                    table.c.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + timedelta(seconds=lease))
                .returning(table.c.id)
            ).first()
            if claimed is None:
                return None
            event = session.get(CallbackEvent, event_id)
            if event is not None:
                session.expunge(event)
            return event

    def _body(self, event: CallbackEvent) -> dict[str, Any]:
        inbound: Mapping[str, Any] | None = None
        if event.kind is CallbackKind.INBOUND and event.inbound_id is not None:
            table = inbound_messages_table
            with session_scope(self.engine) as session:
                row = session.execute(
                    select(
                        table.c.channel, table.c.sender, table.c.text, table.c.received_at
                    ).where(table.c.id == event.inbound_id)
                ).first()
            inbound = dict(row._mapping) if row is not None else None
        return event_body(event, inbound)

    def _attempt(self, event: CallbackEvent, body: dict[str, Any]) -> Attempt:
        started_at = _now()
        started = time.perf_counter()

        def done(status_code: int | None = None, error: str | None = None) -> Attempt:
            took = int((time.perf_counter() - started) * 1000)
            return Attempt(started_at, took, status_code, error)

        try:
            kind = check_target(event.target, field="target", allow_http=self.callbacks.allow_http)
        except RuleViolation as exc:
            return done(error=_short(str(exc)))
        try:
            if kind is TargetKind.URL:
                return done(status_code=self._post(event, body))
            if kind is TargetKind.FUNCTION:
                _function(event.target)(body)
            else:
                self._send_task(event.target, body)
        except httpx.TimeoutException as exc:
            return done(error=_short(f"timeout: {type(exc).__name__}"))
        except Exception as exc:  # noqa: BLE001 (the application's code: any error fails the attempt)
            return done(error=_short(exc))
        return done()

    def _post(self, event: CallbackEvent, body: dict[str, Any]) -> int:
        secrets = signing_secrets(self.callbacks)
        if not secrets:
            raise RuntimeError("no callbacks.secret set: URL events are never sent unsigned")
        payload = encode_body(body)
        timestamp = int(time.time())
        response = self.client.post(
            event.target,
            content=payload,
            headers={
                "Content-Type": "application/json",
                EVENT_ID_HEADER: event.event_id,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: signature_header(payload, timestamp, secrets),
                "Postier-Attempt": str(event.attempts + 1),
            },
        )
        return response.status_code

    def _send_task(self, name: str, body: dict[str, Any]) -> None:
        if self.app is None:
            raise RuntimeError("no Celery app to send the task with")
        public = {key: value for key, value in body.items() if key not in PERSONAL_FIELDS}
        self.app.send_task(name, kwargs={"event": public}, queue=self.callbacks.task_queue)

    def _record(self, event: CallbackEvent, attempt: Attempt) -> Outcome:
        now = _now()
        attempts = event.attempts + 1
        kind = str(event.kind)
        values: dict[str, Any] = {
            "attempts": attempts,
            "attempt_log": [*event.attempt_log, attempt.as_log()],
        }
        if attempt.ok:
            outcome = Outcome.DELIVERED
            values["delivered_at"] = now
            metrics.count_callback(kind, outcome, (now - event.occurred_at).total_seconds())
        else:
            due = next_attempt_at(event.created_at, attempts, now, self.callbacks, self.rng)
            if due is None:
                outcome = Outcome.GIVEN_UP
                values["given_up_at"] = now
                log.warning(
                    "callback event given up",
                    extra={"event_id": event.event_id, "attempts": attempts},
                )
            else:
                outcome = Outcome.RETRIED
                # unstamped: beat's pass publishes it once due
                values.update(next_attempt_at=due, published_at=None)
            metrics.count_callback(kind, outcome)
        table = callback_events_table
        with session_scope(self.engine) as session:
            session.execute(update(table).where(table.c.id == event.id).values(**values))
        return outcome


def _function(target: str) -> Callable[[dict[str, Any]], object]:
    module, _, name = target.partition(":")
    found: Callable[[dict[str, Any]], object] = getattr(importlib.import_module(module), name)
    return found


# -- publishing ----------------------------------------------------------------------------------
def publish_events(app: Celery, event_ids: list[int]) -> None:
    """Hand event ids to the callbacks queue (ids only), on one broker connection."""
    if not event_ids:
        return
    with app.producer_or_acquire() as producer:
        for event_id in event_ids:
            app.send_task(
                tasknames.DELIVER_CALLBACK,
                args=[event_id],
                queue=tasknames.QUEUE_CALLBACKS,
                producer=producer,
            )


def republish_due_events(
    engine: Engine, app: Celery, settings: CallbackSettings, limit: int = 1000
) -> int:
    """Beat's pass: events due and never handed over (written where no notifier publishes,
    or waiting for their retry), or handed over ``republish_after`` ago and still undelivered
    (the task was lost): stamp them, publish them. Read from the partial index of undelivered
    rows by due time, never by an id cursor (out-of-order commits would be skipped)."""
    now = _now()
    stale = now - timedelta(seconds=settings.republish_after)
    table = callback_events_table
    with session_scope(engine) as session:
        ids = [
            int(row_id)
            for row_id in session.execute(
                select(table.c.id)
                .where(
                    text(PENDING_CALLBACKS_SQL),
                    table.c.next_attempt_at <= now,
                    or_(table.c.published_at.is_(None), table.c.published_at <= stale),
                )
                .order_by(table.c.next_attempt_at)
                .limit(limit)
            ).scalars()
        ]
        if not ids:
            return 0
        session.execute(update(table).where(table.c.id.in_(ids)).values(published_at=now))
    try:
        publish_events(app, ids)
    except (OperationalError, RedisError, OSError):  # the broker is down: a next pass retries
        log.warning("callback events not published", extra={"events": len(ids)})
        return 0
    return len(ids)


# -- listing -------------------------------------------------------------------------------------
def list_events(engine: Engine, *, state: str = "given_up", limit: int = 50) -> list[CallbackEvent]:
    """Events by ``state``: "pending", "delivered" or "given_up", newest first."""
    table = callback_events_table
    conditions: dict[str, Any] = {
        "pending": text(PENDING_CALLBACKS_SQL),
        "delivered": table.c.delivered_at.is_not(None),
        "given_up": table.c.given_up_at.is_not(None),
    }
    if state not in conditions:
        raise RuleViolation("state", "state.value", "use pending, delivered or given_up")
    with session_scope(engine) as session:
        rows = list(
            session.execute(
                select(CallbackEvent)
                .where(conditions[state])
                .order_by(table.c.created_at.desc())
                .limit(limit)
            ).scalars()
        )
        for row in rows:
            session.expunge(row)
    return rows
