"""The ``Idempotency-Key`` header: the same key and request give the same message.

A key belongs to the API key that sent it (two clients never share one). The first request
under a key stores the hash of its method, route and canonical JSON body; a later one with the
same hash is a replay and gets what the first made (the same message, by the producers' own
``idempotency_key``, or the same campaign, by ``resource_id``); one with another hash is a
conflict (409). A request that fails on a rule gives its key back, so the corrected request
may reuse it. Messages are stored under ``api:<key id>:<Idempotency-Key>`` (bulk rows add
``:<position>``), so the producers keep their own guarantee under concurrent replays.
The retention pass deletes these records after ``retention.idempotency_keys_days`` (7 by
default, as payment APIs keep theirs for days, not forever): a key replayed later is a new
request.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from postier.api.problems import IDEMPOTENCY_CONFLICT, FieldError, Problem
from postier.ledger.db import session_scope
from postier.ledger.models import api_idempotency_table, utcnow

HEADER: Final = "Idempotency-Key"
#: printable ASCII without spaces, as the IETF draft's examples and Stripe's keys
_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")


def check_key(value: str | None) -> str | None:
    """The header's value, or None when absent; a ``Problem`` (422) for a malformed one."""
    if value is None:
        return None
    if not _KEY.fullmatch(value):
        raise Problem(
            422,
            f"{HEADER}: 1 to 128 printable ASCII characters without spaces"
            " (rule: idempotency_key.format)",
            type="urn:postier:problem:rule-violation",
            title="The input breaks a rule",
            errors=(
                FieldError(
                    HEADER,
                    "idempotency_key.format",
                    "1 to 128 printable ASCII characters without spaces",
                ),
            ),
        )
    return value


def request_hash(method: str, route: str, body: Any) -> str:
    """SHA-256 of the request as a replay must repeat it (key order and spacing ignored)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {route}\n{canonical}".encode()).hexdigest()


def producer_key(api_key_id: str, key: str) -> str:
    """The producers' ``idempotency_key`` for a message sent under ``key``."""
    return f"api:{api_key_id}:{key}"


@dataclass(frozen=True, slots=True)
class Claim:
    """What ``claim`` found: a first use, or a replay (with what the first use made)."""

    replay: bool
    resource_id: str | None = None


def _conflict() -> Problem:
    return Problem(
        409,
        f"this {HEADER} was used for another request; use a new key for a new request",
        type=IDEMPOTENCY_CONFLICT,
        title="Idempotency-Key reused",
    )


def claim(engine: Engine, api_key_id: str, key: str, fingerprint: str) -> Claim:
    """Record ``key`` for this request, or recognise a replay; ``Problem`` 409 on a mismatch."""
    with session_scope(engine) as session:
        try:
            with session.begin_nested():
                session.execute(
                    insert(api_idempotency_table).values(
                        api_key_id=api_key_id,
                        key=key,
                        request_hash=fingerprint,
                        created_at=utcnow(),
                    )
                )
            return Claim(replay=False)
        except IntegrityError:
            pass
        row = session.execute(
            select(api_idempotency_table.c.request_hash, api_idempotency_table.c.resource_id).where(
                api_idempotency_table.c.api_key_id == api_key_id,
                api_idempotency_table.c.key == key,
            )
        ).first()
    if row is None or row.request_hash != fingerprint:
        raise _conflict()
    return Claim(replay=True, resource_id=row.resource_id)


def record_resource(engine: Engine, api_key_id: str, key: str, resource_id: str) -> None:
    """Remember what the first request under ``key`` made (a campaign's id)."""
    with session_scope(engine) as session:
        session.execute(
            update(api_idempotency_table)
            .where(
                api_idempotency_table.c.api_key_id == api_key_id,
                api_idempotency_table.c.key == key,
            )
            .values(resource_id=resource_id)
        )


def release(engine: Engine, api_key_id: str, key: str) -> None:
    """Give ``key`` back after a refused request (nothing was made under it)."""
    with session_scope(engine) as session:
        session.execute(
            delete(api_idempotency_table).where(
                api_idempotency_table.c.api_key_id == api_key_id,
                api_idempotency_table.c.key == key,
            )
        )


__all__ = [
    "HEADER",
    "Claim",
    "check_key",
    "claim",
    "producer_key",
    "record_resource",
    "release",
    "request_hash",
]
