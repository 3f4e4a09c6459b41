"""The support page in headless Chromium, against the stack's own ``postier api``.

A message goes through the stack (API, worker, sandbox, receipt); Chromium, driven over the
DevTools protocol, signs in by pasting a ``read`` key into the form, searches the number in the
search form, opens the message found and reads its timeline, as an agent would. The page has no
script of its own: the test fills the fields and clicks the buttons the way a person does.
The screenshot of the timeline is what ``make screenshots`` puts in deploy/docs/support.png.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from postier.api.keys import create_key
from postier.ledger.db import make_engine, session_scope
from postier.ledger.queries import get_message
from postier.stack import Stack
from tests.deploy.conftest import need_chromium
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

NUMBER = "06 12 34 56 07"
MASKED = "+336******07"
DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")


class Page:
    """One Chromium tab over the DevTools protocol: navigate, type, click, read, capture."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.counter = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.counter += 1
        self.socket.send(json.dumps({"id": self.counter, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self.counter:
                assert "error" not in message, message
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def _wait_for_load(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            if any(e.get("method") == "Page.loadEventFired" for e in self.events):
                self.events.clear()
                return
            assert time.monotonic() < deadline, "the page did not load"
            self.events.append(json.loads(self.socket.recv(timeout=30)))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self._wait_for_load()

    def type_into(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(text)}")

    def click(self, selector: str) -> None:
        """Click a submit button and wait for the page the form leads to."""
        self.events.clear()
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        self._wait_for_load()

    @property
    def url(self) -> str:
        return str(self.evaluate("location.href"))

    @property
    def text(self) -> str:
        return str(self.evaluate("document.body.innerText"))

    def screenshot(self, path: Path) -> None:
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=max(720, height),
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


@contextmanager
def chromium_page(chromium: str, profile: Path) -> Iterator[Page]:
    process = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        browser = None
        deadline = time.monotonic() + 30
        while browser is None:
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            line = process.stderr.readline()
            assert line or process.poll() is None, "Chromium exited"
            found = DEVTOOLS.search(line)
            browser = found.group(1) if found else None
        port = browser.split(":")[2].split("/")[0]
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        target = next(p for p in pages if p["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=2**26) as socket:
            page = Page(socket)
            page.call("Page.enable")
            yield page
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_chromium_finds_a_message_by_number_and_shows_its_timeline(
    deploy_stack: Stack, tmp_path: Path, screenshot_dir: Path
) -> None:
    chromium = need_chromium()
    engine = make_engine(deploy_stack.database_url)
    sender = create_key(engine, "browser test: sender", ("send",)).token
    agent = create_key(engine, "support desk", ("read",)).token
    sent = httpx.post(
        f"{deploy_stack.api_url}/v1/sms",
        json={"to": NUMBER, "text": "Votre code de connexion est 481516"},
        headers={"Authorization": f"Bearer {sender}"},
        timeout=10,
    )
    assert sent.status_code == 201, sent.text
    message_id = sent.json()["id"]

    def delivered() -> bool:
        with session_scope(engine) as session:
            message = get_message(session, message_id)
            return message is not None and message.status == "delivered"

    wait_until(delivered, "the message delivered by the sandbox", timeout=45)
    engine.dispose()

    base = f"{deploy_stack.api_url}/support"
    with chromium_page(chromium, tmp_path / "profile") as page:
        page.goto(f"{base}/")
        assert page.url == f"{base}/sign-in"  # no session yet
        page.type_into("#token", agent)
        page.click('form[action="/support/sign-in"] button')
        assert page.url == f"{base}/"
        assert "Did the message go out?" in page.text

        page.type_into("#number", NUMBER)
        page.click('form[action="/support/number"] button')
        assert page.url == f"{base}/number"  # the number went in the body, not the address
        listing = page.text
        assert f"Messages to {MASKED}" in listing
        assert message_id in listing and "delivered" in listing

        page.click(f'a[href="/support/messages/{message_id}"]')
        assert page.url == f"{base}/messages/{message_id}"
        timeline = page.text
        steps = ["accepted, queued", "attempt 1", "accepted by the provider", "receipt: delivered"]
        positions = [timeline.index(step) for step in steps]
        assert positions == sorted(positions), timeline
        assert MASKED in timeline and "0612345607" not in timeline.replace(" ", "")
        assert "numbers masked" in timeline

        picture = screenshot_dir / "support.png"
        page.screenshot(picture)
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
