"""``postier campaign …`` and ``postier contacts …``: campaigns and Afilnet groups from a shell.

``postier campaign create`` checks and stores a campaign (``--dry-run``: estimate only),
``status --follow`` shows the fan-out and the sending as progress bars until the campaign
ends; ``pause``, ``resume``, ``cancel``, ``list``; ``optout add|remove|list|sync``.
``postier contacts`` has one command per method of the Afilnet groups API, and ``import`` adds
a CSV's contacts in bulk through ``addcontactlist``. A campaign id may be given by a unique
prefix, as listings show it (12 characters).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from postier.config import Settings, get_settings
from postier.credentials import MissingCredentials, require_credentials
from postier.providers.errors import ProviderError
from postier.providers.results import Provider
from postier.rules.errors import RuleViolation
from postier.rules.inputs import parse_send_at_text
from postier.rules.phones import mask_number
from postier.terminal import fail, shown

campaign_app = typer.Typer(help="Bulk campaigns: create, follow, pause, resume, cancel.")
contacts_app = typer.Typer(help="Afilnet contact groups: every method of the Afilnet groups API.")
optout_app = typer.Typer(help="The opt-out list campaigns skip.")
campaign_app.add_typer(optout_app, name="optout")
console = Console()

T = TypeVar("T")
#: campaign states after which nothing more happens
FINAL = ("done", "cancelled", "failed")


@contextmanager
def _refusals() -> Iterator[None]:
    """Rule violations and missing credentials exit 2, provider errors 1, each in one line."""
    try:
        yield
    except MissingCredentials as exc:
        console.print(f"[red]{exc}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from exc
    except RuleViolation as exc:
        fail(f"refused {exc}")
    except ProviderError as exc:
        fail(f"provider error {exc}", code=1)


def _read_text(path: Path, option: str) -> str:
    """A file given on the command line, as UTF-8 text (a byte-order mark dropped)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RuleViolation(
            option, f"{option}.encoding", f"{path} is not UTF-8 text: save it as UTF-8"
        ) from exc
    except OSError as exc:
        raise RuleViolation(option, f"{option}.file", f"{path} cannot be read: {exc}") from exc


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``["a=b", "c=d"]`` -> ``{"a": "b", "c": "d"}``."""
    pairs: dict[str, str] = {}
    for value in values or []:
        name, sep, given = value.partition("=")
        if not sep or not name.strip():
            raise RuleViolation(option, f"{option}.format", f"{value!r} is not name=value")
        pairs[name.strip()] = given
    return pairs


def _producer(settings: Settings) -> Any:
    from postier.campaigns.producer import CampaignProducer

    return CampaignProducer(settings)


def _local(when: datetime | None, settings: Settings) -> str:
    if when is None:
        return "-"
    return when.astimezone(ZoneInfo(settings.campaigns.timezone)).strftime("%Y-%m-%d %H:%M %Z")


# -- campaign -----------------------------------------------------------------------------


@campaign_app.command("create")
def create(
    name: str = typer.Argument(..., help="the campaign's name"),
    text: str | None = typer.Option(None, help="SMS text; {{field}} placeholders allowed"),
    template: str | None = typer.Option(None, help="WhatsApp template id instead of a text"),
    param: list[str] | None = typer.Option(None, help="template parameter name=value (repeat)"),
    group: str | None = typer.Option(None, help="Afilnet group id"),
    csv: Path | None = typer.Option(None, help="CSV file, header first"),
    column: list[str] | None = typer.Option(
        None, help="field=CSV header, e.g. mobile=Téléphone (repeat)"
    ),
    to: list[str] | None = typer.Option(None, help="a recipient number (repeat)"),
    numbers: Path | None = typer.Option(None, help="a file of numbers, one per line"),
    notification: bool = typer.Option(False, help="a notification campaign (default: marketing)"),
    provider: str | None = typer.Option(None),
    route: str | None = typer.Option(None, help="Primotexto: notification or marketing"),
    sender: str | None = typer.Option(None),
    at: str | None = typer.Option(None, help="start at (ISO 8601 with offset)"),
    chunk_size: int | None = typer.Option(None, help="contacts per fan-out task"),
    dry_run: bool = typer.Option(False, "--dry-run", help="estimate parts and cost; store nothing"),
) -> None:
    """Create a campaign (or, with --dry-run, show what it would send and cost)."""
    settings = get_settings()
    with _refusals():
        recipients: list[str] | None = None
        if to or numbers:
            recipients = list(to or [])
            if numbers:
                lines = _read_text(numbers, "numbers").splitlines()
                recipients += [line.strip() for line in lines if line.strip()]
        send_at = parse_send_at_text(at, field="at") if at is not None else None
        if send_at is not None and send_at.tzinfo is None:
            raise RuleViolation("at", "send_at.timezone", "give --at with its offset (+01:00)")
        options: dict[str, Any] = {
            "text": text,
            "template_id": template,
            "params": _pairs(param, "param"),
            "group": group,
            "csv": _read_text(csv, "csv") if csv else None,
            "csv_columns": _pairs(column, "column"),
            "recipients": recipients,
            "category": "notification" if notification else "marketing",
            "provider": provider,
            "route": route,
            "sender": sender,
            "send_at": send_at,
        }
        producer = _producer(settings)
        if dry_run:
            if group is not None:  # the estimate reads the group from Afilnet
                require_credentials(settings, Provider.AFILNET)
            _print_estimate(producer.estimate(**options), settings)
            return
        handle = producer.create(name, chunk_size=chunk_size, **options)
    console.print(f"{handle.id} {handle.status}, starts {_local(handle.starts_at, settings)}")


def _print_estimate(estimate: Any, settings: Settings) -> None:
    table = Table(title="Campaign estimate (nothing stored)", show_header=False)
    table.add_row("provider", estimate.provider)
    table.add_row("contacts", str(estimate.contacts))
    table.add_row("messages", str(estimate.messages))
    table.add_row("refused", str(estimate.invalid))
    table.add_row("repeated numbers", str(estimate.duplicates))
    table.add_row("opted out", str(estimate.opted_out))
    parts = str(estimate.parts)
    if estimate.parts_as_written != estimate.parts:
        parts += f" (as written, in UCS-2: {estimate.parts_as_written})"
    table.add_row("SMS parts", parts)
    if estimate.text_policy is not None:
        table.add_row("text policy", estimate.text_policy)
    if estimate.changed_messages:
        listed = ", ".join(
            f"{c.original!r}→{c.replacement!r} ×{c.count}" for c in estimate.text_changes[:12]
        )
        more = " …" if len(estimate.text_changes) > 12 else ""
        table.add_row(
            "text changes", f"{estimate.changed_messages} message(s) changed: {listed}{more}"
        )
        before, after = estimate.sample_change
        table.add_row("for example", f"{before}\n→ {after}")
    if estimate.parts_histogram:
        spread = ", ".join(f"{n} part(s): {c}" for n, c in estimate.parts_histogram.items())
        table.add_row("parts per message", spread)
    if estimate.encodings:
        table.add_row("encodings", ", ".join(f"{k}: {v}" for k, v in estimate.encodings.items()))
    table.add_row("provider requests", str(estimate.requests))
    if estimate.cost is not None:
        table.add_row(
            "estimated cost",
            f"€{estimate.cost} (€{estimate.price_per_part} per part: "
            f"POSTIER_CAMPAIGNS__PRICE_PER_PART)",
        )
    table.add_row("would start", _local(estimate.starts_at, settings))
    console.print(table)
    _print_rejections(estimate.rejections)


def _print_rejections(rejections: list[Any], limit: int = 20) -> None:
    if not rejections:
        return
    table = Table("line", "field", "rule", "why", title="Refused contacts")
    for rejection in rejections[:limit]:
        table.add_row(
            str(rejection.line),
            shown(rejection.field),
            shown(rejection.rule),
            shown(rejection.message),
        )
    console.print(table)


#: every campaign command takes a unique prefix of the id too (listings show 12 characters)
CAMPAIGN_ID_HELP = "the campaign's id, or its first characters"


def _campaign_id(given: str) -> str:
    """The full id of the campaign ``given`` designates; exits 1, saying why, if none or many."""
    from postier.ledger.ids import match_prefix
    from postier.ledger.models import campaigns_table

    found = _session_call(lambda session: match_prefix(session, campaigns_table.c.id, given))
    if found.unique is None:
        console.print(found.problem("campaign"), markup=False, highlight=False)
        raise typer.Exit(code=1)
    return found.unique


def _report(campaign_id: str, errors: int = 20) -> Any:
    from postier.campaigns.lifecycle import report
    from postier.ledger.db import make_engine

    return report(make_engine(get_settings().database_url), campaign_id, rejections=errors)


@campaign_app.command("status")
def status(
    campaign_id: str = typer.Argument(..., help=CAMPAIGN_ID_HELP),
    follow: bool = typer.Option(False, "--follow", "-f", help="progress bars until it ends"),
    errors: int = typer.Option(20, help="refused contacts to list"),
    interval: float = typer.Option(0.5, help="seconds between refreshes with --follow"),
) -> None:
    """A campaign's fan-out, its messages by state, and its refused contacts."""
    campaign_id = _campaign_id(campaign_id)
    found = _report(campaign_id, errors)
    if found is None:
        console.print(f"[red]no campaign {campaign_id}[/]")
        raise typer.Exit(code=1)
    if follow:
        found = _follow(campaign_id, interval)
    _print_report(found, get_settings())


