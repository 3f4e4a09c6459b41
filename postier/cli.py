"""The ``postier`` command: run the stack or the demo, send and inspect messages, the sandbox."""

from __future__ import annotations

import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.console import Console
from rich.table import Column, Table

from postier.api.cli import api_key_app
from postier.campaigns.cli import campaign_app, contacts_app
from postier.config import get_settings
from postier.terminal import ErrorsOnOneLine, err_console, fail, shown

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from postier.ledger.models import Message
    from postier.stack import Stack

app = typer.Typer(
    help="Postier: SMS and WhatsApp dispatcher for French providers.",
    no_args_is_help=True,
    cls=ErrorsOnOneLine,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(campaign_app, name="campaign")
app.add_typer(contacts_app, name="contacts")
app.add_typer(api_key_app, name="api-key")
console = Console()
#: every command that takes a message id takes a unique prefix of it too (listings show 12)
MESSAGE_ID_HELP = "the message's id, or its first characters"


@app.command()
def sandbox(
    host: str | None = typer.Option(None, help="address to listen on"),
    port: int | None = typer.Option(None, help="port to listen on"),
) -> None:
    """Run the local simulator of every provider API in the foreground."""
    from postier.sandbox.app import Sandbox
    from postier.sandbox.server import serve_forever

    settings = get_settings().sandbox
    host = host or settings.host
    port = port or settings.port
    console.print(f"[bold]Postier sandbox[/] on http://{host}:{port} (Ctrl-C to stop)")
    serve_forever(Sandbox(delivery_delay=settings.delivery_delay), host, port)


def _start_stack(
    workdir: Path, sandbox_mode: bool, flower_port: int, private_redis: bool, command: str
) -> Stack:
    """Start the stack, record it for the commands run from this directory, print its table."""
    from postier.stack import Stack, StackOptions
    from postier.stack_record import read_record, record_path, write_record

    running = read_record()
    if running is not None:
        console.print(
            f"[red]a stack is already running from this directory[/] (`postier "
            f"{running.command}`, process {running.pid}, {record_path()}): stop it first"
        )
        raise typer.Exit(code=1)
    settings = get_settings()
    options = StackOptions(
        workdir=workdir,
        database_url=None if sandbox_mode else settings.database_url,
        redis_url=settings.redis_url,
        private_redis=private_redis,
        sandbox=sandbox_mode,
        sandbox_port=settings.sandbox.port if sandbox_mode else 0,
        flower_port=flower_port,
    )
    stack = Stack(options)
    with console.status("starting Redis, the ledger, the sandbox, a worker, beat and Flower…"):
        try:
            stack.start()
            answered = stack.wait_for_worker(timeout=60)
        except BaseException:
            stack.stop()  # a role that failed to start leaves no orphans behind
            raise
        if not answered:
            stack.stop()
            raise typer.Exit(code=1)
    record = stack.record(command)
    where = write_record(record)
    table = Table(title="Postier is up", show_header=False)
    table.add_row(
        "Redis", stack.redis_url + (" (private)" if stack.redis and stack.redis.owned else "")
    )
    table.add_row("Ledger", stack.database_url)
    if stack.sandbox is not None:
        table.add_row("Sandbox", stack.sandbox.url)
    if stack.webhooks_url:
        table.add_row("Webhooks", stack.webhooks_url)
    if stack.api_url:
        table.add_row("HTTP API", f"{stack.api_url}/v1/ (keys: postier api-key create --name me)")
    credentials = stack.flower_credentials
    if credentials is not None and not settings.flower.password.get_secret_value():
        user, password = credentials
        table.add_row("Flower", f"{stack.flower_url} (user {user}, generated password {password})")
    else:
        table.add_row("Flower", f"{stack.flower_url} (authentication from settings)")
    for name in stack.metrics_ports:
        lane = (
            "bulk lane"
            if name.startswith("worker-bulk")
            else "status callbacks"
            if name.startswith("worker-callbacks")
            else "transactional lane, beat's passes"
        )
        table.add_row(f"Worker {name}", f"{lane}; metrics {stack.metrics_url(name)}")
    table.add_row("Logs", str(stack.workdir))
    console.print(table)
    from postier.redis_server import check_noeviction

    warning = check_noeviction(stack.redis_url)
    if warning:
        console.print(f"[yellow]{warning}[/]")
    console.print(
        f"Other terminals: `postier …` run from this directory uses this stack (recorded in "
        f"{where.relative_to(Path.cwd())}); from elsewhere, first:"
    )
    for line in record.export_lines():
        # never wrapped: the line is copied into a shell
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return stack


def _stop(stack: Stack) -> None:
    """Stop the roles, and remove the record first so no command aims at a dying stack."""
    import os

    from postier.stack_record import remove_record

    remove_record(os.getpid())
    stack.stop()


def _wait_forever(stack: Stack) -> None:
    console.print("Ctrl-C stops everything.")
    # SIGTERM (systemd, a container, `kill`) and SIGHUP (the terminal closed) stop the roles
    # too, not only Ctrl-C: the roles run in their own sessions and would outlive this process
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(0))
    try:
        while all(p.poll() is None for p in stack.processes.values()):
            time.sleep(0.5)
        console.print("[red]a role exited; stopping[/] (see the logs)")
    except KeyboardInterrupt:
        pass
    finally:
        _stop(stack)


