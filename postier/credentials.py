"""Which settings are a provider account's credentials, and the line that names the missing ones.

A command that reaches a provider with empty credentials would otherwise end on whatever the
wire says first (a connection error, a 401): the user must learn which settings to set, or
that a ``postier up`` running in this directory would have lent them the sandbox's.
"""

from __future__ import annotations

from typing import Final

from pydantic import SecretStr

from postier.config import Settings

#: how each provider writes its own name
PROVIDER_NAMES: Final = {"afilnet": "Afilnet", "primotexto": "Primotexto", "octopush": "Octopush"}

#: the fields of each provider's settings that make up its credentials
CREDENTIAL_FIELDS: Final = {
    "afilnet": ("user", "password"),
    "primotexto": ("api_key",),
    "octopush": ("login", "api_key"),
}


class MissingCredentials(Exception):
    """A command needs a provider whose credentials are not set; the message says which."""

    def __init__(self, provider: str, missing: list[str]) -> None:
        self.provider = provider
        self.missing = missing
        super().__init__(
            f"{PROVIDER_NAMES[provider]} has no credentials: set {' and '.join(missing)}"
            ", or run `postier up` in this directory to use the sandbox"
        )


def setting_name(provider: str, field: str) -> str:
    """``("octopush", "api_key")`` → ``POSTIER_OCTOPUSH__API_KEY``."""
    return f"POSTIER_{provider.upper()}__{field.upper()}"


def missing_credentials(settings: Settings, provider: str) -> list[str]:
    """The settings of ``provider``'s credentials that are empty, as environment variables."""
    account = getattr(settings, provider)
    missing = []
    for field in CREDENTIAL_FIELDS[provider]:
        value = getattr(account, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not value:
            missing.append(setting_name(provider, field))
    return missing


def require_credentials(settings: Settings, provider: str) -> None:
    """Raise ``MissingCredentials`` when any credential of ``provider`` is empty."""
    missing = missing_credentials(settings, provider)
    if missing:
        raise MissingCredentials(provider, missing)


__all__ = [
    "CREDENTIAL_FIELDS",
    "PROVIDER_NAMES",
    "MissingCredentials",
    "missing_credentials",
    "require_credentials",
    "setting_name",
]
