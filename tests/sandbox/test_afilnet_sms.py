"""The simulated Afilnet ``class=sms`` and ``class=user`` over raw HTTP.

See docs/PROVIDERS.md, "Afilnet, class=sms".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from postier.sandbox import Sandbox, SandboxServer
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.afilnet.sms import sms_parts
from postier.sandbox.afilnet.state import AFILNET_TIMEZONE

USER = SANDBOX_ACCOUNTS.afilnet_user
PASSWORD = SANDBOX_ACCOUNTS.afilnet_password
NUMBER = "33612345678"


@pytest.fixture
def endpoint(sandbox_server: SandboxServer, sandbox: Sandbox) -> str:
    return f"{sandbox_server.url}/api/http/"


@pytest.fixture
def raw() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def call(raw: httpx.Client, endpoint: str, cls: str, method: str, **params: str) -> Any:
    data = {"class": cls, "method": method, "user": USER, "password": PASSWORD, **params}
    body = raw.post(endpoint, data=data).json()
    return body


def send(raw: httpx.Client, endpoint: str, **params: str) -> dict[str, Any]:
    body = call(raw, endpoint, "sms", "sendsms", **{"from": "Postier", "to": NUMBER, **params})
    assert body["status"] == "success", body
    result: dict[str, Any] = body["result"]
    return result


def statuses(raw: httpx.Client, endpoint: str, *ids: str) -> list[dict[str, str]]:
    body = call(raw, endpoint, "sms", "getdeliverystatus", messages=",".join(ids))
    assert body["status"] == "success", body
    result: list[dict[str, str]] = body["result"]
    return result


def test_sendsms_answers_id_and_cost_and_records(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox
) -> None:
    before = sandbox.afilnet.state.credits
    result = send(raw, endpoint, sms="Votre code est 1234")
    assert result["credits"] == 1
    assert sandbox.afilnet.state.credits == before - 1
    (record,) = sandbox.core.records_for("afilnet")
    assert (record.message_id, record.recipient, record.channel, record.text) == (
        result["messageid"],
        "+33612345678",
        "sms",
        "Votre code est 1234",
    )
    assert record.extra["from"] == "Postier"


def test_sms_parts() -> None:
    assert [sms_parts("a" * n) for n in (1, 160, 161, 306, 307)] == [1, 1, 2, 2, 3]
    assert [sms_parts("é" * n) for n in (70, 71, 134, 135)] == [1, 2, 2, 3]


def test_long_text_costs_more(raw: httpx.Client, endpoint: str, sandbox: Sandbox) -> None:
    assert send(raw, endpoint, sms="x" * 200)["credits"] == 2


def test_no_credits(raw: httpx.Client, endpoint: str, sandbox: Sandbox) -> None:
    sandbox.afilnet.state.credits = 1
    body = call(raw, endpoint, "sms", "sendsms", **{"from": "P", "to": NUMBER, "sms": "x" * 200})
    assert body == {"status": "error", "error": "NO_CREDITS"}
    assert sandbox.core.records == []
    assert sandbox.afilnet.state.credits == 1


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"to": NUMBER, "sms": "x"}, "MISSING_COMPULSORY_PARAM"),
        ({"from": "P", "sms": "x"}, "MISSING_COMPULSORY_PARAM"),
        ({"from": "P", "to": NUMBER}, "MISSING_COMPULSORY_PARAM"),
        ({"from": "P", "to": "+33612345678", "sms": "x"}, "INCORRECT_DESTINATION"),
        (
            {"from": "P", "to": NUMBER, "sms": "x", "scheduledatetime": "demain"},
            "MISSING_COMPULSORY_PARAM",
        ),
    ],
)
def test_sendsms_errors(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox, params: dict[str, str], code: str
) -> None:
    assert call(raw, endpoint, "sms", "sendsms", **params) == {"status": "error", "error": code}
    assert sandbox.core.records == []


def test_delivery_status_moves_with_the_clock(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox
) -> None:
    good = send(raw, endpoint, sms="a")["messageid"]
    bad = send(raw, endpoint, sms="b", to="33600009999")["messageid"]
    first = statuses(raw, endpoint, good, bad, "nope")
    assert [(s["messageid"], s["deliverystatus"], s["deliverydate"]) for s in first] == [
        (good, "SENT", ""),
        (bad, "SENT", ""),
    ]
    assert first[0]["sms"] == "a"
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.01)
    later = statuses(raw, endpoint, good, bad)
    assert [s["deliverystatus"] for s in later] == ["DELIVERED", "NOT_DELIVERED"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", later[0]["deliverydate"])


def test_scheduled_sms_is_pending_until_due(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox
) -> None:
    due = datetime.now(AFILNET_TIMEZONE).replace(microsecond=0) + timedelta(hours=2)
    messageid = send(
        raw, endpoint, sms="plus tard", scheduledatetime=due.strftime("%Y-%m-%d %H:%M:%S")
    )["messageid"]
    (record,) = sandbox.core.records
    assert record.send_at == due.timestamp()
    assert statuses(raw, endpoint, messageid)[0]["deliverystatus"] == "PENDING"
    sandbox.core.clock.advance(2 * 3600 + sandbox.core.delivery_delay + 1)
    assert statuses(raw, endpoint, messageid)[0]["deliverystatus"] == "DELIVERED"


def test_getdeliverystatus_needs_messages(raw: httpx.Client, endpoint: str) -> None:
    assert call(raw, endpoint, "sms", "getdeliverystatus") == {
        "status": "error",
        "error": "MISSING_COMPULSORY_PARAM",
    }


def test_getbalance(raw: httpx.Client, endpoint: str, sandbox: Sandbox) -> None:
    sandbox.afilnet.state.credits = 42.5
    assert call(raw, endpoint, "user", "getbalance") == {
        "status": "success",
        "result": {"credit": 42.5},
    }
    assert call(raw, endpoint, "user", "getcredit") == {
        "status": "error",
        "error": "INCORRECT_METHOD",
    }


# -- the answer shapes third-party clients report -------------------------------------------


def test_answers_in_upper_case_when_asked(
    raw: httpx.Client, endpoint: str, sandbox_server: SandboxServer
) -> None:
    admin = f"{sandbox_server.url}/_sandbox/afilnet/answers"
    assert raw.post(admin, json={"status_case": "upper"}).json()["status_case"] == "upper"
    assert call(raw, endpoint, "sms", "sendsms", to=NUMBER, sms="x")["status"] == "ERROR"
    body = call(raw, endpoint, "sms", "sendsms", **{"from": "Postier", "to": NUMBER, "sms": "x"})
    assert body["status"] == "SUCCESS"
    assert raw.post(admin, json={"status_case": "lower"}).status_code == 200
    assert call(raw, endpoint, "user", "getbalance")["status"] == "success"


def test_one_status_comes_as_an_object_when_asked(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox, sandbox_server: SandboxServer
) -> None:
    first, second = (send(raw, endpoint, sms=text)["messageid"] for text in ("a", "b"))
    admin = f"{sandbox_server.url}/_sandbox/afilnet/answers"
    assert raw.post(admin, json={"single_object": True}).json()["single_object"] is True
    body = call(raw, endpoint, "sms", "getdeliverystatus", messages=first)
    assert isinstance(body["result"], dict)
    assert body["result"]["messageid"] == first
    assert [r["messageid"] for r in statuses(raw, endpoint, first, second)] == [first, second]
    sandbox.reset()
    assert sandbox.afilnet.state.single_object is False


@pytest.mark.parametrize(
    "body", [{"status_case": "title"}, {"single_object": "yes"}, [1], {"other": 1}]
)
def test_the_answers_route_refuses_what_it_does_not_know(
    raw: httpx.Client, sandbox_server: SandboxServer, sandbox: Sandbox, body: Any
) -> None:
    response = raw.post(f"{sandbox_server.url}/_sandbox/afilnet/answers", json=body)
    assert response.status_code == 400
