"""Primotexto REST API v2 client (docs/PROVIDERS.md, "Primotexto").

JSON over HTTPS, the API key in the ``X-Primotexto-ApiKey`` header of every request: never in
a URL (the docs' browser form ``?apiKey=`` would put it in server and proxy logs) and never
in a log line. One recipient per send; the dispatcher sends one message per recipient.

Errors come as a non-2xx answer with ``{"code": N, ...}``; ``ERROR_CLASSES`` maps every
documented code onto Postier's error types. The HTTP status of each code is unconfirmed, so
the code decides and the status is only a fallback (``STATUS_CLASSES``). Transport failures,
429/503 and 5xx are classified by ``Transport`` first: a quota error (76) sent as 429 arrives
as ``RetryableError`` with code ``"429"`` and the ``Retry-After`` delay.

Choices where the sources are silent (unconfirmed):

- ``OutgoingSms.campaign`` fills both ``campaignName`` (stats pool) and ``category`` (the tag
  stats, replies and blacklists are searched by).
- ``OutgoingSms.request_id`` is ignored: Primotexto has no duplicate-detection key.
- An unknown ``snapshotId`` is a ``StatusReport`` in state ``unknown``, not an error.
- Blacklist additions and removals are idempotent, so a lost answer is retryable.
- Code 1000 (unknown error) on a send is ambiguous: the message may have gone out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import httpx

from postier.config import HttpSettings, PrimotextoSettings, Settings
from postier.providers.base import OutgoingSms, SmsProvider
from postier.providers.errors import (
    AmbiguousError,
    AuthenticationError,
    ContentRejectedError,
    InsufficientCreditError,
    NotFoundError,
    PermanentError,
    ProviderError,
    RecipientRejectedError,
    RetryableError,
    UnsupportedFeatureError,
)
from postier.providers.profile import (
    ClientContext,
    ProviderProfile,
    ResendLookup,
    Route,
    no_stop_mention,
)
from postier.providers.results import (
    DeliveryFailure,
    DeliveryState,
    InboundMessage,
    Provider,
    SendReceipt,
    StatusReport,
)
from postier.providers.transport import Transport, parse_retry_after
from postier.rules.textpolicy import TextPolicy

NAME = Provider.PRIMOTEXTO.value
API_KEY_HEADER = "X-Primotexto-ApiKey"
DEFAULT_LIST = "default"
#: the sandbox's code for an unknown snapshotId or blacklist entry (unconfirmed)
NOT_FOUND_CODE = 404

#: Primotexto error code -> error type (docs/PROVIDERS.md, "Primotexto, Errors"); unknown codes fall
#: back on the HTTP status
ERROR_CLASSES: dict[int, type[ProviderError]] = {
    10: RecipientRejectedError,  # no number
    11: RecipientRejectedError,  # invalid number
    12: RecipientRejectedError,  # unsubscribed (STOP)
    13: RecipientRejectedError,  # bounce list
    14: RecipientRejectedError,  # bounce
    19: RecipientRejectedError,  # fixed line
    90: RecipientRejectedError,  # country not supported
    20: ContentRejectedError,  # sender: invalid characters
    21: ContentRejectedError,  # sender too short
    22: ContentRejectedError,  # sender too long
    23: ContentRejectedError,  # sender all digits
    30: ContentRejectedError,  # empty message
    31: ContentRejectedError,  # invalid characters
    32: ContentRejectedError,  # message too long
    41: ContentRejectedError,  # invalid scheduling time
    70: AuthenticationError,  # API access disabled
    72: AuthenticationError,  # authentication failed
    92: AuthenticationError,  # account blocked
    71: InsufficientCreditError,
    73: PermanentError,  # invalid JSON: our bug, sending again fails the same way
    76: RetryableError,  # quota exceeded
    1000: AmbiguousError,  # unknown error
    NOT_FOUND_CODE: NotFoundError,
}
#: fallback when an error answer carries no known code
STATUS_CLASSES: dict[int, type[ProviderError]] = {
    401: AuthenticationError,
    402: InsufficientCreditError,
    403: AuthenticationError,
    404: NotFoundError,
}

#: Primotexto message state -> our state (docs/PROVIDERS.md, "Primotexto, Status");
#: ``reply``/``opened`` imply the message arrived
STATES: dict[str, DeliveryState] = {
    "submitted": DeliveryState.ACCEPTED,
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "opened": DeliveryState.DELIVERED,
    "reply": DeliveryState.DELIVERED,
    "bounced": DeliveryState.UNDELIVERED,
    "unsubscribed": DeliveryState.UNDELIVERED,
    "error": DeliveryState.UNDELIVERED,
}
#: why an undelivered message failed: a bounce is a number that cannot receive (Primotexto
#: lists it in its bounces), an unsubscriber said STOP; ``error`` is a delivery error on the
#: way (network, handset) — assumed temporary, docs/PROVIDERS.md gives no finer status
FAILURES: dict[str, DeliveryFailure] = {
    "bounced": DeliveryFailure.PERMANENT,
    "unsubscribed": DeliveryFailure.PERMANENT,
    "error": DeliveryFailure.TEMPORARY,
}

BlacklistKind = Literal["unsubscribers", "bounces"]


@dataclass(frozen=True, slots=True)
class MessageStats:
    """``GET /v2/messages/stats`` for one category: every counter of the answer, and the rest."""

    category: str
    counts: Mapping[str, int]
    credits_used: Decimal | None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountStats:
    """``GET /v2/account/stats``: the credit left, and the raw answer."""

    credits: Decimal | None
    raw: Mapping[str, Any] = field(default_factory=dict)


def error_for(
    status: int,
    body: Any,
    *,
    changes_state: bool,
    retry_after: float | None = None,
) -> ProviderError:
    """The typed error for a non-2xx Primotexto answer (``body`` is its parsed JSON or text)."""
    code: int | None = None
    if isinstance(body, Mapping):
        try:
            code = int(body.get("code"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            code = None
    cls = ERROR_CLASSES.get(code) if code is not None else None
    if cls is None:
        cls = STATUS_CLASSES.get(status, PermanentError)
    if cls is AmbiguousError and not changes_state:
        cls = RetryableError
    detail = body.get("error") if isinstance(body, Mapping) else None
    message = f"Primotexto answered HTTP {status}" + (f": {detail}" if detail else "")
    raw: Mapping[str, Any] | str = body if isinstance(body, Mapping) else str(body)[:500]
    label = str(code) if code is not None else f"HTTP {status}"
    if cls is RetryableError:
        return RetryableError(message, provider=NAME, code=label, raw=raw, retry_after=retry_after)
    return cls(message, provider=NAME, code=label, raw=raw)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _from_ms(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def to_ms(when: datetime) -> int:
    """A timezone-aware time as Primotexto's ``date``: Unix milliseconds (Primotexto API docs)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ContentRejectedError("send_at must be timezone-aware", provider=NAME)
    return round(when.timestamp() * 1000)


