"""The dashboard over HTTP (Flask test client): the gate, logins, sessions, headers, pages."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dash
import pytest
from argon2 import PasswordHasher
from dash import Input, Output
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from dashboards.app import create_app
from dashboards.auth import (
    CSRF_COOKIE_NAME,
    CSRF_HEADER_NAME,
    SECRET_KEY_FILE,
    SESSION_COOKIE_NAME,
    STYLESHEET_PATH,
    require_role,
    safe_next,
    session_expired,
)
from dashboards.layout import DEMO_BANNER_TEXT, UNKNOWN_AREA_TEXT
from dashboards.testing import populate_sample_database
from riskwatch import users
from riskwatch.config import Settings, load_settings
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.models import User
from riskwatch.users import create_user, set_password

pytestmark = pytest.mark.db

PASSWORD = "correct horse"
PAGE_CALLBACK = "..page-header.children...demo-banner.children...page-content.children.."
# Reachable without a session: the login page, the health check, the login page's stylesheet.
PUBLIC_RULES = {"/login", "/healthz"}
# The documented exception (CONTRACTS.md "Web routes", dashboards/ack.py): the signed token in
# the URL is the credential, so these routes refuse (403) any request without a valid token.
TOKEN_RULES = {"/ack/<token>"}


@dataclass
class FakeClock:
    """A clock the tests move by hand (session timeouts without sleeping)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="module", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    # Production Argon2 parameters cost ~0.2 s per hash; the rules under test are the same.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                       parallelism=1))
        patch.setattr(users, "_dummy_hash", None)
        yield


@pytest.fixture(scope="module")
def database_url(module_database_url: str) -> str:
    """The sample database on each backend, with two users."""
    url = populate_sample_database(module_database_url, demo=True)
    engine = make_engine(url)
    with session_scope(engine) as session:
        create_user(session, "alice", PASSWORD, "coordinator")
        create_user(session, "adam", PASSWORD, "admin")
    engine.dispose()
    return url


