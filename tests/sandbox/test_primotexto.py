"""The simulated Primotexto API over real HTTP: every route, every error code it produces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from postier.rules.charsets import PRIMOTEXTO_ALLOWED_CHARS
from postier.rules.limits import text_limit
from postier.sandbox import Sandbox, SandboxServer
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.primotexto import ALLOWED_CHARS, MAX_PARTS, STATUS_FOR_CODE

KEY = {"X-Primotexto-ApiKey": SANDBOX_ACCOUNTS.primotexto_api_key}
SEND = "/v2/notification/messages/send"
MOBILE = "+33612345678"


@pytest.fixture
def api(sandbox_server: SandboxServer, sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server.url, headers=KEY, timeout=5) as client:
        yield client


@pytest.fixture
def slow_delivery(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> float:
    """A long delivery delay, so an intermediate state cannot pass while a busy test runs."""
    monkeypatch.setattr(sandbox.core, "delivery_delay", 30.0)
    return 30.0


def send(api: httpx.Client, **body: Any) -> httpx.Response:
    payload: dict[str, Any] = {"number": MOBILE, "message": "Code: 283951"}
    payload.update(body)
    return api.post(SEND, json={k: v for k, v in payload.items() if v is not None})


def assert_error(response: httpx.Response, code: int, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


def status_of(api: httpx.Client, snapshot_id: str) -> dict[str, Any]:
    response = api.get("/v2/messages/status", params={"snapshotId": snapshot_id})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- authentication -------------------------------------------------------------------------

ROUTES = [
    ("POST", SEND),
    ("POST", "/v2/marketing/messages/send"),
    ("GET", "/v2/messages/status?snapshotId=1"),
    ("GET", "/v2/messages/replies?category=x"),
    ("GET", "/v2/messages/stats?category=x"),
    ("GET", "/v2/account/stats"),
    ("GET", "/v2/unsubscribers/default/contacts"),
    ("DELETE", "/v2/bounces/default/contacts"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("headers", [{}, {"X-Primotexto-ApiKey": "wrong"}])
def test_every_route_refuses_a_missing_or_wrong_key(
    sandbox_server: SandboxServer, sandbox: Sandbox, method: str, path: str, headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=sandbox_server.url, headers=headers) as client:
        response = client.request(method, path, json={"number": MOBILE, "message": "x"})
    assert_error(response, 72, 401)
    assert sandbox.core.records_for("primotexto") == []


# -- sends ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["notification", "marketing"])
def test_send_answers_credits_and_snapshot_and_records_the_message(
    api: httpx.Client, sandbox: Sandbox, kind: str
) -> None:
    body = {
        "number": "0612345678",
        "message": "Code de confirmation: 283951",
        "sender": "YourCompany",
        "campaignName": "Code de confirmation",
        "category": "codeConfirmation",
    }
    response = api.post(f"/v2/{kind}/messages/send", json=body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["creditsUsed"] == 1.0
    [record] = sandbox.core.records_for("primotexto")
    assert answer["snapshotId"] == record.message_id
    assert record.recipient == MOBILE
    assert record.send_at == record.accepted_at
    assert record.extra == {
        "type": kind,
        "sender": "YourCompany",
        "category": "codeConfirmation",
        "campaignName": "Code de confirmation",
        "parts": 1,
    }
    assert sandbox.primotexto.credits == SANDBOX_ACCOUNTS.primotexto_credits - 1


def test_both_documented_number_forms_reach_the_same_recipient(
    api: httpx.Client, sandbox: Sandbox
) -> None:
    assert send(api, number="0600000000").status_code == 200
    assert send(api, number="+33600000000").status_code == 200
    assert {r.recipient for r in sandbox.core.records_for("primotexto")} == {"+33600000000"}


@pytest.mark.parametrize(
    ("number", "code"),
    [
        (None, 10),
        ("", 10),
        ("not a number", 11),
        ("06123", 11),
        (612345678, 11),
        ("0140000000", 19),
        ("+12125551234", 90),
    ],
)
def test_bad_numbers_are_refused(api: httpx.Client, number: Any, code: int) -> None:
    payload = {"message": "hello"} if number is None else {"number": number, "message": "hello"}
    assert_error(api.post(SEND, json=payload), code, 400)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("", 30),
        (None, 30),
        ("prix 5€", 31),
        ("[tag]", 31),
        ("ça", 31),
        ("a\r\nb", 31),
        ("x" * (153 * MAX_PARTS + 1), 32),
    ],
)
def test_bad_messages_are_refused(api: httpx.Client, message: str | None, code: int) -> None:
    assert_error(send(api, message=message), code, 400)


@pytest.mark.parametrize(
    ("message", "parts"),
    [
        ("x" * 160, 1),
        ("x" * 161, 2),
        ("{" * 80, 1),  # extension characters count two septets
        ("{" * 81, 2),
        ("x" * (153 * MAX_PARTS), MAX_PARTS),
        ("àéèùìòÑñÅåÜü @£_!$\"#%&()*:+;,<-=.>/?|^¤{}~\\'\n", 1),
    ],
)
def test_credits_used_counts_gsm_parts(api: httpx.Client, message: str, parts: int) -> None:
    response = send(api, message=message)
    assert response.status_code == 200, response.text
    assert response.json()["creditsUsed"] == float(parts)


# -- the other request forms of the Primotexto API docs ---------------------------------------


def test_the_ruby_and_node_examples_identifier_and_tag_are_accepted(
    api: httpx.Client, sandbox: Sandbox
) -> None:
    # verbatim body of the Ruby and Node examples of the Primotexto API docs (date dropped: past)
    body = {
        "identifier": "+33600000000",
        "message": "Code de confirmation: 283951",
        "campaignName": "Code de confirmation",
        "tag": "codeConfirmation",
        "sender": "YourCompany",
    }
    response = api.post(SEND, json=body)
    assert response.status_code == 200, response.text
    [record] = sandbox.core.records_for("primotexto")
    assert record.recipient == "+33600000000"
    assert record.extra["category"] == "codeConfirmation"


def test_number_and_category_win_over_identifier_and_tag(
    api: httpx.Client, sandbox: Sandbox
) -> None:
    response = send(api, identifier="+33700000000", category="a", tag="b")
    assert response.status_code == 200, response.text
    [record] = sandbox.core.records_for("primotexto")
    assert (record.recipient, record.extra["category"]) == (MOBILE, "a")


def test_a_tag_blacklist_blocks_like_a_category_one(api: httpx.Client) -> None:
    api.post("/v2/unsubscribers/promo/contacts", json={"identifier": MOBILE})
    assert_error(
        api.post(SEND, json={"identifier": MOBILE, "message": "x", "tag": "promo"}), 12, 400
    )


@pytest.mark.parametrize("kind", ["notification", "marketing"])
def test_the_paste_in_your_browser_get_form_sends(
    sandbox_server: SandboxServer, sandbox: Sandbox, kind: str
) -> None:
    params = {
        "apiKey": SANDBOX_ACCOUNTS.primotexto_api_key,
        "identifier": "+33600000000",
        "sender": "YourCompany",
        "message": "Code de confirmation: 283951",
    }
    # the docs' URL starts its query with "?&"
    url = f"{sandbox_server.url}/v2/{kind}/messages/send?&" + httpx.QueryParams(params).__str__()
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["creditsUsed"] == 1.0
    [record] = sandbox.core.records_for("primotexto")
    assert record.recipient == "+33600000000"
    assert record.extra["sender"] == "YourCompany"


@pytest.mark.parametrize(
    ("params", "code", "status"),
    [
        ({"apiKey": "wrong", "identifier": MOBILE, "message": "x"}, 72, 401),
        ({"identifier": MOBILE, "message": "x"}, 72, 401),
        ({"apiKey": SANDBOX_ACCOUNTS.primotexto_api_key, "message": "x"}, 10, 400),
        ({"apiKey": SANDBOX_ACCOUNTS.primotexto_api_key, "identifier": MOBILE}, 30, 400),
        (
            {"apiKey": SANDBOX_ACCOUNTS.primotexto_api_key, "identifier": MOBILE, "message": "ça"},
            31,
            400,
        ),
        (
            {
                "apiKey": SANDBOX_ACCOUNTS.primotexto_api_key,
                "identifier": MOBILE,
                "message": "x",
                "date": "soon",
            },
            41,
            400,
        ),
    ],
)
def test_the_get_form_refuses_with_the_documented_codes(
    sandbox_server: SandboxServer,
    sandbox: Sandbox,
    params: dict[str, str],
    code: int,
    status: int,
) -> None:
    response = httpx.get(f"{sandbox_server.url}{SEND}", params=params, timeout=5)
    assert_error(response, code, status)
    assert sandbox.core.records_for("primotexto") == []


def test_the_api_key_header_also_authenticates_the_get_form(api: httpx.Client) -> None:
    response = api.get(SEND, params={"identifier": MOBILE, "message": "x"})
    assert response.status_code == 200, response.text


def test_the_simulator_refuses_what_the_producer_rules_refuse() -> None:
    assert ALLOWED_CHARS == PRIMOTEXTO_ALLOWED_CHARS
    assert text_limit("primotexto").max_parts == MAX_PARTS


@pytest.mark.parametrize(
    ("sender", "code"),
    [("Your-Co", 20), ("Café", 20), ("AB", 21), ("", 21), ("ABCDEFGHIJKL", 22), ("36173", 23)],
)
def test_bad_senders_are_refused(api: httpx.Client, sender: str, code: int) -> None:
    assert_error(send(api, sender=sender), code, 400)


@pytest.mark.parametrize("date", ["tomorrow", True, 1398177000000])
def test_unparseable_or_past_dates_are_refused(api: httpx.Client, date: Any) -> None:
    assert_error(send(api, date=date), 41, 400)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_73(api: httpx.Client, raw: bytes) -> None:
    response = api.post(SEND, content=raw, headers={"Content-Type": "application/json"})
    assert_error(response, 73, 400)


def test_credits_run_out_with_71(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.primotexto.set_credits(2)
    assert send(api, message="x" * 200).json()["creditsUsed"] == 2.0
    assert_error(send(api), 71, 402)
    assert api.get("/v2/account/stats").json()["credits"] == 0
    assert len(sandbox.core.records_for("primotexto")) == 1


def test_admin_account_route_sets_credits_and_flags(
    api: httpx.Client, sandbox_server: SandboxServer
) -> None:
    admin = f"{sandbox_server.url}/_sandbox/primotexto/account"
    httpx.post(admin, json={"credits": 0})
    assert_error(send(api), 71, 402)
    httpx.post(admin, json={"credits": 10, "api_enabled": False})
    assert_error(send(api), 70, 403)
    httpx.post(admin, json={"api_enabled": True, "blocked": True})
    assert_error(api.get("/v2/account/stats"), 92, 403)
    httpx.post(admin, json={"blocked": False})
    assert api.get("/v2/account/stats").json()["credits"] == 10


@pytest.mark.parametrize("code", [14, 76, 1000])
def test_forced_errors_answer_with_their_status(
    api: httpx.Client, sandbox_server: SandboxServer, code: int
) -> None:
    httpx.post(f"{sandbox_server.url}/_sandbox/primotexto/force_error", json={"code": code})
    response = send(api)
    assert_error(response, code, STATUS_FOR_CODE[code])
    if code == 76:
        assert float(response.headers["Retry-After"]) > 0
    assert send(api).status_code == 200


# -- status ---------------------------------------------------------------------------------


def test_status_moves_from_sent_to_delivered_with_the_clock(
    api: httpx.Client, sandbox: Sandbox, slow_delivery: float
) -> None:
    snapshot = send(api).json()["snapshotId"]
    first = status_of(api, snapshot)
    assert first["id"] == snapshot
    assert first["state"] == "sent"
    assert first["test"] is False
    assert first["sent"] == first["submitted"]
    assert first["delivered"] is None
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.1)
    later = status_of(api, snapshot)
    assert later["state"] == "delivered"
    assert later["delivered"] == later["stateDate"] > later["sent"]


def test_a_scheduled_send_stays_submitted_until_its_date(
    api: httpx.Client, sandbox: Sandbox, slow_delivery: float
) -> None:
    due = sandbox.core.clock.now() + 3600
    snapshot = send(api, date=round(due * 1000)).json()["snapshotId"]
    [record] = sandbox.core.records_for("primotexto")
    assert record.send_at == pytest.approx(due, abs=0.001)
    clock = sandbox.core.clock
    clock.advance(due - 1 - clock.now())
    assert status_of(api, snapshot)["state"] == "submitted"
    assert status_of(api, snapshot)["sent"] is None
    clock.advance(due + sandbox.core.delivery_delay / 2 - clock.now())
    assert status_of(api, snapshot)["state"] == "sent"
    sandbox.core.clock.advance(sandbox.core.delivery_delay)
    assert status_of(api, snapshot)["state"] == "delivered"


def test_an_unassigned_number_bounces(api: httpx.Client, sandbox: Sandbox) -> None:
    snapshot = send(api, number="+33612349999").json()["snapshotId"]
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.1)
    assert status_of(api, snapshot)["state"] == "bounced"


def test_status_by_identifier_gives_the_latest_message(api: httpx.Client) -> None:
    send(api)
    latest = send(api, number="0612345678").json()["snapshotId"]
    response = api.get("/v2/messages/status", params={"identifier": MOBILE})
    assert response.json()["id"] == latest


def test_status_of_an_unknown_message_is_404(api: httpx.Client) -> None:
    assert_error(api.get("/v2/messages/status", params={"snapshotId": "999999"}), 404, 404)
    assert_error(api.get("/v2/messages/status", params={"identifier": MOBILE}), 404, 404)
    assert_error(api.get("/v2/messages/status"), 10, 400)


# -- replies, stats -------------------------------------------------------------------------


def test_replies_are_injected_and_listed_by_category(
    api: httpx.Client, sandbox: Sandbox, sandbox_server: SandboxServer
) -> None:
    snapshot = send(api, category="promo").json()["snapshotId"]
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.1)
    injected = httpx.post(
        f"{sandbox_server.url}/_sandbox/primotexto/reply",
        json={"identifier": "0612345678", "message": "Oui merci", "category": "promo"},
    ).json()
    sandbox.primotexto.inject_reply(MOBILE, "other", "other-category")
    replies = api.get("/v2/messages/replies", params={"category": "promo"}).json()
    assert replies == [{"id": injected["id"], "identifier": MOBILE, "message": "Oui merci"}]
    assert status_of(api, snapshot)["state"] == "reply"


def test_a_stop_reply_unsubscribes_the_number(api: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.primotexto.inject_reply(MOBILE, "STOP", "promo")
    assert api.get("/v2/unsubscribers/default/contacts").json() == [{"identifier": MOBILE}]
    assert_error(send(api), 12, 400)


def test_message_stats_count_a_category(api: httpx.Client, sandbox: Sandbox) -> None:
    send(api, category="promo", message="x" * 170)
    send(api, category="promo", number="+33612349999")
    send(api, category="other")
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.1)
    sandbox.primotexto.inject_reply(MOBILE, "STOP", "promo")
    stats = api.get("/v2/messages/stats", params={"category": "promo"}).json()
    assert stats["messages"] == 2
    assert stats["creditsUsed"] == 3.0
    assert (stats["reply"], stats["bounced"], stats["delivered"]) == (1, 1, 0)
    assert (stats["replies"], stats["unsubscribed"]) == (1, 1)


def test_account_stats_report_credits(api: httpx.Client) -> None:
    send(api)
    account = api.get("/v2/account/stats").json()
    assert account == {
        "credits": SANDBOX_ACCOUNTS.primotexto_credits - 1,
        "creditsUsed": 1.0,
        "messages": 1,
    }


# -- blacklists -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "code"), [("unsubscribers", 12), ("bounces", 13)])
def test_blacklists_add_list_remove_and_block_sends(
    api: httpx.Client, kind: str, code: int
) -> None:
    path = f"/v2/{kind}/default/contacts"
    assert api.get(path).json() == []
    added = api.post(path, json={"identifier": "0612345678"})
    assert added.status_code == 200
    assert added.json() == {"identifier": MOBILE}
    assert api.get(path).json() == [{"identifier": MOBILE}]
    assert_error(send(api), code, 400)
    removed = api.request("DELETE", path, json={"identifier": MOBILE})
    assert removed.status_code == 200
    assert api.get(path).json() == []
    assert send(api).status_code == 200
    assert_error(api.request("DELETE", path, params={"identifier": MOBILE}), 404, 404)


def test_a_category_list_blocks_only_that_category(api: httpx.Client) -> None:
    api.post("/v2/unsubscribers/promo/contacts", json={"identifier": MOBILE})
    assert_error(send(api, category="promo"), 12, 400)
    assert send(api, category="codes").status_code == 200
    assert api.get("/v2/unsubscribers/default/contacts").json() == []


def test_blacklist_entries_are_validated(api: httpx.Client) -> None:
    assert_error(api.post("/v2/bounces/default/contacts", json={}), 10, 400)
    assert_error(api.post("/v2/bounces/default/contacts", json={"identifier": "x"}), 11, 400)


def test_reset_forgets_everything(api: httpx.Client, sandbox: Sandbox) -> None:
    send(api)
    sandbox.primotexto.inject_reply(MOBILE, "STOP", "c")
    sandbox.primotexto.set_credits(3)
    sandbox.primotexto.force_error(92)
    sandbox.reset()
    assert api.get("/v2/unsubscribers/default/contacts").json() == []
    assert api.get("/v2/messages/replies", params={"category": "c"}).json() == []
    assert api.get("/v2/account/stats").json()["credits"] == SANDBOX_ACCOUNTS.primotexto_credits
    assert sandbox.primotexto.messages == {}


def test_admin_routes_refuse_malformed_bodies(sandbox_server: SandboxServer) -> None:
    admin = f"{sandbox_server.url}/_sandbox/primotexto"
    for route in ("reply", "account", "force_error"):
        assert httpx.post(f"{admin}/{route}", content=b"[1]").status_code == 400
    assert_error(httpx.post(f"{admin}/reply", json={"message": "hi"}), 10, 400)
    assert httpx.post(f"{admin}/force_error", json={"code": 55}).status_code == 400
    assert httpx.post(f"{admin}/account", json={"credits": "lots"}).status_code == 400
