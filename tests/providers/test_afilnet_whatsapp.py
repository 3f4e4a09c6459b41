"""The Afilnet WhatsApp client against the sandbox over real HTTP.

The wire shapes: docs/PROVIDERS.md, "Afilnet, class=whatsapp".
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from postier.config import Settings
from postier.providers.afilnet import AfilnetApi, AfilnetWhatsApp
from postier.providers.afilnet.api import TIMEZONE
from postier.providers.afilnet.whatsapp import (
    SEND_LOOKUP_WINDOW,
    FileHeader,
    LocationHeader,
    template_options,
)
from postier.providers.errors import (
    AmbiguousError,
    AuthenticationError,
    ContentRejectedError,
    NotFoundError,
    PermanentError,
    RecipientRejectedError,
)
from postier.providers.results import DeliveryState, InboundMessage, Provider
from postier.sandbox import Sandbox
from postier.sandbox.afilnet import whatsapp as sandbox_whatsapp
from tests.http_pool import RecordingPool

E164 = "+33612345678"
DIGITS = "33612345678"
BOUNCING = "+33600009999"


@pytest.fixture
def platform(settings: Settings) -> str:
    return settings.afilnet.whatsapp_platform_ids[0]


@pytest.fixture
def seen(http_pool: RecordingPool) -> list[httpx.Request]:
    """Every request the client sends, as it went on the wire."""
    return http_pool.requests


@pytest.fixture
def wa(settings: Settings, http_pool: RecordingPool) -> AfilnetWhatsApp:
    return AfilnetWhatsApp(AfilnetApi(settings.afilnet, settings.http, http_pool))


def afilnet_requests(sandbox: Sandbox) -> int:
    return sandbox.core.request_counts.get("afilnet", 0)


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def inbound(sandbox: Sandbox, platform: str, text: str, digits: str = DIGITS) -> str:
    return sandbox_whatsapp.inject_inbound(sandbox.afilnet.state, platform, digits, text)


# --- sending --------------------------------------------------------------------------------


def test_send_message_receipt_names_the_provider_record(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str, seen: list[httpx.Request]
) -> None:
    receipt = wa.send_message(platform, E164, "Bonjour")
    (record,) = sandbox.core.records_for("afilnet")
    assert receipt.provider is Provider.AFILNET
    assert receipt.message_id == record.message_id
    assert (record.recipient, record.text, record.channel) == (E164, "Bonjour", "whatsapp")
    sent = form(seen[0])
    assert (sent["class"], sent["method"], sent["destination"]) == (
        "whatsapp",
        "sendmessage",
        DIGITS,
    )


def test_send_uses_the_answered_messageid(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_whatsapp, "SEND_RESULT_HAS_MESSAGEID", True)
    receipt = wa.send_message(platform, E164, "Bonjour")
    assert receipt.message_id == sandbox.core.records[0].message_id
    assert afilnet_requests(sandbox) == 1  # no lookup needed


def test_send_finds_its_own_message_in_a_busy_chat(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str
) -> None:
    inbound(sandbox, platform, "Bonjour")
    first = wa.send_message(platform, E164, "Oui")
    second = wa.send_message(platform, E164, "Autre chose ?")
    inbound(sandbox, platform, "Non merci")
    third = wa.send_message(platform, E164, "Oui")
    ids = [r.message_id for r in sandbox.core.records_for("afilnet")]
    assert [first.message_id, second.message_id, third.message_id] == ids
    assert len(set(ids)) == 3
    assert third.raw["message"]["message"] == "Oui"


def test_send_file_derives_the_type_from_the_extension(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str, seen: list[httpx.Request]
) -> None:
    inbound(sandbox, platform, "La facture ?")
    receipt = wa.send_file(
        platform,
        E164,
        "https://cdn.example.com/facture.PDF",
        caption="Votre facture",
        thumb_url="https://cdn.example.com/t.png",
    )
    sent = form(seen[0])
    assert (sent["type"], sent["message"], sent["thumburl"]) == (
        "document",
        "Votre facture",
        "https://cdn.example.com/t.png",
    )
    record = sandbox.core.records_for("afilnet")[-1]
    assert receipt.message_id == record.message_id
    assert record.extra["type"] == "document"


def test_send_file_with_explicit_type_and_no_extension(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str, seen: list[httpx.Request]
) -> None:
    inbound(sandbox, platform, "La vidéo ?")
    receipt = wa.send_file(platform, E164, "https://cdn.example.com/v?id=1", file_type="video")
    sent = form(seen[0])
    assert sent["type"] == "video"
    assert "message" not in sent and "thumburl" not in sent
    assert receipt.message_id == sandbox.core.records_for("afilnet")[-1].message_id


def test_send_file_without_derivable_type_is_refused_before_sending(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str
) -> None:
    with pytest.raises(ContentRejectedError, match="file_url"):
        wa.send_file(platform, E164, "https://cdn.example.com/song.mp3")
    assert afilnet_requests(sandbox) == 0


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"file_url": "https://cdn.example.com/a.pdf", "file_type": "image"}, "INCORRECT_FILETYPE"),
        ({"file_url": "ftp://cdn.example.com/a.pdf", "file_type": "document"}, "INCORRECT_FILEURL"),
        (
            {"file_url": "https://cdn.example.com/a.pdf", "thumb_url": "thumb.png"},
            "INCORRECT_THUMBURL",
        ),
    ],
)
def test_send_file_provider_refusals(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str, kwargs: dict[str, str], code: str
) -> None:
    inbound(sandbox, platform, "?")
    with pytest.raises(ContentRejectedError) as caught:
        wa.send_file(platform, E164, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == code
    assert caught.value.provider == "afilnet"
    assert sandbox.core.records == []


def test_send_file_into_a_chat_that_does_not_exist(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str
) -> None:
    with pytest.raises(NotFoundError) as caught:
        wa.send_file(platform, E164, "https://cdn.example.com/a.jpg")
    assert caught.value.code == "CHAT_NOT_FOUND"


def test_unknown_channel(wa: AfilnetWhatsApp) -> None:
    with pytest.raises(NotFoundError) as caught:
        wa.send_message("999", E164, "x")
    assert caught.value.code == "CHANNEL_NOT_FOUND"
    with pytest.raises(NotFoundError):
        wa.get_chats("999")


def test_destination_must_be_e164(wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str) -> None:
    with pytest.raises(RecipientRejectedError, match="destination"):
        wa.send_message(platform, DIGITS, "x")
    assert afilnet_requests(sandbox) == 0


def test_provider_destination_refusal_is_a_recipient_error(
    wa: AfilnetWhatsApp, platform: str
) -> None:
    with pytest.raises(RecipientRejectedError) as caught:
        wa.api.call(
            "whatsapp",
            "sendmessage",
            {"platformid": platform, "destination": "0612345678", "message": "x"},
            changes_state=True,
        )
    assert caught.value.code == "INCORRECT_DESTINATION"


def test_missing_compulsory_param(wa: AfilnetWhatsApp, platform: str) -> None:
    with pytest.raises(PermanentError) as caught:
        wa.send_message(platform, E164, "")
    assert type(caught.value) is PermanentError
    assert caught.value.code == "MISSING_COMPULSORY_PARAM"


# --- templates ------------------------------------------------------------------------------


def test_template_options_json() -> None:
    assert template_options(None, None) is None
    assert json.loads(template_options({"name": "John", "orderid": "10"}, None) or "") == {
        "params": {"name": "John", "orderid": "10"}
    }
    assert json.loads(template_options(None, FileHeader("https://test.com/test.jpg")) or "") == {
        "header": {"file": "https://test.com/test.jpg"}
    }
    location = LocationHeader(48.8584, 2.2945, "Tour Eiffel", "Champ de Mars")
    assert json.loads(template_options({"code": "1"}, location) or "") == {
        "header": {
            "file": "(48.8584, 2.2945)",
            "location": {"name": "Tour Eiffel", "address": "Champ de Mars"},
        },
        "params": {"code": "1"},
    }
    with pytest.raises(ValueError, match="latitude"):
        LocationHeader(91.0, 0.0, "n", "a")


def test_send_template_with_params_and_headers(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str
) -> None:
    first = wa.send_template(
        platform,
        E164,
        "1",
        params={"name": "Zoé", "orderid": "A-10"},
        header=FileHeader("https://cdn.example.com/colis.jpg"),
    )
    second = wa.send_template(
        platform,
        E164,
        "2",
        params={"code": "4321"},
        header=LocationHeader(48.8584, 2.2945, "Tour Eiffel", "Champ de Mars"),
    )
    one, two = sandbox.afilnet.state.chats[(platform, DIGITS)]
    assert (first.message_id, second.message_id) == (one.messageid, two.messageid)
    assert one.message == "Bonjour Zoé, votre commande A-10 est prête."
    assert one.extra["header"] == {"file": "https://cdn.example.com/colis.jpg"}
    assert two.message == "Votre code est 4321."
    assert two.extra["header"]["name"] == "Tour Eiffel"


def test_send_template_errors(wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str) -> None:
    with pytest.raises(PermanentError) as missing:
        wa.send_template(platform, E164, "1", params={"name": "Zoé"})
    assert missing.value.code == "MISSING_COMPULSORY_PARAM"
    with pytest.raises(NotFoundError) as unknown:
        wa.send_template(platform, E164, "404")
    assert unknown.value.code == "CHANNEL_NOT_FOUND"
    assert sandbox.core.records == []


# --- reading --------------------------------------------------------------------------------


def test_get_chats(wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str) -> None:
    assert wa.get_chats(platform) == []
    wa.send_message(platform, E164, "Bonjour")
    inbound(sandbox, platform, "Salut", "33698765432")
    chats = wa.get_chats(platform)
    assert [(c.destination, c.text, c.outbound) for c in chats] == [
        ("+33698765432", "Salut", False),
        (E164, "Bonjour", True),
    ]
    assert all(c.platform_id == platform for c in chats)


def test_get_messages(wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str) -> None:
    inbound_id = inbound(sandbox, platform, "Bonjour")
    receipt = wa.send_message(platform, E164, "Re-bonjour")
    first, second = wa.get_messages(platform, E164)
    assert (first.message_id, first.outbound, first.status) == (inbound_id, False, "received")
    assert (second.message_id, second.outbound, second.state) == (
        receipt.message_id,
        True,
        DeliveryState.SENT,
    )
    assert second.at is not None and second.at.tzinfo is TIMEZONE
    assert abs(second.at.timestamp() - sandbox.core.clock.now()) < 2
    with pytest.raises(NotFoundError) as caught:
        wa.get_messages(platform, "+33698765432")
    assert caught.value.code == "CHAT_NOT_FOUND"


def test_unread_messages_come_once(wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str) -> None:
    first = inbound(sandbox, platform, "Bonjour")
    wa.send_message(platform, E164, "Oui ?")
    second = inbound(sandbox, platform, "STOP")
    unread = wa.get_unread_messages(platform, E164)
    assert [(m.message_id, m.text) for m in unread] == [(first, "Bonjour"), (second, "STOP")]
    message = unread[0]
    assert isinstance(message, InboundMessage)
    assert (message.provider, message.sender, message.channel) == (
        Provider.AFILNET,
        E164,
        "whatsapp",
    )
    assert message.received_at is not None and message.received_at.tzinfo is TIMEZONE
    assert message.raw["platformid"] == platform
    assert wa.get_unread_messages(platform, E164) == []
    third = inbound(sandbox, platform, "Encore moi")
    assert [m.message_id for m in wa.get_unread_messages(platform, E164)] == [third]


def test_delivery_status_moves_on_with_the_clock(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str
) -> None:
    good = wa.send_message(platform, E164, "a")
    bad = wa.send_message(platform, BOUNCING, "b")
    assert good.message_id and bad.message_id

    def states() -> tuple[tuple[DeliveryState, str], ...]:
        reports = (
            wa.delivery_status(platform, E164, good.message_id or ""),
            wa.delivery_status(platform, BOUNCING, bad.message_id or ""),
        )
        return tuple((r.state, r.provider_status) for r in reports)

    assert states() == ((DeliveryState.SENT, "sent"), (DeliveryState.SENT, "sent"))
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.01)
    assert states() == (
        (DeliveryState.DELIVERED, "delivered"),
        (DeliveryState.UNDELIVERED, "failed"),
    )
    sandbox.core.clock.advance(sandbox.core.delivery_delay)
    report = wa.delivery_status(platform, E164, good.message_id)
    assert (report.state, report.provider_status) == (DeliveryState.DELIVERED, "read")
    assert report.state.is_final and report.at is not None


def test_delivery_status_of_unknown_messages(wa: AfilnetWhatsApp, platform: str) -> None:
    assert wa.delivery_status(platform, E164, "123").state is DeliveryState.UNKNOWN
    wa.send_message(platform, E164, "a")
    report = wa.delivery_status(platform, E164, "does-not-exist")
    assert (report.state, report.provider_status) == (DeliveryState.UNKNOWN, "")
    with pytest.raises(NotFoundError):
        wa.delivery_status("999", E164, "123")


# --- authentication and the wire ------------------------------------------------------------


def test_credentials_go_in_the_body_never_the_url(
    wa: AfilnetWhatsApp, settings: Settings, platform: str, seen: list[httpx.Request]
) -> None:
    wa.send_message(platform, E164, "x")
    wa.get_chats(platform)
    password = settings.afilnet.password.get_secret_value()
    assert len(seen) == 3  # send, lookup, getchats
    for request in seen:
        assert request.method == "POST"
        assert password not in str(request.url)
        assert settings.afilnet.user not in str(request.url)
        assert request.url.query == b""
        body = form(request)
        assert (body["user"], body["password"]) == (settings.afilnet.user, password)
        assert "authorization" not in request.headers


def test_basic_auth_mode(
    settings: Settings, http_pool: RecordingPool, seen: list[httpx.Request], platform: str
) -> None:
    basic = settings.afilnet.model_copy(update={"auth": "basic"})
    wa = AfilnetWhatsApp(AfilnetApi(basic, settings.http, http_pool))
    receipt = wa.send_message(platform, E164, "x")
    assert receipt.message_id is not None
    password = settings.afilnet.password.get_secret_value()
    for request in seen:
        assert request.headers["authorization"].startswith("Basic ")
        assert password not in str(request.url)
        assert "password" not in form(request) and "user" not in form(request)


@pytest.mark.parametrize("auth", ["post", "basic"])
@pytest.mark.parametrize(
    ("update", "code"),
    [
        ({"password": SecretStr("wrong")}, "INCORRECT_USER_PASSWORD"),
        ({"user": ""}, "MISSING_USER"),
        ({"password": SecretStr("")}, "MISSING_PASSWORD"),
    ],
)
def test_credential_errors(
    settings: Settings,
    http_pool: RecordingPool,
    platform: str,
    auth: str,
    update: dict[str, object],
    code: str,
) -> None:
    bad = settings.afilnet.model_copy(update={**update, "auth": auth})
    wa = AfilnetWhatsApp(AfilnetApi(bad, settings.http, http_pool))
    with pytest.raises(AuthenticationError) as caught:
        wa.send_message(platform, E164, "x")
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("cls", "method", "code"),
    [
        ("", "getchats", "MISSING_CLASS"),
        ("whatsapp", "", "MISSING_METHOD"),
        ("telegram", "getchats", "INCORRECT_CLASS"),
        ("whatsapp", "sendpigeon", "INCORRECT_METHOD"),
    ],
)
def test_class_and_method_errors(
    wa: AfilnetWhatsApp, platform: str, cls: str, method: str, code: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        wa.api.call(cls, method, {"platformid": platform}, changes_state=False)
    assert type(caught.value) is PermanentError
    assert caught.value.code == code


# --- transport faults -----------------------------------------------------------------------


def test_503_is_retried_in_process(wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str) -> None:
    sandbox.set_faults("afilnet", script=["503", "ok"], retry_after=0.05)
    receipt = wa.send_message(platform, E164, "x")
    (record,) = sandbox.core.records
    assert receipt.message_id == record.message_id
    assert afilnet_requests(sandbox) == 3  # 503, send, lookup


def test_timeout_on_a_send_is_ambiguous(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str
) -> None:
    sandbox.set_faults("afilnet", script=["timeout"], hang_seconds=0.1)
    with pytest.raises(AmbiguousError):
        wa.send_message(platform, E164, "x")
    assert afilnet_requests(sandbox) == 1  # never resent blindly


def test_timeout_on_a_read_is_retried(wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str) -> None:
    inbound(sandbox, platform, "Bonjour")
    sandbox.set_faults("afilnet", script=["timeout"], hang_seconds=0.1)
    assert [c.text for c in wa.get_chats(platform)] == ["Bonjour"]
    assert afilnet_requests(sandbox) == 2


def test_lost_unread_answer_is_ambiguous_and_reconciled_from_the_chat(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str
) -> None:
    message_id = inbound(sandbox, platform, "Bonjour")
    sandbox.set_faults("afilnet", script=["drop_after"])
    with pytest.raises(AmbiguousError):
        wa.get_unread_messages(platform, E164)
    assert afilnet_requests(sandbox) == 1  # not retried: Afilnet has marked them read
    assert wa.get_unread_messages(platform, E164) == []
    (entry,) = wa.get_messages(platform, E164)
    assert (entry.message_id, entry.outbound, entry.text) == (message_id, False, "Bonjour")


def test_answer_lost_after_a_send_is_resolved_by_a_status_lookup(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str
) -> None:
    sandbox.set_faults("afilnet", script=["drop_after"])
    with pytest.raises(AmbiguousError):
        wa.send_message(platform, E164, "peut-être")
    (found,) = wa.get_messages(platform, E164)
    assert (found.text, found.outbound) == ("peut-être", True)


def test_failed_lookup_does_not_fail_the_send(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str
) -> None:
    sandbox.set_faults("afilnet", script=["ok", "503", "503", "503"], retry_after=0.01)
    receipt = wa.send_message(platform, E164, "x")
    assert receipt.message_id is None
    assert len(sandbox.core.records) == 1


def test_lookup_ignores_messages_stamped_before_the_window(
    wa: AfilnetWhatsApp, sandbox: Sandbox, platform: str
) -> None:
    # an Afilnet clock two minutes late stamps the new message outside SEND_LOOKUP_WINDOW
    sandbox.core.clock.advance(-2 * SEND_LOOKUP_WINDOW.total_seconds())
    receipt = wa.send_message(platform, E164, "x")
    assert receipt.message_id is None
    assert len(sandbox.core.records) == 1
