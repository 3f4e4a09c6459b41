"""The v1 Octopush API (``api.octopush.com/v1/public/``): JSON, credentials in headers.

``POST sms-campaign/send`` and ``GET wallet/check-balance`` with the ``api-login`` and
``api-key`` headers (docs/PROVIDERS.md, "Octopush"). Errors are HTTP 400 ``{"code", "message"}``
with the legacy codes, 401 for credentials. The success answer gives totals only
(``number_of_contacts``, ``total_cost``, ``number_of_sms_needed``), no per-recipient list:
every recipient of an accepted request is reported accepted, without a per-recipient cost.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import httpx

from postier.config import HttpSettings, OctopushSettings
from postier.providers.base import OutgoingSms
from postier.providers.errors import AmbiguousError, AuthenticationError, RetryableError
from postier.providers.octopush.codes import (
    ALREADY_ACCEPTED,
    NAME,
    already_accepted_receipt,
    call_with_code_retries,
    error_for,
    normalise_code,
)
from postier.providers.results import Provider, RecipientResult, SendReceipt
from postier.providers.transport import Transport, now_utc

#: legacy sms_type -> v1 type: FR and WWW are both premium routes, XXX the low cost one
V1_TYPES: Final[dict[str, str]] = {"FR": "sms_premium", "WWW": "sms_premium", "XXX": "sms_low_cost"}
#: our category -> v1 purpose (wholesale is marketing: a premium text needs "STOP au …")
V1_PURPOSES: Final[dict[str, str]] = {"notification": "alert", "marketing": "wholesale"}


def build_send_body(settings: OctopushSettings, sms: OutgoingSms) -> dict[str, Any]:
    """The JSON body of ``sms-campaign/send`` for ``sms``; a past ``send_at`` sends now."""
    sms_type = V1_TYPES[settings.sms_type]
    body: dict[str, Any] = {
        "recipients": [{"phone_number": number} for number in sms.recipients],
        "text": sms.text,
        "type": sms_type,
        "purpose": V1_PURPOSES[sms.category],
    }
    sender = sms.sender or settings.sender
    if sender and sms_type == "sms_premium":
        body["sender"] = sender
    if sms.send_at is not None and sms.send_at > now_utc():
        body["send_at"] = sms.send_at.astimezone(UTC).isoformat(timespec="seconds")
    if sms.request_id:
        body["request_id"] = sms.request_id
    if settings.simulation_mode:
        body["simulation_mode"] = True
    return body


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except InvalidOperation:
        return None


class V1Api:
    """Sends and reads the wallet over the v1 JSON API."""

    def __init__(self, settings: OctopushSettings, http: HttpSettings, transport: Transport):
        self.settings = settings
        self.http = http
        self.transport = transport

    def _url(self, path: str) -> str:
        return self.settings.v1_base_url.rstrip("/") + "/" + path

    def _headers(self) -> dict[str, str]:
        return {
            "api-login": self.settings.login,
            "api-key": self.settings.api_key.get_secret_value(),
        }

    def _answer(self, response: httpx.Response, *, changes_state: bool) -> dict[str, Any]:
        """The JSON object of a 2xx answer; the typed error for any other (or a ``code``)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            message = f"unreadable answer (HTTP {response.status_code})"
            raw = response.text[:500]
            if response.is_success and changes_state:
                raise AmbiguousError(message, provider=NAME, raw=raw)
            if response.is_success:
                raise RetryableError(message, provider=NAME, raw=raw)
            raise error_for(str(response.status_code), raw)
        code = normalise_code(body.get("code")) if "code" in body else None
        if response.status_code in (401, 403):
            raise AuthenticationError(
                f"Octopush refused the credentials (HTTP {response.status_code})",
                provider=NAME,
                code=code or str(response.status_code),
                raw=body,
            )
        if code is not None and (not response.is_success or "sms_ticket" not in body):
            if code == ALREADY_ACCEPTED:
                return {"already_accepted": True, **body}
            raise error_for(code, body, detail=str(body.get("message") or "") or None)
        if not response.is_success:
            raise error_for(str(response.status_code), body)
        return body

    def send(self, sms: OutgoingSms) -> SendReceipt:
        """One ``sms-campaign/send`` for every recipient of ``sms``; 153/501 retried."""
        body = build_send_body(self.settings, sms)

        def attempt() -> SendReceipt:
            response = self.transport.request(
                "POST",
                self._url("sms-campaign/send"),
                json=body,
                headers=self._headers(),
                changes_state=True,
            )
            answer = self._answer(response, changes_state=True)
            if answer.get("already_accepted"):
                answer.pop("already_accepted")
                return already_accepted_receipt(sms.request_id, answer)
            contacts = int(answer.get("number_of_contacts") or 0)
            needed = int(answer.get("number_of_sms_needed") or 0)
            parts = needed // contacts if contacts else None
            return SendReceipt(
                provider=Provider.OCTOPUSH,
                message_id=str(answer.get("sms_ticket") or "") or None,
                cost=_decimal(answer.get("total_cost")),
                parts=parts,
                recipients=tuple(
                    RecipientResult(recipient=number, accepted=True, parts=parts)
                    for number in sms.recipients
                ),
                raw=answer,
                simulated=self.settings.simulation_mode,
            )

        return call_with_code_retries(self.http, attempt)

    def credit(self) -> Decimal:
        """The wallet in euros: v1's balance is the account credit already."""
        wallet = self.balance()
        amount = wallet.get("euro")
        if amount is None:
            raise RetryableError("the wallet is not in euros", provider=NAME, raw=dict(wallet))
        return amount

    def balance(self) -> dict[str, Decimal]:
        """The wallet, keyed by the unit Octopush states (``{"euro": …}``)."""

        def attempt() -> dict[str, Decimal]:
            response = self.transport.request(
                "GET",
                self._url("wallet/check-balance"),
                headers=self._headers(),
                changes_state=False,
            )
            answer = self._answer(response, changes_state=False)
            amount = _decimal(answer.get("amount"))
            if amount is None:
                raise RetryableError("no amount in the balance answer", provider=NAME, raw=answer)
            return {str(answer.get("unit") or "euro"): amount}

        return call_with_code_retries(self.http, attempt)
