"""The ``postier`` command: run the stack or the demo, send and inspect messages, the sandbox."""

from __future__ import annotations

import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from postier.bench.command import bench as bench_command
from postier.campaigns.cli import campaign_app, contacts_app
from postier.config import get_settings

app = typer.Typer(
    help="Postier: SMS and WhatsApp dispatcher for French providers.", no_args_is_help=True
)
db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command("bench")(bench_command)
app.add_typer(campaign_app, name="campaign")
app.add_typer(contacts_app, name="contacts")
console = Console()


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


def _start_stack(workdir: Path, sandbox_mode: bool, flower_port: int) -> object:
    from postier.stack import Stack, StackOptions

    settings = get_settings()
    options = StackOptions(
        workdir=workdir,
        database_url=None if sandbox_mode else settings.database_url,
        redis_url=settings.redis_url,
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
    table = Table(title="Postier is up", show_header=False)
    table.add_row(
        "Redis", stack.redis_url + (" (private)" if stack.redis and stack.redis.owned else "")
    )
    table.add_row("Ledger", stack.database_url)
    if stack.sandbox is not None:
        table.add_row("Sandbox", stack.sandbox.url)
    credentials = stack.flower_credentials
    if credentials is not None and not get_settings().flower.password.get_secret_value():
        user, password = credentials
        table.add_row("Flower", f"{stack.flower_url} (user {user}, generated password {password})")
    else:
        table.add_row("Flower", f"{stack.flower_url} (authentication from settings)")
    if stack.metrics_ports:
        table.add_row("Metrics", stack.metrics_url())
    table.add_row("Logs", str(stack.workdir))
    console.print(table)
    from postier.redis_server import check_noeviction

    warning = check_noeviction(stack.redis_url)
    if warning:
        console.print(f"[yellow]{warning}[/]")
    return stack


def _wait_forever(stack: object) -> None:
    from postier.stack import Stack

    assert isinstance(stack, Stack)
    console.print("Ctrl-C stops everything.")
    # SIGTERM (systemd, a container, `kill`) stops the roles too, not only Ctrl-C: the roles
    # run in their own sessions and would outlive this process
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(p.poll() is None for p in stack.processes.values()):
            time.sleep(0.5)
        console.print("[red]a role exited; stopping[/] (see the logs)")
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


@app.command()
def up(
    workdir: Path = typer.Option(Path("var"), help="where the ledger and logs go"),
    real: bool = typer.Option(False, help="use the real providers from settings, not the sandbox"),
    flower_port: int = typer.Option(5555),
) -> None:
    """Start Redis (if none answers), the ledger, the sandbox, a worker, beat and Flower."""
    _wait_forever(_start_stack(workdir, not real, flower_port))


@app.command()
def demo(
    workdir: Path = typer.Option(Path("var/demo"), help="where the ledger and logs go"),
    flower_port: int = typer.Option(5555),
    exit_after: bool = typer.Option(False, "--exit", help="stop the stack after the demo batch"),
    timeout: float = typer.Option(60.0, help="seconds to wait for the batch to settle"),
) -> None:
    """The stack on the sandbox, then a demo batch followed live to its final states."""
    from postier.demo import run_demo
    from postier.stack import Stack

    stack = _start_stack(workdir, True, flower_port)
    assert isinstance(stack, Stack)
    try:
        ok = run_demo(stack, console, timeout=timeout)
    except BaseException:
        stack.stop()
        raise
    console.print(f"Flower: [bold]{stack.flower_url}[/]")
    if exit_after:
        stack.stop()
        raise typer.Exit(code=0 if ok else 1)
    _wait_forever(stack)


@app.command()
def webhooks(
    host: str | None = typer.Option(None, help="address to listen on"),
    port: int | None = typer.Option(None, help="port to listen on"),
) -> None:
    """Receive pushed callbacks (Octopush delivery receipts and inbound SMS)."""
    import uvicorn

    from postier.logs import configure_logging
    from postier.webhooks import create_app

    settings = get_settings()
    configure_logging(settings)
    uvicorn.run(
        create_app(settings),
        host=host or settings.webhooks.host,
        port=port or settings.webhooks.port,
        access_log=False,
        log_config=None,
    )


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
    timeout: float = typer.Option(3.0, help="seconds each check may take"),
) -> None:
    """Liveness: Redis and the ledger answer (and a worker); exit 0 when all do, else 1."""
    from postier.health import run_checks
    from postier.logs import known_secrets, mask_text

    settings = get_settings()
    results = run_checks(settings, timeout=timeout, worker=worker, worker_name=worker_name)
    secrets = known_secrets(settings)
    for result in results:
        mark = "[green]ok[/]" if result.ok else "[red]FAILED[/]"
        detail = mask_text(result.detail, secrets)
        console.print(f"{result.name}: {mark} {detail} ({result.seconds * 1000:.0f} ms)")
    if not all(result.ok for result in results):
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
    at: datetime | None = typer.Option(None, help="send at this time (ISO 8601 with offset)"),
    key: str | None = typer.Option(None, help="idempotency key"),
) -> None:
    """Queue one message and print its id."""
    from postier.rules.errors import RuleViolation
    from producers import default_producer

    producer = default_producer()
    try:
        if whatsapp:
            handle = producer.send_whatsapp(
                to, text, send_at=at, idempotency_key=key, provider=provider
            )
        else:
            handle = producer.send_sms(
                to,
                text,
                sender=sender,
                category="marketing" if marketing else "notification",
                send_at=at,
                idempotency_key=key,
                provider=provider,
            )
    except RuleViolation as exc:
        console.print(f"[red]refused[/] {exc}")
        raise typer.Exit(code=2) from exc
    console.print(f"{handle.id} {handle.status}{' (already queued)' if handle.duplicate else ''}")


