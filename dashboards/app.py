"""The dashboard: a Flask server with the access gate, hosting the Dash app.

Routes (CONTRACTS.md, "Web routes"): the pages ``/`` (map), ``/area/<pcode>``, ``/alerts``,
``/health``, ``/exports``, ``/users`` and ``/experts`` (the Dash app; a role that may not open a
page gets a 403 page), ``/download/<what>`` (exports), ``/login``, ``/logout``, ``/healthz``,
the map's data routes and Dash's own routes, all behind the gate of :mod:`dashboards.auth`. The
one exception is ``/ack/<token>`` (:mod:`dashboards.ack`), where the signed token is the
credential. The app writes only people's actions: logins, acknowledgements, silences,
approvals, changes to experts' deployments and channels, and the audit trail of downloads.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import dash
from flask import Flask, Response, jsonify, request
from flask_compress import Compress
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from dashboards.ack import install_ack
from dashboards.auth import (
    CSRF_COOKIE_NAME,
    CSRF_HEADER_NAME,
    HEALTH_PATH,
    SESSION_COOKIE_NAME,
    STYLESHEET_PATH,
    WebContext,
    current_user,
    install_auth,
    load_or_create_secret_key,
    may_open_page,
)
from dashboards.callbacks import register_callbacks
from dashboards.downloads import install_downloads
from dashboards.layout import shell
from dashboards.map_page import install_map
from riskwatch.config import Settings
from riskwatch.db.engine import DatabaseUnavailable, check_connection, make_engine
from riskwatch.timeutil import utcnow

PACKAGE_FOLDER = Path(__file__).resolve().parent
ASSETS_FOLDER = PACKAGE_FOLDER / "assets"
MAX_REQUEST_BYTES = 2 * 1024 * 1024  # callback payloads are small; refuse anything bigger early
# Fingerprinted, public library code and styles: caching them is harmless and saves a lot.
CACHEABLE_PREFIXES = ("/assets/", "/_dash-component-suites/")


#: Compressed media types. Not HTML: the login and acknowledgement pages carry a CSRF token
#: next to reflected input, which compression would expose to a BREACH-style attack.
COMPRESSED_MIMETYPES = ["application/javascript", "text/javascript", "text/css",
                        "application/json", "application/geo+json", "image/svg+xml"]
COMPRESSED_CACHE_ENTRIES = 200


class _BundleCache:
    """flask-compress's cache for compressed library bundles (fingerprinted, same for all).

    flask-compress consults the cache for every response, with the key
    ``"<algorithm>;<cache key>"``; responses that must not be cached get an empty cache key,
    and this cache neither stores nor returns anything for them.
    """

    def __init__(self) -> None:
        self._entries: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        if key.endswith(";"):
            return None
        with self._lock:
            return self._entries.get(key)

    def set(self, key: str, value: bytes) -> None:
        if key.endswith(";"):
            return
        with self._lock:
            if len(self._entries) >= COMPRESSED_CACHE_ENTRIES:
                self._entries.clear()
            self._entries[key] = value


def _compress_cache_key(req: Any) -> str:
    # Only public library code is cached compressed: it is the same for every user, and
    # compressing plotly.js anew for each page load would cost a weak server a lot. Anything
    # else (callback answers, data) gets the empty key: never cached.
    if req.path.startswith(CACHEABLE_PREFIXES):
        return req.full_path
    return ""


def _install_compression(server: Flask) -> None:
    cache = _BundleCache()
    server.config.update(
        COMPRESS_MIMETYPES=COMPRESSED_MIMETYPES,
        COMPRESS_ALGORITHM=["br", "gzip"],
        COMPRESS_MIN_SIZE=1000,
        COMPRESS_CACHE_KEY=_compress_cache_key,
        COMPRESS_CACHE_BACKEND=lambda: cache,
    )
    Compress(server)


def _content_security_policy(script_hashes: list[str]) -> str:
    # Scripts: only our own origin plus the hashes of Dash's inline scripts (no 'unsafe-inline',
    # no CDN). Styles: plotly and its map library inject <style> elements at run time, which
    # cannot be hashed in advance. Workers: the map library starts its workers from blob: URLs.
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "child-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def _install_security_headers(server: Flask, dash_app: dash.Dash) -> None:
    def add_headers(response: Response) -> Response:
        headers = response.headers
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        # Hashes are computed per response: clientside callbacks may be added after startup.
        headers["Content-Security-Policy"] = _content_security_policy(
            list(dash_app.csp_hashes())
        )
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.path.startswith(CACHEABLE_PREFIXES):
            # Pages and callback answers carry data about people at risk: never keep copies.
            headers["Cache-Control"] = "no-store"
        return response

    server.after_request(add_headers)


#: Pages besides "/" and "/area/<pcode>" (their roles: dashboards.auth.PAGE_ROLES).
PAGE_PATHS = ("/alerts", "/health", "/exports", "/users", "/experts")


def _forbidden_page(path: str) -> Response:
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Not allowed - riskwatch</title>
<link rel="stylesheet" href="{STYLESHEET_PATH}"></head>
<body class="login-body"><main class="login-box"><h1 class="brand">riskwatch</h1>
<p class="login-error" role="alert">Your role cannot open {html.escape(path)}.</p>
<p><a href="/">Back to the map</a></p></main></body></html>
"""
    return Response(body, status=403, mimetype="text/html")


