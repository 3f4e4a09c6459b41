"""``Dispatcher.send``: one attempt against the sandbox over HTTP, and what the ledger records.

No Celery: the task would only call ``send`` and publish again when ``republish`` is set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from postier.config import RateLimit, Settings
from postier.dispatch.sending import Dispatcher, SendOutcome, backoff_delay
from postier.ledger.db import session_scope
from postier.ledger.models import MessageKind, MessageStatus
from postier.ledger.queries import release_due
from postier.ratelimit import RateLimiter
from postier.sandbox import Sandbox
from tests.dispatch.conftest import WEEKDAY_10AM, Ledger

S = MessageStatus
MakeDispatcher = Callable[..., Dispatcher]


def release(ledger: Ledger) -> None:
    """What beat's ``release_due_messages`` does to the ledger, an hour early."""
    with session_scope(ledger.engine) as session:
        release_due(session, datetime.now(UTC) + timedelta(hours=1))


def trail(ledger: Ledger, message_id: str) -> list[tuple[MessageStatus | None, MessageStatus]]:
    return [(e.from_status, e.to_status) for e in ledger.events(message_id)]


def with_http(settings: Settings, **values: float) -> Settings:
    return settings.model_copy(update={"http": settings.http.model_copy(update=values)})


# -- success -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "cost", "parts"),
    [
        ("primotexto", Decimal("1"), 1),  # creditsUsed: one credit per part
        ("octopush", Decimal("0.055"), 1),  # FR premium price of one part
        ("afilnet", Decimal("1"), None),  # credits as the cost; sendsms counts no parts
    ],
    ids=["primotexto", "octopush", "afilnet"],
)
def test_success_records_sent_with_provider_id_cost_parts_and_events(
    dispatcher: Dispatcher,
    ledger: Ledger,
    sandbox: Sandbox,
    provider: str,
    cost: Decimal,
    parts: int | None,
) -> None:
    # no count from the producer: the one recorded is the provider's
    message_id = ledger.add_sms("0612345601", provider=provider, parts=None)

    outcome = dispatcher.send(message_id)

    assert outcome == SendOutcome(S.SENT)
    (record,) = sandbox.records(provider)
    message = ledger.get(message_id)
    assert message.status == S.SENT
    assert message.attempts == 1
    assert message.provider == provider
    expected_id = record["batch_id"] if provider == "octopush" else record["message_id"]
    assert message.provider_message_id == expected_id
    assert message.cost == cost
    assert message.parts == parts
    assert message.last_error is None
    assert trail(ledger, message_id) == [
        (None, S.QUEUED),
        (S.QUEUED, S.SENDING),
        (S.SENDING, S.SENT),
    ]
    sent = ledger.events(message_id)[-1]
    assert sent.provider_status == "accepted"
    assert sent.raw  # the provider's answer, kept for audits


def test_an_octopush_simulation_is_recorded_as_simulated(
    make_dispatcher: MakeDispatcher, dispatch_settings: Settings, ledger: Ledger, sandbox: Sandbox
) -> None:
    octopush = dispatch_settings.octopush.model_copy(update={"simulation_mode": True})
    dispatcher = make_dispatcher(dispatch_settings.model_copy(update={"octopush": octopush}))
    message_id = ledger.add_sms("0612345628", provider="octopush")

    assert dispatcher.send(message_id) == SendOutcome(S.SENT)

    assert sandbox.records("octopush") == []
    assert ledger.events(message_id)[-1].provider_status == "simulated"


