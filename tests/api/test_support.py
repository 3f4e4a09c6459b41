"""The support page over real HTTP: sign-in, the session cookie, scopes, masking, CSRF,
revocation, lookups by id, idempotency key and number (redacted rows included), paging, and
logs that never hold a number or a token."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.engine import Engine

from postier.api.keys import create_key, revoke_key
from postier.api.support.session import COOKIE, SessionSigner
from postier.config import ApiSettings, RetentionSettings, Settings
from postier.ledger.db import session_scope
from postier.ledger.models import MessageStatus, messages_table, utcnow
from postier.ledger.states import transition
from postier.privacy import erase_number, redact_expired
from postier.rules.phones import number_hash
from tests.api.conftest import ApiServer

NUMBER = "+33612345678"
NATIONAL = "06 12 34 56 78"
MASKED = "+336******78"
HASH_KEY = "support-test-hash-key-0123456789"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def support_settings(api_settings: Settings) -> Settings:
    """The API's test settings with a hash key, so rows carry ``recipient_hash``."""
    retention = api_settings.retention.model_copy(update={"hash_key": SecretStr(HASH_KEY)})
    return api_settings.model_copy(update={"retention": retention})


@pytest.fixture
def site(
    support_settings: Settings, api_engine: Engine, redis_client: object
) -> Iterator[ApiServer]:
    from postier.api.app import Services, create_app

    services = Services.build(support_settings)
    with ApiServer(create_app(support_settings, services)) as server:
        yield server
    services.close()


@pytest.fixture
def key(api_engine: Engine) -> Callable[..., tuple[str, str]]:
    """``(key id, token)`` with ``scopes``."""

    def make(*scopes: str) -> tuple[str, str]:
        made = create_key(api_engine, "support agent", scopes or ("read",))
        return made.info.id, made.token

    return make


def browser(site: ApiServer) -> httpx.Client:
    return httpx.Client(base_url=site.url, timeout=10, follow_redirects=False)


def sign_in(http: httpx.Client, token: str) -> httpx.Response:
    form = http.get("/support/sign-in")
    assert form.status_code == 200
    csrf = CSRF_FIELD.search(form.text)
    assert csrf is not None
    return http.post("/support/sign-in", data={"token": token, "csrf": csrf.group(1)})


def page_csrf(http: httpx.Client) -> str:
    home = http.get("/support/")
    assert home.status_code == 200, home.text
    found = CSRF_FIELD.search(home.text)
    assert found is not None
    return found.group(1)


