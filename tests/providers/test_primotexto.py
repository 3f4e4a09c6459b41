"""The Primotexto client against the sandbox over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr

from postier.config import Settings
from postier.dispatch.rows import RowBuilder, SmsRequest
from postier.providers.base import OutgoingSms, SmsProvider
from postier.providers.errors import (
    AmbiguousError,
    AuthenticationError,
    ContentRejectedError,
    InsufficientCreditError,
    NotFoundError,
    PermanentError,
    ProviderError,
    RecipientRejectedError,
    RetryableError,
    UnsupportedFeatureError,
)
from postier.providers.primotexto import ERROR_CLASSES, PrimotextoClient, error_for
from postier.providers.results import DeliveryState, Provider
from postier.rules.errors import RuleViolation
from postier.sandbox import Sandbox, SandboxServer
from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.primotexto import MAX_PARTS
from tests.http_pool import RecordingPool

MOBILE = "+33612345678"


@pytest.fixture
def client(settings: Settings, http_pool: RecordingPool) -> PrimotextoClient:
    return PrimotextoClient(settings.primotexto, settings.http, http_pool)


@pytest.fixture
def slow_delivery(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> float:
    """A long delivery delay, so an intermediate state cannot pass while a busy test runs."""
    monkeypatch.setattr(sandbox.core, "delivery_delay", 30.0)
    return 30.0


def sms(**values: object) -> OutgoingSms:
    fields: dict[str, object] = {"recipients": (MOBILE,), "text": "Code: 283951"}
    fields.update(values)
    return OutgoingSms(**fields)  # type: ignore[arg-type]


def test_the_client_is_an_sms_provider(client: PrimotextoClient) -> None:
    assert isinstance(client, SmsProvider)
    assert client.provider is Provider.PRIMOTEXTO


# -- sending --------------------------------------------------------------------------------


def test_send_returns_the_snapshot_and_the_credits(
    client: PrimotextoClient, sandbox: Sandbox
) -> None:
    receipt = client.send_sms(sms(sender="YourCompany", campaign="codeConfirmation"))
    [record] = sandbox.core.records_for("primotexto")
    assert receipt.provider is Provider.PRIMOTEXTO
    assert receipt.message_id == record.message_id
    assert receipt.cost == Decimal("1.0")
    assert receipt.parts == 1
    assert receipt.raw["snapshotId"] == record.message_id
    assert record.recipient == MOBILE
    assert record.extra["type"] == "notification"
    assert record.extra["sender"] == "YourCompany"
    assert record.extra["category"] == record.extra["campaignName"] == "codeConfirmation"


def test_category_picks_the_marketing_route(client: PrimotextoClient, sandbox: Sandbox) -> None:
    client.send_sms(sms(category="marketing", text="x" * 200))
    [record] = sandbox.core.records_for("primotexto")
    assert record.extra["type"] == "marketing"
    assert record.extra["parts"] == 2


def test_the_settings_sender_is_the_default(
    settings: Settings, http_pool: RecordingPool, sandbox: Sandbox
) -> None:
    primotexto = settings.primotexto.model_copy(update={"sender": "Postier"})
    PrimotextoClient(primotexto, settings.http, http_pool).send_sms(sms())
    PrimotextoClient(primotexto, settings.http, http_pool).send_sms(sms(sender="Other"))
    senders = [r.extra["sender"] for r in sandbox.core.records_for("primotexto")]
    assert senders == ["Postier", "Other"]


@pytest.mark.parametrize("recipients", [(), (MOBILE, "+33612345679")])
def test_anything_but_one_recipient_is_unsupported(
    client: PrimotextoClient, sandbox: Sandbox, recipients: tuple[str, ...]
) -> None:
    with pytest.raises(UnsupportedFeatureError):
        client.send_sms(sms(recipients=recipients))
    assert sandbox.core.request_counts.get("primotexto", 0) == 0


def test_a_naive_send_at_is_refused_before_the_request(
    client: PrimotextoClient, sandbox: Sandbox
) -> None:
    with pytest.raises(ContentRejectedError):
        client.send_sms(sms(send_at=datetime(2030, 1, 1, 12, 0)))
    assert sandbox.core.request_counts.get("primotexto", 0) == 0


def test_a_scheduled_send_stays_accepted_until_its_date(
    client: PrimotextoClient, sandbox: Sandbox, slow_delivery: float
) -> None:
    clock = sandbox.core.clock
    due = datetime.fromtimestamp(clock.now(), UTC) + timedelta(hours=2)
    receipt = client.send_sms(sms(send_at=due))
    assert receipt.message_id is not None
    [record] = sandbox.core.records_for("primotexto")
    assert record.send_at == pytest.approx(due.timestamp(), abs=0.001)
    clock.advance(due.timestamp() - 1 - clock.now())
    report = client.delivery_status(receipt.message_id)
    assert (report.state, report.provider_status) == (DeliveryState.ACCEPTED, "submitted")
    clock.advance(due.timestamp() + sandbox.core.delivery_delay / 2 - clock.now())
    assert client.delivery_status(receipt.message_id).state is DeliveryState.SENT
    clock.advance(sandbox.core.delivery_delay)
    assert client.delivery_status(receipt.message_id).state is DeliveryState.DELIVERED


# -- error codes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "error", "code"),
    [
        ({"recipients": ("0612",)}, RecipientRejectedError, "11"),
        ({"recipients": ("",)}, RecipientRejectedError, "10"),
        ({"recipients": ("+33140000000",)}, RecipientRejectedError, "19"),
        ({"recipients": ("+12125551234",)}, RecipientRejectedError, "90"),
        ({"sender": "Your-Co"}, ContentRejectedError, "20"),
        ({"sender": "AB"}, ContentRejectedError, "21"),
        ({"sender": "ABCDEFGHIJKL"}, ContentRejectedError, "22"),
        ({"sender": "36173"}, ContentRejectedError, "23"),
        ({"text": ""}, ContentRejectedError, "30"),
        ({"text": "5€"}, ContentRejectedError, "31"),
        ({"text": "x" * (153 * MAX_PARTS + 1)}, ContentRejectedError, "32"),
        ({"send_at": datetime(2014, 4, 22, 14, 30, tzinfo=UTC)}, ContentRejectedError, "41"),
    ],
)
def test_refusals_raise_the_typed_error_of_their_code(
    client: PrimotextoClient, values: dict[str, object], error: type[ProviderError], code: str
) -> None:
    with pytest.raises(error) as caught:
        client.send_sms(sms(**values))
    assert caught.value.code == code
    assert caught.value.provider == "primotexto"
    assert isinstance(caught.value.raw, dict)
    assert caught.value.raw["code"] == int(code)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (12, RecipientRejectedError),
        (13, RecipientRejectedError),
        (14, RecipientRejectedError),
        (70, AuthenticationError),
        (71, InsufficientCreditError),
        (72, AuthenticationError),
        (73, PermanentError),
        (92, AuthenticationError),
    ],
)
def test_forced_codes_raise_their_typed_error(
    client: PrimotextoClient, sandbox: Sandbox, code: int, error: type[ProviderError]
) -> None:
    sandbox.primotexto.force_error(code)
    with pytest.raises(error) as caught:
        client.send_sms(sms())
    assert caught.value.code == str(code)
    assert type(caught.value) is error


def test_quota_error_76_is_retryable_after_the_providers_delay(
    client: PrimotextoClient, sandbox: Sandbox
) -> None:
    sandbox.primotexto.force_error(76)
    with pytest.raises(RetryableError) as caught:
        client.send_sms(sms())
    # the sandbox sends 76 as HTTP 429 + Retry-After 60: too long to wait in-process
    assert caught.value.retry_after == 60
    assert sandbox.core.request_counts["primotexto"] == 1


def test_unknown_error_1000_on_a_send_is_ambiguous(
    client: PrimotextoClient, sandbox: Sandbox
) -> None:
    sandbox.primotexto.force_error(1000)
    with pytest.raises(AmbiguousError):
        client.send_sms(sms())


def test_exhausted_credits_raise_insufficient_credit(
    client: PrimotextoClient, sandbox: Sandbox
) -> None:
    sandbox.primotexto.set_credits(1)
    with pytest.raises(InsufficientCreditError) as caught:
        client.send_sms(sms(text="x" * 161))
    assert caught.value.code == "71"


def test_a_bad_key_is_an_authentication_error(
    settings: Settings, http_pool: RecordingPool, sandbox: Sandbox
) -> None:
    bad = settings.primotexto.model_copy(update={"api_key": SecretStr("wrong")})
    client = PrimotextoClient(bad, settings.http, http_pool)
    with pytest.raises(AuthenticationError) as caught:
        client.send_sms(sms())
    assert caught.value.code == "72"
    with pytest.raises(AuthenticationError):
        client.account_stats()
    assert sandbox.core.records_for("primotexto") == []


#: every documented code (docs/PROVIDERS.md, "Primotexto, Errors") and the error the caller must see
EXPECTED_CLASSES: dict[int, type[ProviderError]] = {
    **dict.fromkeys((10, 11, 12, 13, 14, 19, 90), RecipientRejectedError),
    **dict.fromkeys((20, 21, 22, 23, 30, 31, 32, 41), ContentRejectedError),
    **dict.fromkeys((70, 72, 92), AuthenticationError),
    71: InsufficientCreditError,
    73: PermanentError,
    76: RetryableError,
    1000: AmbiguousError,
    404: NotFoundError,
}


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED_CLASSES.items()))
def test_every_documented_code_maps_to_its_error(code: int, expected: type[ProviderError]) -> None:
    error = error_for(400, {"code": code, "error": "x"}, changes_state=True)
    assert type(error) is expected
    assert error.code == str(code)
    assert error.raw == {"code": code, "error": "x"}


def test_the_table_has_no_undocumented_code() -> None:
    assert set(ERROR_CLASSES) == set(EXPECTED_CLASSES)


def test_an_unknown_error_on_a_read_is_retryable_and_keeps_retry_after() -> None:
    assert type(error_for(500, {"code": 1000}, changes_state=False)) is RetryableError
    quota = error_for(403, {"code": 76}, changes_state=True, retry_after=12.0)
    assert isinstance(quota, RetryableError)
    assert quota.retry_after == 12.0


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, AuthenticationError), (402, InsufficientCreditError), (418, PermanentError)],
)
def test_an_answer_without_a_code_falls_back_on_the_status(
    status: int, expected: type[ProviderError]
) -> None:
    error = error_for(status, "<html>oops</html>", changes_state=True)
    assert type(error) is expected
    assert error.code == f"HTTP {status}"


# -- delivery status ------------------------------------------------------------------------


def test_status_progresses_with_the_sandbox_clock(
    client: PrimotextoClient, sandbox: Sandbox, slow_delivery: float
) -> None:
    receipt = client.send_sms(sms())
    assert receipt.message_id is not None
    first = client.delivery_status(receipt.message_id)
    assert (first.state, first.provider_status) == (DeliveryState.SENT, "sent")
    assert first.message_id == receipt.message_id
    assert first.at is not None
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.1)
    final = client.delivery_status(receipt.message_id)
    assert (final.state, final.provider_status) == (DeliveryState.DELIVERED, "delivered")
    assert final.raw["delivered"] is not None
    assert final.at is not None and final.at > first.at


def test_an_unassigned_number_ends_undelivered(client: PrimotextoClient, sandbox: Sandbox) -> None:
    receipt = client.send_sms(sms(recipients=("+33612349999",)))
    assert receipt.message_id is not None
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.1)
    report = client.delivery_status(receipt.message_id)
    assert (report.state, report.provider_status) == (DeliveryState.UNDELIVERED, "bounced")


def test_an_unknown_snapshot_is_state_unknown(client: PrimotextoClient) -> None:
    report = client.delivery_status("999999")
    assert report.state is DeliveryState.UNKNOWN
    assert report.message_id == "999999"


def test_latest_status_for_a_number(client: PrimotextoClient) -> None:
    assert client.latest_status_for(MOBILE) is None
    client.send_sms(sms())
    receipt = client.send_sms(sms())
    report = client.latest_status_for(MOBILE)
    assert report is not None
    assert report.message_id == receipt.message_id


# -- replies, stats, account ----------------------------------------------------------------


def test_replies_are_pulled_by_category(
    client: PrimotextoClient, sandbox: Sandbox, sandbox_server: SandboxServer
) -> None:
    receipt = client.send_sms(sms(campaign="promo"))
    assert receipt.message_id is not None
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.1)
    httpx.post(
        f"{sandbox_server.url}/_sandbox/primotexto/reply",
        json={"identifier": MOBILE, "message": "Oui, merci", "category": "promo"},
    ).raise_for_status()
    sandbox.primotexto.inject_reply("+33699999990", "autre", "other")
    [reply] = client.replies("promo")
    assert reply.provider is Provider.PRIMOTEXTO
    assert (reply.sender, reply.text, reply.channel) == (MOBILE, "Oui, merci", "promo")
    assert reply.message_id
    assert client.replies("nothing-here") == []
    report = client.delivery_status(receipt.message_id)
    assert (report.state, report.provider_status) == (DeliveryState.DELIVERED, "reply")


def test_message_stats_and_account_stats(client: PrimotextoClient, sandbox: Sandbox) -> None:
    client.send_sms(sms(campaign="promo", text="x" * 200))
    client.send_sms(sms(campaign="other"))
    sandbox.core.clock.advance(sandbox.core.delivery_delay + 0.1)
    stats = client.message_stats("promo")
    assert stats.category == "promo"
    assert stats.counts["messages"] == 1
    assert stats.counts["delivered"] == 1
    assert stats.credits_used == Decimal("2.0")
    account = client.account_stats()
    assert account.credits == Decimal(str(SANDBOX_ACCOUNTS.primotexto_credits - 3))


# -- blacklists -----------------------------------------------------------------------------


def test_unsubscribers_add_list_remove_and_refuse_with_12(client: PrimotextoClient) -> None:
    assert client.list_unsubscribers() == []
    client.add_unsubscriber("0612345678")
    assert client.list_unsubscribers() == [MOBILE]
    with pytest.raises(RecipientRejectedError) as caught:
        client.send_sms(sms())
    assert caught.value.code == "12"
    client.remove_unsubscriber(MOBILE)
    assert client.list_unsubscribers() == []
    assert client.send_sms(sms()).message_id is not None
    with pytest.raises(NotFoundError):
        client.remove_unsubscriber(MOBILE)


def test_bounces_add_list_remove_and_refuse_with_13(client: PrimotextoClient) -> None:
    client.add_bounce(MOBILE)
    assert client.list_bounces() == [MOBILE]
    with pytest.raises(RecipientRejectedError) as caught:
        client.send_sms(sms())
    assert caught.value.code == "13"
    client.remove_bounce(MOBILE)
    assert client.list_bounces() == []


def test_a_category_blacklist_only_blocks_its_category(client: PrimotextoClient) -> None:
    client.add_unsubscriber(MOBILE, list_name="promo")
    assert client.list_unsubscribers("promo") == [MOBILE]
    assert client.list_unsubscribers() == []
    with pytest.raises(RecipientRejectedError):
        client.send_sms(sms(campaign="promo"))
    assert client.send_sms(sms(campaign="codes")).message_id is not None


def test_a_bad_blacklist_number_is_rejected(client: PrimotextoClient) -> None:
    with pytest.raises(RecipientRejectedError) as caught:
        client.add_bounce("not a number")
    assert caught.value.code == "11"


# -- transport: secrets, retries, ambiguity -------------------------------------------------


def test_the_key_travels_only_in_the_header(
    settings: Settings, sandbox: Sandbox, http_pool: RecordingPool
) -> None:
    seen = http_pool.requests
    client = PrimotextoClient(settings.primotexto, settings.http, http_pool)
    key = SANDBOX_ACCOUNTS.primotexto_api_key
    receipt = client.send_sms(sms(campaign="promo"))
    assert receipt.message_id is not None
    client.delivery_status(receipt.message_id)
    client.replies("promo")
    client.add_unsubscriber(MOBILE)
    client.list_unsubscribers()
    with pytest.raises(RecipientRejectedError) as caught:
        client.send_sms(sms())
    assert len(seen) == 6
    for request in seen:
        assert key not in str(request.url)
        assert key.encode() not in request.content
        assert request.headers["X-Primotexto-ApiKey"] == key
    assert key not in str(caught.value)
    assert key not in repr(caught.value.raw)
    assert key not in repr(client.settings)


def test_a_429_is_retried_in_process(client: PrimotextoClient, sandbox: Sandbox) -> None:
    sandbox.set_faults("primotexto", script=["429", "ok"], retry_after=0.05)
    receipt = client.send_sms(sms())
    assert receipt.message_id is not None
    assert sandbox.core.request_counts["primotexto"] == 2
    assert len(sandbox.core.records_for("primotexto")) == 1


def test_a_429_with_a_long_wait_propagates(client: PrimotextoClient, sandbox: Sandbox) -> None:
    sandbox.set_faults("primotexto", script=["429", "ok"], retry_after=30)
    with pytest.raises(RetryableError) as caught:
        client.send_sms(sms())
    assert caught.value.retry_after == 30
    assert sandbox.core.records_for("primotexto") == []


def test_a_dropped_answer_to_a_send_is_ambiguous_and_reconciled_by_number(
    client: PrimotextoClient, sandbox: Sandbox
) -> None:
    sandbox.set_faults("primotexto", script=["drop_after"])
    with pytest.raises(AmbiguousError):
        client.send_sms(sms())
    [record] = sandbox.core.records_for("primotexto")
    report = client.latest_status_for(MOBILE)
    assert report is not None
    assert report.message_id == record.message_id


def test_a_dropped_answer_to_a_read_is_retried(client: PrimotextoClient, sandbox: Sandbox) -> None:
    sandbox.set_faults("primotexto", script=["drop_after", "ok"])
    assert client.account_stats().credits == Decimal(str(SANDBOX_ACCOUNTS.primotexto_credits))
    assert sandbox.core.request_counts["primotexto"] == 2


# -- the default route's text policy, end to end --------------------------------------------


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(st.characters(exclude_categories=["Cs"]), max_size=300))
def test_every_row_the_policy_accepts_is_accepted_by_the_sandbox(
    settings: Settings, client: PrimotextoClient, text: str
) -> None:
    """Any text, as a producer builds it for Primotexto, then sent: never error 31."""
    try:
        row = RowBuilder(settings).sms(SmsRequest(MOBILE, text, provider="primotexto"))
    except RuleViolation as refused:
        # refused for what it holds (the hard edges: NUL, length) or its size, never for a
        # character the policy should have made fit
        assert refused.rule in ("text.empty", "text.parts", "text.nul", "text.length")
        return
    receipt = client.send_sms(sms(text=row["body"]))
    assert receipt.parts == row["parts"]
