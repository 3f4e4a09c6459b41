"""The ledger's tables: messages, their delivery events, inbound messages, campaigns, opt-outs.

The ledger is the source of truth (docs/ARCHITECTURE.md, "Data flow"): only message ids cross the
broker, so bodies, numbers and provider answers live here. Message ids are made by the caller
(``new_message_id``) so a bulk insert knows every id without ``RETURNING``.

Enumerations are stored as plain VARCHAR (no database enum type and no CHECK constraint), so a
new status or kind needs no migration; the state machine (``states.py``) guards the values.
JSON columns are JSONB on PostgreSQL. They are not change-tracked: assign a new dict to
``payload``/``spec`` rather than mutating it in place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlmodel import Field, SQLModel

from postier.ledger.columns import UTCDateTime, bigint_pk_type, json_type

#: constraint names Alembic can address later (and that are the same on both backends)
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class MessageStatus(StrEnum):
    """Where a message is in its life (docs/ARCHITECTURE.md, "Message states")."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: the send may or may not have reached the provider; settled by a lookup, policy or person
    UNKNOWN = "unknown"
    #: sent, but no delivery state came within the provider's receipt window (72 h by default):
    #: final, polled no more; a receipt that still comes settles it
    EXPIRED = "expired"


#: the statuses a message is still moving through; all others are final (``states.py``)
LIVE_STATUSES: Final[tuple[MessageStatus, ...]] = (
    MessageStatus.QUEUED,
    MessageStatus.SCHEDULED,
    MessageStatus.SENDING,
    MessageStatus.SENT,
    MessageStatus.UNKNOWN,
)
#: the predicate of the partial indexes over live rows, as SQL. Queries that read live rows
#: repeat it verbatim (``in_live_index``): SQLite only uses a partial index when
#: the query's WHERE contains the index's WHERE term for term (a bound parameter is no match).
LIVE_SQL: Final[str] = (
    "status IN (" + ", ".join(f"'{status.value}'" for status in LIVE_STATUSES) + ")"
)
#: the predicate of the partial index over the rows of Octopush batches not settled yet
#: (``postier.dispatch.batches`` tags them ``batch:<request id>``)
BATCH_UNSETTLED_SQL: Final[str] = (
    "status IN ('sending', 'unknown') AND provider_message_id LIKE 'batch:%'"
)
#: the predicate of the partial index over inbound messages the hook has not run for
UNDISPATCHED_SQL: Final[str] = "hook_dispatched_at IS NULL"


#: index names the queries pin on SQLite (``INDEXED BY``); a test checks each plan uses it
IX_STATUS_SEND_AT: Final = "ix_messages_status_send_at"
IX_CAMPAIGN_STATUS: Final = "ix_messages_campaign_id_status"
IX_PROVIDER_MESSAGE_ID: Final = "ix_messages_provider_message_id"
IX_RECIPIENT: Final = "ix_messages_recipient"
IX_RECIPIENT_HASH: Final = "ix_messages_recipient_hash_created_at_id"
IX_STATUS_CREATED: Final = "ix_messages_status_created_at_id"
IX_LIVE: Final = "ix_messages_live"
IX_BATCH_UNSETTLED: Final = "ix_messages_batch_unsettled"
IX_UNDISPATCHED: Final = "ix_inbound_messages_undispatched"
#: the index SQLite makes for the TEXT primary key of ``messages`` (its first constraint)
SQLITE_MESSAGES_PK: Final = "sqlite_autoindex_messages_1"


def batch_unsettled_rows() -> sa.TextClause:
    """``BATCH_UNSETTLED_SQL`` as a WHERE term, verbatim, so both databases use its index."""
    return sa.text(BATCH_UNSETTLED_SQL)


class _InLiveIndex(sa.sql.expression.ColumnElement[Any]):
    """``LIVE_SQL`` on SQLite, ``true`` elsewhere: see ``in_live_index``."""

    # not Boolean: SQLAlchemy would render "… = 1" on SQLite, which has no boolean type
    type = sa.types.NullType()
    inherit_cache = True


