"""Afilnet: one HTTP endpoint for WhatsApp, SMS and contacts (``class`` + ``method``)."""

from postier.providers.afilnet.api import AfilnetApi
from postier.providers.afilnet.groups import AfilnetGroups, Contact
from postier.providers.afilnet.sms import AfilnetSms
from postier.providers.afilnet.whatsapp import AfilnetWhatsApp

__all__ = ["AfilnetApi", "AfilnetGroups", "AfilnetSms", "AfilnetWhatsApp", "Contact"]