#: ``--private-redis``: for trying the stack beside another one (tests, a shared machine)
PRIVATE_REDIS_HELP = "start a Redis of its own even when one answers at POSTIER_REDIS_URL"


@app.command()
def up(
    workdir: Path = typer.Option(Path("var"), help="where the ledger and logs go"),
    real: bool = typer.Option(False, help="use the real providers from settings, not the sandbox"),
    flower_port: int = typer.Option(5555),
    private_redis: bool = typer.Option(False, help=PRIVATE_REDIS_HELP),
) -> None:
    """Start Redis (if none answers), the ledger, the sandbox, workers, beat and Flower.

    The stack is recorded in var/stack.json: every `postier` command run from this directory
    uses it, unless the environment says otherwise.
    """
    _wait_forever(_start_stack(workdir, not real, flower_port, private_redis, "up"))


@app.command()
def demo(
    workdir: Path = typer.Option(Path("var/demo"), help="where the ledger and logs go"),
    flower_port: int = typer.Option(5555),
    exit_after: bool = typer.Option(False, "--exit", help="stop the stack after the demo batch"),
    timeout: float = typer.Option(60.0, help="seconds to wait for the batch to settle"),
    private_redis: bool = typer.Option(False, help=PRIVATE_REDIS_HELP),
) -> None:
    """The stack on the sandbox, then a demo batch followed live to its final states."""
    from postier.demo import run_demo

    stack = _start_stack(workdir, True, flower_port, private_redis, "demo")
    try:
        ok = run_demo(stack, console, timeout=timeout)
    except BaseException:
        _stop(stack)
        raise
    console.print(f"Flower: [bold]{stack.flower_url}[/]")
    if exit_after:
        _stop(stack)
        raise typer.Exit(code=0 if ok else 1)
    _wait_forever(stack)


@app.command()
def webhooks(
    host: str | None = typer.Option(None, help="address to listen on"),
    port: int | None = typer.Option(None, help="port to listen on"),
) -> None:
    """Receive pushed callbacks (Octopush delivery receipts and inbound SMS).

    Refuses to start without ``POSTIER_WEBHOOKS__SECRET`` (the secret of the callback URLs).
    """
    import uvicorn

    from postier.logs import configure_logging
    from postier.webhooks import WebhookConfigError, create_app

    settings = get_settings()
    configure_logging(settings)
    try:
        receiver = create_app(settings)
    except WebhookConfigError as exc:
        fail(str(exc))
    uvicorn.run(
        receiver,
        host=host or settings.webhooks.host,
        port=port or settings.webhooks.port,
        access_log=False,
        log_config=None,
    )


@app.command()
def api(
    host: str | None = typer.Option(None, help="address to listen on"),
    port: int | None = typer.Option(None, help="port to listen on"),
) -> None:
    """Serve the HTTP API (keys: ``postier api-key create``; document: /v1/openapi.json)."""
    from postier.api.cli import serve

    serve(host, port)


