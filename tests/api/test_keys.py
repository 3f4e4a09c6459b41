"""API keys: made once, stored hashed, listed without secrets, revoked at once."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from postier.api.keys import (
    ApiKeyError,
    authenticate,
    check_scopes,
    create_key,
    hash_token,
    list_keys,
    parse_token,
    revoke_key,
)
from postier.ledger.db import session_scope
from postier.ledger.models import api_keys_table


def test_the_token_is_stored_as_its_sha256_only(api_engine: Engine) -> None:
    made = create_key(api_engine, "shop", ["send"])
    assert made.token.startswith(f"postier_{made.info.id}_")
    with session_scope(api_engine) as session:
        row = session.execute(select(api_keys_table)).one()
    assert row.secret_hash == hashlib.sha256(made.token.encode()).hexdigest()
    assert made.token.split("_")[2] not in repr(tuple(row))
    assert list(row.scopes) == ["send"]


def test_tokens_carry_256_random_bits() -> None:
    # 43 URL-safe base64 characters: 258 bits, of 32 random bytes
    assert parse_token("postier_0123456789ab_" + "A" * 43) == "0123456789ab"
    assert parse_token("postier_0123456789ab_" + "A" * 42) is None
    assert parse_token("postier_0123456789AB_" + "A" * 43) is None


def test_authenticate(api_engine: Engine) -> None:
    made = create_key(api_engine, "shop")
    key = authenticate(api_engine, made.token)
    assert key is not None and key.id == made.info.id
    assert key.scopes == ("send", "read", "campaigns")
    assert authenticate(api_engine, made.token + "x") is None
    assert authenticate(api_engine, made.token[:-1] + "?") is None
    other = create_key(api_engine, "other")
    # another key's secret under this key's id
    forged = f"postier_{made.info.id}_{other.token.split('_')[2]}"
    assert authenticate(api_engine, forged) is None


def test_last_used_is_written_once_a_minute_at_most(api_engine: Engine) -> None:
    made = create_key(api_engine, "shop")
    assert list_keys(api_engine)[0].last_used_at is None
    authenticate(api_engine, made.token)
    first = list_keys(api_engine)[0].last_used_at
    assert first is not None
    authenticate(api_engine, made.token)
    assert list_keys(api_engine)[0].last_used_at == first
    with session_scope(api_engine) as session:
        session.execute(update(api_keys_table).values(last_used_at=first - timedelta(minutes=2)))
    authenticate(api_engine, made.token)
    later = list_keys(api_engine)[0].last_used_at
    assert later is not None and later >= first


def test_revoke(api_engine: Engine) -> None:
    made = create_key(api_engine, "shop")
    assert revoke_key(api_engine, made.info.id)
    assert authenticate(api_engine, made.token) is None
    assert not revoke_key(api_engine, made.info.id)
    assert not revoke_key(api_engine, "nope")
    [listed] = list_keys(api_engine)
    assert listed.revoked_at is not None and not listed.active


@pytest.mark.parametrize(
    ("name", "scopes"),
    [("", ["send"]), ("x" * 101, ["send"]), ("ok", ["admin"]), ("ok", []), ("a\nb", ["send"])],
)
def test_create_refuses(api_engine: Engine, name: str, scopes: list[str]) -> None:
    with pytest.raises(ApiKeyError):
        create_key(api_engine, name, scopes)
    assert list_keys(api_engine) == []


def test_scopes_in_a_fixed_order() -> None:
    assert check_scopes(["numbers", "send", "send"]) == ("send", "numbers")


@given(st.text(max_size=200))
def test_random_tokens_never_authenticate_nor_crash(token: str) -> None:
    # parse_token refuses what is not postier_<12 hex>_<43 url-safe>: no lookup at all
    if parse_token(token) is None:
        assert hash_token(token)  # hashing any text (surrogates too) never raises
