"""The sandbox's urlencoded form reader gives what Starlette's own parser gives, limits included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_multipart.exceptions import FormParserError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser, MultiPartException

from postier.sandbox import Sandbox, SandboxServer
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.forms import MAX_FIELD_SIZE, MAX_FIELDS, parse_urlencoded

#: the bytes that matter to the parser, a few escapes (valid, truncated, non-UTF-8) and others
PIECES = st.one_of(
    st.sampled_from([b"&", b"=", b"+", b"%", b"%2", b"%20", b"%26", b"%3D", b"%C3%A9", b"%FF"]),
    st.sampled_from([b"a", b"b", b"sms_text", b"\xc3\xa9", b"\xff", b" ", b";"]),
    st.binary(max_size=3),
)


def _chunks(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)] or [b""]


def starlette_form(body: bytes, chunk: int = 7) -> dict[str, str] | str:
    """What ``Request.form()`` makes of ``body`` (the text fields, last value winning), or
    the message of the error it raises; streamed in small chunks as a socket may deliver it."""

    async def stream() -> AsyncGenerator[bytes, None]:
        for part in _chunks(body, chunk):
            yield part

    async def parse() -> dict[str, str]:
        headers = Headers({"content-type": "application/x-www-form-urlencoded"})
        form = await FormParser(headers, stream()).parse()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    try:
        return asyncio.run(parse())
    except (MultiPartException, FormParserError) as exc:
        return str(getattr(exc, "message", exc))


def ours(body: bytes) -> dict[str, str] | str:
    try:
        return parse_urlencoded(body)
    except HTTPException as exc:
        assert exc.status_code == 400
        return exc.detail


@settings(max_examples=600, deadline=None)
@given(st.lists(PIECES, max_size=24), st.integers(min_value=1, max_value=9))
def test_same_fields_as_starlette(pieces: list[bytes], chunk: int) -> None:
    body = b"".join(pieces)
    assert ours(body) == starlette_form(body, chunk)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"&&&",
        b"a=1&a=2",
        b"a&b=&=c&&d==e=",
        b"sms_text=Bonjour+%C3%A9t%C3%A9+STOP+au+36111&sms_recipients=%2B33601020304",
        b"x=%E9t%E9",  # a Latin-1 escape is not UTF-8: U+FFFD, as Starlette
        b"x=\xc3\xa9",  # raw UTF-8 bytes are read as Latin-1, as Starlette
    ],
)
def test_known_bodies(body: bytes) -> None:
    assert ours(body) == starlette_form(body)


def test_too_many_fields_is_refused_as_starlette_does() -> None:
    body = b"&".join(b"f%d=1" % i for i in range(MAX_FIELDS + 1))
    assert ours(body) == starlette_form(body, 4096)
    assert ours(body).startswith("Too many fields")  # type: ignore[union-attr]
    fine = b"&".join(b"f%d=1" % i for i in range(MAX_FIELDS)) + b"&&&"
    assert ours(fine) == starlette_form(fine, 4096)


def test_oversized_field_is_refused_as_starlette_does() -> None:
    just = b"n=" + b"v" * (MAX_FIELD_SIZE - 1)
    over = b"n=" + b"v" * MAX_FIELD_SIZE
    assert ours(just) == starlette_form(just, 65536) == {"n": "v" * (MAX_FIELD_SIZE - 1)}
    assert ours(over) == starlette_form(over, 65536)
    assert ours(over).startswith("Field exceeded")  # type: ignore[union-attr]


@pytest.fixture
def web(sandbox: Sandbox, sandbox_server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server.url, timeout=5.0) as client:
        yield client


def _octopush_form() -> dict[str, str]:
    return {
        "user_login": SANDBOX_ACCOUNTS.octopush_login,
        "api_key": SANDBOX_ACCOUNTS.octopush_api_key,
        "sms_recipients": "+33601020304",
        "sms_text": "Votre code est 1234",
        "sms_type": "FR",
        "sms_sender": "Postier",
        "transactional": "1",
    }


def test_a_multipart_send_is_still_read(web: httpx.Client, sandbox: Sandbox) -> None:
    """Multipart bodies keep going through Starlette's parser (a file part is left out)."""
    answer = web.post("/api/sms/json", data=_octopush_form(), files={"attachment": ("a.txt", b"x")})
    assert answer.json()["error_code"] == "000"
    assert [r["recipient"] for r in sandbox.records("octopush")] == ["+33601020304"]


def test_urlencoded_with_a_charset_parameter_is_read(web: httpx.Client) -> None:
    body = str(httpx.QueryParams(_octopush_form())).encode()
    answer = web.post(
        "/api/sms/json",
        content=body,
        headers={"content-type": "Application/X-WWW-Form-Urlencoded; charset=UTF-8"},
    )
    assert answer.json()["error_code"] == "000"


def test_too_many_fields_over_http_is_a_400(web: httpx.Client) -> None:
    body = "&".join(f"f{i}=1" for i in range(MAX_FIELDS + 1))
    answer = web.post(
        "/api/sms/json",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400
    assert answer.text.startswith("Too many fields")
