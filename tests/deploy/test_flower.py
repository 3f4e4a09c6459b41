"""Flower behind basic auth, during the demo batch, seen through its API and headless Chromium.

The stack runs the demo batch (``postier demo``'s); Flower must refuse anonymous requests,
list the worker, and show the demo's send tasks with message ids as their only arguments.
Chromium (Debian's package) renders the worker and task pages with the credentials in the URL
and writes the screenshot ``make screenshots`` puts in deploy/docs/flower.png.
"""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from sqlmodel import select

from postier.demo import run_demo
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import Message
from postier.logs import mask_text
from postier.stack import Stack
from tests.deploy.conftest import CHROMIUM, need_chromium

pytestmark = pytest.mark.integration

WINDOW = "1720,720"
MESSAGE_ID = re.compile(r"[0-9a-f]{32}")
#: the repr of a task's arguments: ``()``, ``['<id>']`` or ``[['<id>', …]]``
ID_ARGS = re.compile(r"\(\)|\['[0-9a-f]{32}'\]|\[\[(?:'[0-9a-f]{32}'(?:, )?)+\]\]")


@pytest.fixture(scope="module")
def demo(deploy_stack: Stack) -> set[str]:
    """Run the demo batch on the stack; the ids of the messages it created."""
    engine = make_engine(deploy_stack.database_url)
    with session_scope(engine) as session:
        before = set(session.exec(select(Message.id)).all())
    assert run_demo(deploy_stack, Console(file=io.StringIO()), timeout=45)
    with session_scope(engine) as session:
        after = set(session.exec(select(Message.id)).all())
    engine.dispose()
    return after - before


def flower_api(stack: Stack, path: str, **params: Any) -> Any:
    credentials = stack.flower_credentials
    assert credentials is not None
    response = httpx.get(f"{stack.flower_url}{path}", params=params, auth=credentials, timeout=10)
    response.raise_for_status()
    return response.json()


def send_tasks(stack: Stack, wanted: set[str], timeout: float = 15.0) -> dict[str, Any]:
    """Flower's send tasks, once it has seen one for every id in ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        tasks: dict[str, Any] = flower_api(
            stack, "/api/tasks", taskname="postier.send_message", limit=1000
        )
        seen = {MESSAGE_ID.search(task["args"] or "") for task in tasks.values()}
        ids = {match.group(0) for match in seen if match}
        if wanted <= ids or time.monotonic() > deadline:
            return tasks
        time.sleep(0.3)


def test_flower_refuses_anonymous_and_wrong_credentials(deploy_stack: Stack) -> None:
    url = deploy_stack.flower_url
    deadline = time.monotonic() + 30
    while True:
        try:
            health = httpx.get(f"{url}/healthcheck", timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "Flower did not start; see flower.log"
            time.sleep(0.3)
    assert health.status_code == 200 and health.text == "OK"
    for path in ("/", "/workers", "/tasks", "/api/workers", "/api/tasks"):
        assert httpx.get(url + path, timeout=5).status_code == 401, path
        wrong = httpx.get(url + path, auth=("postier", "not-the-password"), timeout=5)
        assert wrong.status_code == 401, path
    credentials = deploy_stack.flower_credentials
    assert credentials is not None
    assert httpx.get(f"{url}/workers", auth=credentials, timeout=5).status_code == 200


def test_the_worker_and_the_demo_tasks_appear_with_ids_only(
    deploy_stack: Stack, demo: set[str]
) -> None:
    worker_name = f"worker@{socket.gethostname()}"
    workers = flower_api(deploy_stack, "/api/workers", refresh="1")
    assert worker_name in workers
    # every demo message went out through one send_message task carrying its id
    tasks = send_tasks(deploy_stack, demo)
    shown = {match.group(0) for t in tasks.values() if (match := MESSAGE_ID.search(t["args"]))}
    assert demo <= shown
    every = flower_api(deploy_stack, "/api/tasks", limit=5000)
    assert {task["name"] for task in every.values()} >= {
        "postier.send_message",
        "postier.release_due_messages",
        "postier.poll_delivery_states",
        "postier.poll_whatsapp_inbox",
    }
    _, password = deploy_stack.flower_credentials or ("", "")
    for task in every.values():
        # None: a task whose "received" event Flower has not seen yet
        assert task["args"] is None or ID_ARGS.fullmatch(task["args"]), task["args"]
        assert task["kwargs"] in (None, "{}"), task["kwargs"]
        text = json.dumps(task)
        # nothing a log line would have to mask: no phone number, no secret
        assert mask_text(text, [password]) == text
        assert task["worker"] == worker_name


def _chromium(profile: Path, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW}",
            # let the page's AJAX calls (worker list, task table) finish before the capture
            "--virtual-time-budget=6000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_chromium_shows_the_worker_and_the_demo_tasks(
    deploy_stack: Stack, demo: set[str], tmp_path: Path, screenshot_dir: Path
) -> None:
    need_chromium()
    user, password = deploy_stack.flower_credentials or ("", "")
    base = deploy_stack.flower_url.replace("://", f"://{user}:{password}@")
    send_tasks(deploy_stack, demo)

    workers = _chromium(tmp_path / "workers", "--dump-dom", url=f"{base}/workers")
    assert workers.returncode == 0, workers.stderr[-2000:]
    assert f"worker@{socket.gethostname()}" in workers.stdout

    tasks_url = f"{base}/tasks?name=postier.send_message"
    tasks = _chromium(tmp_path / "tasks", "--dump-dom", url=tasks_url)
    assert tasks.returncode == 0, tasks.stderr[-2000:]
    shown = set(MESSAGE_ID.findall(tasks.stdout))
    assert shown & demo, "the task table shows no demo message id"
    assert "postier.send_message" in tasks.stdout

    picture = screenshot_dir / "flower.png"
    shot = _chromium(tmp_path / "shot", f"--screenshot={picture}", url=tasks_url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
