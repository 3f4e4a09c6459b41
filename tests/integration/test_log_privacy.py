"""No full number and no secret in any role's log after sending through every provider.

The stack logs at INFO (``log_level="info"``): the worker, beat and the webhook receiver
write what a production deployment would. Each message goes to a number of its own; every
form of it (E.164, national, ``33…`` as Afilnet writes it, ``%2B33…`` inside a URL) is looked
for in every ``*.log`` of the stack's directory, and so is every secret of its settings.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select

from postier.ledger.db import session_scope
from postier.ledger.models import InboundMessage, MessageStatus
from postier.logs import known_secrets
from postier.sandbox import Sandbox
from postier.stack import Stack
from producers.messages import Producer
from tests.integration.conftest import WaitFor, wait_until

DONE = (MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED)


def number_forms(national: str) -> list[str]:
    """``0612345678`` as it may be written: its 9 significant digits are in every form."""
    significant = national[1:]
    return [national, f"+33{significant}", f"33{significant}", f"%2B33{significant}", significant]


def wait_for_inbound(ledger: Engine, sender: str, timeout: float = 15.0) -> None:
    def stored() -> bool:
        with session_scope(ledger) as session:
            return (
                session.exec(select(InboundMessage).where(InboundMessage.sender == sender)).first()
                is not None
            )

    wait_until(stored, f"an inbound message from {sender}", timeout)


def test_no_number_or_secret_in_any_log(
    stack: Stack, live_sandbox: Sandbox, producer: Producer, wait_for: WaitFor, ledger: Engine
) -> None:
    numbers = {
        "primotexto": "0612340701",
        "octopush": "0612340702",
        "afilnet": "0612340703",
        "whatsapp": "0612340704",
        "octopush inbound": "0612340705",
        "whatsapp inbound": "0612340706",
        "primotexto lost answer": "0612340707",
    }
    # an answer lost on the way back: the worker looks the number up (``?identifier=+33…``)
    live_sandbox.set_faults("primotexto", script=["drop_after"])
    lost = producer.send_sms(numbers["primotexto lost answer"], "Votre code : 9876")
    settled = wait_for(lost.id, MessageStatus.SENT, *DONE, MessageStatus.UNKNOWN)
    assert settled != MessageStatus.FAILED
    handles = [
        producer.send_sms(numbers["primotexto"], "Votre code : 1234"),
        producer.send_sms(numbers["octopush"], "Votre colis", provider="octopush"),
        producer.send_sms(numbers["afilnet"], "Bonjour", provider="afilnet"),
        producer.send_whatsapp(numbers["whatsapp"], "Bonjour"),
    ]
    with live_sandbox.core.lock:
        live_sandbox.octopush.account.add_inbound("+33" + numbers["octopush inbound"][1:], "STOP")
    from postier.sandbox.afilnet.whatsapp import inject_inbound

    inject_inbound(live_sandbox.afilnet.state, "100", "33" + numbers["whatsapp inbound"][1:], "Oui")
    for handle in handles:
        assert wait_for(handle.id, *DONE) == MessageStatus.DELIVERED
    wait_for_inbound(ledger, "+33" + numbers["octopush inbound"][1:])
    wait_for_inbound(ledger, "+33" + numbers["whatsapp inbound"][1:])

    settings = stack.settings
    secrets = known_secrets(settings)
    assert settings.webhooks.secret.get_secret_value() in secrets
    logs = {
        path.name: path.read_text(encoding="utf-8") for path in Path(stack.workdir).glob("*.log")
    }
    assert {"worker.log", "beat.log", "webhooks.log"} <= set(logs)
    assert "delivered" in logs["worker.log"] or "sent" in logs["worker.log"]
    for name, text in logs.items():
        for number in numbers.values():
            for form in number_forms(number):
                assert form not in text, f"{form} in {name}"
        for secret in secrets:
            assert secret not in text, f"a secret in {name}"
