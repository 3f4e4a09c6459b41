"""The one error hierarchy every provider client raises.

Each error says what the caller must decide, not what went wrong on the wire:

- ``PermanentError``: sending again will fail the same way (bad number, bad text, bad
  credentials, no credit). Fail the message at once.
- ``RetryableError``: the request surely did not take effect (connection refused, pool
  exhausted, 429/503, a provider's "congested" code). Retry, after ``retry_after`` seconds
  when the provider said so.
- ``AmbiguousError``: the request may have reached the provider (read timeout, 5xx or a
  dropped connection after the body was sent). Look the message up before sending again.

``ProviderError`` carries the provider's name, its own error code and the raw answer so the
ledger can keep them for audits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ProviderError(Exception):
    """Base of every error raised by a provider client."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        code: str | None = None,
        raw: Mapping[str, Any] | str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.code = code
        self.raw = raw

    def __str__(self) -> str:
        code = f" [{self.code}]" if self.code else ""
        return f"{self.provider}{code}: {self.message}"


class PermanentError(ProviderError):
    """Sending again cannot succeed; fail the message."""


class AuthenticationError(PermanentError):
    """Credentials refused, or API access disabled for the account."""


class InsufficientCreditError(PermanentError):
    """The account has no credit left for this send."""


class RecipientRejectedError(PermanentError):
    """The provider refuses this recipient: invalid, unassigned, fixed line, blacklisted, STOP."""


class ContentRejectedError(PermanentError):
    """The provider refuses the text, sender, file or schedule of the message."""


class NotFoundError(PermanentError):
    """A channel, chat, group or contact named in the call does not exist for this account."""


class UnsupportedFeatureError(PermanentError):
    """The provider has no such feature; raised instead of silently dropping an option."""


class RetryableError(ProviderError):
    """The request did not take effect; it is safe to send it again."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        code: str | None = None,
        raw: Mapping[str, Any] | str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, code=code, raw=raw)
        self.retry_after = retry_after


class AmbiguousError(ProviderError):
    """The request may have reached the provider; resolve by a status lookup before resending."""
