"""Bulk campaigns from application code: create one in milliseconds, the worker fans it out.

    from producers.campaigns import create
    handle = create(
        "Soldes d'hiver",
        text="Bonjour {{prenom}}, -30% ce week-end !",
        csv=Path("clients.csv").read_text(),
        csv_columns={"mobile": "Téléphone", "prenom": "Prénom"},
        send_at=datetime(2027, 1, 9, 10, 0, tzinfo=ZoneInfo("Europe/Paris")),
    )

``create`` checks the campaign (``postier.campaigns.spec``: route, marketing rules,
placeholders, sender; a CSV's header and column mapping), stores it with its audience as given
— the CSV text, the list, or the Afilnet group id; no message row yet — and publishes one
plan task. It returns at once, whatever the audience's size: a 100,000-number list is stored
in a fraction of a second. The worker reads the audience and fans it out in chunks
(``postier.campaigns.fanout``); ``status`` shows how far it went.

Marketing (the default category) waits for the French quiet hours to end: a campaign whose
start falls at night, on a Sunday or a public holiday starts at the next allowed instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from celery import Celery
from sqlalchemy.engine import Engine

from postier.campaigns import lifecycle
from postier.campaigns.audience import (
    Audience,
    check_columns,
    csv_header,
    decode_list,
    encode_list,
    group_audience,
    parse_csv,
    parse_list,
)
from postier.campaigns.estimate import Estimate, estimate
from postier.campaigns.optout import opted_out, sync_opt_outs
from postier.campaigns.personalise import lookup
from postier.campaigns.rows import LedgerRowFactory
from postier.campaigns.spec import CampaignRequest, CampaignSpec, check_name, resolve_spec
from postier.campaigns.tasks import CampaignTasks
from postier.config import Settings
from postier.dispatch.clients import ProviderClients
from postier.dispatch.producer import Producer
from postier.ledger.db import session_scope
from postier.ledger.models import (
    Campaign,
    CampaignAudience,
    CampaignStatus,
)
from postier.providers.afilnet.groups import AfilnetGroups
from postier.rules.errors import RuleViolation
from postier.rules.inputs import check_string, check_template_params
from postier.rules.quiet_hours import QuietHours

Category = Literal["marketing", "notification"]
#: characters of a campaign's audience as given (a CSV of 500,000 lines fits)
MAX_AUDIENCE_CHARS = 64_000_000


def _columns(columns: Any) -> dict[str, str]:
    """``csv_columns`` as a dict; ``RuleViolation`` when it is not a mapping."""
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise RuleViolation("csv_columns", "csv_columns.type", "a mapping of field to CSV header")
    return dict(columns)


@dataclass(frozen=True, slots=True)
class CampaignHandle:
    """The ledger's id for a new campaign, its status and when it will start."""

    id: str
    status: str
    starts_at: datetime | None


@dataclass(frozen=True, slots=True)
class AudienceInput:
    """Exactly one of: an Afilnet group id, CSV text, or a list of numbers / field mappings."""

    group: str | None = None
    csv: str | None = None
    recipients: Sequence[str | Mapping[str, str]] | None = None

    def kind(self) -> str:
        given = [name for name in ("group", "csv", "recipients") if getattr(self, name) is not None]
        if len(given) != 1:
            raise RuleViolation(
                "audience",
                "audience.one",
                "give exactly one audience: group, csv or recipients",
            )
        return "list" if given[0] == "recipients" else given[0]


