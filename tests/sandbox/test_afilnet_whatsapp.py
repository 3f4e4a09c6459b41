"""The simulated Afilnet ``class=whatsapp`` over raw HTTP.

See docs/PROVIDERS.md, "Afilnet, class=whatsapp".
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import pytest

from postier.sandbox import Sandbox, SandboxServer
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.afilnet import whatsapp
from postier.sandbox.afilnet.state import AFILNET_TIMEZONE, AfilnetFault

USER = SANDBOX_ACCOUNTS.afilnet_user
PASSWORD = SANDBOX_ACCOUNTS.afilnet_password
PLATFORM = SANDBOX_ACCOUNTS.afilnet_platform_id
NUMBER = "33612345678"


@pytest.fixture
def endpoint(sandbox_server: SandboxServer, sandbox: Sandbox) -> str:
    return f"{sandbox_server.url}/api/http/"


@pytest.fixture
def raw() -> Any:
    with httpx.Client(timeout=5.0) as client:
        yield client


def call(raw: httpx.Client, endpoint: str, method: str, **params: str) -> dict[str, Any]:
    """One urlencoded POST with the sandbox credentials; the decoded answer."""
    data = {"class": "whatsapp", "method": method, "user": USER, "password": PASSWORD, **params}
    response = raw.post(endpoint, data=data)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def error(raw: httpx.Client, endpoint: str, method: str, **params: str) -> str:
    body = call(raw, endpoint, method, **params)
    assert body["status"] == "error", body
    return str(body["error"])


def open_chat(sandbox: Sandbox, destination: str = NUMBER, text: str = "Bonjour") -> str:
    return whatsapp.inject_inbound(sandbox.afilnet.state, PLATFORM, destination, text)


# --- request forms and authentication -------------------------------------------------------


def test_accepts_get_query(raw: httpx.Client, endpoint: str, sandbox: Sandbox) -> None:
    query = {
        "class": "whatsapp",
        "method": "sendmessage",
        "user": USER,
        "password": PASSWORD,
        "platformid": PLATFORM,
        "destination": NUMBER,
        "message": "par GET",
    }
    body = raw.get(endpoint, params=query).json()
    assert body == {"status": "success"}
    assert [m.message for m in sandbox.afilnet.state.chats[(PLATFORM, NUMBER)]] == ["par GET"]


def test_accepts_multipart_post(raw: httpx.Client, endpoint: str, sandbox: Sandbox) -> None:
    fields = {
        "class": "whatsapp",
        "method": "sendmessage",
        "user": USER,
        "password": PASSWORD,
        "platformid": PLATFORM,
        "destination": NUMBER,
        "message": "multipart",
    }
    files = {name: (None, value) for name, value in fields.items()}
    response = raw.post(endpoint, files=files)
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert response.json() == {"status": "success"}
    assert sandbox.afilnet.state.chats[(PLATFORM, NUMBER)][0].message == "multipart"


def test_accepts_urlencoded_post(raw: httpx.Client, endpoint: str, sandbox: Sandbox) -> None:
    assert (
        call(raw, endpoint, "sendmessage", platformid=PLATFORM, destination=NUMBER, message="x")[
            "status"
        ]
        == "success"
    )
    assert len(sandbox.afilnet.state.chats[(PLATFORM, NUMBER)]) == 1


def test_accepts_basic_auth(raw: httpx.Client, endpoint: str, sandbox: Sandbox) -> None:
    data = {
        "class": "whatsapp",
        "method": "sendmessage",
        "platformid": PLATFORM,
        "destination": NUMBER,
        "message": "basic",
    }
    assert raw.post(endpoint, data=data, auth=(USER, PASSWORD)).json() == {"status": "success"}
    wrong = raw.post(endpoint, data=data, auth=(USER, "nope")).json()
    assert wrong == {"status": "error", "error": "INCORRECT_USER_PASSWORD"}


@pytest.mark.parametrize(
    ("drop", "code"),
    [
        ("user", "MISSING_USER"),
        ("password", "MISSING_PASSWORD"),
        ("class", "MISSING_CLASS"),
        ("method", "MISSING_METHOD"),
    ],
)
def test_missing_common_params(raw: httpx.Client, endpoint: str, drop: str, code: str) -> None:
    data = {"class": "whatsapp", "method": "getchats", "user": USER, "password": PASSWORD}
    del data[drop]
    assert raw.post(endpoint, data={**data, "platformid": PLATFORM}).json() == {
        "status": "error",
        "error": code,
    }


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"password": "wrong"}, "INCORRECT_USER_PASSWORD"),
        ({"class": "telegram"}, "INCORRECT_CLASS"),
        ({"method": "sendpigeon"}, "INCORRECT_METHOD"),
    ],
)
def test_incorrect_common_params(
    raw: httpx.Client, endpoint: str, override: dict[str, str], code: str
) -> None:
    data = {"class": "whatsapp", "method": "getchats", "user": USER, "password": PASSWORD}
    body = raw.post(endpoint, data={**data, **override, "platformid": PLATFORM}).json()
    assert body == {"status": "error", "error": code}


# --- sendmessage ----------------------------------------------------------------------------


def test_sendmessage_appends_to_chat_and_records(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox
) -> None:
    body = call(raw, endpoint, "sendmessage", platformid=PLATFORM, destination=NUMBER, message="Hi")
    assert body == {"status": "success"}
    (msg,) = sandbox.afilnet.state.chats[(PLATFORM, NUMBER)]
    assert (msg.message, msg.sent, msg.platformid) == ("Hi", True, PLATFORM)
    (record,) = sandbox.core.records_for("afilnet")
    assert (record.channel, record.recipient, record.message_id, record.text) == (
        "whatsapp",
        "+33612345678",
        msg.messageid,
        "Hi",
    )


def test_sendmessage_can_answer_messageid(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(whatsapp, "SEND_RESULT_HAS_MESSAGEID", True)
    body = call(raw, endpoint, "sendmessage", platformid=PLATFORM, destination=NUMBER, message="Hi")
    assert body["result"] == {"messageid": sandbox.core.records[0].message_id}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"platformid": "999", "destination": NUMBER, "message": "x"}, "CHANNEL_NOT_FOUND"),
        ({"platformid": PLATFORM, "destination": NUMBER}, "MISSING_COMPULSORY_PARAM"),
        ({"platformid": PLATFORM, "message": "x"}, "MISSING_COMPULSORY_PARAM"),
        ({"destination": NUMBER, "message": "x"}, "MISSING_COMPULSORY_PARAM"),
        (
            {"platformid": PLATFORM, "destination": "+33612345678", "message": "x"},
            "INCORRECT_DESTINATION",
        ),
        (
            {"platformid": PLATFORM, "destination": "0612345678", "message": "x"},
            "INCORRECT_DESTINATION",
        ),
    ],
)
def test_sendmessage_errors(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox, params: dict[str, str], code: str
) -> None:
    assert error(raw, endpoint, "sendmessage", **params) == code
    assert sandbox.core.records == []


# --- sendfile -------------------------------------------------------------------------------


def test_sendfile_needs_an_open_chat(raw: httpx.Client, endpoint: str, sandbox: Sandbox) -> None:
    params = {
        "platformid": PLATFORM,
        "destination": NUMBER,
        "type": "image",
        "fileurl": "https://cdn.example.com/a.jpg",
    }
    assert error(raw, endpoint, "sendfile", **params) == "CHAT_NOT_FOUND"
    open_chat(sandbox)
    body = call(
        raw,
        endpoint,
        "sendfile",
        **params,
        thumburl="https://cdn.example.com/t.png",
        message="Votre facture",
    )
    assert body == {"status": "success"}
    sent = sandbox.afilnet.state.chats[(PLATFORM, NUMBER)][-1]
    assert sent.message == "Votre facture"
    assert sent.extra["type"] == "image"
    assert sent.extra["thumburl"] == "https://cdn.example.com/t.png"
    assert sandbox.core.records[-1].extra["fileurl"] == "https://cdn.example.com/a.jpg"


def test_sendfile_without_caption_shows_the_url(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox
) -> None:
    open_chat(sandbox)
    url = "https://cdn.example.com/download?id=42"  # no extension: accepted
    call(
        raw,
        endpoint,
        "sendfile",
        platformid=PLATFORM,
        destination=NUMBER,
        type="document",
        fileurl=url,
    )
    assert sandbox.afilnet.state.chats[(PLATFORM, NUMBER)][-1].message == url


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"type": "audio"}, "INCORRECT_FILETYPE"),
        ({"type": "video"}, "INCORRECT_FILETYPE"),  # a .jpg is not a video
        ({"fileurl": "ftp://cdn.example.com/a.jpg"}, "INCORRECT_FILEURL"),
        ({"fileurl": "not a url"}, "INCORRECT_FILEURL"),
        ({"thumburl": "thumb.png"}, "INCORRECT_THUMBURL"),
        ({"thumburl": "https://cdn.example.com/t.pdf"}, "INCORRECT_THUMBURL"),
        ({"platformid": "999"}, "CHANNEL_NOT_FOUND"),
        ({"type": ""}, "MISSING_COMPULSORY_PARAM"),
        ({"fileurl": ""}, "MISSING_COMPULSORY_PARAM"),
    ],
)
def test_sendfile_errors(
    raw: httpx.Client,
    endpoint: str,
    sandbox: Sandbox,
    overrides: dict[str, str],
    code: str,
) -> None:
    open_chat(sandbox)
    params = {
        "platformid": PLATFORM,
        "destination": NUMBER,
        "type": "image",
        "fileurl": "https://cdn.example.com/a.jpg",
        **overrides,
    }
    assert error(raw, endpoint, "sendfile", **params) == code
    assert sandbox.core.records == []


# --- sendmessagefromtemplate ----------------------------------------------------------------


def test_template_fills_params(raw: httpx.Client, endpoint: str, sandbox: Sandbox) -> None:
    body = call(
        raw,
        endpoint,
        "sendmessagefromtemplate",
        idtemplate="1",
        platformid=PLATFORM,
        destination=NUMBER,
        options='{"params": {"name": "John", "orderid": 10}}',
    )
    assert body == {"status": "success"}
    msg = sandbox.afilnet.state.chats[(PLATFORM, NUMBER)][-1]
    assert msg.message == "Bonjour John, votre commande 10 est prête."
    assert sandbox.core.records[-1].text == msg.message


def test_template_with_file_and_location_headers(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox
) -> None:
    call(
        raw,
        endpoint,
        "sendmessagefromtemplate",
        idtemplate="2",
        platformid=PLATFORM,
        destination=NUMBER,
        options='{"header": {"file": "https:\\/\\/test.com\\/test.jpg"}, "params": {"code": "7"}}',
    )
    call(
        raw,
        endpoint,
        "sendmessagefromtemplate",
        idtemplate="2",
        platformid=PLATFORM,
        destination=NUMBER,
        options='{"header": {"file": "(48.8584, 2.2945)", '
        '"location": {"name": "Tour Eiffel", "address": "Champ de Mars"}}, '
        '"params": {"code": "8"}}',
    )
    first, second = sandbox.afilnet.state.chats[(PLATFORM, NUMBER)]
    assert first.extra["header"] == {"file": "https://test.com/test.jpg"}
    assert second.extra["header"] == {
        "latitude": 48.8584,
        "longitude": 2.2945,
        "name": "Tour Eiffel",
        "address": "Champ de Mars",
    }
    assert second.message == "Votre code est 8."


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"options": "{not json"}, "MISSING_COMPULSORY_PARAM"),
        ({"options": '["a"]'}, "MISSING_COMPULSORY_PARAM"),
        ({"options": '{"params": {"name": "John"}}'}, "MISSING_COMPULSORY_PARAM"),
        ({"options": ""}, "MISSING_COMPULSORY_PARAM"),  # template 1 has placeholders
        (
            {
                "options": '{"header": {"file": "(1.0, 2.0)"}, '
                '"params": {"name": "a", "orderid": "b"}}'
            },
            "MISSING_COMPULSORY_PARAM",
        ),
        (
            {
                "options": '{"header": {"file": "ftp://x/a.jpg"}, '
                '"params": {"name": "a", "orderid": "b"}}'
            },
            "INCORRECT_FILEURL",
        ),
        ({"idtemplate": "404"}, "CHANNEL_NOT_FOUND"),
        ({"platformid": "999"}, "CHANNEL_NOT_FOUND"),
        ({"idtemplate": ""}, "MISSING_COMPULSORY_PARAM"),
    ],
)
def test_template_errors(
    raw: httpx.Client,
    endpoint: str,
    sandbox: Sandbox,
    overrides: dict[str, str],
    code: str,
) -> None:
    params = {"idtemplate": "1", "platformid": PLATFORM, "destination": NUMBER, **overrides}
    assert error(raw, endpoint, "sendmessagefromtemplate", **params) == code
    assert sandbox.core.records == []


# --- reading chats --------------------------------------------------------------------------


def test_getchats_lists_latest_message_of_each_chat(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox
) -> None:
    assert error(raw, endpoint, "getchats", platformid=PLATFORM) == "CHAT_NOT_FOUND"
    call(raw, endpoint, "sendmessage", platformid=PLATFORM, destination=NUMBER, message="one")
    call(raw, endpoint, "sendmessage", platformid=PLATFORM, destination=NUMBER, message="two")
    open_chat(sandbox, "33698765432", "allo")
    sandbox.afilnet.state.platforms.add("200")
    whatsapp.inject_inbound(sandbox.afilnet.state, "200", "33611111111", "other channel")
    chats = call(raw, endpoint, "getchats", platformid=PLATFORM)["result"]
    assert [(c["destination"], c["message"], c["sent"]) for c in chats] == [
        ("33698765432", "allo", 0),
        (NUMBER, "two", 1),
    ]
    assert set(chats[0]) == {
        "platformid",
        "message",
        "destination",
        "messageid",
        "sent",
        "status",
        "datetime",
    }
    assert error(raw, endpoint, "getchats", platformid="999") == "CHANNEL_NOT_FOUND"


def test_getmessages_status_moves_with_the_clock(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox
) -> None:
    call(raw, endpoint, "sendmessage", platformid=PLATFORM, destination=NUMBER, message="a")
    call(raw, endpoint, "sendmessage", platformid=PLATFORM, destination="33600009999", message="b")

    def status(destination: str) -> str:
        (msg,) = call(raw, endpoint, "getmessages", platformid=PLATFORM, destination=destination)[
            "result"
        ]
        return str(msg["status"])

    assert (status(NUMBER), status("33600009999")) == ("sent", "sent")
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.01)
    assert (status(NUMBER), status("33600009999")) == ("delivered", "failed")
    sandbox.core.clock.advance(sandbox.core.delivery_delay)
    assert (status(NUMBER), status("33600009999")) == ("read", "failed")


def test_getmessages_entry_shape(raw: httpx.Client, endpoint: str, sandbox: Sandbox) -> None:
    inbound_id = open_chat(sandbox, text="Bonjour")
    call(raw, endpoint, "sendmessage", platformid=PLATFORM, destination=NUMBER, message="Salut")
    first, second = call(raw, endpoint, "getmessages", platformid=PLATFORM, destination=NUMBER)[
        "result"
    ]
    assert (first["messageid"], first["sent"], first["status"]) == (inbound_id, 0, "received")
    assert (second["sent"], second["destination"], second["platformid"]) == (1, NUMBER, PLATFORM)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", second["datetime"])
    stamped = datetime.strptime(second["datetime"], "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=AFILNET_TIMEZONE
    )
    assert abs(stamped.timestamp() - sandbox.core.clock.now()) < 2


@pytest.mark.parametrize("method", ["getmessages", "getunreadmessages"])
def test_chat_readers_errors(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox, method: str
) -> None:
    assert error(raw, endpoint, method, platformid=PLATFORM, destination=NUMBER) == "CHAT_NOT_FOUND"
    open_chat(sandbox)
    assert error(raw, endpoint, method, platformid="999", destination=NUMBER) == (
        "CHANNEL_NOT_FOUND"
    )
    assert error(raw, endpoint, method, platformid=PLATFORM) == "MISSING_COMPULSORY_PARAM"


def test_getunreadmessages_returns_inbound_once(
    raw: httpx.Client, endpoint: str, sandbox: Sandbox
) -> None:
    first = open_chat(sandbox, text="Bonjour")
    call(raw, endpoint, "sendmessage", platformid=PLATFORM, destination=NUMBER, message="Oui ?")
    second = open_chat(sandbox, text="Je voudrais annuler")
    unread = call(raw, endpoint, "getunreadmessages", platformid=PLATFORM, destination=NUMBER)[
        "result"
    ]
    assert [(m["messageid"], m["message"], m["issent"]) for m in unread] == [
        (first, "Bonjour", 0),
        (second, "Je voudrais annuler", 0),
    ]
    assert "sent" not in unread[0]
    again = call(raw, endpoint, "getunreadmessages", platformid=PLATFORM, destination=NUMBER)
    assert again == {"status": "success", "result": []}
    statuses = [
        m["status"]
        for m in call(raw, endpoint, "getmessages", platformid=PLATFORM, destination=NUMBER)[
            "result"
        ]
        if m["sent"] == 0
    ]
    assert statuses == ["read", "read"]


# --- admin API ------------------------------------------------------------------------------


def test_admin_inbound_route(
    sandbox_server: SandboxServer, sandbox: Sandbox, raw: httpx.Client
) -> None:
    url = f"{sandbox_server.url}/_sandbox/afilnet/whatsapp/inbound"
    answer = raw.post(url, json={"platformid": PLATFORM, "destination": NUMBER, "message": "Hé"})
    assert answer.status_code == 200
    (msg,) = sandbox.afilnet.state.chats[(PLATFORM, NUMBER)]
    assert answer.json() == {"messageid": msg.messageid}
    assert (msg.sent, msg.read, msg.message) == (False, False, "Hé")
    unknown = raw.post(url, json={"platformid": "999", "destination": NUMBER, "message": "x"})
    assert (unknown.status_code, unknown.json()) == (400, {"error": "CHANNEL_NOT_FOUND"})
    missing = raw.post(url, json={"platformid": PLATFORM, "destination": NUMBER})
    assert missing.status_code == 400
    garbage = raw.post(url, content=b"{", headers={"content-type": "application/json"})
    assert garbage.status_code == 400


def test_inject_inbound_refuses_non_digit_numbers(sandbox: Sandbox) -> None:
    with pytest.raises(AfilnetFault) as caught:
        whatsapp.inject_inbound(sandbox.afilnet.state, PLATFORM, "+33612345678", "x")
    assert caught.value.code == "INCORRECT_DESTINATION"
