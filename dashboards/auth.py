"""Logins, sessions and the access gate in front of every dashboard route.

The gate (:func:`gate`) is the first ``before_request`` function of the Flask server, registered
before Dash adds its own, so no Dash route, layout or callback runs for a request without a
valid session. Only ``/login``, ``/healthz`` and the stylesheet the login page uses are open.

Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax, Secure over HTTPS). They hold the
user id, a fingerprint of the user's password hash (so a password change ends old sessions), the
login time, the time of the last request, a session id and a CSRF token. Timeouts are checked on
the server at every request, and the user is re-read from the database each time, so removing or
deactivating a user ends their sessions at once. Logging out also revokes the session id in the
server process (waitress runs one process), so a copy of the cookie stops working too.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import html
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    g,
    has_request_context,
    jsonify,
    redirect,
    request,
)
from flask import session as web_session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from riskwatch.config import Settings
from riskwatch.db.engine import session_scope
from riskwatch.db.models import User
from riskwatch.users import authenticate

log = logging.getLogger(__name__)

SESSION_COOKIE_NAME = "riskwatch_session"
# Dash's renderer reads this cookie and sends its value in CSRF_HEADER_NAME with every callback
# request (Dash's csrf_token_name / csrf_header_name), which gives a double-submit CSRF check.
CSRF_COOKIE_NAME = "riskwatch_csrf"
CSRF_HEADER_NAME = "X-CSRFToken"
SECRET_KEY_FILE = "web_secret_key"

LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
HEALTH_PATH = "/healthz"
#: Acknowledgement links from alert messages: the signed token in the URL is the credential
#: (the one documented exception to "a session or 401"); the view refuses any invalid token.
ACK_PREFIX = "/ack/"
STYLESHEET_PATH = "/assets/riskwatch.css"
# Everything reachable without a session. The stylesheet is the only static file the login page
# loads; other assets and Dash's bundles need a session like every other route.
PUBLIC_PATHS = frozenset({LOGIN_PATH, HEALTH_PATH, STYLESHEET_PATH})
# HTML pages of the dashboard: without a session they redirect to the login page.
PAGE_PATH = re.compile(r"/(?:area/[^/]+|alerts|health|exports|users|experts)?")

#: Who may open which page (the page callback and the Flask route both check it).
ALL_ROLES: frozenset[str] = frozenset({"coordinator", "expert", "analyst", "admin"})
PAGE_ROLES: dict[str, frozenset[str]] = {
    "/": ALL_ROLES,
    "/area": ALL_ROLES,
    "/alerts": ALL_ROLES,
    "/health": frozenset({"coordinator", "admin"}),
    "/exports": frozenset({"coordinator", "analyst", "admin"}),
    "/users": frozenset({"admin"}),
    "/experts": frozenset({"admin"}),
}
#: Who may download exports (the download route checks role and country scope).
DOWNLOAD_ROLES: frozenset[str] = PAGE_ROLES["/exports"]
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_SESSION_KEYS = ("uid", "sid", "pwf", "login_at", "seen", "csrf")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CurrentUser:
    """The logged-in user of the current request (a plain copy, not a database row)."""

    id: int
    username: str
    role: str
    countries: tuple[str, ...] | None
    expert_id: int | None
    is_demo: bool


class RevokedSessions:
    """Session ids ended by logout, remembered until those sessions would have expired anyway."""

    def __init__(self) -> None:
        self._until: dict[str, int] = {}
        self._lock = threading.Lock()

    def revoke(self, session_id: str, until: int) -> None:
        """Refuse ``session_id`` until the epoch second ``until``."""
        with self._lock:
            self._until[session_id] = until

    def is_revoked(self, session_id: str, now: int) -> bool:
        """Whether ``session_id`` was revoked (forgetting entries whose time has passed)."""
        with self._lock:
            for expired in [key for key, until in self._until.items() if until <= now]:
                del self._until[expired]
            return session_id in self._until


@dataclass(frozen=True)
class WebContext:
    """What the web views need: the database, the settings and the clock (injectable in tests)."""

    engine: Engine
    settings: Settings
    clock: Callable[[], datetime]
    revoked: RevokedSessions = field(default_factory=RevokedSessions)

    def now(self) -> int:
        """The current time in whole seconds since the epoch, as stored in sessions."""
        return int(self.clock().timestamp())


def web_context() -> WebContext:
    """The :class:`WebContext` of the running app."""
    return current_app.extensions["riskwatch"]


# Secret key ----------------------------------------------------------------------------------
def load_or_create_secret_key(data_dir: Path) -> str:
    """The session signing key kept in ``data_dir/web_secret_key``, created (mode 0600) if absent.

    Several server processes may start at once: the file is created exclusively, and a process
    that loses the race reads the winner's key instead of writing its own.
    """
    path = data_dir / SECRET_KEY_FILE
    try:
        return _read_secret_key(path)
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret_key(path)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    log.info("created the web session key %s", path)
    return key


def _read_secret_key(path: Path) -> str:
    # An empty file is a concurrent creator between open and write: wait briefly for it.
    for _ in range(50):
        key = path.read_text(encoding="ascii").strip()
        if key:
            break
        time.sleep(0.02)
    else:
        raise RuntimeError(f"the web session key file {path} is empty: delete it to regenerate")
    if os.name == "posix":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            # Anyone who can read the key can forge sessions: tighten rather than run exposed.
            log.warning("the web session key %s was readable by others; set mode 0600", path)
            path.chmod(0o600)
    return key


# Session cookies -----------------------------------------------------------------------------
class RiskwatchSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, Secure whenever the request came over HTTPS."""

    def __init__(self, always_secure: bool = False) -> None:
        self.always_secure = always_secure

    def get_cookie_secure(self, app: Flask) -> bool:
        if self.always_secure:
            return True
        return has_request_context() and request.is_secure