class CampaignProducer:
    """Creates campaigns (and estimates them); one per process is enough."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: Engine | None = None,
        celery_app: Celery | None = None,
    ) -> None:
        self.producer = Producer(settings, engine=engine, celery_app=celery_app)
        self.settings = self.producer.settings
        self.engine = self.producer.engine
        self.tasks = CampaignTasks(self.producer.celery_app)
        self.factory = LedgerRowFactory(self.producer.rows)
        self.quiet_hours = QuietHours.from_settings(self.settings.campaigns)

    # -- checking ------------------------------------------------------------------------
    def _checked(
        self, name: str, audience: AudienceInput, request: CampaignRequest
    ) -> tuple[str, CampaignSpec, str, str]:
        """Name, spec, audience kind and content, checked (``RuleViolation`` otherwise)."""
        clean_name = check_name(name)
        kind = audience.kind()
        spec = resolve_spec(self.settings, request)
        if kind == "csv":
            content = check_string(audience.csv, field="csv", max_chars=MAX_AUDIENCE_CHARS)
            header = csv_header(content)
            # read it whole now: a CSV the worker could not read fails here, not in the plan
            parse_csv(content, spec.columns, phone_field=spec.phone_field)
            check_columns(header, spec.columns, phone_field=spec.phone_field)
            renamed = {source: field for field, source in spec.columns.items()}
            available = {renamed.get(column, column): "" for column in header}
            available.update(dict.fromkeys(spec.columns, ""))
            missing = [name for name in spec.placeholders if lookup(available, name) is None]
            if missing:
                raise RuleViolation(
                    "text",
                    "placeholder.unknown_column",
                    f"no CSV column for {', '.join(repr(m) for m in missing)}"
                    f" (columns: {', '.join(available)})",
                )
        elif kind == "list":
            content = encode_list(audience.recipients or [])
        else:
            content = str(audience.group).strip()
            if not content:
                raise RuleViolation("group", "group.required", "the group id is empty")
        if spec.columns and kind != "csv":
            raise RuleViolation("csv_columns", "csv.not_csv", "columns map a CSV audience only")
        content = check_string(content, field=kind, max_chars=MAX_AUDIENCE_CHARS)
        return clean_name, spec, kind, content

    def _starts_at(self, spec: CampaignSpec, now: datetime) -> datetime:
        start = max(spec.send_at or now, now)
        if spec.category == "marketing":
            return self.quiet_hours.next_allowed(start)
        return start

    # -- the public calls ----------------------------------------------------------------
    def create(
        self,
        name: str,
        *,
        text: str | None = None,
        template_id: str | None = None,
        params: Mapping[str, str] | None = None,
        header: Mapping[str, Any] | None = None,
        platform_id: str | None = None,
        group: str | None = None,
        csv: str | None = None,
        csv_columns: Mapping[str, str] | None = None,
        recipients: Sequence[str | Mapping[str, str]] | None = None,
        category: Category = "marketing",
        provider: str | None = None,
        route: str | None = None,
        sender: str | None = None,
        send_at: datetime | None = None,
        phone_field: str = "mobile",
        chunk_size: int | None = None,
        callback_url: str | None = None,
    ) -> CampaignHandle:
        """Store a campaign and hand it to the workers; returns at once.

        One message: ``text`` (SMS, ``{{field}}`` placeholders) or ``template_id`` (WhatsApp,
        ``params`` values may hold placeholders). One audience: ``group`` (Afilnet group id),
        ``csv`` (text, header first; ``csv_columns`` maps field names to its headers) or
        ``recipients``. ``callback_url``: an https URL every message's status events go to,
        instead of the global ``callbacks.target``. Raises ``RuleViolation`` naming the field
        and the rule.
        """
        request = CampaignRequest(
            text=text,
            template_id=template_id,
            params=check_template_params(params),
            header=header,
            platform_id=platform_id,
            category=category,
            provider=provider,
            route=route,
            sender=sender,
            send_at=send_at,
            phone_field=phone_field,
            columns=_columns(csv_columns),
            chunk_size=chunk_size,
            callback_url=callback_url,
        )
        clean_name, spec, kind, content = self._checked(
            name, AudienceInput(group, csv, recipients), request
        )
        now = datetime.now(UTC)
        starts_at = self._starts_at(spec, now)
        status = CampaignStatus.RUNNING if starts_at <= now else CampaignStatus.SCHEDULED
        campaign = Campaign(
            name=clean_name,
            status=status,
            spec=spec.model_dump(mode="json"),
            starts_at=starts_at,
            plan_published_at=now,
            created_at=now,
            updated_at=now,
        )
        with session_scope(self.engine) as session:
            session.add(campaign)
            session.flush()
            session.add(CampaignAudience(campaign_id=campaign.id, kind=kind, content=content))
        self.tasks.plan(campaign.id)
        return CampaignHandle(campaign.id, str(status), starts_at)

    def estimate(
        self,
        *,
        text: str | None = None,
        template_id: str | None = None,
        params: Mapping[str, str] | None = None,
        header: Mapping[str, Any] | None = None,
        platform_id: str | None = None,
        group: str | None = None,
        csv: str | None = None,
        csv_columns: Mapping[str, str] | None = None,
        recipients: Sequence[str | Mapping[str, str]] | None = None,
        category: Category = "marketing",
        provider: str | None = None,
        route: str | None = None,
        sender: str | None = None,
        send_at: datetime | None = None,
        phone_field: str = "mobile",
        clients: ProviderClients | None = None,
    ) -> Estimate:
        """What ``create`` with the same arguments would send, and cost; nothing is stored.

        Reads the whole audience here (a group is fetched from Afilnet) and brings the
        opt-out list up to date, as the plan task would.
        """
        request = CampaignRequest(
            text=text,
            template_id=template_id,
            params=check_template_params(params),
            header=header,
            platform_id=platform_id,
            category=category,
            provider=provider,
            route=route,
            sender=sender,
            send_at=send_at,
            phone_field=phone_field,
            columns=_columns(csv_columns),
        )
        _, spec, kind, content = self._checked(
            "dry run", AudienceInput(group, csv, recipients), request
        )
        owned = clients is None
        clients = clients or ProviderClients(self.settings)
        try:
            audience = self._read(spec, kind, content, clients)
            sync_opt_outs(self.engine, self.settings, clients)
        finally:
            if owned:
                clients.close()

        def blocked(numbers: Iterable[str]) -> set[str]:
            with session_scope(self.engine) as session:
                return opted_out(
                    session,
                    numbers,
                    hash_key=self.settings.retention.hash_key.get_secret_value() or None,
                )

        return estimate(
            self.settings,
            spec,
            audience,
            self.factory,
            blocked,
            starts_at=self._starts_at(spec, datetime.now(UTC)),
        )

    def _read(
        self, spec: CampaignSpec, kind: str, content: str, clients: ProviderClients
    ) -> Audience:
        if kind == "csv":
            return parse_csv(content, spec.columns, phone_field=spec.phone_field)
        if kind == "list":
            return parse_list(decode_list(content), phone_field=spec.phone_field)
        groups = AfilnetGroups(clients.afilnet_api)
        return group_audience(groups, content, phone_field=spec.phone_field, used=spec.placeholders)

    # -- control -------------------------------------------------------------------------
    def pause(self, campaign_id: str) -> lifecycle.ControlResult:
        """Pause: unsent messages are held; ``resume`` goes on without losing any."""
        return lifecycle.pause(self.engine, campaign_id)

    def resume(self, campaign_id: str) -> lifecycle.ControlResult:
        """Resume a paused campaign (marketing: at the next allowed instant)."""
        return lifecycle.resume(self.engine, self.quiet_hours, campaign_id)

    def cancel(self, campaign_id: str) -> lifecycle.ControlResult:
        """Cancel: what was not sent yet is ``cancelled``."""
        return lifecycle.cancel(self.engine, campaign_id)

    def status(self, campaign_id: str, *, rejections: int = 20) -> lifecycle.CampaignReport | None:
        """The campaign, its fan-out, its messages by state and its refused contacts."""
        return lifecycle.report(self.engine, campaign_id, rejections=rejections)


__all__ = ["AudienceInput", "CampaignHandle", "CampaignProducer"]