def make_settings(database_url: str, data_dir: Path, **web: Any) -> Settings:
    return load_settings(
        overrides={"database_url": database_url, "data_dir": str(data_dir), "web": web},
        cwd=data_dir,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Flask:
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def dash_app_of(app: Flask) -> dash.Dash:
    return app.extensions["dash_app"]


def login_token(client: FlaskClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match is not None
    return match.group(1)


def login(
    client: FlaskClient, username: str = "alice", password: str = PASSWORD, **extra: str
) -> TestResponse:
    data = {"csrf_token": login_token(client), "username": username, "password": password}
    return client.post("/login", data={**data, **extra})


def callback_body(app: Flask, output: str, values: dict[str, Any] | None = None) -> dict:
    """The JSON Dash's renderer would post for the callback with this output id."""
    spec = dash_app_of(app).callback_map[output]
    outputs = spec["output"]
    values = values or {}
    return {
        "output": output,
        "outputs": (
            [item.to_dict() for item in outputs]
            if isinstance(outputs, (list, tuple))
            else outputs.to_dict()
        ),
        "inputs": [
            {**item, "value": values.get(f"{item['id']}.{item['property']}")}
            for item in spec["inputs"]
        ],
        "state": [{**item, "value": None} for item in spec["state"]],
        "changedPropIds": [f"{item['id']}.{item['property']}" for item in spec["inputs"]],
    }


def post_callback(client: FlaskClient, body: dict, *, csrf: bool = True) -> TestResponse:
    headers = {}
    cookie = client.get_cookie(CSRF_COOKIE_NAME)
    if csrf and cookie is not None:
        headers[CSRF_HEADER_NAME] = cookie.value
    return client.post("/_dash-update-component", json=body, headers=headers)


def show_page(app: Flask, client: FlaskClient, pathname: str) -> TestResponse:
    return post_callback(client, callback_body(app, PAGE_CALLBACK, {"url.pathname": pathname}))


def callback_text(response: TestResponse) -> str:
    """A callback answer as searchable text (Dash escapes "/" and non-ASCII in its JSON)."""
    return json.dumps(response.get_json(), ensure_ascii=False)


def sample_url(rule: Rule) -> str:
    """The rule's URL with a sample value for every variable part."""

    def value(match: re.Match[str]) -> str:
        return "1" if match.group(1) in ("int", "float") else "sample"

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>", value, rule.rule)


def set_cookie_headers(response: TestResponse, name: str) -> list[str]:
    return [value for value in response.headers.getlist("Set-Cookie")
            if value.startswith(name + "=")]


# Open routes -------------------------------------------------------------------------------
def test_healthz_needs_no_login_and_shows_no_data(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}
    assert not set_cookie_headers(response, SESSION_COOKIE_NAME)


def test_healthz_answers_503_when_the_database_is_down(tmp_path: Path) -> None:
    # A folder where the SQLite file should be: the database cannot be opened.
    (tmp_path / "db").mkdir()
    broken = make_settings(f"sqlite:///{tmp_path / 'db'}", tmp_path)
    response = create_app(broken).test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "unavailable"}


def test_login_page(client: FlaskClient) -> None:
    response = client.get("/login")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "riskwatch" in page and '<html lang="en">' in page
    assert '<label for="username">' in page and '<label for="password">' in page
    assert 'autocomplete="current-password"' in page
    assert 'name="csrf_token"' in page
    assert client.get(STYLESHEET_PATH).status_code == 200  # the login page's own style


# The gate ----------------------------------------------------------------------------------
def test_pages_redirect_to_login(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response.location == "/login"
    response = client.get("/area/TST0101?tab=x")
    assert response.status_code == 302
    assert response.location == "/login?next=%2Farea%2FTST0101%3Ftab%3Dx"


def test_every_route_refuses_requests_without_a_session(app: Flask, client: FlaskClient) -> None:
    rules = list(app.url_map.iter_rules())
    # Dash's own routes, the area page and the catch-all must all be among them.
    paths = {rule.rule for rule in rules}
    assert {"/", "/area/<pcode>", "/logout", "/_dash-layout", "/_dash-dependencies",
            "/_dash-update-component", "/<path:path>"} <= paths
    assert any(path.startswith("/_dash-component-suites/") for path in paths)
    assert any(path.startswith("/assets/") for path in paths)
    checked = 0
    assert paths >= TOKEN_RULES
    for rule in rules:
        if rule.rule in PUBLIC_RULES:
            continue
        url = sample_url(rule)
        if rule.rule in TOKEN_RULES:
            for method in sorted(rule.methods or set()):
                response = client.open(url, method=method)
                assert response.status_code == 403, (method, url, response.status_code)
                checked += 1
            continue
        for method in sorted(rule.methods or set()):
            response = client.open(url, method=method)
            assert response.status_code in (302, 401, 403), (method, url, response.status_code)
            if response.status_code == 302:
                assert urlsplit(response.location).path == "/login", (method, url)
            elif method != "HEAD":  # HEAD answers have no body
                assert response.get_json()["error"], (method, url)
            checked += 1
    assert checked >= 30


def test_static_files_need_a_session_except_the_login_stylesheet(client: FlaskClient) -> None:
    assert client.get(STYLESHEET_PATH).status_code == 200
    assert client.get("/assets/other.css").status_code == 401
    assert client.get("/_dash-component-suites/dash/dcc/dash_core_components.js").status_code \
        == 401
    assert client.get("/_favicon.ico").status_code == 401


def test_every_callback_refuses_requests_without_a_session(
    app: Flask, client: FlaskClient
) -> None:
    callbacks = dash_app_of(app).callback_map
    assert PAGE_CALLBACK in callbacks and len(callbacks) >= 2
    for output in callbacks:
        response = post_callback(client, callback_body(app, output))
        assert response.status_code == 401, output
        assert response.get_json() == {"error": "authentication required"}


def test_callbacks_need_the_csrf_header(app: Flask, client: FlaskClient) -> None:
    assert login(client).status_code == 302
    body = callback_body(app, PAGE_CALLBACK, {"url.pathname": "/"})
    response = post_callback(client, body, csrf=False)
    assert response.status_code == 403
    assert post_callback(client, body).status_code == 200


# Logging in --------------------------------------------------------------------------------
def test_wrong_password_is_refused(client: FlaskClient) -> None:
    response = login(client, password="wrong password")
    assert response.status_code == 401
    assert "Unknown user name or wrong password" in response.get_data(as_text=True)
    assert login(client, username="nobody").status_code == 401
    assert client.get("/").status_code == 302
    assert client.get("/_dash-layout").status_code == 401


def test_login_opens_the_dashboard(app: Flask, client: FlaskClient) -> None:
    response = login(client)
    assert response.status_code == 302 and response.location == "/"
    page = client.get("/")
    assert page.status_code == 200 and "_dash-config" in page.get_data(as_text=True)
    assert client.get("/_dash-layout").status_code == 200
    assert client.get("/_dash-dependencies").status_code == 200
    shown = show_page(app, client, "/")
    assert shown.status_code == 200
    text = callback_text(shown)
    assert "alice" in text and "coordinator" in text and "/logout" in text
    assert DEMO_BANNER_TEXT in text
    assert "riskmap" in text  # the map page (dashboards.map_page)
    # The navigation offers a coordinator every page but the admins' users page.
    for link in ("nav-map", "nav-alerts", "nav-health", "nav-exports"):
        assert link in text
    assert "nav-users" not in text


def test_logged_in_users_skip_the_login_form(client: FlaskClient) -> None:
    login(client)
    response = client.get("/login?next=/area/TST01")
    assert response.status_code == 302 and response.location == "/area/TST01"


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/area/TST0101", "/area/TST0101"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/logout", "/"),
    ],
)
def test_login_returns_only_to_relative_urls(
    client: FlaskClient, next_url: str, expected: str
) -> None:
    response = login(client, next=next_url)
    assert response.status_code == 302 and response.location == expected
    assert safe_next(next_url) == expected


