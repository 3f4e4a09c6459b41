"""Sending one message: claim, rate-limit, call the provider, record the outcome.

The rules (docs/ARCHITECTURE.md, "Data flow" and "Decisions, and why"):

- the row is claimed ``queued → sending`` by one conditional UPDATE, so a task the broker
  delivers twice sends once;
- a rate-limit wait of up to ``rate_limit_max_block`` seconds blocks; a longer one puts the
  unclaimed row back to ``scheduled`` for that long, so it costs no attempt;
- ``RetryableError`` (the request surely did not take effect): ``scheduled`` again after an
  exponential backoff with full jitter, or after the provider's Retry-After;
- every delay is a ledger row with a ``send_at`` that beat releases, never a Celery
  countdown (docs/ARCHITECTURE.md: Redis redelivers ETA tasks that outlive the visibility timeout);
- ``PermanentError``: ``failed`` at once, or failed over when the error is the account's
  (credentials, credit, a missing feature) and routing names a fallback;
- ``AmbiguousError``: ``unknown``, then resolved by a status lookup (``resolving``), never by
  a blind resend;
- after the last attempt: ``failed`` with its reason, or the fallback provider.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from postier import metrics
from postier.config import RateLimit, Settings
from postier.dispatch.clients import ProviderClients
from postier.dispatch.health import note_failure, note_success, route_before_send
from postier.dispatch.lanes import reserve_for
from postier.dispatch.resolving import Resolution, resolve_ambiguous
from postier.dispatch.routing import account_id, fallback_for, prepare_text, text_transport_for
from postier.dispatch.rows import sms_text
from postier.ledger.db import session_scope
from postier.ledger.models import Lane, Message, MessageKind, MessageStatus
from postier.ledger.queries import claim_for_sending, get_message
from postier.ledger.states import transition, transition_each
from postier.providers.base import OutgoingSms
from postier.providers.errors import (
    AmbiguousError,
    AuthenticationError,
    InsufficientCreditError,
    PermanentError,
    ProviderError,
    RetryableError,
    UnsupportedFeatureError,
)
from postier.providers.results import SendReceipt
from postier.ratelimit import RateLimiter, limiter_key
from postier.rules.errors import RuleViolation
from postier.rules.phones import mask_number
from postier.rules.textpolicy import PolicyOutcome

if TYPE_CHECKING:
    from postier.dispatch.health import ProviderHealth

log = logging.getLogger(__name__)

#: permanent errors that belong to the account, not the message: worth another provider
ACCOUNT_ERRORS = (AuthenticationError, InsufficientCreditError, UnsupportedFeatureError)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What one attempt did: the row's status after it, and whether to publish it again now."""

    status: MessageStatus | None
    #: the row is ``queued`` again and should be handed to the broker at once (failover, resend)
    republish: bool = False


#: doublings past which the backoff is at its cap for any sane base; 2.0**1024 overflows
MAX_DOUBLINGS = 64


