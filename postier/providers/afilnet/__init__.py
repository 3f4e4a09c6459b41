"""Afilnet clients: one endpoint (``api``), one module per ``class``."""

from postier.providers.afilnet.api import AfilnetApi
from postier.providers.afilnet.groups import AfilnetGroups, Contact

__all__ = [
    "AfilnetApi",
    "AfilnetGroups",
    "Contact",
]
