"""The demo batch ``postier demo`` sends through the local stack, followed live to final states."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlmodel import select

from postier.ledger.db import session_scope
from postier.ledger.models import InboundMessage
from postier.ledger.queries import get_message
from postier.ledger.states import FINAL_STATUSES
from postier.rules.phones import mask_number
from postier.stack import Stack

FINAL = FINAL_STATUSES
DEMO_INBOUND_SENDER = "33612345601"


def run_demo(stack: Stack, console: Console, *, timeout: float = 60.0) -> bool:
    """Send the demo batch; show progress and a summary. True when every message settled."""
    from postier.dispatch.producer import Producer

    settings = stack.settings
    producer = Producer(settings)
    soon = datetime.now(UTC) + timedelta(seconds=5)
    labels: dict[str, str] = {}

    def add(label: str, message_id: str) -> None:
        labels[message_id] = label

    add("SMS · Primotexto", producer.send_sms("06 12 34 56 78", "Votre code Postier : 283951").id)
    add("SMS · Primotexto", producer.send_sms("+33 6 98 76 54 32", "Votre colis arrive demain.").id)
    add(
        "SMS · Octopush",
        producer.send_sms("0612345679", "Votre colis est en route", provider="octopush").id,
    )
    add("WhatsApp text", producer.send_whatsapp("+33612345680", "Bonjour de Postier 👋").id)
    add(
        "WhatsApp template",
        producer.send_whatsapp_template(
            "+33612345682", "1", params={"name": "Jeanne", "orderid": "1042"}
        ).id,
    )
    add(
        "SMS · deferred 5 s",
        producer.send_sms("0612345683", "Rappel : rendez-vous à 15h", send_at=soon).id,
    )

    # a customer writes first (the poller brings it back), and the reply carries a file: a
    # file goes only into an open chat (Afilnet WhatsApp API docs: sendfile answers CHAT_NOT_FOUND
    # otherwise)
    if settings.sandbox_url:
        httpx.post(
            f"{settings.sandbox_url}/_sandbox/afilnet/whatsapp/inbound",
            json={
                "platformid": "100",
                "destination": DEMO_INBOUND_SENDER,
                "message": "Bonjour, pouvez-vous m'envoyer ma facture ?",
            },
            timeout=5,
        ).raise_for_status()
        add(
            "WhatsApp file",
            producer.send_whatsapp_file(
                f"+{DEMO_INBOUND_SENDER}",
                "https://example.com/facture.pdf",
                caption="Votre facture",
            ).id,
        )

    statuses: dict[str, str] = {}
    inbound_seen = False
    deadline = time.monotonic() + timeout
    with Progress(
        TextColumn("[bold]demo batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[states]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("batch", total=len(labels) + 1, states="")
        while time.monotonic() < deadline:
            with session_scope(producer.engine) as session:
                for message_id in labels:
                    message = get_message(session, message_id)
                    statuses[message_id] = str(message.status) if message else "missing"
                inbound_seen = bool(
                    session.exec(
                        select(InboundMessage).where(
                            InboundMessage.sender == f"+{DEMO_INBOUND_SENDER}"
                        )
                    ).first()
                )
            done = sum(1 for s in statuses.values() if s in FINAL) + int(inbound_seen)
            counts = Counter(statuses.values())
            progress.update(
                task, completed=done, states=" ".join(f"{k}:{v}" for k, v in sorted(counts.items()))
            )
            if done == len(labels) + 1:
                break
            time.sleep(0.5)

    table = Table("message", "what", "to", "status", title="Demo batch")
    with session_scope(producer.engine) as session:
        for message_id, label in labels.items():
            message = get_message(session, message_id)
            if message is not None:
                table.add_row(
                    message_id[:12], label, mask_number(message.recipient), str(message.status)
                )
    table.add_row(
        "—",
        "WhatsApp reply polled back",
        mask_number(f"+{DEMO_INBOUND_SENDER}"),
        "stored" if inbound_seen else "not yet",
    )
    console.print(table)
    return inbound_seen and all(s in FINAL for s in statuses.values())