@app.command()
def flower() -> None:
    """Run Flower (``celery -A worker flower``) behind the authentication of the settings."""
    import os

    from postier.flower import FLOWER_ARGS, FlowerAuthError, flower_environment

    try:
        env = flower_environment(get_settings().flower)
    except FlowerAuthError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=2) from exc
    # exec: Flower takes this process's place (PID 1 in a container gets the signals)
    os.execve(  # noqa: S606 - our own interpreter, fixed arguments
        sys.executable,
        [sys.executable, "-m", "celery", *FLOWER_ARGS],
        {**os.environ, **env},
    )


@app.command()
def health(
    worker: bool = typer.Option(False, help="also ping any worker over the broker"),
    worker_name: str | None = typer.Option(
        None, help="ping this worker (e.g. worker@$HOSTNAME); implies --worker"
    ),
    providers: bool = typer.Option(
        False, help="also check each provider's credentials by reading its balance (sends nothing)"
    ),
    api: bool = typer.Option(
        False, "--api", help="also ask the HTTP API's readiness probe (/v1/health)"
    ),
    api_at: str | None = typer.Option(
        None, "--api-url", help="the API's URL (default: the local stack's, else api.host:port)"
    ),
    as_json: bool = typer.Option(False, "--json", help="one JSON object, for probes"),
    timeout: float = typer.Option(3.0, help="seconds each check may take"),
) -> None:
    """Liveness: Redis and the ledger answer (and a worker, the API); exit 0 when all do."""
    import json

    from postier.health import api_url, run_checks
    from postier.logs import known_secrets, mask_text

    settings = get_settings()
    results = run_checks(
        settings,
        timeout=timeout,
        worker=worker,
        worker_name=worker_name,
        providers=providers,
        api=api_at or (api_url(settings) if api else None),
    )
    secrets = known_secrets(settings)
    ok = all(result.ok for result in results)
    states = []
    if results[0].ok and settings.health.enabled:
        from postier.health import provider_health

        states = provider_health(settings, timeout)
    if as_json:
        checks = [result.as_json() for result in results]
        for check in checks:
            check["detail"] = mask_text(check["detail"], secrets)
        health = {status.provider: status.state.value for status in states}
        typer.echo(json.dumps({"ok": ok, "checks": checks, "provider_health": health}))
    else:
        from postier.dispatch.health import HealthState
        from postier.health import describe

        for result in results:
            mark = "[yellow]skipped[/]" if result.skipped else "[green]ok[/]"
            mark = mark if result.ok else "[red]FAILED[/]"
            detail = mask_text(result.detail, secrets).removeprefix("skipped: ")
            took = "" if result.skipped else f" ({result.seconds * 1000:.0f} ms)"
            console.print(f"{result.name}: {mark} {detail}{took}", highlight=False, soft_wrap=True)
        for status in states:
            color = "green" if status.state is HealthState.CLOSED else "yellow"
            line = mask_text(describe(status), secrets)
            console.print(f"provider {status.provider}: [{color}]{line}[/]")
    if not ok:
        raise typer.Exit(code=1)


@app.command("env-example")
def env_example(
    write: Path | None = typer.Option(None, help="write to this file instead of printing"),
) -> None:
    """Every setting with its default and meaning, as a .env file (the source of .env.example)."""
    from postier.envexample import render_env_example

    text = render_env_example()
    if write is None:
        typer.echo(text, nl=False)
    else:
        write.write_text(text, encoding="utf-8")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the ledger's migrations up to the newest."""
    from sqlalchemy.engine import make_url

    from postier.ledger.db import make_engine, upgrade

    url = get_settings().database_url
    upgrade(make_engine(url))
    # the migrations job's log must not show the database password
    shown = make_url(url).render_as_string(hide_password=True)
    console.print(f"ledger at {shown} is up to date")


