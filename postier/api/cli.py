"""``postier api`` (serve the HTTP API) and ``postier api-key create|list|revoke``.

``create`` prints the token once: only its hash is stored, so a lost token is revoked and
replaced, never recovered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from postier.config import get_settings
from postier.terminal import fail, shown

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

api_key_app = typer.Typer(help="Keys of the HTTP API: create, list, revoke.", no_args_is_help=True)
console = Console()


def _engine() -> Engine:
    from postier.ledger.db import make_engine

    return make_engine(get_settings().database_url)


@api_key_app.command("create")
def create(
    name: str = typer.Option(..., help="who or what uses the key (shown by list)"),
    scope: list[str] = typer.Option(  # noqa: B008
        [],
        "--scope",
        help="send, read, campaigns, numbers; repeat it (default: send, read, campaigns)",
    ),
) -> None:
    """Make a key and print its token, this once."""
    from postier.api.keys import DEFAULT_SCOPES, ApiKeyError, create_key

    try:
        made = create_key(_engine(), name, scope or DEFAULT_SCOPES)
    except ApiKeyError as exc:
        fail(str(exc))
    console.print(
        f"key [bold]{made.info.id}[/] ({shown(made.info.name)}), scopes"
        f" {', '.join(made.info.scopes)}. Its token, shown this once:"
    )
    # never wrapped or styled: it is copied
    console.print(made.token, markup=False, highlight=False, soft_wrap=True)


@api_key_app.command("list")
def list_keys() -> None:
    """Every key: id, name, scopes, when made, last used and revoked (never a secret)."""
    from postier.api.keys import list_keys as query

    table = Table("id", "name", "scopes", "created", "last used", "revoked", box=box.SIMPLE_HEAD)
    for key in query(_engine()):
        table.add_row(
            key.id,
            shown(key.name),
            ",".join(key.scopes),
            key.created_at.isoformat(timespec="seconds"),
            key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "",
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    console.print(table)


@api_key_app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="the key's id, as list shows it")) -> None:
    """Revoke a key: every request with it is refused (401) from now on."""
    from postier.api.keys import revoke_key

    if not revoke_key(_engine(), key_id):
        fail(f"no active key {key_id}", code=1)
    console.print(f"key {key_id} revoked")


def serve(host: str | None, port: int | None) -> None:
    """Run the API under uvicorn (``postier api``)."""
    import uvicorn

    from postier.api.app import create_app
    from postier.logs import configure_logging

    settings = get_settings()
    configure_logging(settings)
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port or settings.api.port,
        access_log=False,
        log_config=None,
    )
