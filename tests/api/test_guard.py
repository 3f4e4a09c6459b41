"""The gate over real HTTP: no valid key, 401 and nothing touched; a key's rate limit, 429."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
import redis
from sqlalchemy.engine import Engine

from postier import tasknames
from postier.api.guard import bearer_token
from postier.api.keys import revoke_key
from postier.config import ApiSettings
from tests.api.conftest import ApiServer, snapshot

SMS = {"to": "0612345678", "text": "Votre code : 1234"}


def _refused(response: httpx.Response) -> dict:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith('Bearer realm="postier"')
    return response.json()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer postier_000000000000_" + "A" * 43,  # well formed, unknown
        "Bearer not-a-token",
    ],
)
def test_no_valid_key_is_401_and_touches_nothing(
    api: ApiServer,
    api_engine: Engine,
    make_key: Callable[..., str],
    redis_client: redis.Redis,
    authorization: str | None,
) -> None:
    make_key()  # a key exists: the refusal must not touch it either
    before = snapshot(api_engine)
    headers = {"Authorization": authorization} if authorization else {}
    for method, path, body in [
        ("POST", "/v1/sms", SMS),
        ("POST", "/v1/messages/bulk", {"messages": [SMS]}),
        ("POST", "/v1/campaigns", {"name": "x", "text": "y", "recipients": ["0612345678"]}),
        ("GET", f"/v1/messages/{'0' * 32}", None),
        ("POST", f"/v1/messages/{'0' * 32}/cancel", None),
    ]:
        _refused(httpx.request(method, f"{api.url}{path}", json=body, headers=headers))
    assert snapshot(api_engine) == before
    assert redis_client.llen(tasknames.QUEUE_SEND) == 0
    # no rate-limit key was written for anyone
    assert not redis_client.keys("postier:rl:api:*")


def test_a_wrong_secret_of_a_real_key_is_refused(
    api: ApiServer, api_engine: Engine, make_key: Callable[..., str]
) -> None:
    token = make_key()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    before = snapshot(api_engine)
    _refused(
        httpx.post(f"{api.url}/v1/sms", json=SMS, headers={"Authorization": f"Bearer {forged}"})
    )
    assert snapshot(api_engine) == before


def test_a_revoked_key_is_refused_at_once(
    api: ApiServer, api_engine: Engine, make_key: Callable[..., str]
) -> None:
    token = make_key()
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{api.url}/v1/sms", json=SMS, headers=headers).status_code == 201
    assert revoke_key(api_engine, token.split("_")[1])
    before = snapshot(api_engine)
    body = _refused(httpx.post(f"{api.url}/v1/sms", json=SMS, headers=headers))
    assert "revoked" in body["detail"]
    assert snapshot(api_engine) == before


def test_a_malformed_body_without_a_key_is_still_401(api: ApiServer) -> None:
    response = httpx.post(
        f"{api.url}/v1/sms", content=b"{not json", headers={"content-type": "application/json"}
    )
    _refused(response)


def test_rate_limit_per_key(serve: Callable[..., ApiServer], make_key: Callable[..., str]) -> None:
    api = serve(ApiSettings(rate=0.5, burst=3))
    first, second = make_key(), make_key()
    url = f"{api.url}/v1/messages/{'0' * 32}"
    answers = [
        httpx.get(url, headers={"Authorization": f"Bearer {first}"}).status_code for _ in range(4)
    ]
    assert answers == [404, 404, 404, 429]
    limited = httpx.get(url, headers={"Authorization": f"Bearer {first}"})
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert 1 <= int(limited.headers["retry-after"]) <= 2
    # another key has its own limit
    assert httpx.get(url, headers={"Authorization": f"Bearer {second}"}).status_code == 404


def test_body_size_limit(serve: Callable[..., ApiServer], make_key: Callable[..., str]) -> None:
    api = serve(ApiSettings(rate=100, burst=100, max_body_bytes=2048))
    headers = {"Authorization": f"Bearer {make_key()}"}
    response = httpx.post(
        f"{api.url}/v1/sms", json={"to": "0612345678", "text": "x" * 4000}, headers=headers
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_the_token_is_never_logged(
    api: ApiServer, make_key: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    token = make_key()
    with caplog.at_level(logging.DEBUG):
        httpx.post(f"{api.url}/v1/sms", json=SMS, headers={"Authorization": f"Bearer {token}"})
        httpx.post(f"{api.url}/v1/sms", json=SMS, headers={"Authorization": f"Bearer {token}x"})
    lines = [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    assert any(token.split("_")[1] in line for line in lines), "the key's id names the request"
    assert not any(token.split("_")[2] in line for line in lines)
    assert not any("0612345678" in line or "+33612345678" in line for line in lines)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"authorization", b"Bearer abc")], "abc"),
        ([(b"authorization", b"bearer  abc ")], "abc"),
        ([(b"authorization", b"Basic abc")], None),
        ([(b"authorization", b"Bearer ")], None),
        ([], None),
    ],
)
def test_bearer_token(headers: list, expected: str | None) -> None:
    assert bearer_token({"headers": headers}) == expected
