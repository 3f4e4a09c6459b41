"""One contact -> one ledger row, with the producer's own validation.

The fan-out and the estimate build rows the same way: personalise the campaign's message for
the contact (``personalise.py``), then hand it to a ``RowFactory`` — the producer's
row builder (``postier.dispatch.rows.RowBuilder``, through ``LedgerRowFactory``), so a
campaign message is checked exactly like a single ``send_sms``. A refusal is a
``RuleViolation`` whose field is the contact's (the number field, the placeholder's name).

Message ids are derived, not drawn: ``message_id(salt, recipient)`` is an HMAC of the number
under the campaign's secret salt. A number repeated in the audience gets one id, so the
ledger's primary key sends it once whichever chunk stores it first, and a chunk stored twice
inserts nothing new. The salt stays in the ledger, so the id (which crosses the broker and
shows in Flower) tells nothing about the number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Protocol

from postier.campaigns.audience import Contact
from postier.campaigns.personalise import lookup, render, render_params
from postier.campaigns.spec import CampaignSpec
from postier.dispatch.rows import Category, Row, RowBuilder, RowMemo, SmsRequest
from postier.ledger.models import MessageKind
from postier.rules.errors import RuleViolation


class RowFactory(Protocol):
    """Validated, unsaved ledger rows for one recipient (the producer's builders)."""

    def batch(self) -> RowFactory:
        """A factory for the rows of one chunk: they share a clock reading and each distinct
        text's checks (``postier.dispatch.rows.RowMemo``). Not to be shared between threads.
        """
        ...

    def sms(self, to: str, text: str, *, sender: str | None, category: str, provider: str) -> Row:
        """An SMS row; raises ``RuleViolation`` (number field ``to``)."""
        ...

    def whatsapp_template(
        self,
        to: str,
        template_id: str,
        *,
        params: Mapping[str, str],
        header: Mapping[str, Any] | None,
        platform_id: str | None,
        provider: str,
    ) -> Row:
        """A WhatsApp template row; raises ``RuleViolation`` (number field ``to``)."""
        ...


class LedgerRowFactory:
    """``RowFactory`` over the core row builder, which single sends use too."""

    def __init__(self, builder: RowBuilder, memo: RowMemo | None = None) -> None:
        self.builder = builder
        self.memo = memo
        #: a batch's requests by all but their number (one text for all: one request)
        self.requests: dict[tuple[str, str | None, str, str], SmsRequest] = {}

    def batch(self) -> LedgerRowFactory:
        return LedgerRowFactory(self.builder, self.builder.memo())

    def sms(self, to: str, text: str, *, sender: str | None, category: str, provider: str) -> Row:
        key = (text, sender, category, provider)
        request = self.requests.get(key) if self.memo is not None else None
        if request is None:
            chosen: Category = "marketing" if category == "marketing" else "notification"
            request = SmsRequest(to, text, sender=sender, category=chosen, provider=provider)
            if self.memo is not None and len(self.requests) < RowMemo.MAX_TEXTS:
                self.requests[key] = request
        return self.builder.sms_to(to, request, self.memo)

    def whatsapp_template(
        self,
        to: str,
        template_id: str,
        *,
        params: Mapping[str, str],
        header: Mapping[str, Any] | None,
        platform_id: str | None,
        provider: str,
    ) -> Row:
        return self.builder.whatsapp(
            kind=MessageKind.WHATSAPP_TEMPLATE,
            to=to,
            body="",
            payload={
                "template_id": template_id,
                "params": dict(params),
                "header": dict(header) if header else None,
            },
            platform_id=platform_id,
            send_at=None,
            idempotency_key=None,
            provider=provider,
        )


def message_id(salt: str, recipient: str) -> str:
    """The id of the campaign's message to ``recipient`` (32 hex characters)."""
    return _keyed(salt).copy_with(recipient)


class _Keyed:
    """``message_id`` under one salt: HMAC-SHA256 (RFC 2104) with the key's inner and outer
    hashes started once, copied per recipient.

    ``hmac.HMAC.copy`` costs several times a SHA-256 copy (a Python object around an
    OpenSSL context copy): it was a fifth of a fan-out's row. The two copies here give the
    same digest (a property test compares them with ``hmac``).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, salt: str) -> None:
        key = salt.encode()
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def copy_with(self, recipient: str) -> str:
        inner = self._inner.copy()
        inner.update(recipient.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:32]


#: SHA-256's block size, which the HMAC key is padded (or hashed) to
_SHA256_BLOCK = 64


@lru_cache(maxsize=64)
def _keyed(salt: str) -> _Keyed:
    return _Keyed(salt)


def build_row(factory: RowFactory, spec: CampaignSpec, campaign_id: str, contact: Contact) -> Row:
    """The row of ``contact``'s message (queued, id derived); raises ``RuleViolation``."""
    number = lookup(contact.fields, spec.phone_field)
    if number is None or not number.strip():
        raise RuleViolation(spec.phone_field, "e164.empty", "this contact has no number")
    try:
        if spec.channel == "sms":
            row = factory.sms(
                number,
                render(spec.text, contact.fields) if spec.placeholders else spec.text,
                sender=spec.sender,
                category=spec.category,
                provider=spec.provider,
            )
        else:
            row = factory.whatsapp_template(
                number,
                str(spec.template_id),
                params=render_params(spec.params, contact.fields),
                header=spec.header,
                platform_id=spec.platform_id,
                provider=spec.provider,
            )
    except RuleViolation as exc:
        if exc.field == "to":
            raise RuleViolation(spec.phone_field, exc.rule, exc.message) from exc
        raise
    row["id"] = message_id(spec.id_salt, row["recipient"])
    row["campaign_id"] = campaign_id
    row["callback_url"] = spec.callback_url
    return row
