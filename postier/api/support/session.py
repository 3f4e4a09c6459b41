"""The support page's session: a signed cookie naming an API key, never holding its token.

A browser cannot send ``Authorization: Bearer``, so the agent pastes a key once into the
sign-in form; the key is checked like any API request (``postier.api.keys.authenticate``) and
the answer is a cookie holding the key's public id, when the session began and was last used,
and the session's CSRF token, signed with HMAC-SHA256 (``api.session_secret``). Every request
re-reads the key by its id, so revoking it (``postier api-key revoke``) ends the session at its
next request, and a scope taken away is gone at once.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page
sends it), ``Secure`` when the page is served over https, limited to ``/support``, and short
lived: ``api.session_idle_minutes`` without a request, ``api.session_max_hours`` at most.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Final

from postier.config import ApiSettings

#: the session cookie
COOKIE: Final = "postier_support"
#: the sign-in form's CSRF cookie (double submit: the form's hidden field must match it)
CSRF_COOKIE: Final = "postier_support_csrf"
#: the cookies' path: the support page only, never the API
PATH: Final = "/support"
#: minimum length of a configured ``api.session_secret``
MIN_SECRET_CHARS: Final = 32


class SessionSecretError(ValueError):
    """``api.session_secret`` is set but too short to sign with."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class SupportSession:
    """A signed-in agent: the key's public id, times (epoch seconds) and the CSRF token."""

    key_id: str
    issued_at: float
    seen_at: float
    csrf: str


class SessionSigner:
    """Makes and reads the signed cookie values."""

    def __init__(self, settings: ApiSettings) -> None:
        configured = settings.session_secret.get_secret_value()
        if configured and len(configured) < MIN_SECRET_CHARS:
            raise SessionSecretError(
                f"POSTIER_API__SESSION_SECRET must be {MIN_SECRET_CHARS} characters at least"
            )
        # derived, so the same secret never signs anything else by accident
        self._key = hashlib.sha256(
            b"postier support session\0" + (configured or secrets.token_hex(32)).encode()
        ).digest()
        self.idle = settings.session_idle_minutes * 60.0
        self.lifetime = settings.session_max_hours * 3600.0

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    def _seal(self, data: dict[str, object]) -> str:
        body = _b64(json.dumps(data, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def _open(self, value: str) -> dict[str, object] | None:
        body, _, signature = value.partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            data = json.loads(_unb64(body))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def new_session(self, key_id: str, now: float | None = None) -> SupportSession:
        at = time.time() if now is None else now
        return SupportSession(key_id, at, at, secrets.token_urlsafe(24))

    def dump(self, session: SupportSession) -> str:
        return self._seal(
            {"k": session.key_id, "i": session.issued_at, "s": session.seen_at, "c": session.csrf}
        )

    def load(self, value: str | None, now: float | None = None) -> SupportSession | None:
        """The session in ``value`` if its signature holds and it has not expired."""
        if not value:
            return None
        data = self._open(value)
        if data is None:
            return None
        key_id, issued, seen, csrf = data.get("k"), data.get("i"), data.get("s"), data.get("c")
        if not (
            isinstance(key_id, str)
            and isinstance(csrf, str)
            and isinstance(issued, int | float)
            and isinstance(seen, int | float)
        ):
            return None
        at = time.time() if now is None else now
        if at - seen > self.idle or at - issued > self.lifetime or seen > at + 60:
            return None
        return SupportSession(key_id, float(issued), float(seen), csrf)

    def renewed(self, session: SupportSession, now: float | None = None) -> SupportSession:
        at = time.time() if now is None else now
        return SupportSession(session.key_id, session.issued_at, at, session.csrf)

    def csrf_token(self) -> tuple[str, str]:
        """A sign-in CSRF token and its signed cookie value."""
        token = secrets.token_urlsafe(24)
        return token, self._seal({"c": token, "i": time.time()})

    def csrf_matches(self, cookie: str | None, submitted: str | None) -> bool:
        """Whether the sign-in form's token is the one its cookie carries (and is recent)."""
        if not cookie or not submitted:
            return False
        data = self._open(cookie)
        if data is None:
            return False
        token, issued = data.get("c"), data.get("i")
        if not isinstance(token, str) or not isinstance(issued, int | float):
            return False
        if time.time() - issued > self.idle:
            return False
        return hmac.compare_digest(token, submitted)


def tokens_match(expected: str, submitted: str | None) -> bool:
    """A session's CSRF token against a form's, in constant time."""
    return submitted is not None and hmac.compare_digest(expected, submitted)


__all__ = [
    "COOKIE",
    "CSRF_COOKIE",
    "PATH",
    "SessionSecretError",
    "SessionSigner",
    "SupportSession",
    "tokens_match",
]