def test_a_receipt_without_a_part_count_keeps_the_producers_count(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    # Afilnet's sendsms answers credits but no part count
    message_id = ledger.add_sms("0612345627", "x" * 200, provider="afilnet")
    assert ledger.get(message_id).parts == 2

    assert dispatcher.send(message_id) == SendOutcome(S.SENT)

    message = ledger.get(message_id)
    assert message.parts == 2
    assert message.cost == Decimal("2")


def test_whatsapp_text_file_and_template_are_sent_with_their_methods(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    text_id = ledger.add_whatsapp("+33612345602", "Bonjour")
    assert dispatcher.send(text_id).status == S.SENT
    # a file goes into an open chat only (Afilnet WhatsApp API docs: sendfile answers CHAT_NOT_FOUND
    # otherwise)
    file_id = ledger.add_whatsapp(
        "+33612345602",
        "Votre facture",
        kind=MessageKind.WHATSAPP_FILE,
        payload={
            "platform_id": "100",
            "file_url": "https://example.com/facture.pdf",
            "file_type": "document",
        },
    )
    template_id = ledger.add_whatsapp(
        "+33612345603",
        "",
        kind=MessageKind.WHATSAPP_TEMPLATE,
        payload={
            "platform_id": "100",
            "template_id": "1",
            "params": {"name": "Jeanne", "orderid": "42"},
            "header": {
                "latitude": 48.85,
                "longitude": 2.35,
                "name": "Boutique",
                "address": "Paris",
            },
        },
    )

    assert dispatcher.send(file_id).status == S.SENT
    assert dispatcher.send(template_id).status == S.SENT

    records = {r.extra["kind"]: r for r in sandbox.core.records_for("afilnet")}
    assert records["text"].text == "Bonjour"
    assert records["file"].extra["fileurl"] == "https://example.com/facture.pdf"
    assert records["file"].text == "Votre facture"
    assert records["template"].text == "Bonjour Jeanne, votre commande 42 est prête."
    assert records["template"].extra["header"]["name"] == "Boutique"
    for message_id, kind in ((text_id, "text"), (file_id, "file"), (template_id, "template")):
        assert ledger.get(message_id).provider_message_id == records[kind].message_id


def test_invalid_template_header_at_send_time_fails_without_a_call(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id = ledger.add_whatsapp(
        "+33612345604",
        "",
        kind=MessageKind.WHATSAPP_TEMPLATE,
        payload={"platform_id": "100", "template_id": "1", "header": {"file": "ftp://x/y.pdf"}},
    )

    assert dispatcher.send(message_id) == SendOutcome(S.FAILED)

    message = ledger.get(message_id)
    assert message.status == S.FAILED
    assert message.last_error is not None and message.last_error.startswith("invalid at send time")
    assert sandbox.core.request_counts.get("afilnet", 0) == 0


# -- idempotence -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.SENT, S.CANCELLED, S.FAILED, S.SENDING, S.UNKNOWN])
def test_a_message_not_queued_is_left_alone(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox, status: MessageStatus
) -> None:
    message_id = ledger.add_sms("0612345605")
    ledger.force(message_id, status=status)
    events_before = trail(ledger, message_id)

    outcome = dispatcher.send(message_id)

    assert outcome == SendOutcome(status)
    assert ledger.get(message_id).status == status
    assert ledger.get(message_id).attempts == 0
    assert trail(ledger, message_id) == events_before
    assert sandbox.records() == []


def test_a_scheduled_message_is_not_sent_before_beat_releases_it(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id = ledger.add_sms("0612345606", send_at=datetime.now(UTC) + timedelta(hours=1))
    assert ledger.status(message_id) == S.SCHEDULED

    assert dispatcher.send(message_id) == SendOutcome(S.SCHEDULED)
    assert sandbox.records() == []


def test_a_missing_message_is_not_sent(dispatcher: Dispatcher, sandbox: Sandbox) -> None:
    assert dispatcher.send("0" * 32) == SendOutcome(None)
    assert sandbox.core.request_counts == {}


def test_two_sends_of_one_message_send_once(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message_id = ledger.add_sms("0612345607")

    first = dispatcher.send(message_id)
    second = dispatcher.send(message_id)

    assert first == SendOutcome(S.SENT)
    assert second == SendOutcome(S.SENT)
    assert len(sandbox.records()) == 1
    assert ledger.get(message_id).attempts == 1


def test_two_concurrent_sends_of_one_message_send_once(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    """A task the broker delivers twice, run by two workers at once: one claim wins."""
    sandbox.set_faults("primotexto", latency=0.2)
    message_id = ledger.add_sms("0612345608")
    outcomes: list[SendOutcome] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        outcomes.append(dispatcher.send(message_id))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(str(o.status) for o in outcomes) in (
        ["None", "sent"],  # the loser found the row queued, then lost the claim
        ["sending", "sent"],  # the loser read the row after the winner's claim
    )
    assert len(sandbox.records()) == 1
    assert ledger.get(message_id).attempts == 1


# -- retryable errors --------------------------------------------------------------------


def test_retryable_error_schedules_a_retry_with_backoff(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    # three 503s without Retry-After use up the in-process retries (short_retry_attempts=3)
    sandbox.set_faults("primotexto", retry_after=None, script=["503", "503", "503"])
    message_id = ledger.add_sms("0612345609")
    before = datetime.now(UTC)

    outcome = dispatcher.send(message_id)

    after = datetime.now(UTC)
    assert outcome == SendOutcome(S.SCHEDULED)
    assert sandbox.core.request_counts["primotexto"] == 3
    assert sandbox.records() == []
    message = ledger.get(message_id)
    assert message.status == S.SCHEDULED
    assert message.attempts == 1
    assert message.last_error is not None and "503" in message.last_error
    # rng 1.0: the backoff is its ceiling, backoff_base * 2**0 = 0.2 s after the answer
    assert message.send_at is not None
    assert before + timedelta(seconds=0.2) <= message.send_at <= after + timedelta(seconds=0.2)
    retry = ledger.events(message_id)[-1]
    assert (retry.from_status, retry.to_status) == (S.SENDING, S.SCHEDULED)
    assert retry.provider_status == "503"
    assert retry.detail is not None and retry.detail.startswith("retry in 0.20s")


def test_retry_after_longer_than_the_inline_budget_is_the_retry_delay(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    sandbox.set_faults("primotexto", retry_after=30, script=["429"])
    message_id = ledger.add_sms("0612345610")
    before = datetime.now(UTC)

    assert dispatcher.send(message_id) == SendOutcome(S.SCHEDULED)

    # not retried in-process: 30 s is above max_inline_wait
    assert sandbox.core.request_counts["primotexto"] == 1
    send_at = ledger.get(message_id).send_at
    assert send_at is not None
    assert before + timedelta(seconds=30) <= send_at <= datetime.now(UTC) + timedelta(seconds=30)


def test_a_retried_message_is_sent_once_the_provider_answers(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    sandbox.set_faults("primotexto", retry_after=None, script=["503", "503", "503"])
    message_id = ledger.add_sms("0612345611")
    assert dispatcher.send(message_id).status == S.SCHEDULED
    release(ledger)

    assert dispatcher.send(message_id) == SendOutcome(S.SENT)

    message = ledger.get(message_id)
    assert message.attempts == 2
    assert message.last_error is None
    assert len(sandbox.records("primotexto")) == 1


def test_after_max_attempts_the_message_fails_over_to_the_fallback(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    sandbox.set_faults("primotexto", retry_after=None, rate_503=1.0)
    message_id = ledger.add_sms("0612345612")
    for _ in range(2):
        assert dispatcher.send(message_id).status == S.SCHEDULED
        release(ledger)

    outcome = dispatcher.send(message_id)

    assert outcome == SendOutcome(S.QUEUED, republish=True)
    message = ledger.get(message_id)
    assert message.status == S.QUEUED
    assert message.provider == "octopush"
    assert message.attempts == 0
    assert message.payload["tried_providers"] == ["primotexto"]
    assert message.last_error is not None and "gave up after 3 attempts" in message.last_error
    failover = ledger.events(message_id)[-1]
    assert (failover.from_status, failover.to_status) == (S.SENDING, S.QUEUED)
    assert failover.detail is not None
    assert failover.detail.startswith("failover primotexto -> octopush")

    assert dispatcher.send(message_id) == SendOutcome(S.SENT)
    assert [r["provider"] for r in sandbox.records()] == ["octopush"]
    assert ledger.get(message_id).attempts == 1


def test_after_max_attempts_with_no_fallback_left_the_message_fails(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    sandbox.set_faults("octopush", retry_after=None, rate_503=1.0)
    # already failed over from primotexto, and on its last attempt with octopush
    message_id = ledger.add_sms(
        "0612345613",
        provider="octopush",
        attempts=2,
        payload={"tried_providers": ["primotexto"]},
    )

    assert dispatcher.send(message_id) == SendOutcome(S.FAILED)

    message = ledger.get(message_id)
    assert message.status == S.FAILED
    assert message.provider == "octopush"
    assert message.attempts == 3
    assert message.last_error is not None and "gave up after 3 attempts" in message.last_error
    assert sandbox.records() == []


# -- permanent errors --------------------------------------------------------------------


def test_permanent_error_fails_at_the_first_attempt_without_fallback(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    with sandbox.core.lock:
        sandbox.primotexto.blacklist("unsubscribers").add("+33612345614")
    message_id = ledger.add_sms("0612345614")

    assert dispatcher.send(message_id) == SendOutcome(S.FAILED)

    message = ledger.get(message_id)
    assert message.status == S.FAILED
    assert message.attempts == 1
    assert message.provider == "primotexto"
    assert message.last_error is not None and "[12]" in message.last_error
    failed = ledger.events(message_id)[-1]
    assert failed.provider_status == "12"
    assert failed.raw is not None and failed.raw["code"] == 12
    assert sandbox.records() == []


@pytest.mark.parametrize("account_problem", ["wrong api key", "no credit", "api disabled"])
def test_account_level_error_fails_over(
    dispatch_settings: Settings,
    make_dispatcher: MakeDispatcher,
    ledger: Ledger,
    sandbox: Sandbox,
    account_problem: str,
) -> None:
    settings = dispatch_settings
    if account_problem == "wrong api key":
        primotexto = settings.primotexto.model_copy(update={"api_key": SecretStr("not-the-key")})
        settings = settings.model_copy(update={"primotexto": primotexto})
    elif account_problem == "no credit":
        sandbox.primotexto.set_credits(0)
    else:
        sandbox.primotexto.api_enabled = False
    dispatcher = make_dispatcher(settings)
    message_id = ledger.add_sms("0612345615")

    outcome = dispatcher.send(message_id)

    assert outcome == SendOutcome(S.QUEUED, republish=True)
    message = ledger.get(message_id)
    assert message.provider == "octopush"
    assert message.attempts == 0
    detail = ledger.events(message_id)[-1].detail
    assert detail is not None and detail.startswith("failover primotexto -> octopush")
    assert dispatcher.send(message_id) == SendOutcome(S.SENT)
    assert [r["provider"] for r in sandbox.records()] == ["octopush"]


@pytest.mark.parametrize(("policy", "sent"), [("transliterate", True), ("refuse", False)])
def test_a_french_text_failed_over_to_primotexto_follows_primotexto_s_policy(
    dispatch_settings: Settings,
    make_dispatcher: MakeDispatcher,
    ledger: Ledger,
    sandbox: Sandbox,
    policy: str,
    sent: bool,
) -> None:
    """Stored for Octopush (UCS-2 as written), sent by Primotexto: its alphabet applies."""
    octopush = dispatch_settings.octopush.model_copy(update={"api_key": SecretStr("wrong")})
    primotexto = dispatch_settings.primotexto.model_copy(update={"text_policy": policy})
    settings = dispatch_settings.model_copy(update={"octopush": octopush, "primotexto": primotexto})
    dispatcher = make_dispatcher(settings)
    message_id = ledger.add_sms("0612345629", "Votre œuvre est prête", provider="octopush")
    assert ledger.get(message_id).body == "Votre œuvre est prête"

    assert dispatcher.send(message_id) == SendOutcome(S.QUEUED, republish=True)
    assert ledger.get(message_id).provider == "primotexto"
    outcome = dispatcher.send(message_id)

    if not sent:
        assert outcome == SendOutcome(S.FAILED)
        assert "text.charset" in (ledger.get(message_id).last_error or "")
        assert sandbox.records() == []
        return
    assert outcome == SendOutcome(S.SENT)
    (record,) = sandbox.records("primotexto")
    assert record["text"] == "Votre oeuvre est prete"
    event = ledger.events(message_id)[-1]
    assert event.detail == "transliterated for primotexto: 'œ'→'oe' ×1, 'ê'→'e' ×1"
    recorded = ledger.get(message_id).payload["text_policy_at_send"]
    assert recorded["original"] == "Votre œuvre est prête"


# -- ambiguous errors --------------------------------------------------------------------


def test_octopush_lost_answer_is_settled_by_resending_the_same_request_id(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    # the request is processed, then the answer is lost (502): Octopush remembers request_id
    sandbox.set_faults("octopush", script=["drop_after"])
    message_id = ledger.add_sms("0612345616", "Promo", category="marketing", send_at=WEEKDAY_10AM)
    assert ledger.get(message_id).provider == "octopush"

    assert dispatcher.send(message_id) == SendOutcome(S.SENT)

    (record,) = sandbox.core.records_for("octopush")
    assert record.extra["request_id"] == message_id
    assert sandbox.core.request_counts["octopush"] == 2
    message = ledger.get(message_id)
    assert message.status == S.SENT
    events = ledger.events(message_id)
    assert [(e.from_status, e.to_status) for e in events[-2:]] == [
        (S.SENDING, S.UNKNOWN),
        (S.UNKNOWN, S.SENT),
    ]
    assert events[-2].detail is not None and events[-2].detail.startswith("ambiguous")
    assert events[-1].detail is not None and "120" in events[-1].detail


def test_octopush_timeout_before_processing_is_settled_by_a_fresh_send(
    dispatch_settings: Settings,
    make_dispatcher: MakeDispatcher,
    ledger: Ledger,
    sandbox: Sandbox,
) -> None:
    dispatcher = make_dispatcher(with_http(dispatch_settings, read_timeout=0.2))
    sandbox.set_faults("octopush", hang_seconds=0.5, script=["timeout"])
    message_id = ledger.add_sms("0612345617", provider="octopush")

    assert dispatcher.send(message_id) == SendOutcome(S.SENT)

    (record,) = sandbox.records("octopush")
    message = ledger.get(message_id)
    assert message.provider_message_id == record["batch_id"]
    detail = ledger.events(message_id)[-1].detail
    assert detail is not None and "had not arrived" in detail


def test_primotexto_lost_answer_is_settled_by_number_lookup(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    sandbox.set_faults("primotexto", script=["drop_after"])
    message_id = ledger.add_sms("0612345618")

    assert dispatcher.send(message_id) == SendOutcome(S.SENT)

    (record,) = sandbox.records("primotexto")
    message = ledger.get(message_id)
    assert message.status == S.SENT
    assert message.provider_message_id == record["message_id"]
    detail = ledger.events(message_id)[-1].detail
    assert detail is not None and "found by number" in detail


def test_primotexto_request_that_never_arrived_is_queued_again(
    dispatch_settings: Settings,
    make_dispatcher: MakeDispatcher,
    ledger: Ledger,
    sandbox: Sandbox,
) -> None:
    dispatcher = make_dispatcher(with_http(dispatch_settings, read_timeout=0.2))
    sandbox.set_faults("primotexto", hang_seconds=0.5, script=["timeout"])
    message_id = ledger.add_sms("0612345619")

    assert dispatcher.send(message_id) == SendOutcome(S.QUEUED, republish=True)

    assert sandbox.records() == []
    assert trail(ledger, message_id)[-2:] == [(S.SENDING, S.UNKNOWN), (S.UNKNOWN, S.QUEUED)]
    assert dispatcher.send(message_id) == SendOutcome(S.SENT)
    assert len(sandbox.records("primotexto")) == 1


def test_primotexto_earlier_message_to_the_number_is_not_taken_for_ours(
    dispatch_settings: Settings,
    make_dispatcher: MakeDispatcher,
    ledger: Ledger,
    sandbox: Sandbox,
) -> None:
    """Only a message submitted after our attempt began (less the slack) settles it."""
    dispatcher = make_dispatcher(with_http(dispatch_settings, read_timeout=0.2))
    sandbox.core.clock.advance(-600)  # the earlier message went out ten minutes ago
    earlier = ledger.add_sms("0612345620", "Premier message")
    assert dispatcher.send(earlier).status == S.SENT
    sandbox.core.clock.advance(600)
    sandbox.set_faults("primotexto", hang_seconds=0.5, script=["timeout"])
    message_id = ledger.add_sms("0612345620", "Second message")

    assert dispatcher.send(message_id) == SendOutcome(S.QUEUED, republish=True)

    assert len(sandbox.records("primotexto")) == 1


def test_whatsapp_lost_answer_is_settled_by_chat_lookup(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    sandbox.set_faults("afilnet", script=["drop_after"])
    message_id = ledger.add_whatsapp("+33612345621", "Votre colis arrive")

    assert dispatcher.send(message_id) == SendOutcome(S.SENT)

    (record,) = sandbox.records("afilnet")
    message = ledger.get(message_id)
    assert message.provider_message_id == record["message_id"]
    detail = ledger.events(message_id)[-1].detail
    assert detail is not None and "WhatsApp chat" in detail


def test_whatsapp_send_that_never_arrived_is_queued_again(
    dispatch_settings: Settings,
    make_dispatcher: MakeDispatcher,
    ledger: Ledger,
    sandbox: Sandbox,
) -> None:
    dispatcher = make_dispatcher(with_http(dispatch_settings, read_timeout=0.2))
    sandbox.set_faults("afilnet", hang_seconds=0.5, script=["timeout"])
    message_id = ledger.add_whatsapp("+33612345622", "Votre colis arrive")

    assert dispatcher.send(message_id) == SendOutcome(S.QUEUED, republish=True)

    assert sandbox.records() == []
    assert dispatcher.send(message_id) == SendOutcome(S.SENT)
    assert len(sandbox.records("afilnet")) == 1


@pytest.mark.parametrize(
    ("policy", "outcome", "status"),
    [
        ("hold", SendOutcome(S.UNKNOWN), S.UNKNOWN),
        ("resend", SendOutcome(S.QUEUED, republish=True), S.QUEUED),
    ],
)
def test_afilnet_sms_lost_answer_follows_the_ambiguous_policy(
    dispatch_settings: Settings,
    make_dispatcher: MakeDispatcher,
    ledger: Ledger,
    sandbox: Sandbox,
    policy: str,
    outcome: SendOutcome,
    status: MessageStatus,
) -> None:
    dispatch = dispatch_settings.dispatch.model_copy(update={"ambiguous_policy": policy})
    dispatcher = make_dispatcher(dispatch_settings.model_copy(update={"dispatch": dispatch}))
    sandbox.set_faults("afilnet", script=["drop_after"])
    message_id = ledger.add_sms("0612345623", provider="afilnet")

    assert dispatcher.send(message_id) == outcome

    assert ledger.status(message_id) == status
    assert len(sandbox.records("afilnet")) == 1  # it did go out: no lookup can tell


# -- rate limiting -----------------------------------------------------------------------


def test_rate_limit_wait_beyond_max_block_reschedules_without_an_attempt(
    dispatch_settings: Settings,
    make_dispatcher: MakeDispatcher,
    ledger: Ledger,
    sandbox: Sandbox,
    redis_client: redis.Redis,
) -> None:
    # one send every 2 s, far above rate_limit_max_block (0.2 s)
    settings = dispatch_settings.model_copy(
        update={"rate_limits": {"primotexto": RateLimit(rate=0.5, burst=1)}}
    )
    dispatcher = make_dispatcher(settings, RateLimiter(redis_client))
    first = ledger.add_sms("0612345624")
    second = ledger.add_sms("0612345625")
    assert dispatcher.send(first) == SendOutcome(S.SENT)
    before = datetime.now(UTC)

    assert dispatcher.send(second) == SendOutcome(S.SCHEDULED)

    message = ledger.get(second)
    assert message.status == S.SCHEDULED
    assert message.attempts == 0
    assert message.send_at is not None
    assert before + timedelta(seconds=1) < message.send_at <= before + timedelta(seconds=2.1)
    deferral = ledger.events(second)[-1]
    assert (deferral.from_status, deferral.to_status) == (S.QUEUED, S.SCHEDULED)
    assert deferral.detail is not None and deferral.detail.startswith("rate limited")
    assert len(sandbox.records()) == 1


def test_rate_limit_wait_within_max_block_blocks_then_sends(
    dispatch_settings: Settings,
    make_dispatcher: MakeDispatcher,
    ledger: Ledger,
    sandbox: Sandbox,
    redis_client: redis.Redis,
) -> None:
    settings = dispatch_settings.model_copy(
        update={"rate_limits": {"primotexto": RateLimit(rate=10, burst=1)}}
    )
    dispatcher = make_dispatcher(settings, RateLimiter(redis_client))
    ids = [ledger.add_sms(f"061234563{n}") for n in range(3)]

    started = time.monotonic()

    outcomes = [dispatcher.send(message_id) for message_id in ids]

    # the third token is not free before two emission intervals have passed
    assert time.monotonic() - started >= 0.19
    assert outcomes == [SendOutcome(S.SENT)] * 3
    assert len(sandbox.records()) == 3
    assert [ledger.get(message_id).attempts for message_id in ids] == [1, 1, 1]


# -- text and backoff --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "sms_type", "category", "text", "expected"),
    [
        ("octopush", "FR", "marketing", "Soldes", "Soldes\nSTOP au 36111"),
        ("octopush", "FR", "marketing", "Soldes STOP au 12345", "Soldes STOP au 12345"),
        ("octopush", "FR", "notification", "Votre code", "Votre code"),
        ("octopush", "XXX", "marketing", "Soldes", "Soldes"),
        ("octopush", "WWW", "marketing", "Soldes", "Soldes"),
        ("primotexto", "FR", "marketing", "Soldes", "Soldes"),
        ("afilnet", "FR", "marketing", "Soldes", "Soldes"),
    ],
)
def test_text_for_adds_the_stop_mention_for_octopush_french_premium(
    dispatch_settings: Settings,
    make_dispatcher: MakeDispatcher,
    provider: str,
    sms_type: str,
    category: str,
    text: str,
    expected: str,
) -> None:
    octopush = dispatch_settings.octopush.model_copy(update={"sms_type": sms_type})
    dispatcher = make_dispatcher(dispatch_settings.model_copy(update={"octopush": octopush}))

    assert dispatcher._text_for(provider, text, category) == expected


def test_octopush_marketing_goes_out_with_the_stop_mention(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    # marketing is sent transactional=0: without the mention Octopush answers 121 (Octopush SMS API
    # docs)
    message_id = ledger.add_sms(
        "0612345626", "Soldes d'hiver", category="marketing", send_at=WEEKDAY_10AM
    )

    assert dispatcher.send(message_id) == SendOutcome(S.SENT)

    (record,) = sandbox.records("octopush")
    assert record["text"] == "Soldes d'hiver\nSTOP au 36111"
    # the producer added the mention, so the ledger holds (and counted parts of) what went out
    assert ledger.get(message_id).body == record["text"]


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    base=st.floats(min_value=0.001, max_value=60),
    cap=st.floats(min_value=0.05, max_value=3600),
    draw=st.floats(min_value=0, max_value=1),
)
def test_backoff_delay_stays_within_its_floor_and_cap(
    attempt: int, base: float, cap: float, draw: float
) -> None:
    delay = backoff_delay(attempt, base=base, cap=cap, rng=lambda: draw)

    assert 0.05 <= delay <= cap


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    base=st.floats(min_value=0.001, max_value=60),
    cap=st.floats(min_value=0.05, max_value=3600),
)
def test_backoff_ceiling_never_decreases_with_attempts(
    attempt: int, base: float, cap: float
) -> None:
    def ceiling(n: int) -> float:
        return backoff_delay(n, base=base, cap=cap, rng=lambda: 1.0)

    assert ceiling(attempt) <= ceiling(attempt + 1)
    if attempt > 64:  # base >= 0.001 s doubled 64 times is far above any cap
        assert ceiling(attempt) == cap


def test_backoff_doubles_from_the_base_until_the_cap() -> None:
    ceilings = [backoff_delay(n, base=2.0, cap=300.0, rng=lambda: 1.0) for n in range(1, 11)]

    assert ceilings == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0]
    assert backoff_delay(3, base=2.0, cap=300.0, rng=lambda: 0.0) == 0.05
