"""Octopush SMS: the legacy form API and the v1 JSON API behind one ``SmsProvider``.

``OctopushClient(settings.octopush, settings.http)`` sends over the API ``settings.transport``
names (``legacy``, answers in ``settings.answer_format`` XML or JSON; or ``v1``). Sources:
the Octopush API docs and docs/PROVIDERS.md, "Octopush". Modules, one job each:

- ``client``: ``OctopushClient`` (``send_sms``, ``delivery_status``, ``balance``, ``credit``,
  parsers);
- ``legacy`` / ``v1``: each API's request and answer;
- ``codes``: every Octopush code -> Postier's error type, in one table;
- ``signing``: legacy ``request_keys``/``request_sha1`` (every letter but D, whose field is
  unsettled);
- ``timestamps``: the GMT+1 ``sending_date`` (a fixed offset, not Paris time);
- ``callbacks``: the delivery-receipt and inbound-SMS callback bodies.

Exactly once. Give every send a ``request_id`` (the ledger's message id): Octopush remembers it
(v1: 24 h) and answers a repeat with 120. The client returns that as a success without ticket
(``is_already_accepted(receipt)`` is true), because it means an earlier identical request went
through; raising would make the worker fail or resend a message that was sent. This is also
how Octopush sends are reconciled: there is no status API, so an ``AmbiguousError`` (read
timeout, dropped answer, code 500) is resolved by sending the same message again with the same
``request_id`` — 120 means it had gone out, anything else that it had not. Without a
``request_id`` that resend may duplicate the SMS.

Simulation. ``settings.simulation_mode`` sends every request as a simulation (legacy
``request_mode=simu``, v1 ``simulation_mode``): Octopush validates and answers it, prices it,
and neither sends nor charges it, which checks an account and its settings against the real
service without sending. The receipt says so (``SendReceipt.simulated``).

Retries. 153 (route congested) and 501 (connection error) are ``RetryableError``s, retried a
few times in-process, then left to the task. Transport failures follow ``transport.py``.

Batching. One ``OutgoingSms`` is one request whatever the number of recipients, up to
``MAX_RECIPIENTS_PER_REQUEST`` (500, v1's limit; legacy states none). Beyond it the client
refuses (``ContentRejectedError``): the campaign fan-out splits recipients into messages of at
most 500, each with its own ``request_id``, so a retry never re-sends a batch that went out.
Legacy reports each recipient (``SendReceipt.recipients``, refused ones with their code); v1
gives totals only, so its recipients are all reported accepted.

Delivery receipts. Octopush pushes them by HTTP POST to the account's callback URL; it has no
status API, so ``delivery_status`` raises ``UnsupportedFeatureError`` and the scheduler must not
poll Octopush. The dispatcher's webhook (to come) passes the bodies to ``parse_receipt``
(ACK -> sent, DELIVERED -> delivered, NOT_DELIVERED/BAD_DESTINATION/BLACKLISTED_NUMBER/
NOT_ALLOWED -> undelivered, UNKNOWN_DELIVERY/UNDEFINED -> unknown), inbound SMS to
``parse_inbound``. The sandbox, which cannot push, shows the bodies it would push at
``GET /_sandbox/octopush/receipts?ticket=…`` (sandbox only; see ``postier.sandbox.octopush``).
"""

from postier.providers.octopush.callbacks import RECEIPT_STATES, parse_inbound, parse_receipt
from postier.providers.octopush.client import OctopushClient
from postier.providers.octopush.codes import (
    CODES,
    MAX_RECIPIENTS_PER_REQUEST,
    CongestedError,
    error_for,
    is_already_accepted,
)
from postier.providers.octopush.signing import (
    SIGNED_FIELDS,
    SIGNED_LETTERS,
    request_sha1,
    sign_form,
)
from postier.providers.octopush.timestamps import from_octopush_timestamp, to_octopush_timestamp

receipts_from_callback = parse_receipt

__all__ = [
    "CODES",
    "MAX_RECIPIENTS_PER_REQUEST",
    "RECEIPT_STATES",
    "SIGNED_FIELDS",
    "SIGNED_LETTERS",
    "CongestedError",
    "OctopushClient",
    "error_for",
    "from_octopush_timestamp",
    "is_already_accepted",
    "parse_inbound",
    "parse_receipt",
    "receipts_from_callback",
    "request_sha1",
    "sign_form",
    "to_octopush_timestamp",
]