@app.command()
def status(message_id: str) -> None:
    """A message's state and its history of transitions."""
    from postier.ledger.db import make_engine, session_scope
    from postier.ledger.queries import events_for, get_message
    from postier.rules.phones import mask_number

    with session_scope(make_engine(get_settings().database_url)) as session:
        message = get_message(session, message_id)
        if message is None:
            console.print(f"[red]no message {message_id}[/]")
            raise typer.Exit(code=1)
        console.print(
            f"[bold]{message.id}[/] {message.kind} via {message.provider} to "
            f"{mask_number(message.recipient)}: [bold]{message.status}[/]"
            + (f" ({message.last_error})" if message.last_error else "")
        )
        table = Table("at", "from", "to", "provider status", "detail")
        for event in events_for(session, message_id):
            table.add_row(
                event.at.isoformat(timespec="seconds"),
                str(event.from_status or ""),
                str(event.to_status),
                event.provider_status or "",
                event.detail or "",
            )
        console.print(table)


@app.command("list")
def list_messages(
    state: str | None = typer.Option(None, "--status", help="filter by status"),
    provider: str | None = typer.Option(None),
    limit: int = typer.Option(50),
    all_counts: bool = typer.Option(
        False, "--all-counts", help="count the final states too (reads the whole ledger)"
    ),
) -> None:
    """Recent messages, newest first, with counts of the messages still in flight.

    Final states are not counted by default: at a year's volume that reads every row (12 s
    on SQLite at 5 million messages); the workers' ``postier_messages_total`` has their totals.
    """
    from postier.ledger.db import make_engine, session_scope
    from postier.ledger.models import LIVE_STATUSES, MessageStatus
    from postier.ledger.queries import count_by_status
    from postier.ledger.queries import list_messages as query
    from postier.rules.phones import mask_number

    wanted = MessageStatus(state) if state else None
    with session_scope(make_engine(get_settings().database_url)) as session:
        table = Table("id", "kind", "provider", "to", "status", "attempts", "updated")
        for m in query(session, status=wanted, provider=provider, limit=limit):
            table.add_row(
                m.id,
                str(m.kind),
                m.provider or "",
                mask_number(m.recipient),
                str(m.status),
                str(m.attempts),
                m.updated_at.isoformat(timespec="seconds"),
            )
        console.print(table)
        counts = count_by_status(session, statuses=None if all_counts else LIVE_STATUSES)
    console.print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
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
                mask_number(row.sender),
                row.received_at.isoformat(timespec="seconds"),
                row.text,
            )
        console.print(table)


def _move(message_id: str, to_queue: bool) -> None:
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
        from producers import default_producer

        default_producer().publisher.publish([message_id])
    console.print(f"{message_id} {target.value}")


@app.command()
def retry(message_id: str) -> None:
    """Queue a failed or unknown message again (a person's decision)."""
    _move(message_id, to_queue=True)


@app.command()
def cancel(message_id: str) -> None:
    """Cancel a message that was not sent yet."""
    _move(message_id, to_queue=False)


if __name__ == "__main__":  # pragma: no cover
    app()
