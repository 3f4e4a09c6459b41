"""The API's request and answer bodies (pydantic): they make the OpenAPI document.

They check the JSON's shape only (types, required fields, unknown fields refused); every rule
on the values (numbers, texts, senders, times, routes) is the producers', so an API client
meets exactly the rules, fields and rule names of ``producers.send_sms`` and friends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Category = Literal["notification", "marketing"]
Priority = Literal["transactional", "bulk"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmsIn(_Strict):
    """One SMS."""

    to: str = Field(description="E.164 (+33612345678) or national (06 12 34 56 78)")
    text: str
    sender: str | None = Field(default=None, description="sender id (3-11 letters or digits)")
    category: Category = "notification"
    send_at: datetime | None = Field(
        default=None, description="ISO 8601 with an offset; within 5 minutes past to 366 days"
    )
    provider: str | None = Field(default=None, description="primotexto, octopush or afilnet")
    priority: Priority | None = Field(default=None, description="the lane (default by category)")
    callback_url: str | None = Field(
        default=None,
        description="https URL this message's status events go to (instead of the global one)",
    )


class BulkSmsIn(SmsIn):
    """One SMS of a bulk request."""

    idempotency_key: str | None = Field(
        default=None, description="this row's own key (else the header's key and its position)"
    )


class WhatsAppIn(_Strict):
    """One WhatsApp message: ``type`` says which of text, file or template."""

    type: Literal["text", "file", "template"] = "text"
    to: str
    #: type text
    text: str | None = None
    #: type file
    file_url: str | None = Field(default=None, description="type file: a public https URL")
    file_type: str | None = Field(default=None, description="type file: image, video, document")
    caption: str | None = None
    thumb_url: str | None = None
    #: type template
    template_id: str | None = None
    params: dict[str, Any] | None = Field(
        default=None, description="type template: {{name}} values"
    )
    header: dict[str, Any] | None = Field(
        default=None,
        description='type template: {"file": url} or {"latitude", "longitude", "name", "address"}',
    )
    platform_id: str | None = None
    send_at: datetime | None = None
    provider: str | None = None
    priority: Priority | None = None
    callback_url: str | None = Field(
        default=None,
        description="https URL this message's status events go to (instead of the global one)",
    )


class MessageAccepted(BaseModel):
    """A message the ledger holds: 201 when new, 200 when an Idempotency-Key replay."""

    id: str
    status: str
    duplicate: bool = Field(description="true: it was already there (same idempotency key)")


class BulkIn(_Strict):
    """Many SMS at once; each is checked alone and the good ones are queued."""

    messages: list[dict[str, Any]] = Field(
        description="up to 100,000 SMS, each an SmsIn with an optional idempotency_key",
        json_schema_extra={"items": BulkSmsIn.model_json_schema()},
    )


class BulkAccepted(BaseModel):
    index: int
    id: str
    status: str
    duplicate: bool


class RowError(BaseModel):
    field: str
    rule: str
    message: str


class BulkRejected(BaseModel):
    index: int
    errors: list[RowError]


class BulkOut(BaseModel):
    """What was queued and what was refused, by position in ``messages``."""

    accepted: list[BulkAccepted]
    rejected: list[BulkRejected]


class EventOut(BaseModel):
    at: datetime
    from_status: str | None
    to_status: str
    provider_status: str | None
    detail: str | None


class MessageOut(BaseModel):
    """A message and its history (numbers masked unless the key has the ``numbers`` scope)."""

    id: str
    channel: str
    kind: str
    provider: str | None
    to: str
    status: str
    category: str
    lane: str
    attempts: int
    parts: int | None
    cost: str | None
    send_at: datetime | None
    campaign_id: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    events: list[EventOut]


class CancelOut(BaseModel):
    id: str
    status: str


class CampaignIn(_Strict):
    """A campaign: one message (``text`` or ``template_id``) and one audience."""

    name: str
    text: str | None = None
    template_id: str | None = None
    params: dict[str, Any] | None = None
    header: dict[str, Any] | None = None
    platform_id: str | None = None
    group: str | None = Field(default=None, description="an Afilnet group id")
    csv: str | None = Field(default=None, description="CSV text, header first")
    csv_columns: dict[str, str] | None = Field(
        default=None, description="field name → CSV header, e.g. {mobile: Téléphone}"
    )
    recipients: list[str | dict[str, str]] | None = None
    category: Category = "marketing"
    provider: str | None = None
    route: str | None = None
    sender: str | None = None
    send_at: datetime | None = None
    phone_field: str = "mobile"
    chunk_size: int | None = None
    callback_url: str | None = Field(
        default=None, description="https URL every message's status events go to"
    )


class CampaignCreated(BaseModel):
    id: str
    status: str
    starts_at: datetime | None
    duplicate: bool = False


class RejectionOut(BaseModel):
    line: int
    field: str
    rule: str
    message: str


class CampaignOut(BaseModel):
    """A campaign's progress: fan-out, messages by state, refused contacts."""

    id: str
    name: str
    status: str
    starts_at: datetime | None
    error: str | None
    audience_size: int | None
    messages: int
    contacts_done: int
    invalid: int
    states: dict[str, int]
    parts: int
    cost: str | None
    rejections: list[RejectionOut]


class ControlOut(BaseModel):
    id: str
    changed: bool
    status: str | None
    messages: int
    detail: str


class HealthOut(BaseModel):
    ok: bool
    checks: dict[str, str]


class ProblemOut(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[RowError] | None = None