@app.command()
def send(
    to: str = typer.Argument(..., help="recipient number (E.164 or French national form)"),
    text: str = typer.Argument(..., help="message text"),
    whatsapp: bool = typer.Option(False, help="send by WhatsApp instead of SMS"),
    sender: str | None = typer.Option(None),
    provider: str | None = typer.Option(None),
    marketing: bool = typer.Option(False, help="marketing rather than notification"),
    at: str | None = typer.Option(None, help="send at this time (ISO 8601 with offset)"),
    key: str | None = typer.Option(None, help="idempotency key"),
) -> None:
    """Queue one message and print its id."""
    from postier.dispatch.producer import default_producer
    from postier.rules.errors import RuleViolation
    from postier.rules.inputs import parse_send_at_text

    try:
        send_at = parse_send_at_text(at, field="at") if at is not None else None
    except RuleViolation as exc:
        fail(f"refused {exc}")
    producer = default_producer()
    try:
        if whatsapp:
            handle = producer.send_whatsapp(
                to, text, send_at=send_at, idempotency_key=key, provider=provider
            )
        else:
            handle = producer.send_sms(
                to,
                text,
                sender=sender,
                category="marketing" if marketing else "notification",
                send_at=send_at,
                idempotency_key=key,
                provider=provider,
            )
    except RuleViolation as exc:
        fail(f"refused {exc}")
    console.print(f"{handle.id} {handle.status}{' (already queued)' if handle.duplicate else ''}")


def _message_id(session: Session, given: str) -> str:
    """The full id of the message ``given`` designates (a whole id or a unique prefix).

    Exits 1, saying why, when no message or several match.
    """
    from postier.ledger.ids import match_prefix
    from postier.ledger.models import messages_table

    found = match_prefix(session, messages_table.c.id, given)
    if found.unique is None:
        console.print(found.problem("message"), markup=False, highlight=False)
        raise typer.Exit(code=1)
    return found.unique


@app.command()
def status(
    message_id: str = typer.Argument(..., help=MESSAGE_ID_HELP),
) -> None:
    """A message's state and its history of transitions."""
    from postier.ledger.db import make_engine, session_scope
    from postier.ledger.queries import events_for, get_message
    from postier.rules.phones import mask_number

    with session_scope(make_engine(get_settings().database_url)) as session:
        message_id = _message_id(session, message_id)
        message = get_message(session, message_id)
        if message is None:
            fail(f"no message {message_id}", code=1)
        console.print(
            f"[bold]{message.id}[/] {message.kind} via {message.provider} to "
            f"{mask_number(message.recipient)}: [bold]{message.status}[/]"
            + (f" ({shown(message.last_error)})" if message.last_error else "")
        )
        table = Table("at", "from", "to", "provider status", "detail")
        for event in events_for(session, message_id):
            table.add_row(
                event.at.isoformat(timespec="seconds"),
                str(event.from_status or ""),
                str(event.to_status),
                shown(event.provider_status or ""),
                shown(event.detail or ""),
            )
        console.print(table)


def _when(at: datetime, zone: str, now: datetime) -> str:
    """A time as a listing shows it: the time alone today, else the day and minute."""
    from zoneinfo import ZoneInfo

    local = at.astimezone(ZoneInfo(zone))
    if local.date() == now.astimezone(ZoneInfo(zone)).date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M")


def messages_table_view(messages: list[Message], zone: str, now: datetime) -> Table:
    """The listing of ``postier list``: 12-character ids, and no cell cut in 80 columns."""
    from postier.ledger.ids import short_id
    from postier.ledger.models import Channel
    from postier.rules.phones import mask_number

    table = Table(
        Column("id", no_wrap=True),
        Column("to", no_wrap=True),
        Column("via", no_wrap=True),
        Column("status", no_wrap=True),
        Column("tries", justify="right", no_wrap=True),
        Column("updated", no_wrap=True),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )
    for m in messages:
        table.add_row(
            short_id(m.id),
            mask_number(m.recipient),
            "whatsapp" if m.channel == Channel.WHATSAPP else (m.provider or ""),
            str(m.status),
            str(m.attempts),
            _when(m.updated_at, zone, now),
        )
    return table