class PrimotextoClient:
    """SMS through Primotexto: sends, delivery states, replies, stats, blacklists."""

    provider = Provider.PRIMOTEXTO

    def __init__(
        self,
        settings: PrimotextoSettings,
        http: HttpSettings,
        pool: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.transport = Transport(Provider.PRIMOTEXTO, http, pool)

    # -- SmsProvider ----------------------------------------------------------------------

    def send_sms(self, sms: OutgoingSms) -> SendReceipt:
        """``POST /v2/{notification|marketing}/messages/send`` for the one recipient of ``sms``.

        Marketing content is forbidden on the notification route (Primotexto API docs), so
        ``sms.category`` picks the route.
        """
        if len(sms.recipients) != 1:
            raise UnsupportedFeatureError(
                f"one recipient per Primotexto send, got {len(sms.recipients)}", provider=NAME
            )
        body: dict[str, Any] = {"number": sms.recipients[0], "message": sms.text}
        sender = sms.sender or self.settings.sender
        if sender:
            body["sender"] = sender
        if sms.campaign:
            body["campaignName"] = sms.campaign
            body["category"] = sms.campaign
        if sms.send_at is not None:
            body["date"] = to_ms(sms.send_at)
        answer = self._call("POST", f"{sms.category}/messages/send", json=body, changes_state=True)
        snapshot = answer.get("snapshotId") if isinstance(answer, Mapping) else None
        if snapshot is None:
            # HTTP 200 without an id: the message was accepted but we cannot track it
            raise AmbiguousError("send answered without a snapshotId", provider=NAME, raw=answer)
        credits = _decimal(answer.get("creditsUsed"))
        return SendReceipt(
            provider=self.provider,
            message_id=str(snapshot),
            cost=credits,
            parts=int(credits) if credits is not None else None,
            raw=answer,
        )

    def delivery_status(self, message_id: str) -> StatusReport:
        """``GET /v2/messages/status?snapshotId=``; an unknown id is state ``unknown``."""
        report = self._status({"snapshotId": message_id})
        if report is None:
            return StatusReport(
                provider=self.provider,
                message_id=message_id,
                state=DeliveryState.UNKNOWN,
                provider_status="not_found",
            )
        return report

    def latest_status_for(self, number: str) -> StatusReport | None:
        """The state of the latest message to ``number`` (``?identifier=``), None if none.

        Reconciles a send whose answer was lost: without a snapshotId, the number is the key.
        """
        return self._status({"identifier": number})

    def _status(self, params: Mapping[str, str]) -> StatusReport | None:
        try:
            answer = self._call("GET", "messages/status", params=params)
        except NotFoundError:
            return None
        if not isinstance(answer, Mapping):
            raise RetryableError("status answer is not an object", provider=NAME, raw=str(answer))
        raw_state = str(answer.get("state", ""))
        return StatusReport(
            provider=self.provider,
            message_id=str(answer.get("id", params.get("snapshotId", ""))),
            state=STATES.get(raw_state.lower(), DeliveryState.UNKNOWN),
            provider_status=raw_state,
            at=_from_ms(answer.get("stateDate")),
            raw=answer,
            failure=FAILURES.get(raw_state.lower()),
        )

    # -- replies, stats, account ----------------------------------------------------------

    def replies(self, category: str) -> list[InboundMessage]:
        """``GET /v2/messages/replies?category=``: the SMS recipients sent back (pulled).

        The documented answer has no reception time: ``received_at`` is None unless a ``date``
        (Unix ms) is present. Reading does not consume replies (unconfirmed): dedupe by id.
        """
        answer = self._call("GET", "messages/replies", params={"category": category})
        return [
            InboundMessage(
                provider=self.provider,
                message_id=str(item.get("id", "")),
                sender=str(item.get("identifier", "")),
                text=str(item.get("message", "")),
                received_at=_from_ms(item.get("date")),
                channel=category,
                raw=item,
            )
            for item in _list_of_objects(answer)
        ]

    def message_stats(self, category: str) -> MessageStats:
        """``GET /v2/messages/stats?category=``."""
        answer = self._call("GET", "messages/stats", params={"category": category})
        if not isinstance(answer, Mapping):
            raise RetryableError("stats answer is not an object", provider=NAME, raw=str(answer))
        counts = {
            key: value
            for key, value in answer.items()
            if isinstance(value, int) and not isinstance(value, bool)
        }
        return MessageStats(
            category=category,
            counts=counts,
            credits_used=_decimal(answer.get("creditsUsed")),
            raw=answer,
        )

    def account_stats(self) -> AccountStats:
        """``GET /v2/account/stats``: the credit left."""
        answer = self._call("GET", "account/stats")
        if not isinstance(answer, Mapping):
            raise RetryableError("account answer is not an object", provider=NAME, raw=str(answer))
        return AccountStats(credits=_decimal(answer.get("credits")), raw=answer)

    # -- blacklists -----------------------------------------------------------------------

    def list_unsubscribers(self, list_name: str = DEFAULT_LIST) -> list[str]:
        """Numbers that sent STOP or were added by hand: sends to them answer 12."""
        return self._list("unsubscribers", list_name)

    def add_unsubscriber(self, number: str, list_name: str = DEFAULT_LIST) -> None:
        self._change("POST", "unsubscribers", list_name, number)

    def remove_unsubscriber(self, number: str, list_name: str = DEFAULT_LIST) -> None:
        """Raises ``NotFoundError`` when ``number`` is not on the list."""
        self._change("DELETE", "unsubscribers", list_name, number)

    def list_bounces(self, list_name: str = DEFAULT_LIST) -> list[str]:
        """Numbers known not to be assigned: sends to them answer 13."""
        return self._list("bounces", list_name)

    def add_bounce(self, number: str, list_name: str = DEFAULT_LIST) -> None:
        self._change("POST", "bounces", list_name, number)

    def remove_bounce(self, number: str, list_name: str = DEFAULT_LIST) -> None:
        """Raises ``NotFoundError`` when ``number`` is not on the list."""
        self._change("DELETE", "bounces", list_name, number)

    def _list(self, kind: BlacklistKind, list_name: str) -> list[str]:
        answer = self._call("GET", f"{kind}/{list_name}/contacts")
        return [str(item.get("identifier", "")) for item in _list_of_objects(answer)]

    def _change(self, method: str, kind: BlacklistKind, list_name: str, number: str) -> None:
        # idempotent: a lost answer is safe to retry, hence changes_state=False
        self._call(
            method, f"{kind}/{list_name}/contacts", json={"identifier": number}, changes_state=False
        )

    # -- HTTP -----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        changes_state: bool = False,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """One request; the parsed JSON of a 2xx answer, else the typed error."""
        url = self.settings.base_url.rstrip("/") + "/" + path
        headers = {API_KEY_HEADER: self.settings.api_key.get_secret_value()}
        response = self.transport.request(
            method, url, json=json, params=params, headers=headers, changes_state=changes_state
        )
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if response.is_success:
            if body is None:
                error = AmbiguousError if changes_state else RetryableError
                raise error(
                    f"HTTP {response.status_code} without a JSON body",
                    provider=NAME,
                    raw=response.text[:500],
                )
            return body
        raise error_for(
            response.status_code,
            body if body is not None else response.text,
            changes_state=changes_state,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def close(self) -> None:
        self.transport.close()


def _list_of_objects(answer: Any) -> list[Mapping[str, Any]]:
    if not isinstance(answer, list):
        raise RetryableError("expected a JSON list", provider=NAME, raw=str(answer)[:500])
    return [item for item in answer if isinstance(item, Mapping)]


def _build_sms(ctx: ClientContext) -> SmsProvider:
    return PrimotextoClient(ctx.settings.primotexto, ctx.settings.http, ctx.http)


def _account_id(settings: Settings) -> str:
    # the API key is the account; only its end names it
    return settings.primotexto.api_key.get_secret_value()[-6:]


def _text_policy(settings: Settings) -> TextPolicy:
    return settings.primotexto.text_policy


def _text_transport(settings: Settings) -> str | None:
    return None


def _balance(client: SmsProvider) -> Mapping[str, Decimal | None]:
    assert isinstance(client, PrimotextoClient)
    return {"credits": client.account_stats().credits}


#: Primotexto as dispatch and campaigns see it (docs/PROVIDERS.md, "Primotexto")
PROFILE = ProviderProfile(
    provider=Provider.PRIMOTEXTO,
    channels=frozenset({"sms"}),
    routes=(
        Route(
            Provider.PRIMOTEXTO,
            "notification",
            marketing=False,
            stop="none",
            source="Primotexto API: « LES MESSAGES A CARACTERE MARKETING SONT STRICTEMENT"
            " INTERDITS ICI »",
        ),
        Route(
            Provider.PRIMOTEXTO,
            "marketing",
            marketing=True,
            stop="require",
            source="Primotexto API (/v2/marketing/messages/send); whether Primotexto appends a"
            " mention itself is unconfirmed, so the text must carry one",
        ),
    ),
    # one recipient per send
    batch_max_recipients=None,
    # messages/status?identifier= gives the latest message to the number
    resend_lookup=ResendLookup.BY_NUMBER,
    build_sms=_build_sms,
    account_id=_account_id,
    text_policy=_text_policy,
    text_transport=_text_transport,
    stop_mention=no_stop_mention,
    balance=_balance,
)
