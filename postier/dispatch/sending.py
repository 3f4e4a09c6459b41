"""Sending one message: claim, rate-limit, call the provider, record the outcome.

The rules (ARCHITECTURE.md, "Data flow" and "Retries"):

- the row is claimed ``queued → sending`` by one conditional UPDATE, so a task the broker
  delivers twice sends once;
- a rate-limit wait of up to ``rate_limit_max_block`` seconds blocks; a longer one puts the
  unclaimed row back to ``scheduled`` for that long, so it costs no attempt;
- ``RetryableError`` (the request surely did not take effect): ``scheduled`` again after an
  exponential backoff with full jitter, or after the provider's Retry-After;
- every delay is a ledger row with a ``send_at`` that beat releases, never a Celery
  countdown (ARCHITECTURE.md: Redis redelivers ETA tasks that outlive the visibility timeout);
- ``PermanentError``: ``failed`` at once, or failed over when the error is the account's
  (credentials, credit, a missing feature) and routing names a fallback;
- ``AmbiguousError``: ``unknown``, then resolved by a status lookup (``resolving``), never by
  a blind resend;
- after the last attempt: ``failed`` with its reason, or the fallback provider.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from postier import metrics
from postier.config import Settings
from postier.dispatch.clients import ProviderClients
from postier.dispatch.health import note_failure, note_success, route_before_send
from postier.dispatch.resolving import Resolution, resolve_ambiguous
from postier.dispatch.routing import account_id, fallback_for
from postier.ledger.db import session_scope
from postier.ledger.models import Message, MessageKind, MessageStatus
from postier.ledger.queries import claim_for_sending, get_message
from postier.ledger.states import transition
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
from postier.rules.stop import add_stop_mention, has_stop_mention

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
        provider = route_before_send(self, message)  # health: fallback, or held as scheduled
        if provider is None or isinstance(provider, MessageStatus):
            return SendOutcome(provider)
        wait = self._take_token(provider)
        if wait > 0:
            metrics.count_deferral(provider)
            return self._defer(message_id, wait)
        with session_scope(self.engine) as session:
            claimed = claim_for_sending(session, message_id)
            if claimed is None:
                return SendOutcome(None)
            session.expunge(claimed)
        return self._attempt(claimed)

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

    def _take_token(self, provider: str) -> float:
        if self.limiter is None:
            return 0.0
        limit = self.settings.rate_limits.get(provider)
        if limit is None:
            return 0.0
        key = limiter_key(provider, account_id(self.settings, provider))
        with metrics.time_rate_limit(provider):
            return float(
                self.limiter.wait(
                    key,
                    limit.rate,
                    limit.burst,
                    max_block=self.settings.dispatch.rate_limit_max_block,
                )
            )

    def _attempt(self, message: Message) -> SendOutcome:
        try:
            with metrics.time_send(message.provider):
                receipt = self.call_provider(message)
        except RetryableError as exc:
            return self._after_retryable(message, exc)
        except AmbiguousError as exc:
            return self._after_ambiguous(message, exc)
        except PermanentError as exc:
            return self._after_permanent(message, exc)
        except RuleViolation as exc:
            return self._fail(message, f"invalid at send time: {exc}", None)
        except (KeyError, TypeError, ValueError) as exc:
            # a payload the ledger should never hold (edited by hand, older version): failing
            # it beats leaving it in ``sending`` for the reaper to queue again for ever
            return self._fail(message, f"malformed message payload: {exc!r}", None)
        self._record_sent(message, receipt)
        return SendOutcome(MessageStatus.SENT)

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
        """Octopush French premium refuses marketing without "STOP au XXXXX" (seed 003, 121).

        Producers add it when Octopush is chosen at enqueue; this covers a marketing message
        failed over to Octopush. Notifications go as ``transactional`` and need none.
        """
        octopush = self.settings.octopush
        if (
            provider == "octopush"
            and category == "marketing"
            and octopush.sms_type == "FR"
            and not has_stop_mention(text)
        ):
            return add_stop_mention(text, octopush.stop_short_code)
        return text

    # -- outcomes ------------------------------------------------------------------------
    def _record_sent(self, message: Message, receipt: SendReceipt) -> None:
        # a provider that gives no part count (Afilnet sendsms) leaves the producer's count
        counted: dict[str, Any] = {"parts": receipt.parts} if receipt.parts is not None else {}
        with session_scope(self.engine) as session:
            transition(
                session,
                message.id,
                MessageStatus.SENDING,
                MessageStatus.SENT,
                provider_status="accepted",
                raw=dict(receipt.raw),
                provider_message_id=receipt.message_id,
                cost=float(receipt.cost) if receipt.cost is not None else None,
                last_error=None,
                **counted,
            )
        note_success(self, message.provider)  # health
        metrics.count_message(message.provider, MessageStatus.SENT)
        log.info(
            "sent",
            extra={
                "message_id": message.id,
                "provider": message.provider,
                "attempt": message.attempts,
                "recipient": mask_number(message.recipient),
            },
        )

    def _after_retryable(self, message: Message, exc: RetryableError) -> SendOutcome:
        unhealthy = note_failure(self, message.provider, exc)  # health: then retry at once
        if message.attempts >= self.settings.dispatch.max_attempts:
            return self._give_up(message, f"gave up after {message.attempts} attempts: {exc}", exc)
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
            return self._give_up(message, str(exc), exc)
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

    def _give_up(self, message: Message, reason: str, exc: ProviderError | None) -> SendOutcome:
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
