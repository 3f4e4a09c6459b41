"""The Afilnet HTTP endpoint: one URL, ``class`` + ``method``, credentials never in the URL.

Every call is a POST (urlencoded form) with the credentials in the body, or in a Basic
``Authorization`` header when ``settings.afilnet.auth == "basic"`` (docs/PROVIDERS.md: GET would
put the password in server and proxy logs). Answers are HTTP 200 with
``{"status": "success"|"error", ...}``; third-party clients report upper-case statuses too,
so the comparison ignores case.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from postier.config import AfilnetSettings, HttpSettings
from postier.providers.errors import (
    AuthenticationError,
    ContentRejectedError,
    InsufficientCreditError,
    NotFoundError,
    PermanentError,
    ProviderError,
    RecipientRejectedError,
    RetryableError,
)
from postier.providers.results import Provider
from postier.providers.transport import Transport

NAME = Provider.AFILNET.value

#: Afilnet writes and reads times as ``yyyy-mm-dd hh:mm:ss`` with no zone (Afilnet WhatsApp API
#: docs). Afilnet is a Spanish service: we take them as Madrid local time (unconfirmed; same as
#: Paris).
TIMEZONE = ZoneInfo("Europe/Madrid")
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_datetime(value: object) -> datetime | None:
    """An Afilnet time as an aware datetime; None when empty or not in Afilnet's format."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.strptime(value.strip(), DATETIME_FORMAT).replace(tzinfo=TIMEZONE)
    except ValueError:
        return None


def format_datetime(when: datetime) -> str:
    """An aware datetime as Afilnet expects it (``scheduledatetime``): Madrid local time."""
    if when.tzinfo is None:
        raise ValueError("when: a timezone-aware datetime is required")
    return when.astimezone(TIMEZONE).strftime(DATETIME_FORMAT)


#: Afilnet error code -> error class (docs/PROVIDERS.md, "Afilnet"). Unknown codes: permanent.
ERROR_CLASSES: dict[str, type[ProviderError]] = {
    "MISSING_USER": AuthenticationError,
    "MISSING_PASSWORD": AuthenticationError,
    "INCORRECT_USER_PASSWORD": AuthenticationError,
    "MISSING_CLASS": PermanentError,
    "MISSING_METHOD": PermanentError,
    "MISSING_COMPULSORY_PARAM": PermanentError,
    "INCORRECT_CLASS": PermanentError,
    "INCORRECT_METHOD": PermanentError,
    "NO_CREDITS": InsufficientCreditError,
    "NO_ROUTE_AVAILABLE": RetryableError,
    "CHANNEL_NOT_FOUND": NotFoundError,
    "CHAT_NOT_FOUND": NotFoundError,
    "INCORRECT_FILETYPE": ContentRejectedError,
    "INCORRECT_FILEURL": ContentRejectedError,
    "INCORRECT_THUMBURL": ContentRejectedError,
    "INCORRECT_TYPE": ContentRejectedError,
    "MISSING_MAIN_FIELD": ContentRejectedError,
    "NOT_ACCESS_TO_GROUP": NotFoundError,
    "NOT_ACCESS_TO_CONTACT": NotFoundError,
    "COUNTRY_NOT_FOUND": ContentRejectedError,
    "CONTACT_EXISTS": PermanentError,
    "INCORRECT_DESTINATION": RecipientRejectedError,
}


def error_for(code: str, raw: Mapping[str, Any]) -> ProviderError:
    """The typed error for an Afilnet error code."""
    cls = ERROR_CLASSES.get(code, PermanentError)
    return cls(f"Afilnet answered {code}", provider=NAME, code=code, raw=raw)


class AfilnetApi:
    """Calls ``class``/``method`` on the Afilnet endpoint and returns the ``result``."""

    def __init__(
        self,
        settings: AfilnetSettings,
        http: HttpSettings,
        pool: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.transport = Transport(Provider.AFILNET, http, pool)

    def call(
        self,
        cls: str,
        method: str,
        params: Mapping[str, str],
        *,
        changes_state: bool,
    ) -> Any:
        """POST one call; return ``result`` (None when the method has none), raise on error."""
        data: dict[str, str] = {"class": cls, "method": method, **params}
        auth: tuple[str, str] | None = None
        password = self.settings.password.get_secret_value()
        if self.settings.auth == "basic":
            auth = (self.settings.user, password)
        else:
            data["user"] = self.settings.user
            data["password"] = password
        response = self.transport.request(
            "POST", self.settings.base_url, data=data, auth=auth, changes_state=changes_state
        )
        try:
            body = response.json()
        except ValueError as exc:
            raise error_for("INVALID_ANSWER", {"text": response.text[:500]}) from exc
        if not isinstance(body, dict):
            raise error_for("INVALID_ANSWER", {"body": body})
        status = str(body.get("status", "")).lower()
        if status == "success":
            return body.get("result")
        code = str(body.get("error") or "UNKNOWN_ERROR").upper()
        raise error_for(code, body)

    def close(self) -> None:
        self.transport.close()
