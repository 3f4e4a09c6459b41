"""Afilnet SMS (``class=sms``, ``class=user``; docs/PROVIDERS.md, "Afilnet, class=sms").

``sendsms`` takes one number: an ``OutgoingSms`` for several recipients raises
``UnsupportedFeatureError`` rather than looping, because a loop that fails half-way would
leave one ledger message half sent (the dispatcher sends one message per recipient).
``request_id``, ``campaign`` and ``category`` have no Afilnet counterpart: Afilnet offers no
duplicate detection, stats label or notification/marketing split on this method, and none of
them changes what the recipient receives, so they are not sent.

``credits`` in the ``sendsms`` answer is taken as the cost of the send (unconfirmed).
``getdeliverystatus`` answers a list; a result that is one object (as third-party clients
report for a single id) is read as a list of one. ``status`` may be upper case (``api``).
``deliverystatus`` values (unconfirmed) are mapped by ``STATUS_STATES``; times, including
``scheduledatetime``, are Afilnet's local time (``api.TIMEZONE``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from postier.providers.afilnet.api import NAME, AfilnetApi, format_datetime, parse_datetime
from postier.providers.base import OutgoingSms
from postier.providers.errors import (
    PermanentError,
    RecipientRejectedError,
    UnsupportedFeatureError,
)
from postier.providers.results import (
    DeliveryFailure,
    DeliveryState,
    Provider,
    SendReceipt,
    StatusReport,
)
from postier.rules.errors import RuleViolation
from postier.rules.phones import to_international_digits

#: Afilnet ``deliverystatus`` (upper-cased) -> our state; values unconfirmed
STATUS_STATES: dict[str, DeliveryState] = {
    "PENDING": DeliveryState.ACCEPTED,
    "SCHEDULED": DeliveryState.ACCEPTED,
    "SENT": DeliveryState.SENT,
    "DELIVERED": DeliveryState.DELIVERED,
    "NOT_DELIVERED": DeliveryState.UNDELIVERED,
    "UNDELIVERED": DeliveryState.UNDELIVERED,
    "FAILED": DeliveryState.UNDELIVERED,
    "ERROR": DeliveryState.UNDELIVERED,
}
#: why an undelivered SMS failed (values unconfirmed): not delivered by the operator is taken as
#: temporary (handset off, expired); a failure or error of the platform is not classified
#: further and counts as permanent, so it is never resent
FAILURES: dict[str, DeliveryFailure] = {
    "NOT_DELIVERED": DeliveryFailure.TEMPORARY,
    "UNDELIVERED": DeliveryFailure.TEMPORARY,
    "FAILED": DeliveryFailure.PERMANENT,
    "ERROR": DeliveryFailure.PERMANENT,
}


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _report(raw: Mapping[str, Any]) -> StatusReport:
    status = str(raw.get("deliverystatus") or "")
    return StatusReport(
        provider=Provider.AFILNET,
        message_id=str(raw.get("messageid", "")),
        state=STATUS_STATES.get(status.upper(), DeliveryState.UNKNOWN),
        provider_status=status,
        at=parse_datetime(raw.get("deliverydate")),
        raw=dict(raw),
        failure=FAILURES.get(status.upper()),
    )


def _unknown(message_id: str) -> StatusReport:
    return StatusReport(
        provider=Provider.AFILNET,
        message_id=message_id,
        state=DeliveryState.UNKNOWN,
        provider_status="",
    )


class AfilnetSms:
    """The ``SmsProvider`` for Afilnet, plus a batched status lookup and the balance."""

    provider = Provider.AFILNET

    def __init__(self, api: AfilnetApi, sender: str) -> None:
        self.api = api
        self.sender = sender

    def send_sms(self, sms: OutgoingSms) -> SendReceipt:
        """One SMS to one recipient (``sendsms``), now or at ``sms.send_at``."""
        if len(sms.recipients) != 1:
            raise UnsupportedFeatureError(
                f"sendsms takes one recipient, got {len(sms.recipients)}", provider=NAME
            )
        try:
            to = to_international_digits(sms.recipients[0], field="recipients")
        except RuleViolation as exc:
            raise RecipientRejectedError(str(exc), provider=NAME) from exc
        params = {"from": sms.sender or self.sender, "to": to, "sms": sms.text}
        if sms.send_at is not None:
            params["scheduledatetime"] = format_datetime(sms.send_at)
        result = self.api.call("sms", "sendsms", params, changes_state=True)
        if not isinstance(result, Mapping) or not result.get("messageid"):
            raise PermanentError("sendsms answered without a messageid", provider=NAME, raw=result)
        return SendReceipt(
            provider=Provider.AFILNET,
            message_id=str(result["messageid"]),
            cost=_decimal(result.get("credits")),
            raw=dict(result),
        )

    def delivery_status(self, message_id: str) -> StatusReport:
        """The delivery state of one SMS; UNKNOWN when Afilnet does not know the id."""
        return self.delivery_statuses([message_id])[0]

    def delivery_statuses(self, message_ids: Iterable[str]) -> list[StatusReport]:
        """The states of many SMS in one ``getdeliverystatus`` call: one report per distinct id."""
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return []
        result = self.api.call(
            "sms", "getdeliverystatus", {"messages": ",".join(ids)}, changes_state=False
        )
        items = [result] if isinstance(result, Mapping) else (result or [])
        reports = {
            report.message_id: report
            for report in (_report(item) for item in items if isinstance(item, Mapping))
        }
        return [reports.get(message_id) or _unknown(message_id) for message_id in ids]

    def balance(self) -> Decimal:
        """The account's remaining credits (``class=user&method=getbalance``)."""
        result = self.api.call("user", "getbalance", {}, changes_state=False)
        value = result.get("credit") if isinstance(result, Mapping) else result
        credit = _decimal(value)
        if credit is None:
            raise PermanentError("getbalance answered no credit", provider=NAME, raw=result)
        return credit