def _follow(campaign_id: str, interval: float) -> Any:
    """Two bars, refreshed until the campaign is done, cancelled or failed (or Ctrl-C)."""
    columns = (
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    found = _report(campaign_id, 0)
    with Progress(*columns, console=console) as progress:
        read = progress.add_task("fan-out", total=None, detail="")
        sent = progress.add_task("sending", total=None, detail="")
        try:
            while True:
                found = _report(campaign_id, 0)
                campaign = found.campaign
                progress.update(
                    read,
                    total=campaign.audience_size,
                    completed=found.contacts_done,
                    detail=f"{found.invalid} refused, {found.fan_out.duplicates} repeated,"
                    f" {found.fan_out.opted_out} opted out",
                )
                states = found.states
                progress.update(
                    sent,
                    total=max(found.messages, 1) if campaign.chunks_total is not None else None,
                    completed=found.settled,
                    detail=f"{campaign.status}: "
                    + " ".join(f"{k} {v}" for k, v in states.items() if v),
                )
                if str(campaign.status) in FINAL:
                    break
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
    return _report(campaign_id, 20)


def _print_report(found: Any, settings: Settings) -> None:
    campaign, spec = found.campaign, found.spec
    table = Table(title=f"Campaign {campaign.id}", show_header=False)
    table.add_row("name", shown(campaign.name))
    table.add_row(
        "status",
        f"[bold]{campaign.status}[/]" + (f" ({shown(campaign.error)})" if campaign.error else ""),
    )
    table.add_row(
        "message",
        f"{spec.category} {spec.channel} via {spec.provider} ({spec.route})"
        + (", Octopush batches" if spec.batched else ""),
    )
    table.add_row("starts", _local(campaign.starts_at, settings))
    table.add_row(
        "audience",
        f"{campaign.audience_size if campaign.audience_size is not None else '?'} contacts,"
        f" {found.fan_out.chunks_done}/{campaign.chunks_total or '?'} chunks fanned out",
    )
    table.add_row(
        "left out",
        f"{found.invalid} refused, {found.fan_out.duplicates} repeated,"
        f" {found.fan_out.opted_out} opted out",
    )
    table.add_row("messages", str(found.messages))
    table.add_row("by state", "  ".join(f"{k}: {v}" for k, v in found.states.items() if v) or "-")
    table.add_row("SMS parts", str(found.parts))
    if found.cost is not None:
        table.add_row("charged", str(found.cost))
    console.print(table)
    _print_rejections(found.rejections)


def _control(action: Callable[[Any, str], Any], given: str) -> None:
    campaign_id = _campaign_id(given)
    result = action(_producer(get_settings()), campaign_id)
    if not result.changed:
        console.print(f"[red]{campaign_id} unchanged[/] (it is {result.status or 'unknown'})")
        raise typer.Exit(code=1)
    extra = f", {result.messages} messages" if result.messages else ""
    console.print(f"{campaign_id} {result.status}{extra} {result.detail}".rstrip())


@campaign_app.command("pause")
def pause(campaign_id: str = typer.Argument(..., help=CAMPAIGN_ID_HELP)) -> None:
    """Pause: nothing more goes out; unsent messages wait, none is lost."""
    _control(lambda producer, cid: producer.pause(cid), campaign_id)


@campaign_app.command("resume")
def resume(campaign_id: str = typer.Argument(..., help=CAMPAIGN_ID_HELP)) -> None:
    """Resume a paused campaign (marketing: once the quiet hours allow)."""
    _control(lambda producer, cid: producer.resume(cid), campaign_id)


@campaign_app.command("cancel")
def cancel(campaign_id: str = typer.Argument(..., help=CAMPAIGN_ID_HELP)) -> None:
    """Cancel: what was not sent yet is cancelled."""
    _control(lambda producer, cid: producer.cancel(cid), campaign_id)


@campaign_app.command("list")
def list_campaigns(limit: int = typer.Option(20)) -> None:
    """The newest campaigns, with their messages by state (ids: the first 12 characters)."""
    from postier.campaigns.queries import count_states, list_campaigns
    from postier.ledger.db import make_engine, session_scope
    from postier.ledger.ids import short_id

    settings = get_settings()
    zone = ZoneInfo(settings.campaigns.timezone)
    table = Table(
        Column("id", no_wrap=True),
        "name",
        Column("status", no_wrap=True),
        Column("starts", no_wrap=True),
        Column("contacts", justify="right", no_wrap=True),
        "messages by state",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )
    with session_scope(make_engine(settings.database_url)) as session:
        for campaign in list_campaigns(session, limit=limit):
            states = count_states(session, campaign.id)
            starts = campaign.starts_at
            table.add_row(
                short_id(campaign.id),
                shown(campaign.name),
                str(campaign.status),
                starts.astimezone(zone).strftime("%Y-%m-%d %H:%M") if starts else "-",
                str(campaign.audience_size if campaign.audience_size is not None else "?"),
                " ".join(f"{k} {v}" for k, v in states.items() if v) or "-",
            )
    console.print(table)


# -- opt-outs -----------------------------------------------------------------------------


def _session_call(call: Callable[[Any], T]) -> T:
    from postier.ledger.db import make_engine, session_scope

    with session_scope(make_engine(get_settings().database_url)) as session:
        return call(session)


@optout_app.command("add")
def optout_add(number: str, detail: str | None = typer.Option(None)) -> None:
    """Opt a number out of every campaign."""
    from postier.campaigns.optout import add_opt_out

    with _refusals():
        added = _session_call(lambda session: add_opt_out(session, number, detail=detail))
    console.print("added" if added else "already opted out")


@optout_app.command("remove")
def optout_remove(number: str) -> None:
    """Take a number off the list (Primotexto's own list is read again at the next sync)."""
    from postier.campaigns.optout import remove_opt_out

    with _refusals():
        removed = _session_call(lambda session: remove_opt_out(session, number))
    console.print("removed" if removed else "not on the list")


@optout_app.command("list")
def optout_list(limit: int = typer.Option(50)) -> None:
    """The newest opt-outs (numbers masked)."""
    from postier.campaigns.optout import list_opt_outs

    table = Table("number", "source", "since", "detail")
    for row in _session_call(lambda session: list_opt_outs(session, limit=limit)):
        table.add_row(
            mask_number(row.recipient),
            row.source,
            row.created_at.isoformat(timespec="seconds"),
            row.detail or "",
        )
    console.print(table)


@optout_app.command("sync")
def optout_sync() -> None:
    """Read Octopush STOPs and Primotexto's unsubscribers into the list now."""
    from postier.campaigns.optout import sync_opt_outs
    from postier.dispatch.clients import ProviderClients
    from postier.ledger.db import make_engine

    settings = get_settings()
    clients = ProviderClients(settings)
    try:
        with _refusals():
            report = sync_opt_outs(make_engine(settings.database_url), settings, clients)
    finally:
        clients.close()
    console.print(
        f"octopush STOPs added: {report.octopush_added}; primotexto: "
        + (
            f"{report.primotexto_added} added, {report.primotexto_removed} removed"
            if report.primotexto_synced
            else "not configured"
        )
    )


# -- contacts (Afilnet groups) ------------------------------------------------------------


def _groups_call(call: Callable[[Any], T]) -> T:
    from postier.dispatch.clients import ProviderClients
    from postier.providers.afilnet.groups import AfilnetGroups

    settings = get_settings()
    with _refusals():
        require_credentials(settings, Provider.AFILNET)
    clients = ProviderClients(settings)
    try:
        with _refusals():
            return call(AfilnetGroups(clients.afilnet_api))
    finally:
        clients.close()


@contacts_app.command("create-group")
def create_group(
    name: str,
    field: list[str] = typer.Option(..., help="a column (repeat); mobile groups need 'mobile'"),
    type: str = typer.Option("mobile", help="mobile or email"),
) -> None:
    """Create a group with its columns (creategroup); prints its id."""
    console.print(_groups_call(lambda g: g.create_group(name, type, field)))


@contacts_app.command("columns")
def columns(group_id: str) -> None:
    """The group's columns (getgroupcolumns)."""
    console.print(" ".join(_groups_call(lambda g: g.get_columns(group_id))))


@contacts_app.command("add-column")
def add_column(group_id: str, field: str) -> None:
    """Add a column (addcolumntogroup)."""
    _groups_call(lambda g: g.add_column(group_id, field))
    console.print("ok")


@contacts_app.command("delete-column")
def delete_column(group_id: str, field: str) -> None:
    """Remove a column and its values (deletecolumnfromgroup)."""
    _groups_call(lambda g: g.delete_column(group_id, field))
    console.print("ok")


@contacts_app.command("delete-group")
def delete_group(group_id: str) -> None:
    """Delete the group and its contacts (deletegroup)."""
    _groups_call(lambda g: g.delete_group(group_id))
    console.print("ok")


@contacts_app.command("set-country")
def set_country(group_id: str, iso3: str) -> None:
    """Set the group's country, ISO 3166-1 alpha-3 (assigncountrytogroup)."""
    _groups_call(lambda g: g.assign_country(group_id, iso3))
    console.print("ok")


@contacts_app.command("list")
def list_contacts(group_id: str, limit: int = typer.Option(50)) -> None:
    """The group's contacts (getcontacts); numbers masked."""
    from postier.campaigns.audience import afilnet_number

    contacts = _groups_call(lambda g: g.get_contacts(group_id))
    names = sorted({name for contact in contacts for name in contact.fields})
    table = Table("idcontact", *names, title=f"{len(contacts)} contacts")
    for contact in contacts[:limit]:
        values = []
        for name in names:
            value = contact.fields.get(name, "")
            values.append(mask_number(afilnet_number(value)) if name == "mobile" else value)
        table.add_row(contact.id, *values)
    console.print(table)


@contacts_app.command("get")
def get_contact(group_id: str, contact_id: str) -> None:
    """One contact (getcontact), as JSON."""
    contact = _groups_call(lambda g: g.get_contact(group_id, contact_id))
    console.print_json(json.dumps({"idcontact": contact.id, **contact.fields}))


@contacts_app.command("add")
def add_contact(group_id: str, value: list[str] = typer.Argument(..., help="field=value")) -> None:
    """Add one contact (addcontact): mobile=+33612345678 name=Jeanne."""
    with _refusals():
        fields = _pairs(value, "contact")
    console.print(_groups_call(lambda g: g.add_contact(group_id, fields)) or "ok")


@contacts_app.command("import")
def import_contacts(
    group_id: str,
    csv: Path = typer.Argument(..., help="CSV file, header first"),
    column: list[str] | None = typer.Option(None, help="field=CSV header (repeat)"),
) -> None:
    """Add a CSV's contacts in bulk (addcontactlist); refused lines are listed."""
    from postier.campaigns.contacts import import_csv

    with _refusals():
        mapping = _pairs(column, "column")
    text = csv.read_text(encoding="utf-8-sig")
    report = _groups_call(lambda g: import_csv(g, group_id, text, mapping))
    console.print(f"{report.sent} contacts sent to group {group_id}")
    if report.ignored_columns:
        console.print(f"columns the group lacks (not sent): {', '.join(report.ignored_columns)}")
    _print_rejections(report.rejections, limit=100)


@contacts_app.command("modify")
def modify_contact(
    group_id: str, contact_id: str, value: list[str] = typer.Argument(..., help="field=value")
) -> None:
    """Change fields of a contact (modifycontact)."""
    with _refusals():
        fields = _pairs(value, "contact")
    _groups_call(lambda g: g.modify_contact(group_id, contact_id, fields))
    console.print("ok")


@contacts_app.command("delete")
def delete_contact(group_id: str, contact_id: str) -> None:
    """Remove a contact (deletecontact)."""
    _groups_call(lambda g: g.delete_contact(group_id, contact_id))
    console.print("ok")
