"""API keys: made once, kept as a hash, sent as ``Authorization: Bearer <token>``.

A token is ``postier_<id>_<secret>``: ``id`` (12 hex characters) is its public part, the one
``postier api-key list`` shows, ``revoke`` takes and the logs name; ``secret`` is 256 random
bits. Only the SHA-256 of the whole token is stored, and it is compared in constant time.

Why SHA-256 and not bcrypt or argon2: those are slow on purpose, to make guessing a
*password* (a few dozen bits a person chose) expensive. A token of 256 random bits cannot be
guessed from its hash at any speed, so a slow hash would only cost every request ~100 ms of
CPU, which is a denial of service waiting to happen; a fast hash of a high-entropy secret is
what GitHub's and Stripe's tokens use too.

Scopes: ``send`` (send and cancel messages), ``read`` (message and campaign state),
``campaigns`` (create, pause, resume, cancel campaigns) and ``numbers`` (see recipients' numbers
in clear; without it every number in an answer is masked).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Engine

from postier.ledger.db import session_scope
from postier.ledger.models import api_keys_table, utcnow

#: every scope a key may hold
SCOPES: Final[tuple[str, ...]] = ("send", "read", "campaigns", "numbers")
#: the scopes of a key created without ``--scope``: all but seeing numbers in clear
DEFAULT_SCOPES: Final[tuple[str, ...]] = ("send", "read", "campaigns")
TOKEN_PREFIX: Final = "postier_"  # noqa: S105 - a prefix, not a secret
_TOKEN = re.compile(r"^postier_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
#: ``last_used_at`` is written at most this often per key (not one write per request)
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiKeyError(ValueError):
    """A key that cannot be made as asked (an unknown scope, an empty name)."""


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A key as listed: never its secret."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just made: the token is shown this once and never stored."""

    info: ApiKeyInfo
    token: str


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_token(token: str) -> str | None:
    """The public id of a well-formed token, else None."""
    match = _TOKEN.fullmatch(token)
    return match.group(1) if match else None


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """``scopes`` without repeats, in ``SCOPES`` order; ``ApiKeyError`` for an unknown one."""
    wanted = set(scopes)
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise ApiKeyError(f"unknown scope {', '.join(unknown)}; use {', '.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in wanted)


def _info(row: object) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        scopes=tuple(row.scopes or ()),  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        last_used_at=row.last_used_at,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
    )


def create_key(engine: Engine, name: str, scopes: Sequence[str] = DEFAULT_SCOPES) -> NewApiKey:
    """Make a key; its token is in the result only."""
    clean = name.strip()
    if not clean or len(clean) > 100 or not clean.isprintable():
        raise ApiKeyError("the name must be 1 to 100 printable characters")
    chosen = check_scopes(scopes)
    if not chosen:
        raise ApiKeyError(f"give at least one scope ({', '.join(SCOPES)})")
    key_id = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(
            insert(api_keys_table).values(
                id=key_id,
                name=clean,
                scopes=list(chosen),
                secret_hash=hash_token(token),
                created_at=now,
            )
        )
    info = ApiKeyInfo(key_id, clean, chosen, now, None, None)
    return NewApiKey(info, token)


def list_keys(engine: Engine) -> list[ApiKeyInfo]:
    """Every key, oldest first, revoked ones included."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(api_keys_table).order_by(api_keys_table.c.created_at, api_keys_table.c.id)
        ).all()
    return [_info(row) for row in rows]


def revoke_key(engine: Engine, key_id: str) -> bool:
    """Revoke the key ``key_id`` at once; False when there is no such active key."""
    with session_scope(engine) as session:
        result = session.execute(
            update(api_keys_table)
            .where(api_keys_table.c.id == key_id, api_keys_table.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def active_key(engine: Engine, key_id: str) -> ApiKeyInfo | None:
    """The key ``key_id`` if it exists and is not revoked (a support session's key, re-read
    on every request so a revocation ends the session at once)."""
    with session_scope(engine) as session:
        row = session.execute(select(api_keys_table).where(api_keys_table.c.id == key_id)).first()
    if row is None or row.revoked_at is not None:
        return None
    return _info(row)


def authenticate(engine: Engine, token: str) -> ApiKeyInfo | None:
    """The active key ``token`` is, else None (malformed, unknown, wrong secret, revoked).

    Reads one row by primary key; writes ``last_used_at`` at most once a minute per key.
    """
    key_id = parse_token(token)
    if key_id is None:
        return None
    with session_scope(engine) as session:
        row = session.execute(select(api_keys_table).where(api_keys_table.c.id == key_id)).first()
        if row is None or not hmac.compare_digest(row.secret_hash, hash_token(token)):
            return None
        if row.revoked_at is not None:
            return None
        now = utcnow()
        if row.last_used_at is None or row.last_used_at < now - LAST_USED_RESOLUTION:
            session.execute(
                update(api_keys_table)
                .where(
                    api_keys_table.c.id == key_id,
                    or_(
                        api_keys_table.c.last_used_at.is_(None),
                        api_keys_table.c.last_used_at < now - LAST_USED_RESOLUTION,
                    ),
                )
                .values(last_used_at=now)
            )
    return _info(row)


__all__ = [
    "DEFAULT_SCOPES",
    "SCOPES",
    "ApiKeyError",
    "ApiKeyInfo",
    "NewApiKey",
    "active_key",
    "authenticate",
    "check_scopes",
    "create_key",
    "hash_token",
    "list_keys",
    "parse_token",
    "revoke_key",
]
