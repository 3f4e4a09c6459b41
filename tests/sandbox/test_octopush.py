"""The simulated Octopush APIs over real HTTP: legacy (XML, JSON), v1, and the admin routes."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from postier.sandbox import Sandbox, SandboxServer
from postier.sandbox.accounts import SANDBOX_ACCOUNTS

LOGIN = SANDBOX_ACCOUNTS.octopush_login
KEY = SANDBOX_ACCOUNTS.octopush_api_key
V1_HEADERS = {"api-login": LOGIN, "api-key": KEY}
FR_A, FR_B, FR_BOUNCE = "+33601020304", "+33712345678", "+33600009999"


@pytest.fixture
def web(sandbox: Sandbox, sandbox_server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server.url, timeout=5.0) as client:
        yield client


def form(**overrides: str | None) -> dict[str, str]:
    """A valid legacy send form; a None override removes the field."""
    base: dict[str, str | None] = {
        "user_login": LOGIN,
        "api_key": KEY,
        "sms_recipients": FR_A,
        "sms_text": "Votre code est 1234",
        "sms_type": "FR",
        "sms_sender": "Postier",
        "transactional": "1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def legacy_json(web: httpx.Client, **overrides: str | None) -> dict[str, Any]:
    response = web.post("/api/sms/json", data=form(**overrides))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def v1_body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "recipients": [{"phone_number": FR_A, "first_name": "Ada"}],
        "text": "Votre code est 1234",
        "type": "sms_premium",
        "purpose": "alert",
        "sender": "Postier",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def v1_send(web: httpx.Client, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return web.post(
        "/v1/public/sms-campaign/send",
        json=body,
        headers=V1_HEADERS if headers is None else headers,
    )


# --- legacy -----------------------------------------------------------------------------


def test_legacy_xml_answer_has_the_documented_shape(web: httpx.Client, sandbox: Sandbox) -> None:
    response = web.post("/api/sms", data=form(sms_recipients=f"{FR_A},0033712345678"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(response.text)  # noqa: S314 - our own sandbox's answer
    assert root.tag == "octopush"
    assert [child.tag for child in root] == [
        "error_code",
        "cost",
        "balance",
        "ticket",
        "sending_date",
        "number_of_sendings",
        "currency_code",
        "successs",
        "failures",
    ]
    assert root.findtext("error_code") == "000"
    assert root.findtext("currency_code") == "€"
    assert root.findtext("number_of_sendings") == "2"
    ticket = root.findtext("ticket") or ""
    assert ticket.startswith("api") and ticket[3:].isdigit()
    successes = root.findall("successs/success")
    assert [s.findtext("recipient") for s in successes] == [FR_A, FR_B]
    assert [[c.tag for c in s] for s in successes] == [["recipient", "country_code", "cost"]] * 2
    assert {s.findtext("country_code") for s in successes} == {"FR"}
    assert Decimal(root.findtext("cost") or "") == Decimal("0.11")
    assert list(root.find("failures") or []) == []
    recs = sandbox.records("octopush")
    assert [(r["recipient"], r["batch_id"]) for r in recs] == [(FR_A, ticket), (FR_B, ticket)]
    assert [r["message_id"] for r in recs] == [f"{ticket}:{FR_A}", f"{ticket}:{FR_B}"]


def test_legacy_json_answer_lists_successs_and_failures(web: httpx.Client) -> None:
    body = legacy_json(web, sms_recipients=f"{FR_A}, +3361234,+33112345678, {FR_B}")
    assert body["error_code"] == "000"
    assert body["currency_code"] == "€"
    assert isinstance(body["successs"], list)
    assert [s["recipient"] for s in body["successs"]] == [FR_A, FR_B]
    assert body["successs"][0] == {
        "recipient": FR_A,
        "country_code": "FR",
        "cost": 0.055,
        "sms_needed": 1,
    }
    assert body["failures"] == [
        {"recipient": "+3361234", "error_code": "117"},
        {"recipient": "+33112345678", "error_code": "117"},
    ]
    assert body["number_of_sendings"] == 2


def test_legacy_failures_in_xml(web: httpx.Client) -> None:
    response = web.post("/api/sms", data=form(sms_recipients=f"{FR_A},+999123456789"))
    root = ET.fromstring(response.text)  # noqa: S314 - our own sandbox's answer
    failures = root.findall("failures/failure")
    assert [(f.findtext("recipient"), f.findtext("error_code")) for f in failures] == [
        ("+999123456789", "150")
    ]


def test_legacy_get_is_error_100(web: httpx.Client) -> None:
    assert web.get("/api/sms/json").json() == {"error_code": "100"}
    assert "<error_code>100</error_code>" in web.get("/api/sms").text
    assert web.get("/api/balance/json").json() == {"error_code": "100"}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"user_login": None}, "108"),
        ({"api_key": None}, "109"),
        ({"api_key": "wrong"}, "101"),
        ({"user_login": "someone@else.test"}, "101"),
        ({"sms_recipients": None}, "103"),
        ({"sms_recipients": " , "}, "103"),
        ({"sms_text": None}, "107"),
        ({"sms_text": "x" * 460}, "102"),
        ({"sms_type": None}, "112"),
        ({"sms_type": "ZZZ"}, "112"),
        ({"sms_sender": "ab"}, "106"),
        ({"sms_sender": "TwelveChars1"}, "106"),
        ({"sms_sender": "Post-ier"}, "106"),
        ({"transactional": None}, "121"),
        ({"transactional": "0", "sms_text": "Promo stop au 36111"}, "121"),
        ({"sms_mode": "3"}, "125"),
        ({"sms_mode": "2"}, "125"),
        ({"sms_mode": "2", "sending_date": "tomorrow"}, "125"),
        ({"sms_recipients": "0601020304,+33123"}, "117"),
        ({"sms_recipients": "+999123456789"}, "150"),
        ({"sms_recipients": "+32470123456"}, "151"),
        ({"sms_type": "XXX", "sms_recipients": "+32470123456"}, "152"),
        ({"sms_recipients": "+32470123456,+33123"}, "117"),
    ],
)
def test_legacy_errors(web: httpx.Client, sandbox: Sandbox, overrides: dict[str, Any], code: str):
    assert legacy_json(web, **overrides) == {"error_code": code}
    assert sandbox.records("octopush") == []


def test_legacy_text_limits_and_sender_rules(web: httpx.Client) -> None:
    assert legacy_json(web, sms_text="x" * 459)["error_code"] == "000"
    assert legacy_json(web, sms_text="Promo\nSTOP au 36111", transactional="0")["error_code"] == (
        "000"
    )
    # Octopush SMS API docs: the sender applies only when sms_type != XXX
    assert legacy_json(web, sms_type="XXX", sms_sender="!")["error_code"] == "000"
    assert legacy_json(web, sms_sender=None)["error_code"] == "000"


def test_legacy_routes_and_prices(web: httpx.Client, sandbox: Sandbox) -> None:
    world = legacy_json(web, sms_type="WWW", sms_recipients="+32470123456,+447700900123")
    assert [s["country_code"] for s in world["successs"]] == ["BE", "GB"]
    assert world["cost"] == 0.16
    low = legacy_json(web, sms_type="XXX", sms_recipients=FR_A, sms_text="ê" * 71)
    assert low["successs"][0]["sms_needed"] == 2  # UCS-2: 70 in one part, 67 per part
    assert low["cost"] == 0.07
    duplicate = legacy_json(web, sms_recipients=f"{FR_A},0033601020304")
    assert duplicate["number_of_sendings"] == 1


def test_legacy_deferred_sending_date_is_gmt_plus_one(
    web: httpx.Client, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox.core, "delivery_delay", 30.0)  # "sent" lasts long enough to see
    now = int(sandbox.core.clock.now())
    utc_target = now + 7200
    body = legacy_json(web, sms_mode="2", sending_date=str(utc_target + 3600))
    assert body["sending_date"] == utc_target + 3600
    (rec,) = sandbox.records("octopush")
    assert rec["send_at"] == utc_target
    assert rec["state"] == "scheduled"
    sandbox.core.clock.advance(utc_target - sandbox.core.clock.now() - 0.1)
    assert sandbox.records("octopush")[0]["state"] == "scheduled"
    sandbox.core.clock.advance(0.2)
    assert sandbox.records("octopush")[0]["state"] == "sent"


def test_legacy_instant_send_echoes_now_in_gmt_plus_one(web: httpx.Client, sandbox: Sandbox):
    body = legacy_json(web)
    assert abs(body["sending_date"] - (sandbox.core.clock.now() + 3600)) < 5
    (rec,) = sandbox.records("octopush")
    assert rec["send_at"] == rec["accepted_at"]


def test_legacy_past_sending_date_sends_at_once(web: httpx.Client, sandbox: Sandbox) -> None:
    assert legacy_json(web, sms_mode="2", sending_date="1500000000")["error_code"] == "000"
    (rec,) = sandbox.records("octopush")
    assert rec["send_at"] == rec["accepted_at"]


def test_request_id_is_remembered_24_hours_once_accepted(web: httpx.Client, sandbox: Sandbox):
    assert legacy_json(web, request_id="r1", sms_text="")["error_code"] == "107"
    assert legacy_json(web, request_id="r1")["error_code"] == "000"
    assert legacy_json(web, request_id="r1") == {"error_code": "120"}
    assert v1_send(web, v1_body(request_id="r1")).json()["code"] == 120
    assert len(sandbox.records("octopush")) == 1
    sandbox.core.clock.advance(24 * 3600 + 1)
    assert legacy_json(web, request_id="r1")["error_code"] == "000"


def sha1(*values: str) -> str:
    return hashlib.sha1("".join(values).encode()).hexdigest()  # noqa: S324 - Octopush's scheme


def test_request_signing(web: httpx.Client) -> None:
    f = form(request_id="sig-1")
    good = sha1(f["sms_text"], f["sms_recipients"], f["sms_type"], f["sms_sender"], "sig-1")
    signed = {**f, "request_keys": "TRYSQ", "request_sha1": good}
    assert web.post("/api/sms/json", data=signed).json()["error_code"] == "000"
    upper = {**form(request_id="sig-2"), "request_keys": "TRYSQ"}
    upper["request_sha1"] = sha1(
        upper["sms_text"], upper["sms_recipients"], "FR", "Postier", "sig-2"
    ).upper()
    assert web.post("/api/sms/json", data=upper).json()["error_code"] == "000"
    # D (sending_date) named but not sent counts as ""
    absent = {**form(), "request_keys": "TD", "request_sha1": sha1(f["sms_text"])}
    assert web.post("/api/sms/json", data=absent).json()["error_code"] == "000"
    no_sha = {**form(), "request_keys": "T"}
    assert web.post("/api/sms/json", data=no_sha).json() == {"error_code": "123"}
    tampered = {**signed, "request_id": "sig-3", "sms_text": "Autre texte"}
    assert web.post("/api/sms/json", data=tampered).json() == {"error_code": "124"}
    unknown = {**form(), "request_keys": "TX", "request_sha1": sha1(f["sms_text"])}
    assert web.post("/api/sms/json", data=unknown).json() == {"error_code": "124"}
    unsigned = form(request_keys=None)
    assert web.post("/api/sms/json", data=unsigned).json()["error_code"] == "000"


def test_request_keys_cover_every_documented_letter(web: httpx.Client) -> None:
    # T R M Y S, a b (first/last names), c d e (sms_fields_1..3), W N Q: the Octopush API docs
    f = form(
        request_id="sig-all",
        sms_mode="1",
        recipients_first_names="Ada",
        recipients_last_names="Lovelace",
        sms_fields_1="f1",
        sms_fields_2="f2",
        sms_fields_3="f3",
        with_replies="0",
    )
    order = [
        "sms_text",
        "sms_recipients",
        "sms_mode",
        "sms_type",
        "sms_sender",
        "recipients_first_names",
        "recipients_last_names",
        "sms_fields_1",
        "sms_fields_2",
        "sms_fields_3",
        "with_replies",
        "transactional",
        "request_id",
    ]
    signed = {**f, "request_keys": "TRMYSabcdeWNQ", "request_sha1": sha1(*(f[n] for n in order))}
    assert web.post("/api/sms/json", data=signed).json()["error_code"] == "000"
    tampered = {**signed, "request_id": "sig-all-2", "sms_fields_2": "changed"}
    assert web.post("/api/sms/json", data=tampered).json() == {"error_code": "124"}


@pytest.mark.parametrize(
    ("sms_date", "d_names"),
    [(None, "sending_date"), (None, "sms_date"), ("1455975600", "sms_date")],
    ids=["sending_date", "sms_date-absent", "sms_date-sent"],
)
def test_d_is_accepted_under_either_reading(
    web: httpx.Client, sandbox: Sandbox, sms_date: str | None, d_names: str
) -> None:
    """Which field D names is unsettled: sending_date, or the sms_date of Octopush's own
    client libraries (that no request carries). The sandbox accepts a signature under either."""
    date = str(int(sandbox.core.clock.now()) + 7200 + 3600)
    f = form(sms_mode="2", sending_date=date, sms_date=sms_date)
    d_value = f.get(d_names, "")
    signed = {**f, "request_keys": "TRD", "request_sha1": sha1(f["sms_text"], FR_A, d_value)}
    assert web.post("/api/sms/json", data=signed).json()["error_code"] == "000"
    wrong = {**signed, "request_sha1": sha1(f["sms_text"], FR_A, "1")}
    assert web.post("/api/sms/json", data=wrong).json() == {"error_code": "124"}


@pytest.mark.parametrize(
    "extra",
    [
        {"sms_mode": "2", "sending_time": "1455975613"},
        {"sending_time": "1455975613"},
        {"sms_mode": "2", "sending_date": "1455975613", "sending_time": "1455975613"},
    ],
)
def test_sending_time_is_refused_with_125_and_a_reason(
    web: httpx.Client, sandbox: Sandbox, extra: dict[str, str]
) -> None:
    """Not a documented field: honouring it would hide a send the real service may make at
    once; ignoring it (as the sandbox did) sends at once. Refused: 125 and a reason header."""
    response = web.post("/api/sms/json", data=form(**extra))
    assert response.json() == {"error_code": "125"}
    assert "sending_date" in response.headers["x-sandbox-reason"]
    assert sandbox.records("octopush") == []


def test_request_mode_simu_validates_without_sending_or_charging(
    web: httpx.Client, sandbox: Sandbox
) -> None:
    auth = {"user_login": LOGIN, "api_key": KEY}
    before = web.post("/api/credit/json", data=auth).json()["credit"]
    body = legacy_json(web, request_mode="simu", request_id="simu-1")
    assert body["error_code"] == "000"
    assert body["cost"] == 0.055
    assert body["balance"] == before
    assert sandbox.records("octopush") == []
    assert web.post("/api/credit/json", data=auth).json()["credit"] == before
    # validated like a real one
    assert legacy_json(web, request_mode="simu", sms_text="") == {"error_code": "107"}
    assert legacy_json(web, request_mode="simu", transactional="0") == {"error_code": "121"}
    # the request_id is not used up, and request_mode=real sends
    assert legacy_json(web, request_mode="real", request_id="simu-1")["error_code"] == "000"
    assert len(sandbox.records("octopush")) == 1
    assert legacy_json(web, request_mode="test") == {"error_code": "125"}


def test_credit_answers_the_account_credit_in_euros(web: httpx.Client) -> None:
    auth = {"user_login": LOGIN, "api_key": KEY}
    before = web.post("/api/credit/json", data=auth).json()
    assert before == {"error_code": "000", "credit": SANDBOX_ACCOUNTS.octopush_balance}
    legacy_json(web)
    after = web.post("/api/credit/json", data=auth).json()["credit"]
    assert Decimal(str(before["credit"])) - Decimal(str(after)) == Decimal("0.055")
    xml = ET.fromstring(web.post("/api/credit", data=auth).text)  # noqa: S314 - our sandbox
    assert [c.tag for c in xml] == ["error_code", "credit"]
    assert Decimal(xml.findtext("credit") or "") == Decimal(str(after))
    assert web.post("/api/credit/json", data={"api_key": KEY}).json() == {"error_code": "108"}
    assert web.post("/api/credit/json", data={**auth, "api_key": "x"}).json() == {
        "error_code": "101"
    }
    assert web.get("/api/credit/json").json() == {"error_code": "100"}


@pytest.mark.parametrize(
    "path",
    ["/api/balance/", "/api/balance/json/", "/api/credit/", "/api/credit/json/", "/api/sms/json/"],
)
def test_a_trailing_slash_is_answered_not_redirected(web: httpx.Client, path: str) -> None:
    response = web.post(path, data={"user_login": LOGIN, "api_key": KEY})
    assert response.status_code == 200, response.status_code
    if path.endswith("json/"):
        assert response.json()["error_code"] in ("000", "103")
    else:
        assert "<error_code>000</error_code>" in response.text


def test_legacy_balance_decreases_and_104(web: httpx.Client) -> None:
    auth = {"user_login": LOGIN, "api_key": KEY}
    before = web.post("/api/balance/json", data=auth).json()
    assert before["error_code"] == "000"
    assert set(before["balance"]) == {"FR", "XXX"}
    legacy_json(web, sms_recipients=f"{FR_A},{FR_B}")
    after = web.post("/api/balance/json", data=auth).json()["balance"]
    assert Decimal(after["FR"]) == Decimal(before["balance"]["FR"]) - 2
    xml = ET.fromstring(web.post("/api/balance", data=auth).text)  # noqa: S314 - our sandbox
    assert xml.findtext("error_code") == "000"
    assert {b.get("type"): b.text for b in xml.findall("balance")} == after
    assert web.post("/api/balance/json", data={"user_login": LOGIN}).json() == {"error_code": "109"}
    assert web.post("/_sandbox/octopush/balance", json={"amount": "0.06"}).status_code == 200
    assert legacy_json(web, sms_recipients=f"{FR_A},{FR_B}") == {"error_code": "104"}
    assert legacy_json(web)["balance"] == 0.005
    assert web.post("/api/balance/json", data=auth).json()["balance"] == {
        "FR": "0.09",
        "XXX": "0.14",
    }


def test_legacy_answers_the_send_balance_in_euros(web: httpx.Client) -> None:
    first = legacy_json(web)
    second = legacy_json(web, sms_type="XXX")
    assert Decimal(str(first["balance"])) - Decimal(str(second["balance"])) == Decimal("0.035")


# --- v1 ---------------------------------------------------------------------------------


def test_v1_send(web: httpx.Client, sandbox: Sandbox) -> None:
    response = v1_send(
        web, v1_body(recipients=[{"phone_number": FR_A}, {"phone_number": "+32470123456"}])
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "sms_ticket",
        "number_of_contacts",
        "total_cost",
        "number_of_sms_needed",
        "residual_credit",
    }
    assert body["number_of_contacts"] == 2
    assert body["number_of_sms_needed"] == 2
    assert body["total_cost"] == 0.135  # FR premium 0.055 + world 0.08
    recs = sandbox.records("octopush")
    assert {r["batch_id"] for r in recs} == {body["sms_ticket"]}
    assert [r["recipient"] for r in recs] == [FR_A, "+32470123456"]


def test_v1_send_at_and_low_cost(web: httpx.Client, sandbox: Sandbox) -> None:
    now = int(sandbox.core.clock.now())
    at = datetime.fromtimestamp(now + 3600, UTC).astimezone(timezone(timedelta(hours=2)))
    response = v1_send(web, v1_body(send_at=at.isoformat(), type="sms_low_cost", sender="!"))
    assert response.status_code == 201
    assert response.json()["total_cost"] == 0.035
    (rec,) = sandbox.records("octopush")
    assert rec["send_at"] == now + 3600
    zulu = datetime.fromtimestamp(now + 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert v1_send(web, v1_body(send_at=zulu)).status_code == 201
    assert sandbox.records("octopush")[1]["send_at"] == now + 60


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"recipients": []}, 103),
        ({"recipients": None}, 103),
        ({"recipients": [{"phone_number": FR_A}] * 501}, 125),
        ({"recipients": [{"phone_number": FR_A}, {"phone_number": "0601"}]}, 117),
        ({"recipients": [{"phone_number": "+999123456789"}]}, 150),
        ({"recipients": [{"phone_number": "+32470123456"}], "type": "sms_low_cost"}, 152),
        ({"text": None}, 107),
        ({"text": "x" * 1225}, 102),
        ({"type": None}, 112),
        ({"type": "sms_gold"}, 112),
        ({"purpose": "spam"}, 125),
        ({"sender": "ab"}, 106),
        ({"purpose": "wholesale"}, 121),
        ({"send_at": "2030-01-01T10:00:00"}, 125),
        ({"send_at": "soon"}, 125),
    ],
)
def test_v1_errors(web: httpx.Client, sandbox: Sandbox, overrides: dict[str, Any], code: int):
    response = v1_send(web, v1_body(**overrides))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert sandbox.records("octopush") == []


def test_v1_limits_accepted(web: httpx.Client) -> None:
    many = [{"phone_number": f"+336{i:08d}"} for i in range(500)]
    assert v1_send(web, v1_body(recipients=many, text="x" * 1224)).status_code == 201
    marketing = v1_body(purpose="wholesale", text="Promo STOP au 36111")
    assert v1_send(web, marketing).status_code == 201


def test_v1_not_json_and_not_object(web: httpx.Client) -> None:
    response = web.post(
        "/v1/public/sms-campaign/send",
        content=b"{nope",
        headers={**V1_HEADERS, "content-type": "application/json"},
    )
    assert (response.status_code, response.json()["code"]) == (400, 125)
    assert v1_send(web, ["not", "an", "object"]).json()["code"] == 125


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, 108),
        ({"api-login": LOGIN}, 109),
        ({"api-login": LOGIN, "api-key": "wrong"}, 101),
    ],
)
def test_v1_credentials(web: httpx.Client, headers: dict[str, str], code: int) -> None:
    response = v1_send(web, v1_body(), headers=headers)
    assert (response.status_code, response.json()["code"]) == (401, code)
    balance = web.get("/v1/public/wallet/check-balance", headers=headers)
    assert (balance.status_code, balance.json()["code"]) == (401, code)


def test_v1_simulation_mode_charges_and_records_nothing(web: httpx.Client, sandbox: Sandbox):
    before = web.get("/v1/public/wallet/check-balance", headers=V1_HEADERS).json()
    response = v1_send(web, v1_body(simulation_mode=True, request_id="sim"))
    assert response.status_code == 201
    assert response.json()["total_cost"] == 0.055
    assert sandbox.records("octopush") == []
    assert web.get("/v1/public/wallet/check-balance", headers=V1_HEADERS).json() == before
    assert v1_send(web, v1_body(request_id="sim")).status_code == 201


def test_v1_check_balance_decreases(web: httpx.Client) -> None:
    before = web.get("/v1/public/wallet/check-balance", headers=V1_HEADERS).json()
    assert before == {"amount": SANDBOX_ACCOUNTS.octopush_balance, "unit": "euro"}
    v1_send(web, v1_body())
    after = web.get("/v1/public/wallet/check-balance", headers=V1_HEADERS).json()
    assert Decimal(str(before["amount"])) - Decimal(str(after["amount"])) == Decimal("0.055")
    web.post("/_sandbox/octopush/balance", json={"amount": 0})
    assert v1_send(web, v1_body()).json()["code"] == 104


# --- faults, scripted errors, admin routes -----------------------------------------------


def test_congestion_answers_153_in_each_format(web: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.set_faults("octopush", script=["congestion", "congestion", "congestion"])
    assert legacy_json(web) == {"error_code": "153"}
    xml = ET.fromstring(web.post("/api/sms", data=form()).text)  # noqa: S314 - our sandbox
    assert xml.findtext("error_code") == "153"
    assert v1_send(web, v1_body()).json()["code"] == 153
    assert sandbox.records("octopush") == []
    assert legacy_json(web)["error_code"] == "000"


def test_next_errors_play_codes_after_authentication(web: httpx.Client) -> None:
    response = web.post("/_sandbox/octopush/next-errors", json={"codes": ["500", 501, "125"]})
    assert response.json() == {"next_errors": ["500", "501", "125"]}
    assert legacy_json(web, api_key="wrong") == {"error_code": "101"}
    assert legacy_json(web) == {"error_code": "500"}
    assert v1_send(web, v1_body()).json() == {"code": 501, "message": "connection error"}
    assert legacy_json(web) == {"error_code": "125"}
    assert legacy_json(web)["error_code"] == "000"
    bad = web.post("/_sandbox/octopush/next-errors", json={"codes": ["999"]})
    assert bad.status_code == 400


def test_receipts_follow_the_clock(
    web: httpx.Client, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox.core, "delivery_delay", 30.0)  # "sent" lasts long enough to see
    body = legacy_json(web, sms_recipients=f"{FR_A},{FR_BOUNCE}")
    ticket = body["ticket"]
    deferred = legacy_json(
        web, sms_mode="2", sending_date=str(int(sandbox.core.clock.now()) + 3600 + 600)
    )
    receipts = web.get("/_sandbox/octopush/receipts", params={"ticket": ticket}).json()
    assert [(r["message_id"], r["number"], r["status"]) for r in receipts] == [
        (f"{ticket}:{FR_A}", FR_A, "ACK"),
        (f"{ticket}:{FR_BOUNCE}", FR_BOUNCE, "ACK"),
    ]
    assert receipts[0]["delivery_date"].endswith("+00:00")
    later = web.get("/_sandbox/octopush/receipts", params={"ticket": deferred["ticket"]}).json()
    assert later == []
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 1)
    receipts = web.get("/_sandbox/octopush/receipts", params={"ticket": ticket}).json()
    assert [r["status"] for r in receipts] == ["DELIVERED", "NOT_DELIVERED"]
    assert len(web.get("/_sandbox/octopush/receipts").json()) == 2
    sandbox.core.clock.advance(600)
    assert len(web.get("/_sandbox/octopush/receipts").json()) == 3


def test_inbound_admin_route(web: httpx.Client) -> None:
    stored = web.post("/_sandbox/octopush/inbound", json={"number": FR_A, "text": "STOP"})
    assert stored.status_code == 201
    message = stored.json()
    assert set(message) == {"message_id", "number", "text", "reception_date"}
    assert (message["number"], message["text"]) == (FR_A, "STOP")
    assert web.get("/_sandbox/octopush/inbound").json() == [message]
    assert web.post("/_sandbox/octopush/inbound", json={"text": "x"}).status_code == 400


def test_admin_balance_route(web: httpx.Client) -> None:
    assert web.post("/_sandbox/octopush/balance", json={"amount": "1.10"}).json() == {
        "amount": "1.10",
        "per_type": {"FR": "20.00", "XXX": "31.42"},
    }
    assert web.post("/_sandbox/octopush/balance", json={}).status_code == 400
    assert web.get("/_sandbox/octopush/balance").json()["amount"] == "1.10"