@compiles(_InLiveIndex, "sqlite")
def _in_live_index_sqlite(_element: _InLiveIndex, _compiler: Any, **_kw: Any) -> str:
    return LIVE_SQL


@compiles(_InLiveIndex)
def _in_live_index_default(_element: _InLiveIndex, _compiler: Any, **_kw: Any) -> str:
    return "true"


def in_live_index() -> sa.sql.expression.ColumnElement[Any]:
    """The partial index's predicate, for a query whose status is already a live one.

    SQLite uses ``ix_messages_live`` only when the query repeats its WHERE verbatim; PostgreSQL
    proves it from ``status = 'sent'`` itself, and a repeated predicate would make it count
    the status twice in its estimate (and pick ``ix_messages_status_send_at`` and a sort of
    every sent row, measured 480 ms at 5 million messages): there it is ``true``.
    """
    return _InLiveIndex()


class Lane(StrEnum):
    """Which send queue a message travels on (``postier.dispatch.lanes``).

    Transactional messages (one-time codes, notifications, WhatsApp) have workers of their own
    that bulk work never occupies; bulk (large ``send_many``, campaigns, marketing) has the rest.
    """

    TRANSACTIONAL = "transactional"
    BULK = "bulk"


class Channel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"


class MessageKind(StrEnum):
    """What the provider call is: plain SMS, or one of Afilnet's WhatsApp methods.

    See docs/PROVIDERS.md, "Afilnet, class=whatsapp".
    """

    SMS = "sms"
    WHATSAPP_TEXT = "whatsapp_text"
    WHATSAPP_FILE = "whatsapp_file"
    WHATSAPP_TEMPLATE = "whatsapp_template"


class CampaignStatus(StrEnum):
    """Where a campaign is (``postier.campaigns.lifecycle`` moves it)."""

    DRAFT = "draft"
    #: waiting for its start (or the end of the marketing quiet hours)
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"
    #: its audience could not be read (unknown group, unusable CSV); ``error`` says why
    FAILED = "failed"


def _enum_column(enum: type[StrEnum], length: int) -> sa.Enum:
    """A VARCHAR holding the enum's values (not its names), read back as enum members."""
    return sa.Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def utcnow() -> datetime:
    """The current time, aware, in UTC: the only kind of datetime the ledger stores."""
    return datetime.now(UTC)


#: the bits a version-4 UUID (RFC 9562) fixes: its version (0100) and its variant (10)
_UUID4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET: Final = (0x4000 << 64) | (0x8000 << 48)


def new_message_id() -> str:
    """A new message id: a random (version 4) UUID as 32 hex characters.

    The same value ``uuid.uuid4().hex`` gives, without building a ``UUID`` object (a fifth
    of a bulk send's row building).
    """
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET:032x}"


#: ids ``new_message_ids`` draws at a time: one read of 16 KiB from the system's generator
_ID_BLOCK: Final = 1024


def new_message_ids() -> Iterator[str]:
    """Endless new message ids, as ``new_message_id`` gives them, drawn a block at a time.

    A bulk send takes one id per row: one ``os.urandom`` call (a system call) and one integer
    formatting per id cost a third of a memoised row; a block of 1,024 costs one call, two
    slice assignments (the version and variant bits) and one ``hex``.
    """
    while True:
        raw = bytearray(os.urandom(16 * _ID_BLOCK))
        raw[6::16] = bytes(byte & 0x0F | 0x40 for byte in raw[6::16])
        raw[8::16] = bytes(byte & 0x3F | 0x80 for byte in raw[8::16])
        text = raw.hex()
        yield from [text[start : start + 32] for start in range(0, len(text), 32)]


