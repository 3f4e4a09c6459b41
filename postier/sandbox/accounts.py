"""The credentials the sandbox accepts. They are not secrets: the sandbox is local and public."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SandboxAccounts:
    afilnet_user: str = "sandbox@postier.test"
    afilnet_password: str = "sandbox-password"  # noqa: S105 - the simulator's fixed credential
    afilnet_platform_id: str = "100"
    primotexto_api_key: str = "sandbox-primotexto-key"
    octopush_login: str = "sandbox@postier.test"
    octopush_api_key: str = "sandbox-octopush-key"
    #: starting balances (credits for Afilnet/Primotexto, euros for Octopush)
    afilnet_credits: float = 100_000.0
    primotexto_credits: float = 100_000.0
    octopush_balance: float = 100_000.0


SANDBOX_ACCOUNTS = SandboxAccounts()