def session_expired(
    login_at: int, last_seen: int, now: int, idle_minutes: int, absolute_hours: int
) -> bool:
    """Whether a session is past its idle or its absolute timeout (times in epoch seconds)."""
    if now >= last_seen + idle_minutes * 60:
        return True
    if now >= login_at + absolute_hours * 3600:
        return True
    # A clock set back (or a forged future time) must not stretch a session either.
    return login_at > now + 60


def password_fingerprint(password_hash: str) -> str:
    """A short digest of the password hash: sessions made before a password change stop working."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


def _current_user_from(user: User) -> CurrentUser:
    return CurrentUser(
        id=int(user.id or 0),
        username=user.username,
        role=user.role,
        countries=tuple(user.countries) if user.countries else None,
        expert_id=user.expert_id,
        is_demo=user.is_demo,
    )


def load_session_user(context: WebContext) -> CurrentUser | None:
    """The valid session's user, or None (and the session is emptied when it is not valid).

    Refreshes the last-seen time, which keeps an active session from idling out.
    """
    uid = web_session.get("uid")
    session_id = web_session.get("sid")
    login_at = web_session.get("login_at")
    last_seen = web_session.get("seen")
    if not (
        isinstance(uid, int)
        and isinstance(session_id, str)
        and isinstance(login_at, int)
        and isinstance(last_seen, int)
    ):
        return None
    now = context.now()
    web = context.settings.web
    if session_expired(
        login_at, last_seen, now, web.session_idle_minutes, web.session_absolute_hours
    ) or context.revoked.is_revoked(session_id, now):
        _clear_session()
        return None
    with Session(context.engine) as db:
        user = db.get(User, uid)
        valid = (
            user is not None
            and user.active
            and hmac.compare_digest(
                str(web_session.get("pwf", "")), password_fingerprint(user.password_hash)
            )
        )
        current = _current_user_from(user) if valid and user is not None else None
    if current is None:
        _clear_session()
        return None
    web_session["seen"] = now
    return current


def _clear_session() -> None:
    for key in _SESSION_KEYS:
        web_session.pop(key, None)


def current_user() -> CurrentUser | None:
    """The logged-in user of this request (set by the gate), or None outside a session."""
    return g.get("riskwatch_user")


def page_key(path: str) -> str:
    """The :data:`PAGE_ROLES` key of a dashboard path (``/area/X`` -> ``/area``)."""
    if path.startswith("/area/"):
        return "/area"
    return path


def may_open_page(user: CurrentUser, path: str) -> bool:
    """Whether ``user``'s role may open the page at ``path`` (unknown pages: yes, they 404)."""
    roles = PAGE_ROLES.get(page_key(path))
    return roles is None or user.role in roles


