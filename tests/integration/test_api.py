"""The HTTP API in the stack (``postier api`` as ``postier up`` starts it), with a real worker,
Redis and the sandbox: a message posted over HTTP reaches ``delivered``."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.engine import Engine

from postier.api.keys import create_key, revoke_key
from postier.health import check_api
from postier.ledger.models import MessageStatus
from postier.sandbox import Sandbox
from postier.stack import Stack
from tests.integration.conftest import WaitFor, wait_until

pytestmark = pytest.mark.integration


def test_an_sms_posted_to_the_api_is_delivered(
    stack: Stack, ledger: Engine, live_sandbox: Sandbox, wait_for: WaitFor
) -> None:
    token = create_key(ledger, "integration", ["send", "read", "numbers"]).token
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "it-1"}
    payload = {"to": "06 12 34 56 78", "text": "Votre code : 283951"}
    posted = httpx.post(f"{stack.api_url}/v1/sms", json=payload, headers=headers, timeout=10)
    assert posted.status_code == 201, posted.text
    message_id = posted.json()["id"]
    assert wait_for(message_id, MessageStatus.DELIVERED) == MessageStatus.DELIVERED
    # the provider got it once, and the API tells its whole life
    sent = [r for r in live_sandbox.records() if r["text"] == payload["text"]]
    assert len(sent) == 1, sent
    assert sent[0]["provider"] == "primotexto"
    again = httpx.post(f"{stack.api_url}/v1/sms", json=payload, headers=headers, timeout=10)
    assert again.status_code == 200 and again.json()["id"] == message_id

    def delivered_over_http() -> bool:
        answer = httpx.get(
            f"{stack.api_url}/v1/messages/{message_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        body = answer.json()
        return body["status"] == "delivered" and body["to"] == "+33612345678"

    wait_until(delivered_over_http, "the API shows the message delivered")
    assert len([r for r in live_sandbox.records() if r["text"] == payload["text"]]) == 1


def test_a_revoked_key_is_refused_by_the_running_api(stack: Stack, ledger: Engine) -> None:
    made = create_key(ledger, "short-lived", ["read"])
    url = f"{stack.api_url}/v1/messages/{'0' * 32}"
    headers = {"Authorization": f"Bearer {made.token}"}
    assert httpx.get(url, headers=headers, timeout=10).status_code == 404
    revoke_key(ledger, made.info.id)
    assert httpx.get(url, headers=headers, timeout=10).status_code == 401
    assert httpx.get(url, timeout=10).status_code == 401


def test_health_sees_the_api_ready(stack: Stack) -> None:
    assert check_api(stack.api_url, 3.0).ok
    assert not check_api("http://127.0.0.1:9", 1.0).ok