def backoff_delay(attempt: int, *, base: float, cap: float, rng: Callable[[], float]) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))],
    and never under 0.05 s."""
    ceiling: float = min(cap, base * 2.0 ** min(max(0, attempt - 1), MAX_DOUBLINGS))
    return max(0.05, ceiling * float(rng()))


class Dispatcher:
    """Sends messages of the ledger through the provider clients of this process."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        clients: ProviderClients,
        limiter: RateLimiter | None,
        *,
        rng: Callable[[], float] = random.random,
        health: ProviderHealth | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clients = clients
        self.limiter = limiter
        self.rng = rng
        #: provider health routing (``postier.dispatch.health``); None: every send goes as routed
        self.health = health

    # -- the one public step -------------------------------------------------------------
    def send(self, message_id: str) -> SendOutcome:
        """Make one attempt at sending ``message_id``; idempotent for a message already handled."""
        with session_scope(self.engine) as session:
            message = get_message(session, message_id)
            if message is None or message.status != MessageStatus.QUEUED:
                return SendOutcome(message.status if message else None)
            lane = Lane(message.lane or Lane.TRANSACTIONAL)
            published_at = message.published_at
        provider = route_before_send(self, message)  # health: fallback, or held as scheduled
        if provider is None or isinstance(provider, MessageStatus):
            return SendOutcome(provider)
        wait = self.take_token(provider, lane)
        if wait > 0:
            metrics.count_deferral(provider)
            return self._defer(message_id, wait)
        with session_scope(self.engine) as session:
            claimed = claim_for_sending(session, message_id)
            if claimed is None:
                return SendOutcome(None)
            session.expunge(claimed)
        metrics.observe_lane_wait(lane, published_at, claimed.sending_started_at)
        return self.attempt(claimed)

    # -- steps ---------------------------------------------------------------------------
    def _defer(self, message_id: str, wait: float) -> SendOutcome:
        """Rate limited: back to ``scheduled`` for ``wait`` seconds, no attempt used."""
        with session_scope(self.engine) as session:
            moved = transition(
                session,
                message_id,
                MessageStatus.QUEUED,
                MessageStatus.SCHEDULED,
                detail=f"rate limited: retry in {wait:.2f}s",
                send_at=datetime.now(UTC) + timedelta(seconds=wait),
            )
        return SendOutcome(MessageStatus.SCHEDULED if moved else None)

    def _limit(self, provider: str, lane: Lane) -> tuple[str, RateLimit, int] | None:
        """The limiter key, limit and the lane's reserve for ``provider``; None: unlimited."""
        if self.limiter is None:
            return None
        limit = self.settings.rate_limits.get(provider)
        if limit is None:
            return None
        reserve = reserve_for(lane, limit.burst, self.settings.dispatch.transactional_reserve)
        return limiter_key(provider, account_id(self.settings, provider)), limit, reserve

    def take_token(self, provider: str, lane: Lane = Lane.TRANSACTIONAL) -> float:
        """One token of ``provider``'s account (blocking up to ``rate_limit_max_block``); 0.0
        when taken, else the wait after which to try again (nothing taken). Bulk leaves the
        transactional lane's reserve of the burst alone (``postier.dispatch.lanes``)."""
        found = self._limit(provider, lane)
        if found is None or self.limiter is None:
            return 0.0
        key, limit, reserve = found
        with metrics.time_rate_limit(provider):
            return float(
                self.limiter.wait(
                    key,
                    limit.rate,
                    limit.burst,
                    max_block=self.settings.dispatch.rate_limit_max_block,
                    reserve=reserve,
                )
            )

    def take_tokens(self, provider: str, want: int, lane: Lane) -> tuple[int, float]:
        """Up to ``want`` tokens of ``provider``'s account in one limiter call, without
        blocking: ``(taken, wait)``, ``wait`` the seconds until one more fits when none did."""
        found = self._limit(provider, lane)
        if found is None or self.limiter is None:
            return want, 0.0
        key, limit, reserve = found
        with metrics.time_rate_limit(provider):
            return self.limiter.take(key, limit.rate, limit.burst, want, reserve=reserve)

    def attempt(self, message: Message) -> SendOutcome:
        """One provider call for ``message``, claimed (``sending``) by this worker, and its
        outcome recorded."""
        try:
            with metrics.time_send(message.provider):
                receipt = self.call_provider(message)
        except (ProviderError, RuleViolation, KeyError, TypeError, ValueError) as exc:
            return self.settle_error(message, exc)
        self._record_sent(message, receipt)
        return SendOutcome(MessageStatus.SENT)

    def settle_error(self, message: Message, exc: Exception) -> SendOutcome:
        """The outcome of a call for ``message`` that raised ``exc``: a retry, a failover, a
        lookup of an ambiguous send, or a failure."""
        if isinstance(exc, RetryableError):
            return self._after_retryable(message, exc)
        if isinstance(exc, AmbiguousError):
            return self._after_ambiguous(message, exc)
        if isinstance(exc, PermanentError):
            return self._after_permanent(message, exc)
        if isinstance(exc, RuleViolation):
            return self._fail(message, f"invalid at send time: {exc}", None)
        if isinstance(exc, (KeyError, TypeError, ValueError)):
            # a payload the ledger should never hold (edited by hand, older version): failing
            # it beats leaving it in ``sending`` for the reaper to queue again for ever
            return self._fail(message, f"malformed message payload: {exc!r}", None)
        if isinstance(exc, ProviderError):
            return self._fail(message, str(exc), exc)
        raise exc

    def call_provider(self, message: Message) -> SendReceipt:
        """The provider call for ``message``'s kind; raises ``ProviderError`` subclasses."""
        payload: dict[str, Any] = dict(message.payload or {})
        provider = message.provider or ""
        if message.kind == MessageKind.SMS:
            sms = OutgoingSms(
                recipients=(message.recipient,),
                text=self._text_for(provider, message.body, message.category),
                sender=payload.get("sender"),
                category="marketing" if message.category == "marketing" else "notification",
                request_id=message.id,
                campaign=payload.get("campaign"),
            )
            return self.clients.sms(provider).send_sms(sms)
        whatsapp = self.clients.whatsapp
        platform = str(payload.get("platform_id") or self.settings.afilnet.whatsapp_platform_ids[0])
        if message.kind == MessageKind.WHATSAPP_TEXT:
            return whatsapp.send_message(platform, message.recipient, message.body)
        if message.kind == MessageKind.WHATSAPP_FILE:
            return whatsapp.send_file(
                platform,
                message.recipient,
                payload["file_url"],
                file_type=payload.get("file_type"),
                caption=message.body or None,
                thumb_url=payload.get("thumb_url"),
            )
        if message.kind == MessageKind.WHATSAPP_TEMPLATE:
            from postier.dispatch.templates import header_from_payload

            return whatsapp.send_template(
                platform,
                message.recipient,
                str(payload["template_id"]),
                params=payload.get("params") or None,
                header=header_from_payload(payload.get("header")),
            )
        raise UnsupportedFeatureError(f"unknown message kind {message.kind!r}", provider=provider)

    def _text_for(self, provider: str, text: str, category: str) -> str:
        """The text ``provider`` is sent (see ``_prepared_text``)."""
        return self.prepared_text(provider, text, category).text

    def prepared_text(self, provider: str, text: str, category: str) -> PolicyOutcome:
        """The stored text as ``provider``'s route takes it; raises ``RuleViolation``.

        The provider's profile prepares it first (``routing.prepare_text``): Octopush French
        premium refuses marketing without "STOP au XXXXX" (Octopush API docs, 121), which
        producers add when Octopush is chosen at enqueue; this covers a marketing message
        failed over to Octopush. Then the route's text policy: a message built for another
        provider's alphabet (a failover from Octopush's UCS-2 to Primotexto) is transliterated
        or refused here, as a producer would.
        """
        text = prepare_text(self.settings, provider, text, category)
        transport = text_transport_for(self.settings, provider)
        return sms_text(self.settings, provider, text, transport=transport)

    # -- outcomes ------------------------------------------------------------------------
    def record_sent_many(
        self, accepted: Sequence[tuple[Message, SendReceipt]], *, now: datetime | None = None
    ) -> int:
        """``sending → sent`` for every accepted send of a chunk, in one UPDATE (each row with
        its own provider id, cost and parts; each event with its own answer); how many moved."""
        if not accepted:
            return 0
        plain: list[tuple[Message, SendReceipt]] = []
        recorded = 0
        for message, receipt in accepted:
            if receipt.provider_status != "accepted" or (
                message.kind == MessageKind.SMS and (message.payload or {}).get("tried_providers")
            ):
                # a simulated send, or a failed-over text its new route may have changed:
                # recorded one by one, as a lone send is (rare, and says more)
                self._record_sent(message, receipt)
                recorded += 1
            else:
                plain.append((message, receipt))
        return recorded + self._record_accepted(plain, now)

    def _record_accepted(
        self, accepted: Sequence[tuple[Message, SendReceipt]], now: datetime | None
    ) -> int:
        if not accepted:
            return 0
        changes: dict[str, dict[str, Any]] = {}
        raws: dict[str, Mapping[str, Any] | None] = {}
        providers: dict[str, str | None] = {}
        for message, receipt in accepted:
            values: dict[str, Any] = {
                "provider_message_id": receipt.message_id,
                "cost": float(receipt.cost) if receipt.cost is not None else None,
            }
            if receipt.parts is not None:
                values["parts"] = receipt.parts
            changes[message.id] = values
            raws[message.id] = dict(receipt.raw)
            providers[message.id] = message.provider
        with session_scope(self.engine) as session:
            moved = transition_each(
                session,
                changes,
                MessageStatus.SENDING,
                MessageStatus.SENT,
                provider_status="accepted",
                raws=raws,
                now=now,
                last_error=None,
            )
        for provider in {providers[message_id] for message_id in moved}:
            note_success(self, provider)  # health: once per provider and chunk
        for message_id in moved:
            metrics.count_message(providers[message_id], MessageStatus.SENT)
        if log.isEnabledFor(logging.INFO):
            for message, _ in accepted:
                self._log_sent(message)
        return len(moved)

    def _log_sent(self, message: Message) -> None:
        log.info(
            "sent",
            extra={
                "message_id": message.id,
                "provider": message.provider,
                "attempt": message.attempts,
                "recipient": mask_number(message.recipient),
            },
        )

    def _record_sent(self, message: Message, receipt: SendReceipt) -> None:
        # a provider that gives no part count (Afilnet sendsms) leaves the producer's count
        counted: dict[str, Any] = {"parts": receipt.parts} if receipt.parts is not None else {}
        detail: str | None = None
        if message.kind == MessageKind.SMS:
            prepared = self.prepared_text(message.provider or "", message.body, message.category)
            if prepared.changed:
                # the text as sent differs from the stored one (a failover): record how
                detail = prepared.describe()
                counted["payload"] = {
                    **(message.payload or {}),
                    "text_policy_at_send": prepared.to_payload(),
                }
        with session_scope(self.engine) as session:
            transition(
                session,
                message.id,
                MessageStatus.SENDING,
                MessageStatus.SENT,
                provider_status=receipt.provider_status,
                detail=detail,
                raw=dict(receipt.raw),
                provider_message_id=receipt.message_id,
                cost=float(receipt.cost) if receipt.cost is not None else None,
                last_error=None,
                **counted,
            )
        note_success(self, message.provider)  # health
        metrics.count_message(message.provider, MessageStatus.SENT)
        self._log_sent(message)

    def _after_retryable(self, message: Message, exc: RetryableError) -> SendOutcome:
        unhealthy = note_failure(self, message.provider, exc)  # health: then retry at once
        if message.attempts >= self.settings.dispatch.max_attempts:
            return self.give_up(message, f"gave up after {message.attempts} attempts: {exc}", exc)
        delay = 0.0 if unhealthy else exc.retry_after
        if delay is None:
            delay = backoff_delay(
                message.attempts,
                base=self.settings.dispatch.backoff_base,
                cap=self.settings.dispatch.backoff_max,
                rng=self.rng,
            )
        with session_scope(self.engine) as session:
            transition(
                session,
                message.id,
                MessageStatus.SENDING,
                MessageStatus.SCHEDULED,
                provider_status=exc.code,
                detail=f"retry in {delay:.2f}s: {exc}",
                last_error=str(exc),
                send_at=datetime.now(UTC) + timedelta(seconds=delay),
            )
        metrics.count_retry(message.provider)
        return SendOutcome(MessageStatus.SCHEDULED)

    def _after_permanent(self, message: Message, exc: PermanentError) -> SendOutcome:
        note_failure(self, message.provider, exc)  # health: account errors open the provider
        if isinstance(exc, ACCOUNT_ERRORS):
            return self.give_up(message, str(exc), exc)
        return self._fail(message, str(exc), exc)

    def _after_ambiguous(self, message: Message, exc: AmbiguousError) -> SendOutcome:
        note_failure(self, message.provider, exc)  # health
        with session_scope(self.engine) as session:
            transition(
                session,
                message.id,
                MessageStatus.SENDING,
                MessageStatus.UNKNOWN,
                provider_status=exc.code,
                detail=f"ambiguous: {exc}",
                last_error=str(exc),
            )
        metrics.count_message(message.provider, MessageStatus.UNKNOWN)
        resolution = resolve_ambiguous(self, message)
        if resolution is Resolution.RESEND:
            return SendOutcome(MessageStatus.QUEUED, republish=True)
        if resolution is Resolution.SENT:
            return SendOutcome(MessageStatus.SENT)
        return SendOutcome(MessageStatus.UNKNOWN)

    def give_up(self, message: Message, reason: str, exc: ProviderError | None) -> SendOutcome:
        """Fail over to the routing's fallback when there is one, else fail."""
        tried = [*(message.payload or {}).get("tried_providers", []), message.provider or ""]
        fallback = fallback_for(
            self.settings, channel=message.channel, provider=message.provider or "", tried=tried
        )
        if fallback is None:
            return self._fail(message, reason, exc)
        payload = {**(message.payload or {}), "tried_providers": tried}
        with session_scope(self.engine) as session:
            moved = transition(
                session,
                message.id,
                MessageStatus.SENDING,
                MessageStatus.QUEUED,
                provider_status=exc.code if exc else None,
                detail=f"failover {message.provider} -> {fallback}: {reason}",
                provider=fallback,
                attempts=0,
                payload=payload,
                last_error=reason,
            )
        metrics.count_message(message.provider, MessageStatus.QUEUED if moved else None)
        log.warning(
            "failover",
            extra={"message_id": message.id, "provider": message.provider, "fallback": fallback},
        )
        return SendOutcome(MessageStatus.QUEUED if moved else None, republish=moved)

    def _fail(self, message: Message, reason: str, exc: ProviderError | None) -> SendOutcome:
        with session_scope(self.engine) as session:
            transition(
                session,
                message.id,
                MessageStatus.SENDING,
                MessageStatus.FAILED,
                provider_status=exc.code if exc else None,
                detail=reason,
                raw=dict(exc.raw) if exc is not None and isinstance(exc.raw, dict) else None,
                last_error=reason,
            )
        metrics.count_message(message.provider, MessageStatus.FAILED)
        log.warning(
            "failed",
            extra={
                "message_id": message.id,
                "provider": message.provider,
                "attempt": message.attempts,
                "reason": reason,
            },
        )
        return SendOutcome(MessageStatus.FAILED)