def in_scope(user: CurrentUser, country_iso3: str | None) -> bool:
    """Whether ``user`` may see data of this country (no scope: every country)."""
    if not user.countries:
        return True
    return country_iso3 is not None and country_iso3.upper() in user.countries


def require_role(*roles: str) -> Callable[[F], F]:
    """Decorate a Flask view or a Dash callback so only these roles may call it (else 403).

    The gate has already refused requests without a session (401); this narrows by role.
    """

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                abort(401)
            if user.role not in roles:
                abort(403)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


# The gate ------------------------------------------------------------------------------------
def is_page_path(path: str) -> bool:
    """Whether ``path`` is one of the dashboard's HTML pages (``/`` and ``/area/<pcode>``)."""
    return PAGE_PATH.fullmatch(path) is not None


def safe_next(value: str | None) -> str:
    """A relative URL on this site to return to after login; anything else becomes ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in (LOGIN_PATH, LOGOUT_PATH):
        return "/"
    return value


def _json_error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def gate() -> Response | None:
    """``before_request``: let a request through only with a valid session (or to a public path).

    Pages answer 302 to the login page, every other route 401, unsafe methods without the CSRF
    header 403, and all of it before Dash sees the request.
    """
    path = request.path
    if path in PUBLIC_PATHS:
        return None
    if path.startswith(ACK_PREFIX):
        # The token is checked by the view itself (dashboards.ack), for GET and POST alike;
        # its POST form carries its own CSRF token. Nothing else is answered there.
        if request.method in ("GET", "HEAD", "POST"):
            return None
        return _json_error(403, "acknowledgement links take GET and POST only")
    context = web_context()
    try:
        user = load_session_user(context)
    except SQLAlchemyError:
        log.exception("cannot check the session: database error")
        return _json_error(503, "database unavailable")
    if user is None:
        if request.method in ("GET", "HEAD") and is_page_path(path):
            query = request.query_string.decode("utf-8", "replace")
            target = path + ("?" + query if query else "")
            login_url = LOGIN_PATH + ("" if target == "/" else "?" + urlencode({"next": target}))
            return redirect(login_url, code=302)
        if path == LOGOUT_PATH:
            return redirect(LOGIN_PATH, code=302)
        return _json_error(401, "authentication required")
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER_NAME, "")
        expected = str(web_session.get("csrf", ""))
        if not expected or not hmac.compare_digest(sent, expected):
            return _json_error(403, "missing or wrong CSRF token")
    g.riskwatch_user = user
    return None


def refresh_csrf_cookie(response: Response) -> Response:
    """``after_request``: keep the CSRF cookie Dash reads in step with the session's token."""
    token = web_session.get("csrf") if current_user() is not None else None
    if token and request.cookies.get(CSRF_COOKIE_NAME) != token:
        _set_csrf_cookie(response, str(token))
    return response


def _set_csrf_cookie(response: Response, token: str) -> None:
    # Not HttpOnly on purpose: Dash's renderer has to read it to echo it in a header. It is no
    # secret from the page itself, only from other sites, which cannot read or set it.
    response.set_cookie(
        CSRF_COOKIE_NAME,
        token,
        httponly=False,
        samesite="Lax",
        secure=current_app.session_interface.get_cookie_secure(current_app),
        path="/",
    )


