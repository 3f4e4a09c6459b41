"""The ``postier`` command: run the sandbox, the stack, the demo; send and inspect messages."""

from __future__ import annotations

import typer
from rich.console import Console

from postier.config import get_settings

app = typer.Typer(help="Postier: SMS and WhatsApp dispatcher for French providers.", no_args_is_help=True)
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


if __name__ == "__main__":  # pragma: no cover
    app()
