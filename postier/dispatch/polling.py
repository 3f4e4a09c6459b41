"""What beat runs periodically: delivery state, the WhatsApp inbox, stuck sends, lost publishes.

Each function is one pass, bounded by ``limit``, so a slow provider delays a pass but never
piles passes up; beat runs the next one on its period.
"""

from __future__ import annotations

import importlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from celery import Celery
from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from postier import metrics
from postier.config import Settings
from postier.dispatch.publishing import RELEASE_TASKS, Publisher
from postier.dispatch.redelivery import resend_undelivered
from postier.dispatch.resolving import Resolution, resolve_ambiguous
from postier.dispatch.sending import Dispatcher
from postier.ledger.db import in_short_transactions, session_scope
from postier.ledger.models import IX_RECIPIENT, InboundMessage, Message, MessageStatus
from postier.ledger.plans import pinned
from postier.ledger.queries import (
    AwaitingDelivery,
    awaiting_delivery,
    find_by_provider_message_id,
    mark_inbound_dispatched,
    mark_status_checked,
    record_inbound,
    release_due,
    stuck_sending,
    undispatched_inbound,
    unpublished,
)
from postier.ledger.states import transition, transition_many
from postier.providers.errors import (
    AmbiguousError,
    ProviderError,
    RetryableError,
    UnsupportedFeatureError,
)
from postier.providers.results import DeliveryState, Provider, StatusReport
from postier.providers.results import InboundMessage as ReceivedMessage

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def release_due_messages(dispatcher: Dispatcher, publisher: Publisher, limit: int = 5000) -> int:
    """Scheduled rows whose time has come: ``scheduled → queued``, then published."""
    total = 0
    while True:
        with session_scope(dispatcher.engine) as session:
            ids = release_due(session, _now(), limit=limit)
        if not ids:
            return total
        # a few chunks, not a task per id: one text's messages share Octopush requests
        publisher.publish(ids, spread=RELEASE_TASKS)
        total += len(ids)
        if len(ids) < limit:
            return total


def republish_unpublished(dispatcher: Dispatcher, publisher: Publisher, limit: int = 5000) -> int:
    """Queued rows never handed to the broker (or whose task was lost): publish them again.

    A row published twice is harmless: the worker's conditional claim sends it once.
    """
    older_than = _now() - timedelta(seconds=dispatcher.settings.dispatch.republish_after)
    with session_scope(dispatcher.engine) as session:
        ids = unpublished(session, older_than, limit)
    return publisher.publish(ids) if ids else 0


def reap_stuck_sends(dispatcher: Dispatcher, publisher: Publisher, limit: int = 500) -> int:
    """Rows stuck in ``sending`` (a worker died mid-call): look them up, never resend blindly."""
    older_than = _now() - timedelta(seconds=dispatcher.settings.dispatch.stuck_after)
    with session_scope(dispatcher.engine) as session:
        stuck = stuck_sending(session, older_than, limit)
        for row in stuck:
            session.expunge(row)
    count = 0
    for message in stuck:
        with session_scope(dispatcher.engine) as session:
            moved = transition(
                session,
                message.id,
                MessageStatus.SENDING,
                MessageStatus.UNKNOWN,
                detail="stuck in sending: the worker was lost mid-call",
            )
        if not moved:
            continue
        if message.attempts > dispatcher.settings.dispatch.max_attempts:
            # lost its worker on every attempt: a poison message, not bad luck; a person decides
            count += 1
            continue
        count += 1
        if resolve_ambiguous(dispatcher, message) is Resolution.RESEND:
            publisher.publish([message.id])
    return count


#: states in which a row may be waiting for the provider's word on a send
IN_FLIGHT = (MessageStatus.SENDING, MessageStatus.UNKNOWN, MessageStatus.SENT)


#: rows a delivery state may settle: ``expired`` ones too, as a late receipt still counts
SETTLED_BY_REPORT = (MessageStatus.SENT, MessageStatus.UNKNOWN, MessageStatus.EXPIRED)


def apply_report(
    engine: Engine,
    message: Message | AwaitingDelivery,
    report: StatusReport,
    settings: Settings | None = None,
) -> bool:
    """Move a ``sent`` (or ``unknown``, or ``expired``) row to its final state when ``report``
    gives one; counted in ``postier_messages_total``, where the final totals are read.

    With ``settings``, an ``undelivered`` for a temporary reason is resent once through the
    fallback (``redelivery``), which copies the whole row: the poll's light row is read in
    full for it (a move changes none of the columns the resend inherits).
    """
    if report.state is DeliveryState.DELIVERED or report.state is DeliveryState.UNDELIVERED:
        target = (
            MessageStatus.DELIVERED
            if report.state is DeliveryState.DELIVERED
            else MessageStatus.UNDELIVERED
        )
        with session_scope(engine) as session:
            moved = transition(
                session,
                message.id,
                SETTLED_BY_REPORT,
                target,
                provider_status=report.provider_status,
                raw=dict(report.raw),
                status_checked_at=_now(),
            )
        if moved:
            metrics.count_message(message.provider, target)
        if moved and settings is not None and target is MessageStatus.UNDELIVERED:
            whole = _whole(engine, message)
            if whole is not None:  # None: erased meanwhile, nothing left to resend
                resend_undelivered(engine, settings, whole, report)
        return moved
    return False