# Views ---------------------------------------------------------------------------------------
def _login_page(message: str | None, next_url: str, csrf_token: str, username: str = "") -> str:
    alert = (
        f'<p class="login-error" role="alert">{html.escape(message)}</p>' if message else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in - riskwatch</title>
<link rel="stylesheet" href="{STYLESHEET_PATH}">
</head>
<body class="login-body">
<main class="login-box">
<h1 class="brand">riskwatch</h1>
<p class="login-lead">Trafficking-risk monitoring for counter-trafficking teams.</p>
{alert}
<form method="post" action="{LOGIN_PATH}" autocomplete="on">
<input type="hidden" name="csrf_token" value="{html.escape(csrf_token)}">
<input type="hidden" name="next" value="{html.escape(next_url)}">
<label for="username">User name</label>
<input id="username" name="username" type="text" autocomplete="username" required
 autofocus maxlength="100" value="{html.escape(username)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>
"""


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html")


def _login_csrf_token() -> str:
    token = web_session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        web_session["csrf"] = token
    return token


def form_csrf_token() -> str:
    """The CSRF token of this browser's (possibly anonymous) session, for a plain HTML form."""
    return _login_csrf_token()


def form_csrf_ok(sent: str | None) -> bool:
    """Whether a form's ``csrf_token`` matches this browser's session token."""
    expected = web_session.get("csrf")
    return isinstance(expected, str) and bool(expected) and hmac.compare_digest(
        sent or "", expected)


def login_view() -> Response:
    """``GET /login``: the form; ``POST /login``: check the CSRF token and the credentials."""
    context = web_context()
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if load_session_user(context) is not None:
            return redirect(next_url, code=302)
        return _html(_login_page(None, next_url, _login_csrf_token()))

    sent_token = request.form.get("csrf_token", "")
    expected = web_session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent_token, expected):
        # No token, or one from another browser session: a cross-site post, or a stale form.
        message = "The login form expired. Please try again."
        return _html(_login_page(message, next_url, _login_csrf_token()), 400)

    username = request.form.get("username", "")[:100]
    password = request.form.get("password", "")
    with session_scope(context.engine) as db:
        user = authenticate(db, username, password)
        identity = (int(user.id or 0), password_fingerprint(user.password_hash)) if user else None
    if identity is None:
        # The attempted name is not logged: people type passwords into the wrong field.
        log.info("failed login from %s", request.remote_addr)
        message = "Unknown user name or wrong password."
        return _html(_login_page(message, next_url, _login_csrf_token(), username), 401)

    # A fresh session (and CSRF token) at login, so nothing set before it carries over.
    web_session.clear()
    now = context.now()
    web_session.update(
        {
            "uid": identity[0],
            "sid": secrets.token_urlsafe(16),
            "pwf": identity[1],
            "login_at": now,
            "seen": now,
            "csrf": secrets.token_urlsafe(32),
        }
    )
    response = redirect(next_url, code=302)
    _set_csrf_cookie(response, web_session["csrf"])
    return response


def logout_view() -> Response:
    """``/logout``: end the session (also for copies of its cookie) and go to the login page."""
    context = web_context()
    session_id = web_session.get("sid")
    login_at = web_session.get("login_at")
    if isinstance(session_id, str) and isinstance(login_at, int):
        # After its absolute timeout the session is refused anyway: no need to remember it.
        until = login_at + context.settings.web.session_absolute_hours * 3600
        context.revoked.revoke(session_id, until)
    web_session.clear()
    response = redirect(LOGIN_PATH, code=302)
    response.delete_cookie(CSRF_COOKIE_NAME, path="/")
    return response


def install_auth(app: Flask, context: WebContext) -> None:
    """Register the gate (first ``before_request``), the login and logout views, error bodies."""
    app.extensions["riskwatch"] = context
    app.session_interface = RiskwatchSessionInterface(
        always_secure=str(context.settings.base_url).startswith("https:")
    )
    app.before_request(gate)
    app.after_request(refresh_csrf_cookie)
    app.add_url_rule(LOGIN_PATH, "login", login_view, methods=["GET", "POST"])
    app.add_url_rule(LOGOUT_PATH, "logout", logout_view, methods=["GET"])
    app.register_error_handler(401, lambda _error: _json_error(401, "authentication required"))
    app.register_error_handler(403, lambda _error: _json_error(403, "forbidden"))
