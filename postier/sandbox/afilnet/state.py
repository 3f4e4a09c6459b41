"""The simulated Afilnet account: WhatsApp channels and chats, groups and contacts, SMS, credit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from postier.sandbox.accounts import SANDBOX_ACCOUNTS
from postier.sandbox.core import SandboxCore, SentRecord

#: Afilnet is a Spanish service; its ``yyyy-mm-dd hh:mm:ss`` times are taken as Madrid local
#: time (unconfirmed; same offset as Paris). The client assumes the same.
AFILNET_TIMEZONE = ZoneInfo("Europe/Madrid")
AFILNET_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def afilnet_datetime(timestamp: float) -> str:
    """``timestamp`` (Unix seconds) as Afilnet writes times: ``yyyy-mm-dd hh:mm:ss``, local."""
    return datetime.fromtimestamp(timestamp, AFILNET_TIMEZONE).strftime(AFILNET_DATETIME_FORMAT)


class AfilnetFault(Exception):
    """An Afilnet error code to answer with ``{"status": "error", "error": code}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class ChatMessage:
    """One WhatsApp message in a chat, inbound (``sent`` False) or outbound."""

    messageid: str
    platformid: str
    destination: str
    message: str
    sent: bool
    status: str
    datetime: str
    read: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    #: the provider's record of an outbound message; its delivery state drives ``status``
    record: SentRecord | None = None


@dataclass
class Group:
    idgroup: str
    name: str
    type: str
    fields: list[str]
    countryiso3: str | None = None
    contacts: dict[str, dict[str, str]] = field(default_factory=dict)


class AfilnetState:
    """Everything the simulated Afilnet account holds; reset between tests."""

    def __init__(self, core: SandboxCore) -> None:
        self.core = core
        self.reset()

    def reset(self) -> None:
        self.platforms: set[str] = {SANDBOX_ACCOUNTS.afilnet_platform_id}
        #: (platformid, destination) -> messages in order
        self.chats: dict[tuple[str, str], list[ChatMessage]] = {}
        #: template id -> template text with {{name}} placeholders
        self.templates: dict[str, str] = {
            "1": "Bonjour {{name}}, votre commande {{orderid}} est prête.",
            "2": "Votre code est {{code}}.",
        }
        self.groups: dict[str, Group] = {}
        self.credits = SANDBOX_ACCOUNTS.afilnet_credits
        self.sms: dict[str, dict[str, Any]] = {}
        #: answer shapes third-party clients report (``POST /_sandbox/afilnet/answers``):
        #: ``status`` in upper case (SUCCESS/ERROR), and a getdeliverystatus result of one
        #: message as that object rather than a list of one
        self.status_case: Literal["lower", "upper"] = "lower"
        self.single_object = False

    def status_word(self, word: str) -> str:
        """``success`` or ``error`` in the case this account answers."""
        return word.upper() if self.status_case == "upper" else word
