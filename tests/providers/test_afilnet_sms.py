"""The Afilnet SMS client against the sandbox over real HTTP.

The wire shapes: docs/PROVIDERS.md, "Afilnet, class=sms".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs

import httpx
import pytest

from postier.config import Settings
from postier.providers.afilnet import AfilnetApi, AfilnetSms
from postier.providers.afilnet.api import TIMEZONE
from postier.providers.base import OutgoingSms, SmsProvider
from postier.providers.errors import (
    AmbiguousError,
    InsufficientCreditError,
    RecipientRejectedError,
    UnsupportedFeatureError,
)
from postier.providers.results import DeliveryState, Provider
from postier.sandbox import Sandbox
from tests.http_pool import RecordingPool

E164 = "+33612345678"
BOUNCING = "+33600009999"


@pytest.fixture
def seen(http_pool: RecordingPool) -> list[httpx.Request]:
    return http_pool.requests


@pytest.fixture
def sms(settings: Settings, http_pool: RecordingPool) -> AfilnetSms:
    api = AfilnetApi(settings.afilnet, settings.http, http_pool)
    return AfilnetSms(api, sender=settings.afilnet.sms_sender)


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def afilnet_requests(sandbox: Sandbox) -> int:
    return sandbox.core.request_counts.get("afilnet", 0)


def test_is_an_sms_provider(sms: AfilnetSms) -> None:
    assert isinstance(sms, SmsProvider)
    assert sms.provider is Provider.AFILNET


def test_send_sms(sms: AfilnetSms, sandbox: Sandbox, seen: list[httpx.Request]) -> None:
    receipt = sms.send_sms(OutgoingSms(recipients=(E164,), text="Votre code : 1234"))
    (record,) = sandbox.core.records_for("afilnet")
    assert receipt.message_id == record.message_id
    assert receipt.cost == Decimal(1)
    assert (record.recipient, record.text, record.channel) == (E164, "Votre code : 1234", "sms")
    sent = form(seen[0])
    assert (sent["class"], sent["method"], sent["to"], sent["from"]) == (
        "sms",
        "sendsms",
        "33612345678",
        "Postier",
    )
    assert "scheduledatetime" not in sent
    assert "password" not in str(seen[0].url) and seen[0].url.query == b""


def test_sender_override_and_cost_of_long_text(sms: AfilnetSms, sandbox: Sandbox) -> None:
    receipt = sms.send_sms(OutgoingSms(recipients=(E164,), text="x" * 300, sender="Boutique"))
    assert receipt.cost == Decimal(2)
    assert sandbox.core.records[0].extra["from"] == "Boutique"


def test_one_recipient_per_send(sms: AfilnetSms, sandbox: Sandbox) -> None:
    with pytest.raises(UnsupportedFeatureError, match="one recipient"):
        sms.send_sms(OutgoingSms(recipients=(E164, "+33698765432"), text="x"))
    with pytest.raises(UnsupportedFeatureError):
        sms.send_sms(OutgoingSms(recipients=(), text="x"))
    assert afilnet_requests(sandbox) == 0


def test_recipient_must_be_e164(sms: AfilnetSms, sandbox: Sandbox) -> None:
    with pytest.raises(RecipientRejectedError, match="recipients"):
        sms.send_sms(OutgoingSms(recipients=("0612345678",), text="x"))
    assert afilnet_requests(sandbox) == 0


@pytest.mark.parametrize(
    ("send_at", "expected"),
    [
        (datetime(2031, 1, 15, 9, 0, tzinfo=UTC), "2031-01-15 10:00:00"),
        (datetime(2031, 7, 15, 9, 0, tzinfo=UTC), "2031-07-15 11:00:00"),
    ],
)
def test_send_at_is_sent_in_afilnet_time(
    sms: AfilnetSms,
    sandbox: Sandbox,
    seen: list[httpx.Request],
    send_at: datetime,
    expected: str,
) -> None:
    receipt = sms.send_sms(OutgoingSms(recipients=(E164,), text="plus tard", send_at=send_at))
    assert form(seen[0])["scheduledatetime"] == expected
    assert sandbox.core.records[0].send_at == send_at.timestamp()
    report = sms.delivery_status(receipt.message_id or "")
    assert (report.state, report.provider_status) == (DeliveryState.ACCEPTED, "PENDING")


def test_send_at_must_be_aware(sms: AfilnetSms, sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sms.send_sms(OutgoingSms(recipients=(E164,), text="x", send_at=datetime(2031, 1, 1)))
    assert afilnet_requests(sandbox) == 0


def test_delivery_status_moves_on_with_the_clock(sms: AfilnetSms, sandbox: Sandbox) -> None:
    good = sms.send_sms(OutgoingSms(recipients=(E164,), text="a")).message_id or ""
    bad = sms.send_sms(OutgoingSms(recipients=(BOUNCING,), text="b")).message_id or ""
    first = sms.delivery_status(good)
    assert (first.state, first.provider_status, first.at) == (DeliveryState.SENT, "SENT", None)
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.01)
    delivered, undelivered = sms.delivery_statuses([good, bad])
    assert (delivered.message_id, delivered.state) == (good, DeliveryState.DELIVERED)
    assert (undelivered.message_id, undelivered.state) == (bad, DeliveryState.UNDELIVERED)
    assert undelivered.provider_status == "NOT_DELIVERED"
    assert delivered.at is not None and delivered.at.tzinfo is TIMEZONE
    final_at = sandbox.core.records[0].final_at(sandbox.core.delivery_delay)
    assert abs(delivered.at.timestamp() - final_at) < 1.0
    assert delivered.raw["sms"] == "a"


def test_delivery_statuses_is_one_call(sms: AfilnetSms, sandbox: Sandbox) -> None:
    ids = [
        sms.send_sms(OutgoingSms(recipients=(E164,), text=str(n))).message_id or ""
        for n in range(3)
    ]
    before = afilnet_requests(sandbox)
    reports = sms.delivery_statuses([ids[2], "unknown", ids[0], ids[2], ids[1]])
    assert afilnet_requests(sandbox) == before + 1
    assert [r.message_id for r in reports] == [ids[2], "unknown", ids[0], ids[1]]
    assert [r.state for r in reports] == [
        DeliveryState.SENT,
        DeliveryState.UNKNOWN,
        DeliveryState.SENT,
        DeliveryState.SENT,
    ]
    assert sms.delivery_statuses([]) == []
    assert afilnet_requests(sandbox) == before + 1


def test_no_credits(sms: AfilnetSms, sandbox: Sandbox) -> None:
    sandbox.afilnet.state.credits = 0
    with pytest.raises(InsufficientCreditError) as caught:
        sms.send_sms(OutgoingSms(recipients=(E164,), text="x"))
    assert caught.value.code == "NO_CREDITS"
    assert sandbox.core.records == []


def test_balance(sms: AfilnetSms, sandbox: Sandbox) -> None:
    sandbox.afilnet.state.credits = 10.5
    assert sms.balance() == Decimal("10.5")
    sms.send_sms(OutgoingSms(recipients=(E164,), text="x"))
    assert sms.balance() == Decimal("9.5")


def test_basic_auth_mode(settings: Settings, http_pool: RecordingPool, sandbox: Sandbox) -> None:
    requests = http_pool.requests
    basic = settings.afilnet.model_copy(update={"auth": "basic"})
    sms = AfilnetSms(AfilnetApi(basic, settings.http, http_pool), sender="Postier")
    receipt = sms.send_sms(OutgoingSms(recipients=(E164,), text="x"))
    assert receipt.message_id == sandbox.core.records[0].message_id
    assert requests[0].headers["authorization"].startswith("Basic ")
    assert "password" not in form(requests[0])


def test_503_is_retried_in_process(sms: AfilnetSms, sandbox: Sandbox) -> None:
    sandbox.set_faults("afilnet", script=["503", "ok"], retry_after=0.05)
    receipt = sms.send_sms(OutgoingSms(recipients=(E164,), text="x"))
    assert receipt.message_id == sandbox.core.records[0].message_id
    assert afilnet_requests(sandbox) == 2


def test_timeout_on_a_send_is_ambiguous(sms: AfilnetSms, sandbox: Sandbox) -> None:
    sandbox.set_faults("afilnet", script=["timeout"], hang_seconds=0.1)
    with pytest.raises(AmbiguousError):
        sms.send_sms(OutgoingSms(recipients=(E164,), text="x"))
    assert afilnet_requests(sandbox) == 1


def test_server_error_on_a_status_read_is_retried(sms: AfilnetSms, sandbox: Sandbox) -> None:
    message_id = sms.send_sms(OutgoingSms(recipients=(E164,), text="x")).message_id or ""
    sandbox.set_faults("afilnet", script=["500", "timeout"], hang_seconds=0.1)
    assert sms.delivery_status(message_id).state is DeliveryState.SENT
    assert afilnet_requests(sandbox) == 4


def test_scheduled_send_is_released_when_due(sms: AfilnetSms, sandbox: Sandbox) -> None:
    due = datetime.now(UTC) + timedelta(hours=1)
    message_id = (
        sms.send_sms(OutgoingSms(recipients=(E164,), text="x", send_at=due)).message_id or ""
    )
    assert sms.delivery_status(message_id).state is DeliveryState.ACCEPTED
    sandbox.core.clock.advance(sandbox.core.records[0].send_at - sandbox.core.clock.now() + 0.01)
    assert sms.delivery_status(message_id).state is DeliveryState.SENT
    sandbox.core.clock.advance(sandbox.core.delivery_delay)
    assert sms.delivery_status(message_id).state is DeliveryState.DELIVERED


# -- answer shapes: upper-case status, one status as an object -------------------------------


def test_upper_case_answers_are_read(sms: AfilnetSms, sandbox: Sandbox) -> None:
    """Third-party clients see SUCCESS/ERROR; the sandbox answers so when asked."""
    sandbox.afilnet.state.status_case = "upper"
    receipt = sms.send_sms(OutgoingSms(recipients=(E164,), text="x"))
    assert receipt.message_id
    assert sms.delivery_status(receipt.message_id).state is DeliveryState.SENT
    sandbox.afilnet.state.credits = 0
    with pytest.raises(InsufficientCreditError):
        sms.send_sms(OutgoingSms(recipients=(E164,), text="x"))


def test_a_status_answered_as_one_object_is_read(sms: AfilnetSms, sandbox: Sandbox) -> None:
    sandbox.afilnet.state.single_object = True
    message_id = sms.send_sms(OutgoingSms(recipients=(E164,), text="x")).message_id or ""
    report = sms.delivery_status(message_id)
    assert (report.message_id, report.state) == (message_id, DeliveryState.SENT)
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.01)
    assert sms.delivery_statuses([message_id, "unknown"])[0].state is DeliveryState.DELIVERED