def _whole(engine: Engine, message: Message | AwaitingDelivery) -> Message | None:
    if isinstance(message, Message):
        return message
    with session_scope(engine) as session:
        return session.get(Message, message.id)


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def expire_unanswered(
    dispatcher: Dispatcher, rows: Sequence[AwaitingDelivery], now: datetime
) -> list[AwaitingDelivery]:
    """Rows ``sent`` longer than their provider's receipt window: ``sent → expired``.

    Without it a message whose receipt never comes stays ``sent`` for ever, and the poll's set
    (and its provider calls) grows with the ledger. The window runs from the send (the
    attempt's start). Returns the rows still to ask about.
    """
    dispatch = dispatcher.settings.dispatch
    overdue: dict[float, list[AwaitingDelivery]] = defaultdict(list)
    waiting: list[AwaitingDelivery] = []
    for row in rows:
        window = dispatch.receipt_window_for(row.provider)
        if (row.sending_started_at or row.updated_at) < now - timedelta(seconds=window):
            overdue[window].append(row)
        else:
            waiting.append(row)
    for window, expiring in overdue.items():
        providers = {row.id: row.provider for row in expiring}
        with session_scope(dispatcher.engine) as session:
            moved = transition_many(
                session,
                list(providers),
                MessageStatus.SENT,
                MessageStatus.EXPIRED,
                detail=f"no delivery state within {_duration(window)}",
                now=now,
            )
        for message_id in moved:
            metrics.count_message(providers[message_id], MessageStatus.EXPIRED)
    return waiting


def _touch_checked(dispatcher: Dispatcher, ids: list[str]) -> None:
    """Stamp the rows asked about, in short transactions (SQLite's writers wait meanwhile)."""
    at = _now()
    in_short_transactions(
        dispatcher.engine, ids, lambda session, chunk: mark_status_checked(session, chunk, at)
    )


def _lookup(dispatcher: Dispatcher, message: AwaitingDelivery) -> StatusReport:
    clients = dispatcher.clients
    provider_id = message.provider_message_id or ""
    if message.channel == "whatsapp":
        platform = str(message.platform_id or dispatcher.settings.afilnet.whatsapp_platform_ids[0])
        return clients.whatsapp.delivery_status(platform, message.recipient, provider_id)
    return clients.sms(message.provider or "").delivery_status(provider_id)


def poll_delivery_states(dispatcher: Dispatcher, limit: int = 500) -> int:
    """Ask providers about ``sent`` rows; move them to ``delivered``/``undelivered`` when final,
    or to ``expired`` past their receipt window (without asking); how many became final."""
    now = _now()
    checked_before = now - timedelta(seconds=dispatcher.settings.dispatch.poll_delivery_interval)
    with session_scope(dispatcher.engine) as session:
        rows = awaiting_delivery(session, checked_before, limit)
    waiting = expire_unanswered(dispatcher, rows, now)
    by_provider: dict[str, list[AwaitingDelivery]] = defaultdict(list)
    for row in waiting:
        by_provider[row.provider or ""].append(row)
    finished = len(rows) - len(waiting)
    for provider, messages in by_provider.items():
        pending: list[str] = []
        for message in messages:
            if not message.provider_message_id:
                pending.append(message.id)
                continue
            try:
                report = _lookup(dispatcher, message)
            except UnsupportedFeatureError:
                pending.append(message.id)
                continue
            except RetryableError as exc:
                # the provider is refusing requests: ask it nothing more in this pass (the
                # rest stay due for the next), so an outage never ties up worker threads
                log.warning(
                    "status lookups paused for this pass",
                    extra={"provider": provider, "error": str(exc)},
                )
                pending.append(message.id)
                break
            except ProviderError as exc:
                log.warning(
                    "status lookup failed",
                    extra={"message_id": message.id, "provider": provider, "error": str(exc)},
                )
                pending.append(message.id)
                continue
            if apply_report(dispatcher.engine, message, report, dispatcher.settings):
                finished += 1
            else:
                pending.append(message.id)
        _touch_checked(dispatcher, pending)
    return finished


