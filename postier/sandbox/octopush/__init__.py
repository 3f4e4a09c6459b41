"""Simulated Octopush: the legacy form API and the v1 JSON API (docs/PROVIDERS.md, "Octopush").

Legacy (``www.octopush-dm.com``): ``POST /api/sms`` answers XML, ``POST /api/sms/json`` JSON;
``POST /api/balance[/json]`` the balance per SMS type, ``POST /api/credit[/json]`` the credit
in euros (``{"error_code": "000", "credit": 6.93}``); each path with or without a trailing
slash. Form parameters, HTTP 200 even on error, the outcome
in ``error_code`` (``"000"`` is success), the per-recipient list spelt ``successs`` (sic).
v1 (``api.octopush.com/v1/public``): ``POST /v1/public/sms-campaign/send`` and
``GET /v1/public/wallet/check-balance``, headers ``api-login``/``api-key``, JSON in and out,
errors HTTP 400 ``{"code": N, "message": "…"}`` with the legacy codes, 401 for credentials.

Where the sources are silent the simulator chooses, and says so here (all unconfirmed):

- ``sending_date`` is Unix seconds in GMT+1 whatever the season (Octopush SMS API docs): the
  UTC instant is ``sending_date - 3600``. A deferred date already past sends at once.
- Prices per SMS part (``PRICES``): FR 0.055 €, XXX 0.035 €, WWW 0.08 €; v1 ``sms_premium`` is
  FR for French numbers and WWW elsewhere, ``sms_low_cost`` is XXX. Parts are counted by
  ``postier.rules.segments`` (GSM-7 160/153, UCS-2 70/67). One euro wallet is charged.
- ``/api/balance`` answers per type the number of SMS of that type the wallet still buys
  (two decimals, rounded down), which is why FR and XXX differ for one account; the send
  answer's ``balance`` and v1's ``check-balance`` ``{"amount", "unit": "euro"}`` are euros.
- Numbers: ``+``/``00`` then 8–15 digits; ``+33`` must be a mobile (``6``/``7`` then 8
  digits). Per recipient: malformed 117, unknown prefix 150 (``COUNTRIES``), FR type outside
  France 151, XXX outside France 152. When every recipient fails the request fails: with
  150/151/152 if all share that code, else 117. Repeated numbers are sent once.
- FR needs ``STOP au <digits>`` (121) unless ``transactional=1``; on v1, ``sms_premium`` with
  ``purpose=wholesale`` needs it. The sender (3–11 alnum, 106) is ignored for XXX/low cost.
- ``request_id`` (legacy and v1 share one namespace per account) is remembered 24 h from the
  accepted request only: a refused request does not consume it. A repeat answers 120.
- ``request_keys`` letters (T text, R recipients, M mode, Y type, S sender, D date, a/b
  first/last names, c/d/e ``sms_fields_1..3``, W with_replies, N transactional, Q request_id)
  name the form values whose concatenation, UTF-8, hashes to ``request_sha1`` (hex, any case);
  an absent value counts as ``""``; an unknown letter is 124. Which field D names is
  unsettled (``sending_date``, or the ``sms_date`` of Octopush's own client libraries, which
  no request carries): a signature under either reading is accepted.
- ``request_mode=simu`` validates and answers like a real send (cost, balance unchanged)
  without sending, charging, recording or consuming the ``request_id``; ``real`` (the
  default) sends; any other value is 125.
- ``sending_time`` (sent by some integrations instead of ``sending_date``) is refused with
  125: no source says what the real service does with it, and honouring or ignoring it here
  would hide a deferred send that may go out at once in production.
- A legacy refusal carries the sandbox's reason in an ``X-Sandbox-Reason`` header (sandbox
  only).
- An invalid ``sms_mode``/``sending_date``, or (v1) ``purpose``/``send_at`` without offset,
  more than 500 recipients, or a body that is not a JSON object: 125 (undefined).
- v1 refuses the whole request (400, 117/150/151/152) if any recipient is refused, since its
  answer has no per-recipient list; success is HTTP 201. ``simulation_mode`` prices the
  request without charging, recording or consuming the ``request_id``.
- Error codes with no natural trigger (500, 501, …) are played by the admin route
  ``POST /_sandbox/octopush/next-errors {"codes": ["501", …]}``, one per send after
  authentication; 153 also comes from the ``congestion`` fault of the fault middleware.

Delivery receipts: real Octopush pushes them by HTTP POST to a callback URL set in the account
(docs/PROVIDERS.md); it has no status API to pull. The sandbox pushes nothing: it exposes the bodies
it would push, in the v1 callback shape ``{message_id, number, status, delivery_date}``, at
``GET /_sandbox/octopush/receipts?ticket=…`` (an extension that exists only here), computed
from the sandbox clock: nothing while scheduled, ``ACK`` once sent, then ``DELIVERED`` or
``NOT_DELIVERED`` (numbers ending in ``9999``). ``message_id`` is ``<ticket>:<number>``.
Inbound SMS: ``POST /_sandbox/octopush/inbound {"number", "text"}`` stores one in the v1
inbound callback shape ``{message_id, number, text, reception_date}``; ``GET`` lists them.

Modules: ``account`` (wallet, routing, prices, request_id memory, receipts), ``legacy``,
``v1``, ``admin`` (the sandbox-only routes).
"""

from __future__ import annotations

import json

from starlette.routing import BaseRoute

from postier.sandbox.core import SandboxCore
from postier.sandbox.octopush import admin, legacy, v1
from postier.sandbox.octopush.account import NAME, OctopushAccount
from postier.sandbox.octopush.pusher import CallbackPusher


class OctopushSim:
    """Both Octopush APIs over one simulated account (one wallet, one request_id memory)."""

    name = NAME

    def __init__(self, core: SandboxCore) -> None:
        self.core = core
        self.account = OctopushAccount(core)
        self.callbacks = CallbackPusher(self.account)

    def reset(self) -> None:
        self.account.reset()
        self.callbacks.reset()

    def routes(self) -> list[BaseRoute]:
        return [*legacy.routes(self.account), *v1.routes(self.account)]

    def admin_routes(self) -> list[BaseRoute]:
        return [*admin.admin_routes(self.account), *admin.callback_routes(self.callbacks)]

    @staticmethod
    def congestion_answer(path: str) -> tuple[bytes, str]:
        """Error 153 (route congested) in the answer format of ``path`` (fault middleware)."""
        if path.startswith("/v1/"):
            return json.dumps(v1.error_body("153")).encode(), "application/json"
        return legacy.legacy_answer_bytes({"error_code": "153"}, path)