@app.command("list")
def list_messages(
    state: str | None = typer.Option(None, "--status", help="filter by status"),
    provider: str | None = typer.Option(None),
    limit: int = typer.Option(50),
    all_counts: bool = typer.Option(False, "--all-counts", help="count the final states too"),
) -> None:
    """Recent messages, newest first (ids: the first 12 characters), with counts of the
    messages still in flight.

    Final states are shown with ``--all-counts``; every count comes from the counters the
    database keeps (``postier.ledger.counts``), a few rows whatever the ledger's size.
    """
    from postier.ledger.db import make_engine, session_scope
    from postier.ledger.models import LIVE_STATUSES, MessageStatus
    from postier.ledger.queries import count_by_status
    from postier.ledger.queries import list_messages as query

    known = [s.value for s in MessageStatus]
    if state is not None and state not in known:
        fail(f"unknown status {state!r}; use one of {', '.join(known)}")
    settings = get_settings()
    wanted = MessageStatus(state) if state else None
    now = datetime.now(UTC)
    with session_scope(make_engine(settings.database_url)) as session:
        messages = query(session, status=wanted, provider=provider, limit=limit)
        console.print(messages_table_view(messages, settings.campaigns.timezone, now))
        counts = count_by_status(session, statuses=None if all_counts else LIVE_STATUSES)
    line = "  ".join(f"{k}: {v}" for k, v in sorted(counts.items()) if v)
    console.print(line or ("no messages yet" if all_counts else "nothing in flight"))
    if not all_counts:
        console.print("(in flight only; --all-counts counts the final states too)")


@app.command()
def inbox(limit: int = typer.Option(20)) -> None:
    """Inbound WhatsApp messages stored by the inbox poller, newest first."""
    from sqlmodel import col, select

    from postier.ledger.db import make_engine, session_scope
    from postier.ledger.models import InboundMessage
    from postier.rules.phones import mask_number

    with session_scope(make_engine(get_settings().database_url)) as session:
        rows = session.exec(
            select(InboundMessage).order_by(col(InboundMessage.id).desc()).limit(limit)
        ).all()
        table = Table("id", "from", "received", "text")
        for row in rows:
            table.add_row(
                str(row.id),
                shown(mask_number(row.sender)),
                row.received_at.isoformat(timespec="seconds"),
                shown(row.text),
            )
        console.print(table)