def _healthz(engine: Engine) -> Callable[[], tuple[Response, int]]:
    def healthz() -> tuple[Response, int]:
        # A round trip to the database and nothing else: the answer holds no data.
        try:
            check_connection(engine)
        except (DatabaseUnavailable, SQLAlchemyError):
            return jsonify({"status": "error", "database": "unavailable"}), 503
        return jsonify({"status": "ok", "database": "ok"}), 200

    return healthz


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    secret_key: str | None = None,
) -> Flask:
    """The dashboard's Flask server (with the Dash app at ``server.extensions["dash_app"]``).

    ``secret_key`` signs the session cookies; by default it is read from (or generated into)
    ``<data_dir>/web_secret_key``. ``clock`` is the time source of session timeouts (tests
    pass a fake one). Nothing is started: serve the result with :func:`dashboards.serve.serve`.
    """
    # __name__ and an explicit root path: the package may be installed as a namespace package.
    server = Flask(__name__, root_path=str(PACKAGE_FOLDER), static_folder=None)
    server.config.update(
        SECRET_KEY=secret_key or load_or_create_secret_key(settings.resolved_data_dir),
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
    )
    engine = make_engine(settings.resolved_database_url)
    # The gate must be the first before_request function, ahead of the ones Dash registers.
    install_auth(server, WebContext(engine=engine, settings=settings, clock=clock))
    server.add_url_rule(HEALTH_PATH, "healthz", _healthz(engine))

    dash_app = dash.Dash(
        __name__,
        server=server,
        url_base_pathname="/",
        use_pages=False,
        serve_locally=True,
        compress=False,
        assets_folder=str(ASSETS_FOLDER),
        title="riskwatch",
        update_title=None,
        # Page content (the map, area pages) is created by a callback after the layout loads.
        suppress_callback_exceptions=True,
        csrf_token_name=CSRF_COOKIE_NAME,
        csrf_header_name=CSRF_HEADER_NAME,
        enable_mcp=False,
        meta_tags=[{"name": "robots", "content": "noindex, nofollow"}],
    )
    dash_app.layout = shell
    register_callbacks(dash_app, engine)
    install_map(server, dash_app, engine, settings)

    def area_page(pcode: str) -> str:
        # The same single-page app; the page callback reads the pcode from the URL.
        return dash_app.index()

    def page(path: str) -> Callable[[], Response | str]:
        def view() -> Response | str:
            user = current_user()
            if user is None or not may_open_page(user, path):
                return _forbidden_page(path)
            return dash_app.index()

        return view

    server.add_url_rule("/area/<pcode>", "area_page", area_page)
    for path in PAGE_PATHS:
        server.add_url_rule(path, f"page_{path.strip('/')}", page(path))
    install_downloads(server)
    install_ack(server)
    _install_security_headers(server, dash_app)
    _install_compression(server)
    server.extensions["dash_app"] = dash_app
    server.extensions["riskwatch_engine"] = engine
    return server
