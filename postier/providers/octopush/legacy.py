"""The legacy Octopush API (``www.octopush-dm.com/api/``): form POSTs, XML or JSON answers.

``POST sms`` (XML answer) or ``sms/json`` (JSON), ``POST balance[/json]`` and
``POST credit[/json]`` (Octopush API docs). Credentials travel in the form body, never in the
URL. Answers are HTTP 200 even on error: ``error_code`` decides, ``"000"`` being success.

Answer quirks this module tolerates: the per-recipient list is spelt ``successs`` (three s,
the real spelling); in JSON it may be a list of objects or, as in the docs' example, a single
object; recipients may come back as numbers without ``+`` (``33601010101``). A recipient that
the answer does not list under ``failures`` was accepted. An XML answer may start with
whitespace or a byte-order mark before ``<?xml``, which a strict parser refuses.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import httpx

from postier.config import HttpSettings, OctopushSettings
from postier.providers.base import OutgoingSms
from postier.providers.errors import AmbiguousError, RetryableError
from postier.providers.octopush.codes import (
    ALREADY_ACCEPTED,
    NAME,
    SUCCESS,
    already_accepted_receipt,
    call_with_code_retries,
    error_for,
    normalise_code,
)
from postier.providers.octopush.signing import sign_form
from postier.providers.octopush.timestamps import to_octopush_timestamp
from postier.providers.results import Provider, RecipientResult, SendReceipt
from postier.providers.transport import Transport, now_utc

#: container tags the per-recipient success list is found under (the Octopush docs spell "successs")
_SUCCESS_TAGS: Final = ("successs", "successes", "success")


def build_send_form(settings: OctopushSettings, sms: OutgoingSms) -> dict[str, str]:
    """The ``sms`` form for ``sms``, signed when ``settings.sign_requests``.

    Notifications go ``transactional=1`` (no STOP mention needed), marketing ``0``. A
    ``send_at`` in the future makes a deferred send (``sms_mode=2``, ``sending_date`` in GMT+1);
    one already past is sent at once.
    """
    form = {
        "user_login": settings.login,
        "api_key": settings.api_key.get_secret_value(),
        "sms_recipients": ",".join(sms.recipients),
        "sms_text": sms.text,
        "sms_type": settings.sms_type,
        "sms_mode": "1",
        "transactional": "1" if sms.category == "notification" else "0",
    }
    sender = sms.sender or settings.sender
    # Octopush SMS API docs: sms_sender only when sms_type != XXX
    if sender and settings.sms_type != "XXX":
        form["sms_sender"] = sender
    if sms.send_at is not None and sms.send_at > now_utc():
        form["sms_mode"] = "2"
        form["sending_date"] = str(to_octopush_timestamp(sms.send_at))
    if sms.request_id:
        form["request_id"] = sms.request_id
    if settings.simulation_mode:
        form["request_mode"] = "simu"
    return sign_form(form) if settings.sign_requests else form


def parse_xml_answer(text: str) -> dict[str, Any]:
    """The XML answer as the JSON answer's dict: fields as strings, ``successs``/``failures``
    as lists of dicts, ``<balance type="FR">`` elements as a ``balance`` dict.

    Raises ``ValueError`` for text that is not an ``<octopush>`` document.
    """
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ValueError("DTDs are refused in Octopush answers")
    # the XML declaration must open the document: drop what some answers put before it
    text = text.lstrip("\ufeff \t\r\n")
    root = ET.fromstring(text)  # noqa: S314 - no DTD (checked above), so no entity expansion
    if root.tag != "octopush":
        raise ValueError(f"unexpected root element {root.tag!r}")
    answer: dict[str, Any] = {"successs": [], "failures": []}
    for child in root:
        tag = child.tag.strip()
        if tag == "balance" and "type" in child.attrib:
            answer.setdefault("balance", {})[child.attrib["type"]] = (child.text or "").strip()
        elif tag in _SUCCESS_TAGS or tag == "failures":
            items = [child] if tag == "success" else list(child)
            key = "failures" if tag == "failures" else "successs"
            answer[key].extend({g.tag.strip(): (g.text or "").strip() for g in i} for i in items)
        else:
            answer[tag] = (child.text or "").strip()
    return answer


def _as_list(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Mapping)]
    return []


def parse_json_answer(text: str) -> dict[str, Any]:
    """The JSON answer with ``successs`` and ``failures`` always lists of objects."""
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError("the answer is not a JSON object")
    for tag in _SUCCESS_TAGS:
        if tag in body and tag != "successs":
            body.setdefault("successs", body.pop(tag))
    body["successs"] = _as_list(body.get("successs"))
    body["failures"] = _as_list(body.get("failures"))
    return body


def _digits(number: Any) -> str:
    text = "".join(ch for ch in str(number) if ch.isdigit())
    return text[2:] if str(number).strip().startswith("00") else text


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def receipt_from_answer(
    answer: Mapping[str, Any], sms: OutgoingSms, *, simulated: bool = False
) -> SendReceipt:
    """Our ``SendReceipt`` for a parsed send answer; raise the typed error for a failure code."""
    code = normalise_code(answer.get("error_code"))
    if code == ALREADY_ACCEPTED:
        return already_accepted_receipt(sms.request_id, answer)
    if code != SUCCESS:
        raise error_for(code, answer)
    successes = {_digits(s.get("recipient")): s for s in answer.get("successs", [])}
    failures = {_digits(f.get("recipient")): f for f in answer.get("failures", [])}
    results = []
    for recipient in sms.recipients:
        key = _digits(recipient)
        failure = failures.get(key)
        if failure is not None:
            results.append(
                RecipientResult(
                    recipient=recipient,
                    accepted=False,
                    error_code=normalise_code(failure.get("error_code")) or None,
                )
            )
            continue
        success = successes.get(key, {})
        results.append(
            RecipientResult(
                recipient=recipient,
                accepted=True,
                cost=_decimal(success.get("cost")),
                parts=_int(success.get("sms_needed")),
                country_code=success.get("country_code") or None,
            )
        )
    parts = {r.parts for r in results if r.parts is not None}
    return SendReceipt(
        provider=Provider.OCTOPUSH,
        message_id=str(answer.get("ticket") or "") or None,
        cost=_decimal(answer.get("cost")),
        parts=parts.pop() if len(parts) == 1 else None,
        recipients=tuple(results),
        raw=dict(answer),
        simulated=simulated,
    )


class LegacyApi:
    """Sends and reads the balance over the legacy form API."""

    def __init__(self, settings: OctopushSettings, http: HttpSettings, transport: Transport):
        self.settings = settings
        self.http = http
        self.transport = transport
        self.as_json = settings.answer_format == "json"

    def _url(self, path: str) -> str:
        return self.settings.base_url.rstrip("/") + f"/{path}" + ("/json" if self.as_json else "")

    def _parse(self, response: httpx.Response, *, changes_state: bool) -> dict[str, Any]:
        """The answer as a dict. A 4xx (the transport raised for 429 and 5xx) was not
        processed: permanent. An unreadable 200 to a send may hide a sent SMS: ambiguous."""
        if response.status_code >= 400:
            raise error_for(str(response.status_code), response.text[:500])
        try:
            if self.as_json:
                return parse_json_answer(response.text)
            return parse_xml_answer(response.text)
        except (ValueError, ET.ParseError) as exc:
            message = f"unreadable answer (HTTP {response.status_code})"
            raw = response.text[:500]
            if changes_state:
                raise AmbiguousError(message, provider=NAME, raw=raw) from exc
            raise RetryableError(message, provider=NAME, raw=raw) from exc

    def send(self, sms: OutgoingSms) -> SendReceipt:
        """One request for every recipient of ``sms``; 153/501 retried in-process."""
        form = build_send_form(self.settings, sms)

        def attempt() -> SendReceipt:
            response = self.transport.request(
                "POST", self._url("sms"), data=form, changes_state=True
            )
            answer = self._parse(response, changes_state=True)
            return receipt_from_answer(answer, sms, simulated=self.settings.simulation_mode)

        return call_with_code_retries(self.http, attempt)

    def _read(self, path: str) -> dict[str, Any]:
        """A successful answer of the read-only call ``path``; the typed error otherwise."""
        form = {
            "user_login": self.settings.login,
            "api_key": self.settings.api_key.get_secret_value(),
        }

        def attempt() -> dict[str, Any]:
            response = self.transport.request(
                "POST", self._url(path), data=form, changes_state=False
            )
            answer = self._parse(response, changes_state=False)
            code = normalise_code(answer.get("error_code"))
            if code != SUCCESS:
                raise error_for(code, answer)
            return answer

        return call_with_code_retries(self.http, attempt)

    def credit(self) -> Decimal:
        """The account's credit in euros (``credit``)."""
        answer = self._read("credit")
        credit = _decimal(answer.get("credit"))
        if credit is None:
            raise RetryableError("no credit in the credit answer", provider=NAME, raw=answer)
        return credit

    def balance(self) -> dict[str, Decimal]:
        """Per SMS type, as Octopush reports it (``{"FR": …, "XXX": …}``)."""
        answer = self._read("balance")
        per_type = answer.get("balance")
        if not isinstance(per_type, Mapping):  # tolerate the types at the top level
            per_type = {k: v for k, v in answer.items() if k in ("FR", "XXX", "WWW")}
        values = {str(k): _decimal(v) for k, v in per_type.items()}
        return {k: v for k, v in values.items() if v is not None}
