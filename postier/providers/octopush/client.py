"""``OctopushClient``: the ``SmsProvider`` over the legacy or the v1 API, as settings choose."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from postier.config import HttpSettings, OctopushSettings
from postier.providers.base import OutgoingSms
from postier.providers.errors import ContentRejectedError, UnsupportedFeatureError
from postier.providers.octopush.callbacks import parse_inbound, parse_receipt
from postier.providers.octopush.codes import MAX_RECIPIENTS_PER_REQUEST, NAME
from postier.providers.octopush.legacy import LegacyApi
from postier.providers.octopush.v1 import V1Api
from postier.providers.results import InboundMessage, Provider, SendReceipt, StatusReport
from postier.providers.transport import Transport


class OctopushClient:
    """Octopush as an ``SmsProvider``: one request per ``OutgoingSms``, however many recipients."""

    provider = Provider.OCTOPUSH

    def __init__(
        self,
        settings: OctopushSettings,
        http: HttpSettings,
        pool: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.transport = Transport(Provider.OCTOPUSH, http, pool)
        self.api: LegacyApi | V1Api
        if settings.transport == "v1":
            self.api = V1Api(settings, http, self.transport)
        else:
            self.api = LegacyApi(settings, http, self.transport)

    def send_sms(self, sms: OutgoingSms) -> SendReceipt:
        """Send ``sms`` to all its recipients in one request.

        More than ``MAX_RECIPIENTS_PER_REQUEST`` recipients is refused before any request
        (``ContentRejectedError``): splitting is the caller's, so that one ledger message is one
        request with one ``request_id`` and one ticket. A naive ``send_at`` is refused too.
        """
        if len(sms.recipients) > MAX_RECIPIENTS_PER_REQUEST:
            raise ContentRejectedError(
                f"{len(sms.recipients)} recipients; at most {MAX_RECIPIENTS_PER_REQUEST} "
                "per request: split the message",
                provider=NAME,
                code="too_many_recipients",
            )
        if sms.send_at is not None and sms.send_at.utcoffset() is None:
            raise ContentRejectedError(
                "send_at must be timezone-aware", provider=NAME, code="naive_send_at"
            )
        return self.api.send(sms)

    def delivery_status(self, message_id: str) -> StatusReport:
        """Not available: Octopush pushes receipts by callback and has no status API.

        Raises ``UnsupportedFeatureError``; feed the callback bodies to ``parse_receipt``.
        """
        raise UnsupportedFeatureError(
            "Octopush has no delivery-status API: receipts come by callback (parse_receipt)",
            provider=NAME,
            code="no_status_api",
        )

    def balance(self) -> dict[str, Decimal]:
        """The account balance: legacy per SMS type (``{"FR": …, "XXX": …}``, as Octopush
        states it), v1 the wallet (``{"euro": …}``)."""
        return self.api.balance()

    def credit(self) -> Decimal:
        """The account's credit in euros: legacy ``/api/credit``, v1 the wallet."""
        return self.api.credit()

    def parse_receipt(self, body: Mapping[str, Any]) -> StatusReport:
        """A delivery-receipt callback body as our ``StatusReport``."""
        return parse_receipt(body)

    #: the name the webhook side may look for; the same parser
    receipts_from_callback = parse_receipt

    def parse_inbound(self, body: Mapping[str, Any]) -> InboundMessage:
        """An inbound-SMS callback body as our ``InboundMessage``."""
        return parse_inbound(body)

    def close(self) -> None:
        self.transport.close()