class Message(SQLModel, table=True):
    """One message to one recipient, from creation to its final delivery state."""

    __tablename__ = "messages"
    __table_args__ = (
        # beat's release of due rows
        sa.Index(IX_STATUS_SEND_AT, "status", "send_at"),
        # a campaign's rows by state: batch claims, releases, counts (postier.campaigns); its
        # prefix serves "every row of a campaign" too, so campaign_id has no index of its own
        sa.Index(IX_CAMPAIGN_STATUS, "campaign_id", "status"),
        # receipts matched by number (a multi-recipient request's rows share one ticket)
        sa.Index(IX_RECIPIENT, "recipient"),
        # support's lookup by number, newest first, redacted rows included (postier.api.support)
        sa.Index(IX_RECIPIENT_HASH, "recipient_hash", "created_at", "id"),
        # listings by state, newest first (``postier list --status``)
        sa.Index(IX_STATUS_CREATED, "status", "created_at", "id"),
        # only the live rows, a few percent of a year's ledger: the delivery poll's set in
        # the order it asks (never asked, then longest unasked), the reaper's and the
        # republisher's rows
        sa.Index(
            IX_LIVE,
            "status",
            "status_checked_at",
            "updated_at",
            "provider",
            sqlite_where=sa.text(LIVE_SQL),
            postgresql_where=sa.text(LIVE_SQL),
        ),
        # only the rows of Octopush batches whose outcome is not known yet: the batch
        # reaper's set (its tag is the batch's request id), not every sending/unknown row
        sa.Index(
            IX_BATCH_UNSETTLED,
            "provider_message_id",
            sqlite_where=sa.text(BATCH_UNSETTLED_SQL),
            postgresql_where=sa.text(BATCH_UNSETTLED_SQL),
        ),
        # the retention pass: settled rows by age (postier.privacy.retention)
        sa.Index("ix_messages_retention", "updated_at"),
    )

    id: str = Field(default_factory=new_message_id, primary_key=True, max_length=32)
    channel: Channel = Field(sa_type=_enum_column(Channel, 16))
    kind: MessageKind = Field(sa_type=_enum_column(MessageKind, 32))
    provider: str | None = Field(default=None, max_length=32)
    #: E.164, e.g. +33612345678 (``redacted`` once retention or erasure removed it)
    recipient: str = Field(max_length=32)
    #: the recipient as a keyed hash (``postier.rules.phones.number_hash``, with
    #: ``POSTIER_RETENTION__HASH_KEY``; None without that key): written with the row, kept
    #: when retention redacts the number, so support can still find the message by number;
    #: cleared by an erasure
    recipient_hash: str | None = Field(default=None, max_length=32)
    #: SMS text, WhatsApp text or file caption; empty for templates
    body: str = Field(default="", sa_type=sa.Text)
    #: what the provider call needs besides the body: sender, file url/type, template id,
    #: params and header, WhatsApp platform id, providers already tried …
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=json_type())
    #: "notification" or "marketing" (providers route and filter them differently)
    category: str = Field(default="notification", max_length=16)
    status: MessageStatus = Field(
        default=MessageStatus.QUEUED, sa_type=_enum_column(MessageStatus, 16)
    )
    #: the status before the last transition; lets one UPDATE report where it came from
    previous_status: MessageStatus | None = Field(
        default=None, sa_type=_enum_column(MessageStatus, 16)
    )
    send_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    idempotency_key: str | None = Field(default=None, max_length=255, unique=True)
    campaign_id: str | None = Field(default=None, max_length=32)
    #: the send queue it travels on; its retries, failovers and releases keep it
    lane: Lane = Field(
        default=Lane.TRANSACTIONAL,
        sa_type=_enum_column(Lane, 16),
        sa_column_kwargs={"server_default": Lane.TRANSACTIONAL.value},
    )
    attempts: int = 0
    provider_message_id: str | None = Field(default=None, max_length=128, index=True)
    #: what the provider charged (credits or euros, as the provider counts)
    cost: Decimal | None = Field(default=None, sa_type=sa.Numeric(14, 6))
    parts: int | None = None
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    #: when the id was last handed to the broker; None: not yet (or to be handed again)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sending_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: when its text, template values and file URLs were redacted (retention or erasure)
    redacted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: where its status events go (an https URL, its own or its campaign's); None: the
    #: global ``callbacks.target``, if any
    callback_url: str | None = Field(default=None, max_length=2048)
    #: status events written for it so far: the next event's sequence number minus one
    callback_seq: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class DeliveryEvent(SQLModel, table=True):
    """One transition of one message, with the provider's own status and answer beside ours."""

    __tablename__ = "delivery_events"

    id: int | None = Field(default=None, primary_key=True, sa_type=bigint_pk_type())
    message_id: str = Field(
        foreign_key="messages.id", ondelete="CASCADE", index=True, max_length=32
    )
    #: None for the event that records the message's creation
    from_status: MessageStatus | None = Field(default=None, sa_type=_enum_column(MessageStatus, 16))
    to_status: MessageStatus = Field(sa_type=_enum_column(MessageStatus, 16))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    provider_status: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, sa_type=sa.Text)
    #: the provider's answer as received, for audits (STYLE.md: normalise at the edge)
    raw: dict[str, Any] | None = Field(default=None, sa_type=json_type())


