"""The baseline the benchmark compares Postier with: SMS sent the way most Celery projects do.

One task per message, posting with one shared ``httpx.Client`` per worker process, the prefork
pool, Redis as broker, no ledger and no rate limit. It posts the same request to the same
provider endpoint as Postier's Octopush client (the legacy JSON form API, docs/PROVIDERS.md
"Octopush"), so the two measure the same work on the provider side.

Started as its own worker, ``celery -A benchmarks.throughput.baseline worker -Q
postier.bench.baseline``, with ``POSTIER_REDIS_URL`` and ``POSTIER_SANDBOX_URL`` in the environment.
"""

from __future__ import annotations

import httpx
from celery import Celery

from postier.config import get_settings
from postier.sandbox.accounts import SANDBOX_ACCOUNTS

QUEUE = "postier.bench.baseline"
TASK = "postier.bench.baseline_send"

_settings = get_settings()
app = Celery("baseline", broker=_settings.redis_url, set_as_current=False)
app.conf.update(
    task_ignore_result=True,
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_client: httpx.Client | None = None


def shared_client() -> httpx.Client:
    """This worker process's client, made after the fork (a pool must not cross a fork)."""
    global _client
    if _client is None:
        _client = httpx.Client(timeout=10.0)
    return _client


def octopush_form(recipient: str, text: str) -> dict[str, str]:
    """The legacy send form for one recipient (Octopush SMS API): a hand-written client's post."""
    return {
        "user_login": SANDBOX_ACCOUNTS.octopush_login,
        "api_key": SANDBOX_ACCOUNTS.octopush_api_key,
        "sms_recipients": recipient,
        "sms_text": text,
        "sms_type": "FR",
        "sms_sender": "Postier",
        "transactional": "1",
    }


@app.task(name=TASK)  # type: ignore[untyped-decorator]
def baseline_send(recipient: str, text: str) -> None:
    """Post one SMS; an answer other than ``error_code`` 000 raises (the task fails)."""
    base = (_settings.sandbox_url or "").rstrip("/")
    response = shared_client().post(f"{base}/api/sms/json", data=octopush_form(recipient, text))
    response.raise_for_status()
    code = response.json().get("error_code")
    if code != "000":
        raise RuntimeError(f"Octopush answered {code}")
