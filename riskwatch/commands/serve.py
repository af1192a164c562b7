"""`riskwatch serve [--host H] [--port N]`: the dashboard under waitress (CONTRACTS.md).

Never Dash's debug server. The dashboards package is imported only when the command runs, so
the engine and the other commands never load the web stack.
"""

from __future__ import annotations

import click

from riskwatch.clikit import app_context


@click.command("serve")
@click.option(
    "--host", default=None, metavar="H", help="Address to listen on (default: web.host, 127.0.0.1)."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="N",
    help="Port to listen on (default: web.port, 8050; 0: any free port).",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the dashboard with a production WSGI server (waitress) until interrupted.

    Refuses to start (exit 1) when the database is unreachable or not migrated.
    """
    settings = app_context(ctx).settings
    from dashboards.serve import serve as serve_dashboard  # lazily: only this command needs it

    serve_dashboard(
        settings, host=host or settings.web.host, port=settings.web.port if port is None else port
    )


COMMANDS = [serve]