class MessageCount(SQLModel, table=True):
    """How many messages have this provider and status (``postier.ledger.counts``).

    Kept by triggers on ``messages`` (migration 0008), never written by the application except
    ``fold_counts`` and ``recount``. ``provider`` is ``""`` for messages without one.
    """

    __tablename__ = "message_counts"

    provider: str = Field(default="", primary_key=True, max_length=32)
    status: str = Field(primary_key=True, max_length=16)
    total: int = Field(default=0, sa_type=sa.BigInteger)


class MessageCountDelta(SQLModel, table=True):
    """A statement's net change to one (provider, status) count, not yet folded into
    ``message_counts`` (PostgreSQL's triggers write these; ``postier.ledger.counts``)."""

    __tablename__ = "message_count_deltas"

    id: int | None = Field(default=None, primary_key=True, sa_type=bigint_pk_type())
    provider: str = Field(max_length=32)
    status: str = Field(max_length=16)
    delta: int = Field(sa_type=sa.BigInteger)


class InboundMessage(SQLModel, table=True):
    """A message a recipient sent us (WhatsApp reply, SMS answer), stored once per provider id."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_message_id"),
        # the few rows whose hook has not run, oldest first, however many are stored
        sa.Index(
            IX_UNDISPATCHED,
            "id",
            sqlite_where=sa.text(UNDISPATCHED_SQL),
            postgresql_where=sa.text(UNDISPATCHED_SQL),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=bigint_pk_type())
    provider: str = Field(max_length=32)
    provider_message_id: str = Field(max_length=128)
    #: where it arrived: WhatsApp platform id or our number
    channel: str = Field(default="", max_length=64)
    #: E.164
    sender: str = Field(max_length=32)
    text: str = Field(default="", sa_type=sa.Text)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: when the application's inbound hook was run for it; None: not yet
    hook_dispatched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    raw: dict[str, Any] | None = Field(default=None, sa_type=json_type())


class Campaign(SQLModel, table=True):
    """A named batch of messages; ``spec`` holds what it sends (``postier.campaigns.spec``).

    The audience is kept apart (``CampaignAudience``) so reading a campaign stays cheap.
    """

    __tablename__ = "campaigns"

    id: str = Field(default_factory=new_message_id, primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    status: CampaignStatus = Field(
        default=CampaignStatus.DRAFT, sa_type=_enum_column(CampaignStatus, 16)
    )
    spec: dict[str, Any] = Field(default_factory=dict, sa_type=json_type())
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: when its messages may go out (marketing quiet hours applied)
    starts_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: contacts in the audience, once read by the plan task
    audience_size: int | None = None
    #: fan-out chunks, once planned; None: the audience was not read yet
    chunks_total: int | None = None
    #: when the plan task was last handed to the broker
    plan_published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: why the campaign failed, or why its plan is being retried
    error: str | None = Field(default=None, sa_type=sa.Text)


class CampaignAudience(SQLModel, table=True):
    """Who a campaign goes to, as given: CSV text, a JSON list, or an Afilnet group id."""

    __tablename__ = "campaign_audiences"

    campaign_id: str = Field(
        foreign_key="campaigns.id", ondelete="CASCADE", primary_key=True, max_length=32
    )
    #: "csv", "list" or "group"
    kind: str = Field(max_length=16)
    content: str = Field(sa_type=sa.Text)


class CampaignChunk(SQLModel, table=True):
    """Contacts ``start`` to ``stop`` (positions in the audience) of a campaign: one fan-out task.

    ``contacts`` holds the slice until the task has turned it into messages, then is cleared.
    """

    __tablename__ = "campaign_chunks"

    campaign_id: str = Field(
        foreign_key="campaigns.id", ondelete="CASCADE", primary_key=True, max_length=32
    )
    start: int = Field(
        primary_key=True, sa_type=sa.Integer, sa_column_kwargs={"autoincrement": False}
    )
    stop: int
    contacts: list[Any] | None = Field(default=None, sa_type=json_type())
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: messages stored, and contacts left out (refused, repeated, opted out)
    created: int = 0
    invalid: int = 0
    duplicates: int = 0
    opted_out: int = 0


class CampaignRejection(SQLModel, table=True):
    """A contact a campaign could not send to: its line, the field and the rule it broke."""

    __tablename__ = "campaign_rejections"

    id: int | None = Field(default=None, primary_key=True, sa_type=bigint_pk_type())
    campaign_id: str = Field(
        foreign_key="campaigns.id", ondelete="CASCADE", index=True, max_length=32
    )
    #: CSV line (the header is line 1), or position in a list or group (from 1)
    line: int
    field: str = Field(max_length=64)
    rule: str = Field(max_length=64)
    message: str = Field(sa_type=sa.Text)


class OptOut(SQLModel, table=True):
    """A number that must get no campaign: STOP received, unsubscribed, or added by hand."""

    __tablename__ = "opt_outs"

    #: E.164, or ``h:`` and a keyed hash of it once the number was erased (``postier erase``)
    recipient: str = Field(primary_key=True, max_length=32)
    #: "local", "primotexto" (its unsubscribers list) or "octopush" (a STOP SMS received)
    source: str = Field(max_length=32)
    detail: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    """A key of the HTTP API (``postier.api``): only a hash of its secret is kept.

    The token ``postier_<id>_<secret>`` is shown once, at creation; ``id`` is its public
    part (listed, revoked, logged), ``secret_hash`` the SHA-256 of the whole token.
    """

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=100)
    #: what the key may do: "send", "read", "campaigns", "numbers" (``postier.api.keys``)
    scopes: list[str] = Field(default_factory=list, sa_type=json_type())
    secret_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiIdempotency(SQLModel, table=True):
    """An ``Idempotency-Key`` an API key used: the request it came with, what it made.

    The same key with another request is refused (409); with the same request, the answer
    names the same message or campaign (``postier.api.idempotency``).
    """

    __tablename__ = "api_idempotency"

    api_key_id: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=128)
    #: SHA-256 of the method, the route and the canonical JSON body
    request_hash: str = Field(max_length=64)
    #: the campaign a create made (messages are found by their own idempotency key)
    resource_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CallbackKind(StrEnum):
    """What a callback event is about (``postier.dispatch.callbacks``)."""

    STATUS = "status"
    INBOUND = "inbound"


#: the predicate of the partial index over callback events still to deliver
PENDING_CALLBACKS_SQL: Final[str] = "delivered_at IS NULL AND given_up_at IS NULL"
IX_PENDING_CALLBACKS: Final = "ix_callback_events_pending"


class CallbackEvent(SQLModel, table=True):
    """One event owed to the application: the outbox row of a status move or inbound message.

    Written in the transaction of the move itself (``postier.ledger.states``), so an event is
    never lost and never exists for a move that was rolled back. The row holds no personal
    data: an inbound event's sender and text are read from its ``inbound_messages`` row when
    it is delivered. ``attempt_log`` keeps every try (time, HTTP status or error, duration).
    """

    __tablename__ = "callback_events"
    __table_args__ = (
        # the beat pass's due rows: only the undelivered few, by due time
        sa.Index(
            IX_PENDING_CALLBACKS,
            "next_attempt_at",
            sqlite_where=sa.text(PENDING_CALLBACKS_SQL),
            postgresql_where=sa.text(PENDING_CALLBACKS_SQL),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=bigint_pk_type())
    #: the receiver's dedupe key: the same across every retry of this event
    event_id: str = Field(default_factory=new_message_id, max_length=32, unique=True)
    kind: CallbackKind = Field(sa_type=_enum_column(CallbackKind, 16))
    message_id: str | None = Field(
        default=None, foreign_key="messages.id", ondelete="CASCADE", index=True, max_length=32
    )
    inbound_id: int | None = Field(
        default=None,
        foreign_key="inbound_messages.id",
        ondelete="CASCADE",
        index=True,
        sa_type=sa.BigInteger,
    )
    #: the message's events in order, from 1 (``messages.callback_seq``)
    sequence: int | None = None
    from_status: MessageStatus | None = Field(default=None, sa_type=_enum_column(MessageStatus, 16))
    status: MessageStatus | None = Field(default=None, sa_type=_enum_column(MessageStatus, 16))
    provider: str | None = Field(default=None, max_length=32)
    provider_status: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, sa_type=sa.Text)
    idempotency_key: str | None = Field(default=None, max_length=255)
    #: when the move (or the inbound message's arrival) happened
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: where it goes: an https URL, a Celery task name or ``module:function``
    target: str = Field(max_length=2048)
    attempts: int = 0
    #: every attempt: ``{"at", "duration_ms", "status_code" | "error"}``
    attempt_log: list[dict[str, Any]] = Field(default_factory=list, sa_type=json_type())
    #: when the next attempt is due (while one runs: the end of its lease)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: when its id was last handed to the broker; None: to be handed by beat's pass
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: when retries stopped (``callbacks.max_age`` after the event); it stays for a person
    given_up_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: indexed: the retention pass deletes settled events by age (``privacy.retention``)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


#: the Core tables, for set-based statements (typed, unlike ``Model.__table__``)
messages_table: sa.Table = SQLModel.metadata.tables["messages"]
delivery_events_table: sa.Table = SQLModel.metadata.tables["delivery_events"]
inbound_messages_table: sa.Table = SQLModel.metadata.tables["inbound_messages"]
campaigns_table: sa.Table = SQLModel.metadata.tables["campaigns"]
campaign_audiences_table: sa.Table = SQLModel.metadata.tables["campaign_audiences"]
campaign_chunks_table: sa.Table = SQLModel.metadata.tables["campaign_chunks"]
campaign_rejections_table: sa.Table = SQLModel.metadata.tables["campaign_rejections"]
opt_outs_table: sa.Table = SQLModel.metadata.tables["opt_outs"]
api_keys_table: sa.Table = SQLModel.metadata.tables["api_keys"]
api_idempotency_table: sa.Table = SQLModel.metadata.tables["api_idempotency"]
callback_events_table: sa.Table = SQLModel.metadata.tables["callback_events"]
message_counts_table: sa.Table = SQLModel.metadata.tables["message_counts"]
message_count_deltas_table: sa.Table = SQLModel.metadata.tables["message_count_deltas"]