def test_login_without_the_csrf_token_is_refused(client: FlaskClient, app: Flask) -> None:
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/_dash-layout").status_code == 401
    # A token from another browser's form does not help either.
    other_token = login_token(app.test_client())
    client.get("/login")
    response = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": other_token}
    )
    assert response.status_code == 400
    assert client.get("/_dash-layout").status_code == 401


def test_session_cookie_is_httponly_and_samesite(app: Flask) -> None:
    client = app.test_client()
    response = login(client)
    (cookie,) = set_cookie_headers(response, SESSION_COOKIE_NAME)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    # Over HTTPS the cookies are also Secure.
    secure = app.test_client()
    token_page = secure.get("/login", base_url="https://localhost")
    token = re.search(r'name="csrf_token" value="([^"]+)"', token_page.get_data(as_text=True))
    assert token is not None
    response = secure.post(
        "/login",
        data={"csrf_token": token.group(1), "username": "alice", "password": PASSWORD},
        base_url="https://localhost",
    )
    assert response.status_code == 302
    (cookie,) = set_cookie_headers(response, SESSION_COOKIE_NAME)
    assert "Secure" in cookie and "HttpOnly" in cookie
    (csrf_cookie,) = set_cookie_headers(response, CSRF_COOKIE_NAME)
    assert "Secure" in csrf_cookie


def test_tampered_session_cookie_is_refused(client: FlaskClient) -> None:
    login(client)
    cookie = client.get_cookie(SESSION_COOKIE_NAME)
    assert cookie is not None
    payload, rest = cookie.value.split(".", 1)
    client.set_cookie(SESSION_COOKIE_NAME, payload + "x." + rest)
    assert client.get("/_dash-layout").status_code == 401


