"""What application code imports to send SMS and WhatsApp messages through Postier.

    from producers import send_sms
    handle = send_sms("06 12 34 56 78", "Votre code : 283951")

The module-level functions use one ``Producer`` built from the environment's settings;
build your own ``Producer(settings)`` to use several configurations in one process.
"""

from __future__ import annotations

from typing import Any

from postier.dispatch.producer import BulkResult, MessageHandle, Producer, default_producer
from postier.dispatch.rows import SmsRequest

__all__ = [
    "BulkResult",
    "MessageHandle",
    "Producer",
    "SmsRequest",
    "default_producer",
    "send_many",
    "send_sms",
    "send_whatsapp",
    "send_whatsapp_file",
    "send_whatsapp_template",
]


def send_sms(to: str, text: str, **options: Any) -> MessageHandle:
    """Queue one SMS; see ``Producer.send_sms``."""
    return default_producer().send_sms(to, text, **options)


def send_whatsapp(to: str, text: str, **options: Any) -> MessageHandle:
    """Queue one WhatsApp text; see ``Producer.send_whatsapp``."""
    return default_producer().send_whatsapp(to, text, **options)


def send_whatsapp_file(to: str, file_url: str, **options: Any) -> MessageHandle:
    """Queue one WhatsApp file; see ``Producer.send_whatsapp_file``."""
    return default_producer().send_whatsapp_file(to, file_url, **options)


def send_whatsapp_template(to: str, template_id: str, **options: Any) -> MessageHandle:
    """Queue one WhatsApp template message; see ``Producer.send_whatsapp_template``."""
    return default_producer().send_whatsapp_template(to, template_id, **options)


def send_many(requests: list[SmsRequest]) -> BulkResult:
    """Queue many SMS at once; see ``Producer.send_many``."""
    return default_producer().send_many(requests)
