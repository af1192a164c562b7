"""Run the dashboard under waitress, a production WSGI server (never Dash's debug server)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from flask import Flask
from waitress import create_server

from dashboards.app import create_app
from riskwatch.config import Settings
from riskwatch.db.engine import check_connection, make_engine
from riskwatch.db.migrate import require_current_schema


def make_server(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    *,
    app: Flask | None = None,
) -> Any:
    """A bound, not yet running waitress server for the dashboard (port 0: any free port).

    The result has ``run()``, ``close()`` and ``effective_port``.
    """
    return create_server(
        app or create_app(settings),
        host=host or settings.web.host,
        port=settings.web.port if port is None else port,
        threads=settings.web.threads,
        ident="riskwatch",
        # Without a configured proxy, X-Forwarded-* headers from clients are not to be trusted.
        clear_untrusted_proxy_headers=True,
    )


def server_url(host: str, port: int) -> str:
    """The URL to print for a listening address (IPv6 literals in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def listening_urls(server: Any) -> list[str]:
    """The URLs a waitress server listens on (a host name may resolve to several addresses)."""
    listen = getattr(server, "effective_listen", None)
    if listen is None:
        listen = [(server.effective_host, server.effective_port)]
    return [server_url(str(host), int(port)) for host, port in listen]


def serve(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    *,
    out: TextIO | None = None,
) -> None:
    """Serve the dashboard until interrupted, printing its URL first.

    Refuses to start (``DatabaseUnavailable`` or ``SchemaError``) when the database cannot be
    reached or is not migrated, rather than answering every request with an error.
    """
    engine = make_engine(settings.resolved_database_url)
    try:
        check_connection(engine)
        require_current_schema(engine)
    finally:
        engine.dispose()
    server = make_server(settings, host, port)
    stream = out or sys.stdout
    for url in listening_urls(server):
        print(f"riskwatch dashboard: {url}", file=stream)
    print("Press Ctrl+C to stop.", file=stream, flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
