"""Octopush pushes delivery receipts and inbound SMS to URLs set in the account; so does this.

The real service has no status API (docs/PROVIDERS.md, "Octopush"): receipts reach the dispatcher
only through its webhook. The sandbox does the same from a daemon thread, once the callback
URLs are set (``PUT /_sandbox/octopush/callbacks``), pushing each receipt state once and
retrying on the next round when the webhook did not answer 2xx.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx

from postier.sandbox.octopush.account import OctopushAccount

log = logging.getLogger(__name__)


class CallbackPusher:
    """Pushes receipts and inbound SMS of one simulated account to its callback URLs."""

    def __init__(self, account: OctopushAccount, *, interval: float = 0.2) -> None:
        self.account = account
        self.interval = interval
        self.receipts_url: str | None = None
        self.inbound_url: str | None = None
        self._pushed: set[tuple[str, str]] = set()
        self._pushed_inbound: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def configure(self, receipts_url: str | None, inbound_url: str | None) -> None:
        """Set the callback URLs (None: stop pushing that kind) and start the thread."""
        self.receipts_url = receipts_url
        self.inbound_url = inbound_url
        if self._thread is None and (receipts_url or inbound_url):
            self._thread = threading.Thread(
                target=self._run, daemon=True, name="sandbox-octopush-callbacks"
            )
            self._thread.start()

    def reset(self) -> None:
        """Forget what was pushed (the account's messages are gone); keep the URLs."""
        self._pushed.clear()
        self._pushed_inbound.clear()

    def stop(self) -> None:
        self._stop.set()

    def _due(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with self.account.core.lock:
            receipts = [
                body
                for body in self.account.receipts(None)
                if (body["message_id"], body["status"]) not in self._pushed
            ]
            inbound = [
                m for m in self.account.inbound if m["message_id"] not in self._pushed_inbound
            ]
        return receipts, inbound

    def push_once(self, client: httpx.Client) -> int:
        """One round: POST every receipt state and inbound SMS not yet pushed."""
        receipts, inbound = self._due()
        pushed = 0
        if self.receipts_url:
            for body in receipts:
                if self._post(client, self.receipts_url, body):
                    self._pushed.add((body["message_id"], body["status"]))
                    pushed += 1
        if self.inbound_url:
            for body in inbound:
                if self._post(client, self.inbound_url, body):
                    self._pushed_inbound.add(body["message_id"])
                    pushed += 1
        return pushed

    @staticmethod
    def _post(client: httpx.Client, url: str, body: dict[str, Any]) -> bool:
        try:
            return client.post(url, json=body).is_success
        except httpx.HTTPError as exc:
            log.debug("a callback failed: %s", type(exc).__name__)  # its URL holds a secret
            return False

    def _run(self) -> None:
        with httpx.Client(timeout=2.0) as client:
            while not self._stop.wait(self.interval):
                self.push_once(client)