# Session lifetime --------------------------------------------------------------------------
def test_idle_timeout_ends_the_session(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    app = create_app(make_settings(database_url, tmp_path, session_idle_minutes=1), clock=clock)
    client = app.test_client()
    login(client)
    clock.advance(seconds=50)
    assert client.get("/_dash-layout").status_code == 200  # activity moves the idle limit
    clock.advance(seconds=50)
    assert client.get("/_dash-layout").status_code == 200
    clock.advance(seconds=61)
    assert client.get("/_dash-layout").status_code == 401
    assert client.get("/").status_code == 302  # and stays ended
    clock.advance(seconds=1)
    assert client.get("/_dash-layout").status_code == 401


def test_absolute_timeout_ends_an_active_session(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    settings = make_settings(
        database_url, tmp_path, session_idle_minutes=120, session_absolute_hours=1
    )
    client = create_app(settings, clock=clock).test_client()
    login(client)
    clock.advance(minutes=59)
    assert client.get("/_dash-layout").status_code == 200
    clock.advance(minutes=2)
    assert client.get("/_dash-layout").status_code == 401


def test_session_expiry_rules() -> None:
    assert not session_expired(0, 0, 59, idle_minutes=1, absolute_hours=1)
    assert session_expired(0, 0, 60, idle_minutes=1, absolute_hours=1)
    assert session_expired(0, 3590, 3600, idle_minutes=1, absolute_hours=1)
    assert session_expired(10_000, 10_000, 0, idle_minutes=1, absolute_hours=1)  # future login


def test_logout_ends_the_session_and_its_copies(client: FlaskClient) -> None:
    login(client)
    assert client.get("/_dash-layout").status_code == 200
    stolen = client.get_cookie(SESSION_COOKIE_NAME)
    assert stolen is not None
    response = client.get("/logout")
    assert response.status_code == 302 and response.location == "/login"
    assert set_cookie_headers(response, CSRF_COOKIE_NAME)  # deleted
    assert client.get("/").status_code == 302
    assert client.get("/_dash-layout").status_code == 401
    client.set_cookie(SESSION_COOKIE_NAME, stolen.value)
    assert client.get("/_dash-layout").status_code == 401
    # Logging out again without a session just leads to the login page.
    assert client.get("/logout").status_code == 302


def test_deactivation_and_password_change_end_sessions(app: Flask, database_url: str) -> None:
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        create_user(session, "dora", PASSWORD, "analyst")
        create_user(session, "emil", PASSWORD, "analyst")
    dora, emil = app.test_client(), app.test_client()
    login(dora, "dora")
    login(emil, "emil")
    assert dora.get("/_dash-layout").status_code == 200
    with session_scope(engine) as session:
        user = session.exec(select(User).where(User.username == "dora")).one()
        user.active = False
        set_password(session, "emil", "a new password")
    engine.dispose()
    assert dora.get("/_dash-layout").status_code == 401
    assert emil.get("/_dash-layout").status_code == 401
    assert login(emil, "emil", "a new password").status_code == 302


# Roles -------------------------------------------------------------------------------------
def test_require_role_answers_403(settings: Settings, clock: FakeClock) -> None:
    app = create_app(settings, clock=clock)

    @require_role("admin")
    def admin_only() -> str:
        return "admin things"

    app.add_url_rule("/admin-only", "admin_only", admin_only)
    dash_app = dash_app_of(app)

    @dash_app.callback(Output("demo-banner", "title"), Input("url", "hash"))
    @require_role("admin", "analyst")
    def analysts_only(_hash: str | None) -> str:
        return "for analysts"

    coordinator, admin = app.test_client(), app.test_client()
    assert coordinator.get("/admin-only").status_code == 401
    login(coordinator, "alice")
    login(admin, "adam")
    assert coordinator.get("/admin-only").status_code == 403
    assert coordinator.get("/admin-only").get_json() == {"error": "forbidden"}
    assert admin.get("/admin-only").get_data(as_text=True) == "admin things"
    body = callback_body(app, "demo-banner.title", {"url.hash": ""})
    assert post_callback(coordinator, body).status_code == 403
    assert post_callback(admin, body).status_code == 200


# Headers and the page's scripts ------------------------------------------------------------
def _csp(response: TestResponse) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()
    }


def test_security_headers_on_every_response(client: FlaskClient) -> None:
    for path in ("/login", "/healthz", "/", "/_dash-layout"):
        headers = client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["Referrer-Policy"] == "no-referrer", path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert headers["Cache-Control"] == "no-store", path


def test_csp_lets_the_page_load_its_own_scripts_only(client: FlaskClient) -> None:
    login(client)
    response = client.get("/")
    page = response.get_data(as_text=True)
    csp = _csp(response)
    script_sources = csp["script-src"]
    assert "'unsafe-inline'" not in script_sources and "'unsafe-eval'" not in script_sources
    assert not any("http" in value for values in csp.values() for value in values)
    page_without_comments = re.sub(r"<!--.*?-->", "", page, flags=re.DOTALL)
    sources = re.findall(r'<script[^>]*\ssrc="([^"]+)"', page_without_comments)
    assert len(sources) >= 5
    for source in sources:
        assert source.startswith("/"), source  # served locally, no CDN
        script = client.get(source)
        assert script.status_code == 200, source
        assert "javascript" in script.mimetype, source
    for stylesheet in re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', page):
        assert stylesheet.startswith("/") and client.get(stylesheet).status_code == 200
    inline = re.findall(
        r"<script(?![^>]*\ssrc=)([^>]*)>(.*?)</script>", page_without_comments, re.DOTALL
    )
    executable = [body for attributes, body in inline if "application/json" not in attributes]
    assert executable, "Dash starts its renderer from an inline script"
    for body in executable:
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        assert f"'sha256-{digest}'" in script_sources


# Pages -------------------------------------------------------------------------------------
def test_area_page(app: Flask, client: FlaskClient) -> None:
    login(client)
    response = client.get("/area/TST0101")
    assert response.status_code == 200 and "_dash-config" in response.get_data(as_text=True)
    shown = show_page(app, client, "/area/TST0101")
    text = callback_text(shown)
    assert shown.status_code == 200
    assert "North-West" in text and "TST0101" in text and "area-series" in text
    unknown = show_page(app, client, "/area/NOPE")
    assert UNKNOWN_AREA_TEXT in callback_text(unknown)


# The session key ---------------------------------------------------------------------------
def test_secret_key_is_created_with_mode_0600_and_kept(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path / "data")
    first = create_app(settings)
    key_file = tmp_path / "data" / SECRET_KEY_FILE
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == first.secret_key
    client = first.test_client()
    login(client)
    cookie = client.get_cookie(SESSION_COOKIE_NAME)
    assert cookie is not None
    # A restarted server reads the same key: sessions survive the restart.
    second = create_app(settings)
    assert second.secret_key == first.secret_key
    restarted = second.test_client()
    restarted.set_cookie(SESSION_COOKIE_NAME, cookie.value)
    assert restarted.get("/_dash-layout").status_code == 200


def test_the_cookie_holds_ids_and_times_only(app: Flask, client: FlaskClient) -> None:
    response = login(client)
    (header,) = set_cookie_headers(response, SESSION_COOKIE_NAME)
    value = SimpleCookie(header)[SESSION_COOKIE_NAME].value
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    content = serializer.loads(value)
    assert set(content) == {"uid", "sid", "pwf", "login_at", "seen", "csrf"}
    assert "alice" not in str(content) and PASSWORD not in str(content)


def test_login_records_the_login_time(client: FlaskClient, database_url: str) -> None:
    engine = make_engine(database_url)
    with Session(engine) as session:
        before = session.exec(select(User).where(User.username == "adam")).one().last_login_at
    login(client, "adam")
    with Session(engine) as session:
        after = session.exec(select(User).where(User.username == "adam")).one().last_login_at
    engine.dispose()
    assert after is not None and after != before


def test_an_existing_key_file_is_used_and_tightened(database_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / SECRET_KEY_FILE
    key_file.write_text("k" * 64 + "\n")
    key_file.chmod(0o644)
    app = create_app(make_settings(database_url, tmp_path))
    assert app.secret_key == "k" * 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_configured_key_writes_no_file(database_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(database_url, tmp_path), secret_key="s" * 64)
    assert app.secret_key == "s" * 64
    assert not (tmp_path / SECRET_KEY_FILE).exists()


def test_library_code_and_callbacks_are_compressed_pages_are_not(client: FlaskClient) -> None:
    login(client)
    page = client.get("/", headers={"Accept-Encoding": "gzip, br"})
    assert "Content-Encoding" not in page.headers  # HTML: no compression (BREACH)
    scripts = re.findall(r'<script[^>]*\ssrc="(/_dash-component-suites/[^"]+)"',
                         page.get_data(as_text=True))
    assert scripts
    sizes = []
    for _ in range(2):  # the second answer comes from the compressed-bundle cache
        bundle = client.get(scripts[-1], headers={"Accept-Encoding": "gzip"})
        assert bundle.status_code == 200 and bundle.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in bundle.headers["Vary"]
        sizes.append(len(bundle.get_data()))
    assert sizes[0] == sizes[1]
    plain = client.get(scripts[-1])
    assert "Content-Encoding" not in plain.headers and len(plain.get_data()) > sizes[0]
    # Answers that differ per request are compressed but never served from that cache.
    csrf = client.get_cookie(CSRF_COOKIE_NAME)
    assert csrf is not None
    first, second = (
        client.post(
            "/_dash-update-component",
            json=callback_body(client.application, PAGE_CALLBACK, {"url.pathname": path}),
            headers={"Accept-Encoding": "gzip", CSRF_HEADER_NAME: csrf.value},
        )
        for path in ("/area/TST0101", "/area/TST0102")
    )
    assert first.headers["Content-Encoding"] == second.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(first.get_data()) != gzip.decompress(second.get_data())
    assert b"North-West" in gzip.decompress(first.get_data())
    assert b"North-East" in gzip.decompress(second.get_data())