@app.command()
def callbacks(
    state: str = typer.Option(
        "given_up", help="given_up (retries stopped), pending (still to deliver) or delivered"
    ),
    limit: int = typer.Option(50, min=1, max=10_000),
) -> None:
    """Status callback events by state, newest first, with their last attempt."""
    from urllib.parse import urlsplit

    from postier.dispatch.callbacks import list_events
    from postier.ledger.db import make_engine
    from postier.rules.errors import RuleViolation

    try:
        events = list_events(make_engine(get_settings().database_url), state=state, limit=limit)
    except RuleViolation as exc:
        fail(str(exc))
    table = Table("event", "about", "status", "seq", "attempts", "last attempt", "target", "at")
    for event in events:
        last = event.attempt_log[-1] if event.attempt_log else {}
        outcome = str(last.get("status_code") or last.get("error") or "")
        # a URL's host only: its path or query may hold the application's own tokens
        target = urlsplit(event.target).hostname or event.target
        table.add_row(
            event.event_id[:12],
            event.message_id[:12] if event.message_id else f"inbound {event.inbound_id}",
            str(event.status or event.kind),
            str(event.sequence or ""),
            str(event.attempts),
            shown(outcome[:60]),
            shown(target),
            event.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@app.command()
def export(
    number: str = typer.Argument(..., help="the person's number (E.164 or national form)"),
    output: Path | None = typer.Option(None, help="write the JSON to this file"),
) -> None:
    """Everything the ledger holds about one number, as JSON (the right of access)."""
    from postier.ledger.db import make_engine
    from postier.privacy.erasure import export_json, export_number

    settings = get_settings()
    data = export_number(
        make_engine(settings.database_url),
        number,
        region=settings.default_region,
        hash_key=settings.retention.hash_key.get_secret_value() or None,
    )
    text = export_json(data)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        console.print(f"written to {shown(output)}")
    err_console.print("[bold]Not in this export[/] (outside the ledger):")
    for place in data["not_reachable"]:
        err_console.print(f"- {shown(place)}")


@app.command()
def erase(
    number: str = typer.Argument(..., help="the person's number (E.164 or national form)"),
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
) -> None:
    """Erase one number from every ledger table; its opt-out stays as a keyed hash."""
    from postier.ledger.db import make_engine
    from postier.privacy.erasure import ErasureError, erase_number
    from postier.rules.phones import mask_number

    settings = get_settings()
    if not yes:
        typer.confirm(f"Erase {mask_number(number)} from the ledger?", abort=True)
    try:
        report = erase_number(
            make_engine(settings.database_url),
            number,
            hash_key=settings.retention.hash_key.get_secret_value(),
            region=settings.default_region,
        )
    except ErasureError as exc:
        fail(str(exc))
    console.print(
        f"erased: {report.messages} messages ({report.cancelled} unsent ones cancelled),"
        f" {report.events} provider answers, {report.inbound} inbound messages,"
        f" {report.audiences} campaign audiences, {report.chunks} pending chunks,"
        f" {report.rejections} refused contacts"
    )
    if report.opt_out_kept:
        console.print("its opt-out is kept as a keyed hash: the STOP is still honoured")
    for trace in report.remaining:
        console.print(f"[red]still found[/] in {trace.table}.{trace.column} ({trace.rows} rows)")
    console.print("[bold]Not reached[/] (erase these by other means):")
    for place in report.not_reachable:
        console.print(f"- {shown(place)}")
    if report.remaining:
        raise typer.Exit(code=1)


def _move(given: str, to_queue: bool) -> None:
    from postier.ledger.db import make_engine, session_scope
    from postier.ledger.models import MessageStatus
    from postier.ledger.states import transition

    settings = get_settings()
    engine = make_engine(settings.database_url)
    if to_queue:
        sources = [MessageStatus.FAILED, MessageStatus.UNKNOWN]
        target = MessageStatus.QUEUED
    else:
        sources = [MessageStatus.SCHEDULED, MessageStatus.QUEUED]
        target = MessageStatus.CANCELLED
    with session_scope(engine) as session:
        message_id = _message_id(session, given)
        if to_queue:
            moved = transition(
                session, message_id, sources, target, detail="by hand (postier CLI)", attempts=0
            )
        else:
            moved = transition(session, message_id, sources, target, detail="by hand (postier CLI)")
    if not moved:
        console.print(f"[red]{message_id} is not in {', '.join(s.value for s in sources)}[/]")
        raise typer.Exit(code=1)
    if to_queue:
        from postier.dispatch.producer import default_producer

        default_producer().publisher.publish([message_id])
    console.print(f"{message_id} {target.value}")


@app.command()
def retry(
    message_id: str | None = typer.Argument(
        None, help="one failed or unknown message: its id, or its first characters"
    ),
    state: str | None = typer.Option(
        None, "--status", help="replay every message in this status (failed) matching the filters"
    ),
    since: datetime | None = typer.Option(None, help="failed at or after this time (ISO 8601)"),
    provider: str | None = typer.Option(None, help="only this provider's messages"),
    reason: str | None = typer.Option(None, help="only failures whose reason contains this"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list what would be queued, queue none"),
    limit: int = typer.Option(10_000, help="at most this many, oldest failures first"),
) -> None:
    """Queue a failed or unknown message again, or every failed one matching the filters
    (``--status failed``); a person's decision, each message queued once."""
    if message_id is not None and state is None:
        _move(message_id, to_queue=True)
        return
    if message_id is not None or state != "failed":
        console.print("[red]give a message id, or --status failed (not both)[/]")
        raise typer.Exit(code=2)
    _replay(since, provider, reason, dry_run, limit)


def _replay(
    since: datetime | None, provider: str | None, reason: str | None, dry_run: bool, limit: int
) -> None:
    from postier.dispatch.replaying import ReplayFilter, replay_failed
    from postier.ledger.db import make_engine

    engine = make_engine(get_settings().database_url)
    wanted = ReplayFilter(since=since, provider=provider, reason=reason, limit=limit)
    replay = replay_failed(engine, wanted, dry_run=dry_run)
    if dry_run:
        for message_id in replay.matched:
            console.print(message_id)
        console.print(f"{len(replay.matched)} failed messages would be queued again (dry run)")
        return
    if replay.queued:
        from postier.dispatch.producer import default_producer

        default_producer().publisher.publish(replay.queued)
    console.print(f"{len(replay.queued)} of {len(replay.matched)} failed messages queued again")


@app.command()
def cancel(message_id: str = typer.Argument(..., help=MESSAGE_ID_HELP)) -> None:
    """Cancel a message that was not sent yet."""
    _move(message_id, to_queue=False)


if __name__ == "__main__":  # pragma: no cover
    app()