def send(site: ApiServer, token: str, to: str = NATIONAL, **extra: Any) -> str:
    response = httpx.post(
        f"{site.url}/v1/sms",
        json={"to": to, "text": "Votre code est 481516", **extra.pop("body", {})},
        headers={"Authorization": f"Bearer {token}", **extra.pop("headers", {})},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def deliver(engine: Engine, message_id: str) -> None:
    """The worker's path, as the ledger records it: an attempt refused and rerouted, a second
    accepted, then the receipt (the provider's answers echo the number)."""
    with session_scope(engine) as session:
        assert transition(session, message_id, MessageStatus.QUEUED, MessageStatus.SENDING)
        assert transition(
            session,
            message_id,
            MessageStatus.SENDING,
            MessageStatus.QUEUED,
            detail="failover primotexto -> octopush: HTTP 503",
            provider_status="503",
        )
        assert transition(session, message_id, MessageStatus.QUEUED, MessageStatus.SENDING)
        assert transition(
            session,
            message_id,
            MessageStatus.SENDING,
            MessageStatus.SENT,
            provider_status="000",
            raw={"error_code": "000", "recipient": NUMBER},
        )
        assert transition(
            session,
            message_id,
            MessageStatus.SENT,
            MessageStatus.DELIVERED,
            provider_status="DELIVERED",
            detail=f"receipt for {NUMBER}",
        )


# -- sign-in and session -------------------------------------------------------------------


def test_pages_need_a_session(site: ApiServer) -> None:
    with browser(site) as http:
        for path in (
            "/support/",
            f"/support/messages/{'a' * 32}",
            f"/support/campaigns/{'a' * 32}",
        ):
            response = http.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/support/sign-in"
        assert http.post("/support/number", data={"number": NUMBER}).status_code == 303
        # a bearer header is no way in: the page reads its own session only
        headers = {"Authorization": "Bearer whatever"}
        assert http.get("/support/", headers=headers).status_code == 303


def test_sign_in_sets_a_strict_httponly_session_naming_the_key_only(
    site: ApiServer, key: Callable[..., tuple[str, str]]
) -> None:
    key_id, token = key("read")
    with browser(site) as http:
        signed = sign_in(http, token)
        assert signed.status_code == 303 and signed.headers["location"] == "/support/"
        cookies = [v for k, v in signed.headers.multi_items() if k == "set-cookie"]
        session = next(c for c in cookies if c.startswith(f"{COOKIE}="))
        assert "HttpOnly" in session and "SameSite=strict" in session
        assert "Path=/support" in session and "Max-Age=1800" in session
        assert "Secure" not in session  # plain http here; https sets it
        value = session.split(";")[0].split("=", 1)[1]
        assert token not in value and token.rsplit("_", 1)[1] not in value
        assert token not in signed.headers.get("location", "")
        home = http.get("/support/")
        assert home.status_code == 200
        assert key_id in home.text and "numbers masked" in home.text
        assert home.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in home.headers["content-security-policy"]
        assert home.headers["x-frame-options"] == "DENY"
        assert "<script" not in home.text


def test_sign_in_refuses_bad_keys_and_keys_without_read(
    site: ApiServer, key: Callable[..., tuple[str, str]]
) -> None:
    _, sender = key("send")
    with browser(site) as http:
        for token in ("postier_000000000000_" + "x" * 43, "nonsense", sender):
            refused = sign_in(http, token)
            assert refused.status_code == 401, token
            assert COOKIE not in refused.cookies
        assert "lacks the &#39;read&#39; scope" in refused.text
        assert http.get("/support/").status_code == 303


def test_sign_in_needs_its_csrf_token(site: ApiServer, key: Callable[..., tuple[str, str]]) -> None:
    _, token = key("read")
    with browser(site) as http:
        http.get("/support/sign-in")
        for csrf in (None, "forged"):
            data = {"token": token} if csrf is None else {"token": token, "csrf": csrf}
            refused = http.post("/support/sign-in", data=data)
            assert refused.status_code == 403
            assert COOKIE not in refused.cookies
    # a token from another browser's form, without its cookie, is no good either
    with browser(site) as first, browser(site) as second:
        csrf = CSRF_FIELD.search(first.get("/support/sign-in").text)
        assert csrf is not None
        assert (
            second.post(
                "/support/sign-in", data={"token": token, "csrf": csrf.group(1)}
            ).status_code
            == 403
        )


def test_revoking_the_key_ends_the_session(
    site: ApiServer, key: Callable[..., tuple[str, str]], api_engine: Engine
) -> None:
    key_id, token = key("read")
    with browser(site) as http:
        assert sign_in(http, token).status_code == 303
        assert http.get("/support/").status_code == 200
        assert revoke_key(api_engine, key_id)
        ended = http.get("/support/")
        assert ended.status_code == 303 and ended.headers["location"] == "/support/sign-in"
        assert f'{COOKIE}=""' in ended.headers["set-cookie"]


def test_a_forged_or_stale_session_is_refused(
    site: ApiServer, key: Callable[..., tuple[str, str]]
) -> None:
    key_id, token = key("read")
    with browser(site) as http:
        sign_in(http, token)
        value = http.cookies[COOKIE]
        body, _, signature = value.partition(".")
        http.cookies.set(COOKIE, f"{body}.{signature[::-1]}", path="/support")
        assert http.get("/support/").status_code == 303
    other = SessionSigner(ApiSettings())  # a random secret: not the server's
    with browser(site) as http:
        http.cookies.set(COOKIE, other.dump(other.new_session(key_id)), path="/support")
        assert http.get("/support/").status_code == 303


def test_sessions_expire_idle_and_at_their_lifetime() -> None:
    signer = SessionSigner(
        ApiSettings(
            session_secret=SecretStr("s" * 32), session_idle_minutes=30, session_max_hours=8
        )
    )
    session = signer.new_session("abc", now=1000.0)
    value = signer.dump(session)
    assert signer.load(value, now=1000.0 + 29 * 60) == session
    assert signer.load(value, now=1000.0 + 31 * 60) is None
    busy = signer.dump(signer.renewed(session, now=1000.0 + 8 * 3600 - 60))
    assert signer.load(busy, now=1000.0 + 8 * 3600 - 30) is not None
    assert signer.load(busy, now=1000.0 + 8 * 3600 + 1) is None
    assert signer.load("not.a-cookie") is None and signer.load("") is None
    with pytest.raises(ValueError, match="SESSION_SECRET"):
        SessionSigner(ApiSettings(session_secret=SecretStr("short")))
    # the same secret on two replicas: either reads the other's cookie
    twin = SessionSigner(ApiSettings(session_secret=SecretStr("s" * 32)))
    assert twin.load(value, now=1000.0) == session


def test_sign_out_needs_the_session_csrf_and_ends_it(
    site: ApiServer, key: Callable[..., tuple[str, str]]
) -> None:
    _, token = key("read")
    with browser(site) as http:
        sign_in(http, token)
        csrf = page_csrf(http)
        assert http.post("/support/sign-out", data={"csrf": "forged"}).status_code == 403
        assert http.get("/support/").status_code == 200
        out = http.post("/support/sign-out", data={"csrf": csrf})
        assert out.status_code == 303
        assert http.get("/support/").status_code == 303


# -- lookups --------------------------------------------------------------------------------


def test_a_message_by_id_shows_its_timeline_masked_without_numbers(
    site: ApiServer, key: Callable[..., tuple[str, str]], api_engine: Engine
) -> None:
    _, sender = key("send")
    message_id = send(site, sender)
    deliver(api_engine, message_id)
    _, reader = key("read")
    with browser(site) as http:
        sign_in(http, reader)
        found = http.get("/support/find", params={"id": message_id})
        assert found.status_code == 303
        assert found.headers["location"] == f"/support/messages/{message_id}"
        page = http.get(found.headers["location"])
        assert page.status_code == 200
        text = page.text
        steps = [
            "accepted, queued",
            "attempt 1",
            "rerouted",
            "attempt 2",
            "accepted by the provider",
            "receipt: delivered",
        ]
        positions = [text.index(f"<strong>{step}</strong>") for step in steps]
        assert positions == sorted(positions)
        assert "failover primotexto -&gt; octopush: HTTP 503" in text
        assert "provider: DELIVERED" in text
        assert MASKED in text
        assert NUMBER not in text and "612345678" not in text
    _, clear = key("read", "numbers")
    with browser(site) as http:
        sign_in(http, clear)
        page = http.get(f"/support/messages/{message_id}")
        assert NUMBER in page.text and "numbers in clear" in page.text
        assert f"receipt for {NUMBER}" in page.text


def test_unknown_or_malformed_ids(site: ApiServer, key: Callable[..., tuple[str, str]]) -> None:
    _, reader = key("read")
    with browser(site) as http:
        sign_in(http, reader)
        assert http.get("/support/find", params={"id": "a" * 32}).status_code == 404
        bad = http.get("/support/find", params={"id": "<script>"})
        assert bad.status_code == 422 and "<script>" not in bad.text
        assert http.get("/support/messages/nothex").status_code == 404
        assert http.get(f"/support/messages/{'b' * 32}").status_code == 404
        assert http.get(f"/support/campaigns/{'b' * 32}").status_code == 404


def test_a_message_by_its_idempotency_key(
    site: ApiServer, key: Callable[..., tuple[str, str]]
) -> None:
    _, sender = key("send")
    message_id = send(site, sender, headers={"Idempotency-Key": "order-42"})
    _, reader = key("read")
    with browser(site) as http:
        sign_in(http, reader)
        found = http.get("/support/find", params={"idempotency_key": "order-42"})
        assert found.status_code == 303
        assert found.headers["location"] == f"/support/messages/{message_id}"
        assert http.get("/support/find", params={"idempotency_key": "nope"}).status_code == 404


def test_messages_by_number_in_any_form_masked_newest_first(
    site: ApiServer, key: Callable[..., tuple[str, str]]
) -> None:
    _, sender = key("send")
    older = send(site, sender, to="+33 6 12 34 56 78")
    newer = send(site, sender, to="0612345678")
    other = send(site, sender, to="0698765432")
    _, reader = key("read")
    with browser(site) as http:
        sign_in(http, reader)
        csrf = page_csrf(http)
        for typed in (NATIONAL, NUMBER, "06.12.34.56.78"):
            listed = http.post("/support/number", data={"number": typed, "csrf": csrf})
            assert listed.status_code == 200, listed.text
            assert listed.text.index(newer) < listed.text.index(older)
            assert other not in listed.text
            assert f"Messages to {MASKED}" in listed.text
        refused = http.post("/support/number", data={"number": "12", "csrf": csrf})
        assert refused.status_code == 422 and "number: " in refused.text
        assert "(rule: e164." in refused.text
        assert http.post("/support/number", data={"number": NUMBER}).status_code == 403
        assert (
            http.post("/support/number", data={"number": NUMBER, "csrf": "forged"}).status_code
            == 403
        )
        # never a query string
        assert http.get("/support/number", params={"number": NUMBER}).status_code == 405


def test_a_number_finds_its_messages_after_retention_redacted_it(
    site: ApiServer,
    key: Callable[..., tuple[str, str]],
    api_engine: Engine,
    support_settings: Settings,
) -> None:
    _, sender = key("send")
    hashed = send(site, sender)
    # a row stored before the hash key was set: retention hashes it as it redacts it
    unhashed = send(site, sender)
    with session_scope(api_engine) as session:
        session.execute(
            update(messages_table)
            .where(messages_table.c.id == unhashed)
            .values(recipient_hash=None)
        )
    for message_id in (hashed, unhashed):
        deliver(api_engine, message_id)
    retention = RetentionSettings(hash_key=SecretStr(HASH_KEY))
    report = redact_expired(api_engine, retention, now=utcnow() + timedelta(days=31))
    assert report.numbers == 2
    with session_scope(api_engine) as session:
        rows = session.execute(
            messages_table.select().where(messages_table.c.id.in_([hashed, unhashed]))
        ).all()
    assert {row.recipient for row in rows} == {"redacted"}
    assert {row.recipient_hash for row in rows} == {number_hash(NUMBER, HASH_KEY)}
    _, reader = key("read", "numbers")
    with browser(site) as http:
        sign_in(http, reader)
        csrf = page_csrf(http)
        listed = http.post("/support/number", data={"number": NATIONAL, "csrf": csrf})
        assert hashed in listed.text and unhashed in listed.text
        assert "redacted (retention)" in listed.text
        page = http.get(f"/support/messages/{hashed}")
        assert "receipt: delivered" in page.text
        # an erasure removes the hash too: nothing leads from the number any more
        erase_number(api_engine, NUMBER, hash_key=HASH_KEY)
        listed = http.post("/support/number", data={"number": NATIONAL, "csrf": csrf})
        assert listed.status_code == 200
        assert hashed not in listed.text and "No message found" in listed.text


def test_messages_by_number_come_a_page_at_a_time(
    site: ApiServer, key: Callable[..., tuple[str, str]]
) -> None:
    from postier.api.support.pages import PAGE_SIZE

    _, sender = key("send")
    sent = [send(site, sender) for _ in range(PAGE_SIZE + 3)]
    _, reader = key("read")
    with browser(site) as http:
        sign_in(http, reader)
        csrf = page_csrf(http)
        first = http.post("/support/number", data={"number": NATIONAL, "csrf": csrf})
        shown = re.findall(r"/support/messages/([0-9a-f]{32})", first.text)
        assert len(shown) == PAGE_SIZE
        cursor = re.search(r'name="before" value="([^"]+)"', first.text)
        assert cursor is not None and NUMBER not in cursor.group(1)
        second = http.post(
            "/support/number",
            data={
                "number": NATIONAL,
                "csrf": csrf,
                "before": cursor.group(1).replace("&#43;", "+"),
            },
        )
        rest = re.findall(r"/support/messages/([0-9a-f]{32})", second.text)
        assert len(rest) == 3
        assert set(shown) | set(rest) == set(sent) and not set(shown) & set(rest)
        assert 'name="before"' not in second.text


def test_a_campaign_shows_its_progress(
    site: ApiServer, key: Callable[..., tuple[str, str]]
) -> None:
    _, manager = key("campaigns")
    created = httpx.post(
        f"{site.url}/v1/campaigns",
        json={"name": "Rappel RDV", "text": "Bonjour, à demain", "recipients": [NATIONAL]},
        headers={"Authorization": f"Bearer {manager}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    _, reader = key("read")
    with browser(site) as http:
        sign_in(http, reader)
        found = http.get("/support/find", params={"id": campaign_id})
        assert found.headers["location"] == f"/support/campaigns/{campaign_id}"
        page = http.get(found.headers["location"])
        assert page.status_code == 200
        assert "Rappel RDV" in page.text and "Messages by status" in page.text


def test_a_key_losing_read_is_refused_at_once(
    site: ApiServer, key: Callable[..., tuple[str, str]], api_engine: Engine
) -> None:
    from postier.ledger.models import api_keys_table

    key_id, token = key("read")
    with browser(site) as http:
        sign_in(http, token)
        with session_scope(api_engine) as session:
            session.execute(
                update(api_keys_table).where(api_keys_table.c.id == key_id).values(scopes=["send"])
            )
        assert http.get("/support/").status_code == 403


def test_logs_hold_neither_the_number_nor_the_token(
    site: ApiServer,
    key: Callable[..., tuple[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, sender = key("send")
    message_id = send(site, sender)
    key_id, reader = key("read", "numbers")
    with caplog.at_level(logging.DEBUG), browser(site) as http:
        sign_in(http, reader)
        csrf = page_csrf(http)
        for typed in (NATIONAL, NUMBER):
            assert (
                http.post("/support/number", data={"number": typed, "csrf": csrf}).status_code
                == 200
            )
        http.post("/support/number", data={"number": "+33 6 00", "csrf": csrf})
        http.get(f"/support/messages/{message_id}")
    # the test's own HTTP client traces its wire at DEBUG (httpx, httpcore): response headers
    # with the Date, where "Mon, 30 Nov 2026 00:43" holds "6 00"; what is checked is the server
    lines = [
        r.getMessage() + repr(r.__dict__)
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))
    ]
    support = [
        r.getMessage() + repr(r.__dict__)
        for r in caplog.records
        if r.name == "postier.api.support" and "/support/number" in r.getMessage()
    ]
    assert len(support) == 3 and all(key_id in line for line in support)
    text = "\n".join(lines)
    for secret in (NUMBER, "612345678", "12 34 56 78", "6 00", reader, reader.rsplit("_", 1)[1]):
        assert secret not in text
