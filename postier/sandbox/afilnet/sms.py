"""Simulated Afilnet ``class=sms`` and ``class=user`` (docs/PROVIDERS.md, "Afilnet, class=sms").

Choices where no source is precise (each one constant or one branch below):

- ``sendsms`` takes one number ``to`` as international digits (else ``INCORRECT_DESTINATION``)
  and answers ``{"messageid", "credits"}`` where ``credits`` is what the send cost: one credit
  per part, parts counted as 160/153 characters for ASCII text and 70/67 otherwise (a rough
  GSM-7/UCS-2 split; the exact rule lives in ``postier.rules``). ``NO_CREDITS`` when the
  balance cannot pay it.
- ``scheduledatetime`` is ``yyyy-mm-dd hh:mm:ss`` in Madrid time (``AFILNET_TIMEZONE``); an
  unparseable value answers ``MISSING_COMPULSORY_PARAM`` (no documented code fits better).
- ``getdeliverystatus`` lists the known ids of ``messages`` (unknown ids are left out) with
  ``deliverystatus`` one of ``DELIVERY_STATUSES`` and ``deliverydate`` set once final, else "";
  with ``state.single_object`` a list of one is answered as that object.
- ``class=user&method=getbalance`` answers ``{"credit": <remaining credits>}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from postier.sandbox.afilnet import Handler, require
from postier.sandbox.afilnet.state import (
    AFILNET_DATETIME_FORMAT,
    AFILNET_TIMEZONE,
    AfilnetFault,
    AfilnetState,
    afilnet_datetime,
)
from postier.sandbox.core import SentRecord

#: ``SentRecord.delivery_state`` -> Afilnet ``deliverystatus``
DELIVERY_STATUSES: dict[str, str] = {
    "scheduled": "PENDING",
    "sent": "SENT",
    "delivered": "DELIVERED",
    "undelivered": "NOT_DELIVERED",
}

_DIGITS = re.compile(r"[1-9][0-9]{6,14}")


def sms_parts(text: str) -> int:
    """How many parts (and credits) ``text`` takes, roughly: 160/153 ASCII, 70/67 otherwise."""
    single, multi = (160, 153) if text.isascii() else (70, 67)
    if len(text) <= single:
        return 1
    return math.ceil(len(text) / multi)


def _scheduled(value: str, now: float) -> float:
    if not value:
        return now
    try:
        when = datetime.strptime(value, AFILNET_DATETIME_FORMAT).replace(tzinfo=AFILNET_TIMEZONE)
    except ValueError as exc:
        raise AfilnetFault("MISSING_COMPULSORY_PARAM") from exc
    return max(now, when.timestamp())


def sendsms(state: AfilnetState, params: Mapping[str, str]) -> dict[str, Any]:
    """One SMS to one number, now or at ``scheduledatetime``."""
    sender, to, text = require(params, "from", "to", "sms")
    if not _DIGITS.fullmatch(to):
        raise AfilnetFault("INCORRECT_DESTINATION")
    core = state.core
    now = core.clock.now()
    send_at = _scheduled(params.get("scheduledatetime", ""), now)
    cost = sms_parts(text)
    if state.credits < cost:
        raise AfilnetFault("NO_CREDITS")
    state.credits -= cost
    messageid = core.next_id()
    record = SentRecord(
        provider="afilnet",
        message_id=messageid,
        recipient=f"+{to}",
        text=text,
        accepted_at=now,
        send_at=send_at,
        channel="sms",
        extra={"from": sender, "credits": cost},
    )
    core.record(record)
    state.sms[messageid] = {"record": record, "sms": text}
    return {"messageid": messageid, "credits": cost}


def getdeliverystatus(
    state: AfilnetState, params: Mapping[str, str]
) -> list[dict[str, str]] | dict[str, str]:
    """The delivery status of each known id in the comma list ``messages``."""
    (messages,) = require(params, "messages")
    core = state.core
    now = core.clock.now()
    answer = []
    for messageid in (m.strip() for m in messages.split(",")):
        entry = state.sms.get(messageid)
        if entry is None:
            continue
        record: SentRecord = entry["record"]
        state_now = record.delivery_state(now, core.delivery_delay)
        final = state_now in ("delivered", "undelivered")
        answer.append(
            {
                "messageid": messageid,
                "sms": entry["sms"],
                "deliverydate": afilnet_datetime(record.final_at(core.delivery_delay))
                if final
                else "",
                "deliverystatus": DELIVERY_STATUSES[state_now],
            }
        )
    if state.single_object and len(answer) == 1:
        return answer[0]
    return answer


def getbalance(state: AfilnetState, params: Mapping[str, str]) -> dict[str, float]:
    """The account's remaining credits."""
    return {"credit": state.credits}


METHODS: dict[str, Handler] = {
    "sendsms": sendsms,
    "getdeliverystatus": getdeliverystatus,
}

USER_METHODS: dict[str, Handler] = {
    "getbalance": getbalance,
}
