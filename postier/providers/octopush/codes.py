"""Octopush error codes and what each one means for the caller, in one table.

The legacy API answers HTTP 200 with ``error_code``; v1 answers HTTP 400/401 with ``code`` and
reuses the legacy numbers (docs/PROVIDERS.md, "Octopush"). Every code maps to one of Postier's error
types here, except 120, which is not a failure: see ``ALREADY_ACCEPTED``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from postier.config import HttpSettings
from postier.providers.errors import (
    AmbiguousError,
    AuthenticationError,
    ContentRejectedError,
    InsufficientCreditError,
    PermanentError,
    ProviderError,
    RecipientRejectedError,
    RetryableError,
)
from postier.providers.results import Provider, SendReceipt
from postier.providers.results import is_already_accepted as is_already_accepted

NAME: Final = Provider.OCTOPUSH.value
SUCCESS: Final = "000"
#: 120, "request_id already used": an earlier request with this request_id was accepted, so
#: this one is answered as a success that sent nothing new (exactly-once; see the package doc)
ALREADY_ACCEPTED: Final = "120"
#: recipients in one request: v1's documented maximum; legacy states none, the same is used
MAX_RECIPIENTS_PER_REQUEST: Final = 500


class CongestedError(RetryableError):
    """Octopush answered 153 (route congested) or 501 (connection error): nothing was sent.

    A ``RetryableError``; its own class lets the client retry these answers in-process
    without retrying the transport's own retryable errors a second time.
    """


@dataclass(frozen=True, slots=True)
class CodeMeaning:
    """What an Octopush code says, and the error type it raises (None: not an error)."""

    meaning: str
    error: type[ProviderError] | None


#: every Octopush code (docs/PROVIDERS.md, "Octopush") -> meaning and error type
CODES: Final[dict[str, CodeMeaning]] = {
    "100": CodeMeaning("the request was not a POST", PermanentError),
    "101": CodeMeaning("bad login or API key", AuthenticationError),
    "102": CodeMeaning("text too long", ContentRejectedError),
    "103": CodeMeaning("no recipients", RecipientRejectedError),
    "104": CodeMeaning("not enough credit", InsufficientCreditError),
    "106": CodeMeaning("invalid sender", ContentRejectedError),
    "107": CodeMeaning("no text", ContentRejectedError),
    "108": CodeMeaning("no login", AuthenticationError),
    "109": CodeMeaning("no API key", AuthenticationError),
    "112": CodeMeaning("no SMS type", ContentRejectedError),
    "117": CodeMeaning("no valid recipient number", RecipientRejectedError),
    ALREADY_ACCEPTED: CodeMeaning("request_id already used: accepted earlier", None),
    "121": CodeMeaning("premium text without the 'STOP au XXXXX' mention", ContentRejectedError),
    "123": CodeMeaning("request_keys given without request_sha1", PermanentError),
    "124": CodeMeaning("request_sha1 does not match", PermanentError),
    "125": CodeMeaning("undefined error", PermanentError),
    "150": CodeMeaning("no country for the number's prefix", RecipientRejectedError),
    "151": CodeMeaning("country not served", RecipientRejectedError),
    "152": CodeMeaning("low cost SMS not allowed to this destination", ContentRejectedError),
    "153": CodeMeaning("route congested", CongestedError),
    # 500: the request was received and not processed as asked; whether anything went out is
    # not said, so it is resolved like a lost answer: resend with the same request_id
    "500": CodeMeaning("cannot process the request", AmbiguousError),
    "501": CodeMeaning("connection error", CongestedError),
}


def normalise_code(value: Any) -> str:
    """``"000"``-style code from an ``error_code``/``code`` field (string or number)."""
    text = str(value).strip() if value is not None else ""
    return text.zfill(3) if text.isdigit() else text


def error_for(code: str, raw: Mapping[str, Any] | str, detail: str | None = None) -> ProviderError:
    """The typed error for Octopush ``code``; an unknown code is permanent."""
    entry = CODES.get(code)
    cls = entry.error if entry is not None and entry.error is not None else PermanentError
    meaning = entry.meaning if entry is not None else "unknown error code"
    message = f"Octopush answered {code}: {meaning}" + (f" ({detail})" if detail else "")
    return cls(message, provider=NAME, code=code, raw=raw)


def already_accepted_receipt(request_id: str | None, raw: Mapping[str, Any]) -> SendReceipt:
    """The receipt for answer 120: sent earlier, nothing new; no ticket is given back."""
    return SendReceipt(
        provider=Provider.OCTOPUSH,
        message_id=None,
        raw={**raw, "already_accepted": True, "request_id": request_id},
    )


T = TypeVar("T")


def call_with_code_retries(http: HttpSettings, call: Callable[[], T]) -> T:
    """Run ``call``, retrying a ``CongestedError`` answer (153, 501) a few times in-process.

    Same budget as the transport's short retries (``short_retry_attempts``, waits of
    0.05 s doubling, capped by ``max_inline_wait``); the last ``CongestedError`` propagates
    for the task to reschedule. Transport errors are not retried here: the transport did.
    """
    attempts = max(1, http.short_retry_attempts)
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except CongestedError:
            if attempt == attempts:
                raise
            time.sleep(min(http.max_inline_wait, 0.05 * 2 ** (attempt - 1)))
    raise AssertionError("unreachable")  # pragma: no cover
