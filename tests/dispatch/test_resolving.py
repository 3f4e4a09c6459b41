"""``resolve_ambiguous`` on ``unknown`` rows: each provider's lookup, and what happens when the
lookup itself cannot answer. The paths through ``Dispatcher.send`` are in ``test_sending``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from postier.dispatch.resolving import Resolution, resolve_ambiguous
from postier.dispatch.sending import Dispatcher
from postier.ledger.db import session_scope
from postier.ledger.models import Message, MessageStatus
from postier.ledger.queries import claim_for_sending
from postier.ledger.states import transition
from postier.providers import registry
from postier.providers.base import OutgoingSms
from postier.providers.profile import ResendLookup
from postier.providers.results import Provider
from postier.sandbox import Sandbox
from postier.sandbox.afilnet.whatsapp import inject_inbound
from tests.dispatch.conftest import Ledger

S = MessageStatus


def make_unknown(ledger: Ledger, message_id: str, *, started: datetime | None = None) -> Message:
    """Claim the row (as a worker would, at ``started``), then lose the answer: ``unknown``."""
    with session_scope(ledger.engine) as session:
        assert claim_for_sending(session, message_id, now=started) is not None
        assert transition(session, message_id, S.SENDING, S.UNKNOWN, detail="test: answer lost")
    return ledger.get(message_id)


def test_primotexto_number_without_any_message_is_queued_again(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message = make_unknown(ledger, ledger.add_sms("0612345640"))

    assert resolve_ambiguous(dispatcher, message) is Resolution.RESEND

    assert ledger.status(message.id) == S.QUEUED
    last = ledger.events(message.id)[-1]
    assert (last.from_status, last.to_status) == (S.UNKNOWN, S.QUEUED)
    assert last.detail is not None and last.detail.startswith("lookup: not received")
    assert sandbox.records() == []


def test_primotexto_message_found_by_number_is_marked_sent_with_its_id(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message = make_unknown(ledger, ledger.add_sms("0612345641"))
    # what the lost request did at the provider
    receipt = dispatcher.clients.primotexto.send_sms(
        OutgoingSms(recipients=(message.recipient,), text=message.body)
    )

    assert resolve_ambiguous(dispatcher, message) is Resolution.SENT

    stored = ledger.get(message.id)
    assert stored.status == S.SENT
    assert stored.provider_message_id == receipt.message_id


def test_a_lookup_that_fails_holds_the_message_for_a_person(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message = make_unknown(ledger, ledger.add_sms("0612345642"))
    sandbox.set_faults("primotexto", retry_after=None, rate_503=1.0)

    assert resolve_ambiguous(dispatcher, message) is Resolution.HOLD

    assert ledger.status(message.id) == S.UNKNOWN
    assert sandbox.records() == []


def test_octopush_resend_whose_answer_is_lost_again_holds(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    message = make_unknown(ledger, ledger.add_sms("0612345643", provider="octopush"))
    sandbox.set_faults("octopush", script=["drop_after"])

    assert resolve_ambiguous(dispatcher, message) is Resolution.HOLD

    assert ledger.status(message.id) == S.UNKNOWN
    # the resend itself went out once; a later lookup (same request_id) would say 120
    assert len(sandbox.records("octopush")) == 1
    assert resolve_ambiguous(dispatcher, message) is Resolution.SENT
    assert len(sandbox.records("octopush")) == 1
    assert ledger.status(message.id) == S.SENT


def test_whatsapp_chat_without_our_text_is_queued_again(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    # the chat exists (the customer wrote first) but holds nothing we sent
    inject_inbound(sandbox.afilnet.state, "100", "33612345644", "Bonjour ?")
    message = make_unknown(ledger, ledger.add_whatsapp("+33612345644", "Votre colis arrive"))

    assert resolve_ambiguous(dispatcher, message) is Resolution.RESEND
    assert ledger.status(message.id) == S.QUEUED


def test_whatsapp_same_text_sent_long_before_our_attempt_is_not_ours(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    text = "Votre code : 4242"
    sandbox.core.clock.advance(-3600)
    dispatcher.clients.whatsapp.send_message("100", "+33612345645", text)
    sandbox.core.clock.advance(3600)
    message = make_unknown(ledger, ledger.add_whatsapp("+33612345645", text))

    assert resolve_ambiguous(dispatcher, message) is Resolution.RESEND


def test_whatsapp_same_text_sent_during_our_attempt_is_ours(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    text = "Votre code : 4243"
    started = datetime.now(UTC) - timedelta(seconds=1)
    receipt = dispatcher.clients.whatsapp.send_message("100", "+33612345646", text)
    message = make_unknown(ledger, ledger.add_whatsapp("+33612345646", text), started=started)

    assert resolve_ambiguous(dispatcher, message) is Resolution.SENT

    stored = ledger.get(message.id)
    assert stored.status == S.SENT
    assert stored.provider_message_id == receipt.message_id


def test_afilnet_sms_is_held_by_default(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox
) -> None:
    assert dispatcher.settings.dispatch.ambiguous_policy == "hold"
    message = make_unknown(ledger, ledger.add_sms("0612345647", provider="afilnet"))

    assert resolve_ambiguous(dispatcher, message) is Resolution.HOLD

    assert ledger.status(message.id) == S.UNKNOWN
    assert sandbox.core.request_counts == {}  # no lookup exists, none was tried


def test_the_lookup_is_the_one_the_providers_profile_names(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Primotexto's profile says "no lookup can tell": the policy (hold) decides, nothing is asked
    monkeypatch.setitem(
        registry._PROFILES,
        Provider.PRIMOTEXTO,
        replace(registry.PROFILES[Provider.PRIMOTEXTO], resend_lookup=ResendLookup.NONE),
    )
    held = make_unknown(ledger, ledger.add_sms("0612345650"))

    assert resolve_ambiguous(dispatcher, held) is Resolution.HOLD
    assert ledger.status(held.id) == S.UNKNOWN
    assert sandbox.core.request_counts == {}

    # and "send the same request again": the message goes out once more under its own id
    monkeypatch.setitem(
        registry._PROFILES,
        Provider.PRIMOTEXTO,
        replace(registry.PROFILES[Provider.PRIMOTEXTO], resend_lookup=ResendLookup.SAME_REQUEST),
    )
    assert resolve_ambiguous(dispatcher, held) is Resolution.SENT
    assert ledger.status(held.id) == S.SENT
    assert sandbox.core.request_counts == {"primotexto": 1}


def test_a_lookup_by_number_the_client_cannot_make_holds(
    dispatcher: Dispatcher, ledger: Ledger, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Afilnet's SMS client has no lookup by number: a profile claiming one is not believed
    monkeypatch.setitem(
        registry._PROFILES,
        Provider.AFILNET,
        replace(registry.PROFILES[Provider.AFILNET], resend_lookup=ResendLookup.BY_NUMBER),
    )
    message = make_unknown(ledger, ledger.add_sms("0612345651", provider="afilnet"))

    assert resolve_ambiguous(dispatcher, message) is Resolution.HOLD
    assert ledger.status(message.id) == S.UNKNOWN
    assert sandbox.records() == []
