"""The API over real HTTP: every route, scopes, idempotency, problems naming field and rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from sqlalchemy.engine import Engine

from postier import tasknames
from postier.api.problems import IDEMPOTENCY_CONFLICT, RULE_VIOLATION, STATE_CONFLICT
from postier.ledger.db import session_scope
from postier.ledger.models import MessageStatus
from postier.ledger.queries import get_message
from postier.ledger.states import transition
from tests.api.conftest import ApiServer, ledger_snapshot

PROBLEM = "application/problem+json"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return body


# -- sending -----------------------------------------------------------------------------


def test_sms_is_stored_and_published(
    client: httpx.Client, api_engine: Engine, redis_client: redis.Redis
) -> None:
    response = client.post("/v1/sms", json={"to": "06 12 34 56 78", "text": "Votre code : 1234"})
    assert response.status_code == 201, response.text
    accepted = response.json()
    assert accepted["status"] == "queued" and accepted["duplicate"] is False
    with session_scope(api_engine) as session:
        message = get_message(session, accepted["id"])
    assert message is not None
    assert message.recipient == "+33612345678"
    assert message.body == "Votre code : 1234"
    assert message.provider == "primotexto"
    assert redis_client.llen(tasknames.QUEUE_SEND) == 1


def test_sms_refused_by_a_producer_rule_names_field_and_rule(
    client: httpx.Client, api_engine: Engine
) -> None:
    before = ledger_snapshot(api_engine)
    response = client.post("/v1/sms", json={"to": "not a number", "text": "x"})
    body = _problem(response, 422)
    assert body["type"] == RULE_VIOLATION
    [error] = body["errors"]
    assert error["field"] == "to"
    assert error["rule"].startswith("e164.")
    assert ledger_snapshot(api_engine) == before


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        ({"text": "x"}, "to", "to.required"),
        ({"to": "0612345678", "text": 12}, "text", "text.type"),
        ({"to": "0612345678", "text": "x", "category": "promo"}, "category", "category.value"),
        ({"to": "0612345678", "text": "x", "colour": "red"}, "colour", "colour.unknown"),
        ({"to": "0612345678", "text": "x", "send_at": "tomorrow"}, "send_at", "send_at.format"),
        ({"to": "0612345678", "text": "\x00"}, "text", "text.nul"),
        (
            {"to": "0612345678", "text": "x", "send_at": "2027-01-14T09:00:00"},
            "send_at",
            "send_at.timezone",
        ),
        ({"to": "0612345678", "text": "x", "sender": "a b c !"}, "sender", None),
    ],
)
def test_sms_refusals(
    client: httpx.Client, api_engine: Engine, payload: dict, field: str, rule: str | None
) -> None:
    before = ledger_snapshot(api_engine)
    body = _problem(client.post("/v1/sms", json=payload), 422)
    assert body["errors"][0]["field"] == field
    if rule is not None:
        assert body["errors"][0]["rule"] == rule
    assert body["errors"][0]["rule"].startswith(f"{field}.") or field == "sender"
    assert ledger_snapshot(api_engine) == before


def test_callback_url_reaches_the_message_and_a_bad_one_names_its_rule(
    client: httpx.Client, api_engine: Engine
) -> None:
    url = "https://app.example/postier/events"
    sms = client.post("/v1/sms", json={"to": "0612345678", "text": "x", "callback_url": url})
    whatsapp = client.post(
        "/v1/whatsapp", json={"to": "0612345678", "text": "x", "callback_url": url}
    )
    bulk = client.post(
        "/v1/messages/bulk",
        json={"messages": [{"to": "0612345678", "text": "x", "callback_url": url}]},
    )
    ids = [sms.json()["id"], whatsapp.json()["id"], bulk.json()["accepted"][0]["id"]]
    with session_scope(api_engine) as session:
        stored = [get_message(session, message_id) for message_id in ids]
    assert [m.callback_url for m in stored if m] == [url] * 3

    before = ledger_snapshot(api_engine)
    refused = client.post(
        "/v1/sms",
        json={"to": "0612345678", "text": "x", "callback_url": "http://app.example/e"},
    )
    [error] = _problem(refused, 422)["errors"]
    assert error["field"] == "callback_url" and error["rule"].startswith("callback_url.")
    assert ledger_snapshot(api_engine) == before


def test_malformed_json_is_a_problem(client: httpx.Client) -> None:
    response = client.post(
        "/v1/sms", content=b'{"to": ', headers={"content-type": "application/json"}
    )
    body = _problem(response, 422)
    assert body["errors"][0]["rule"].endswith(".json")


def test_whatsapp_text_file_and_template(client: httpx.Client, api_engine: Engine) -> None:
    answers = [
        client.post("/v1/whatsapp", json={"to": "+33612345678", "text": "Bonjour"}),
        client.post(
            "/v1/whatsapp",
            json={
                "type": "file",
                "to": "+33612345678",
                "file_url": "https://example.org/facture.pdf",
                "caption": "Votre facture",
            },
        ),
        client.post(
            "/v1/whatsapp",
            json={
                "type": "template",
                "to": "+33612345678",
                "template_id": "1",
                "params": {"name": "Jeanne"},
            },
        ),
    ]
    kinds = []
    for response in answers:
        assert response.status_code == 201, response.text
        with session_scope(api_engine) as session:
            message = get_message(session, response.json()["id"])
            assert message is not None
            kinds.append(str(message.kind))
    assert kinds == ["whatsapp_text", "whatsapp_file", "whatsapp_template"]


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        ({"to": "+33612345678"}, "text", "text.required"),
        ({"type": "file", "to": "+33612345678"}, "file_url", "file_url.required"),
        ({"type": "template", "to": "+33612345678"}, "template_id", "template_id.required"),
        (
            {"to": "+33612345678", "text": "x", "template_id": "1"},
            "template_id",
            "template_id.unused",
        ),
        ({"type": "file", "to": "+33612345678", "file_url": "ftp://x/y.exe"}, "file_url", None),
        ({"type": "video", "to": "+33612345678"}, "type", "type.value"),
    ],
)
def test_whatsapp_refusals(client: httpx.Client, payload: dict, field: str, rule: str | None):
    body = _problem(client.post("/v1/whatsapp", json=payload), 422)
    assert body["errors"][0]["field"] == field
    if rule is not None:
        assert body["errors"][0]["rule"] == rule


def test_bulk_keeps_good_rows_and_lists_bad_ones(client: httpx.Client, api_engine: Engine):
    response = client.post(
        "/v1/messages/bulk",
        json={
            "messages": [
                {"to": "0612345678", "text": "Bonjour"},
                {"to": "not a number", "text": "x"},
                {"to": "0612345679", "text": 5},
                {"to": "0612345670", "text": "Bonsoir"},
            ]
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [a["index"] for a in body["accepted"]] == [0, 3]
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert body["rejected"][0]["errors"][0]["field"] == "to"
    assert body["rejected"][1]["errors"][0]["rule"] == "text.type"
    with session_scope(api_engine) as session:
        stored = [get_message(session, a["id"]) for a in body["accepted"]]
    assert [m.recipient for m in stored if m] == ["+33612345678", "+33612345670"]


def test_bulk_idempotency_returns_the_same_ids(client: httpx.Client) -> None:
    payload = {"messages": [{"to": "0612345678", "text": "A"}, {"to": "0612345670", "text": "B"}]}
    headers = {"Idempotency-Key": "bulk-1"}
    first = client.post("/v1/messages/bulk", json=payload, headers=headers)
    again = client.post("/v1/messages/bulk", json=payload, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert [a["id"] for a in first.json()["accepted"]] == [
        a["id"] for a in again.json()["accepted"]
    ]
    assert all(a["duplicate"] for a in again.json()["accepted"])
    other = client.post(
        "/v1/messages/bulk", json={"messages": payload["messages"][:1]}, headers=headers
    )
    assert _problem(other, 409)["type"] == IDEMPOTENCY_CONFLICT


# -- idempotency -------------------------------------------------------------------------


def test_same_idempotency_key_same_message(client: httpx.Client, api_engine: Engine) -> None:
    payload = {"to": "0612345678", "text": "Votre colis arrive"}
    headers = {"Idempotency-Key": "order-42-shipped"}
    first = client.post("/v1/sms", json=payload, headers=headers)
    # the same request, its keys in another order: a replay
    again = client.post("/v1/sms", json=dict(reversed(payload.items())), headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["duplicate"] is True
    before = ledger_snapshot(api_engine)
    conflict = client.post("/v1/sms", json={**payload, "text": "autre"}, headers=headers)
    assert _problem(conflict, 409)["type"] == IDEMPOTENCY_CONFLICT
    assert ledger_snapshot(api_engine) == before


def test_idempotency_keys_belong_to_their_api_key(
    api: ApiServer, make_key: Callable[..., str]
) -> None:
    payload = {"to": "0612345678", "text": "Bonjour"}
    headers = {"Idempotency-Key": "k-1"}
    one = httpx.post(f"{api.url}/v1/sms", json=payload, headers={**headers, **_bearer(make_key())})
    two = httpx.post(f"{api.url}/v1/sms", json=payload, headers={**headers, **_bearer(make_key())})
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"]


def test_a_refused_request_gives_its_idempotency_key_back(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    refused = client.post("/v1/sms", json={"to": "nope", "text": "x"}, headers=headers)
    assert refused.status_code == 422
    fixed = client.post("/v1/sms", json={"to": "0612345678", "text": "x"}, headers=headers)
    assert fixed.status_code == 201, fixed.text


def test_malformed_idempotency_key(client: httpx.Client) -> None:
    response = client.post(
        "/v1/sms", json={"to": "0612345678", "text": "x"}, headers={"Idempotency-Key": "a b"}
    )
    body = _problem(response, 422)
    assert body["errors"][0] == {
        "field": "Idempotency-Key",
        "rule": "idempotency_key.format",
        "message": body["errors"][0]["message"],
    }


# -- reading and cancelling --------------------------------------------------------------


def test_get_message_masks_numbers_without_the_numbers_scope(
    api: ApiServer, make_key: Callable[..., str]
) -> None:
    sender = make_key("send")
    made = httpx.post(
        f"{api.url}/v1/sms", json={"to": "0612345678", "text": "x"}, headers=_bearer(sender)
    ).json()
    masked = httpx.get(f"{api.url}/v1/messages/{made['id']}", headers=_bearer(make_key("read")))
    assert masked.status_code == 200, masked.text
    assert masked.json()["to"] == "+336******78"
    assert masked.json()["status"] == "queued"
    assert [e["to_status"] for e in masked.json()["events"]] == ["queued"]
    clear = httpx.get(
        f"{api.url}/v1/messages/{made['id']}", headers=_bearer(make_key("read", "numbers"))
    )
    assert clear.json()["to"] == "+33612345678"
    assert "+33612345678" not in masked.text


def test_get_unknown_message(client: httpx.Client) -> None:
    _problem(client.get(f"/v1/messages/{'0' * 32}"), 404)
    _problem(client.get("/v1/messages/not-an-id"), 404)


def test_cancel(client: httpx.Client, api_engine: Engine) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    made = client.post("/v1/sms", json={"to": "0612345678", "text": "x", "send_at": later}).json()
    assert made["status"] == "scheduled"
    response = client.post(f"/v1/messages/{made['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json() == {"id": made["id"], "status": "cancelled"}
    with session_scope(api_engine) as session:
        message = get_message(session, made["id"])
        assert message is not None and message.status == MessageStatus.CANCELLED
    # cancelling again is no error: it is cancelled
    assert client.post(f"/v1/messages/{made['id']}/cancel").status_code == 200
    sending = client.post("/v1/sms", json={"to": "0612345678", "text": "y"}).json()
    with session_scope(api_engine) as session:
        assert transition(session, sending["id"], MessageStatus.QUEUED, MessageStatus.SENDING)
    refused = _problem(client.post(f"/v1/messages/{sending['id']}/cancel"), 409)
    assert refused["type"] == STATE_CONFLICT
    assert "sending" in refused["detail"]
    _problem(client.post(f"/v1/messages/{'f' * 32}/cancel"), 404)


# -- campaigns ---------------------------------------------------------------------------


def test_campaign_create_status_pause_resume_cancel(client: httpx.Client) -> None:
    payload = {
        "name": "Rappel",
        "text": "Bonjour, votre rendez-vous est demain",
        "category": "notification",
        "recipients": ["0612345678", "0612345670"],
    }
    created = client.post("/v1/campaigns", json=payload, headers={"Idempotency-Key": "camp-1"})
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    replay = client.post("/v1/campaigns", json=payload, headers={"Idempotency-Key": "camp-1"})
    assert replay.status_code == 200 and replay.json()["id"] == campaign_id
    status = client.get(f"/v1/campaigns/{campaign_id}")
    assert status.status_code == 200, status.text
    assert status.json()["name"] == "Rappel"
    paused = client.post(f"/v1/campaigns/{campaign_id}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    _problem(client.post(f"/v1/campaigns/{campaign_id}/pause"), 409)
    resumed = client.post(f"/v1/campaigns/{campaign_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "scheduled"
    cancelled = client.post(f"/v1/campaigns/{campaign_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.get(f"/v1/campaigns/{campaign_id}").json()["status"] == "cancelled"
    _problem(client.post(f"/v1/campaigns/{'a' * 32}/pause"), 404)


def test_campaign_refusal_names_field_and_rule(client: httpx.Client, api_engine: Engine):
    before = ledger_snapshot(api_engine)
    body = _problem(client.post("/v1/campaigns", json={"name": "x", "text": "Bonjour"}), 422)
    assert body["errors"][0]["field"] == "audience"
    assert body["errors"][0]["rule"] == "audience.one"
    assert ledger_snapshot(api_engine) == before


# -- scopes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("POST", "/v1/sms", "send"),
        ("POST", "/v1/whatsapp", "send"),
        ("POST", "/v1/messages/bulk", "send"),
        ("POST", f"/v1/messages/{'0' * 32}/cancel", "send"),
        ("GET", f"/v1/messages/{'0' * 32}", "read"),
        ("POST", "/v1/campaigns", "campaigns"),
        ("GET", f"/v1/campaigns/{'0' * 32}", "read"),
        ("POST", f"/v1/campaigns/{'0' * 32}/pause", "campaigns"),
        ("POST", f"/v1/campaigns/{'0' * 32}/resume", "campaigns"),
        ("POST", f"/v1/campaigns/{'0' * 32}/cancel", "campaigns"),
    ],
)
def test_a_key_without_the_scope_is_refused(
    api: ApiServer, make_key: Callable[..., str], api_engine: Engine, method, path, scope
) -> None:
    others = [s for s in ("send", "read", "campaigns", "numbers") if s != scope]
    before = ledger_snapshot(api_engine)
    payload = {"to": "0612345678", "text": "x"} if method == "POST" else None
    response = httpx.request(
        method, f"{api.url}{path}", json=payload, headers=_bearer(make_key(*others))
    )
    body = _problem(response, 403)
    assert scope in body["detail"]
    assert ledger_snapshot(api_engine) == before


# -- the document and the probe ------------------------------------------------------------


def test_openapi_document(api: ApiServer) -> None:
    document = httpx.get(f"{api.url}/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {
        "/v1/sms",
        "/v1/whatsapp",
        "/v1/messages/bulk",
        "/v1/messages/{message_id}",
        "/v1/messages/{message_id}/cancel",
        "/v1/campaigns",
        "/v1/campaigns/{campaign_id}",
        "/v1/campaigns/{campaign_id}/pause",
        "/v1/campaigns/{campaign_id}/resume",
        "/v1/campaigns/{campaign_id}/cancel",
    } <= set(document["paths"])
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    sms = document["paths"]["/v1/sms"]["post"]
    assert {"401", "403", "422", "429", "409"} <= set(sms["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in sms["parameters"])


def test_health_needs_no_key(api: ApiServer) -> None:
    response = httpx.get(f"{api.url}/v1/health")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "checks": {"ledger": "ok", "redis": "ok"}}


def test_unknown_route_is_a_problem(client: httpx.Client) -> None:
    _problem(client.get("/v1/nothing"), 404)