def apply_receipt(
    engine: Engine,
    report: StatusReport,
    recipient: str | None = None,
    settings: Settings | None = None,
) -> bool:
    """A pushed delivery receipt (Octopush callback): apply it to the message it is about.

    The ledger keeps the request's ticket; a receipt names one SMS of it. The ticket, or the
    receipt's own id, finds the row (one ledger message is one request to one recipient).
    A receipt can also arrive for a send whose answer we never read (the worker died, or
    Octopush answered 120 to a resend): then the in-flight row to that number without a
    ticket is the one, and the receipt itself proves the provider accepted it.
    """
    provider = report.provider.value
    ticket = report.message_id.split(":", 1)[0]
    with session_scope(engine) as session:
        message = find_by_provider_message_id(
            session, provider, report.message_id, recipient=recipient
        )
        if message is None and ticket != report.message_id:
            # one ticket may cover many messages (a multi-recipient request): the number decides
            message = find_by_provider_message_id(session, provider, ticket, recipient=recipient)
        if message is None and recipient is not None:
            # the number's rows (ix_messages_recipient), not every in-flight row
            message = session.exec(
                pinned(
                    select(Message)
                    .where(
                        col(Message.provider) == provider,
                        col(Message.recipient) == recipient,
                        # no ticket yet: none, or the "batch:" tag of a multi-recipient request
                        # (a batch settled by 120 is never told its ticket)
                        or_(
                            col(Message.provider_message_id).is_(None),
                            col(Message.provider_message_id).startswith("batch:"),
                        ),
                        col(Message.status).in_(IN_FLIGHT),
                    )
                    .order_by(col(Message.sending_started_at))
                    .limit(1),
                    IX_RECIPIENT,
                )
            ).first()
        if message is None or (recipient is not None and message.recipient != recipient):
            return False
        session.expunge(message)
    if message.status in (MessageStatus.SENDING, MessageStatus.UNKNOWN):
        with session_scope(engine) as session:
            transition(
                session,
                message.id,
                [MessageStatus.SENDING, MessageStatus.UNKNOWN],
                MessageStatus.SENT,
                provider_status=report.provider_status,
                detail="a delivery receipt proves the provider accepted it",
                provider_message_id=ticket,
            )
    return apply_report(engine, message, report, settings)


def poll_whatsapp_inbox(dispatcher: Dispatcher, app: Celery | None = None) -> list[int]:
    """Fetch unread WhatsApp messages of every configured channel; store each once; run the hook."""
    whatsapp = dispatcher.clients.whatsapp
    stored: list[int] = []
    for platform in dispatcher.settings.afilnet.whatsapp_platform_ids:
        chats = whatsapp.get_chats(platform)
        for chat in chats:
            for inbound in _unread_messages(dispatcher, platform, chat.destination):
                row = InboundMessage(
                    provider=inbound.provider.value,
                    provider_message_id=inbound.message_id,
                    channel=inbound.channel,
                    sender=inbound.sender,
                    text=inbound.text,
                    received_at=inbound.received_at or _now(),
                )
                with session_scope(dispatcher.engine) as session:
                    if record_inbound(session, row):
                        session.flush()
                        stored.append(int(row.id or 0))
    run_inbound_hooks(dispatcher, app)
    return stored


def run_inbound_hooks(dispatcher: Dispatcher, app: Celery | None, limit: int = 500) -> int:
    """Run the application's hook for every stored inbound message it has not seen yet.

    Inbound rows come from the WhatsApp poll and from the webhook receiver (Octopush SMS);
    each is claimed by stamping ``hook_dispatched_at`` (so two pollers never both run it) and
    un-stamped when the hook raises, so the next pass tries again.
    """
    hook = dispatcher.settings.dispatch.inbound_hook
    if not hook:
        return 0
    with session_scope(dispatcher.engine) as session:
        pending = [row.id for row in undispatched_inbound(session, limit) if row.id is not None]
    ran = 0
    for inbound_id in pending:
        with session_scope(dispatcher.engine) as session:
            if not mark_inbound_dispatched(session, inbound_id, _now()):
                continue
        try:
            _run_hook(hook, inbound_id, app)
        except Exception:  # the application's code: any failure means "not delivered yet"
            log.exception("inbound hook failed; will retry", extra={"inbound_id": inbound_id})
            with session_scope(dispatcher.engine) as session:
                session.execute(
                    update(InboundMessage)
                    .where(col(InboundMessage.id) == inbound_id)
                    .values(hook_dispatched_at=None)
                )
            continue
        ran += 1
    return ran


def _unread_messages(
    dispatcher: Dispatcher, platform: str, destination: str
) -> list[ReceivedMessage]:
    """The chat's unread inbound messages.

    ``getunreadmessages`` marks what it returns as read, so when its answer is lost the chat
    is read instead (``getmessages``, as the client's docstring prescribes): every inbound
    message it lists is returned, and those already stored are skipped by ``record_inbound``.
    """
    whatsapp = dispatcher.clients.whatsapp
    try:
        return whatsapp.get_unread_messages(platform, destination)
    except AmbiguousError:
        log.warning(
            "unread messages lost in transit; reading the chat", extra={"platform": platform}
        )
    return [
        ReceivedMessage(
            provider=Provider.AFILNET,
            message_id=entry.message_id,
            sender=entry.destination,
            text=entry.text,
            received_at=entry.at,
            channel="whatsapp",
            raw=entry.raw,
        )
        for entry in whatsapp.get_messages(platform, destination)
        if not entry.outbound
    ]


def _run_hook(hook: str, inbound_id: int, app: Celery | None) -> None:
    """Call the application's hook: ``module:function`` in-process, else a Celery task name."""
    if ":" in hook:
        module, _, name = hook.partition(":")
        func: Callable[[int], object] = getattr(importlib.import_module(module), name)
        func(inbound_id)
    elif app is not None:
        app.send_task(hook, args=[inbound_id])
