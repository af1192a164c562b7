"""`riskwatch users add/list/remove` and `riskwatch serve` through the CLI (and a real process)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from sqlmodel import Session, select

from riskwatch import users as users_module
from riskwatch.cli import cli
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import Acknowledgement, Alert, Area, User
from riskwatch.users import authenticate

pytestmark = pytest.mark.db

PASSWORD = "a long enough password"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(users_module, "_dummy_hash", None)


@pytest.fixture
def url(database_url: str) -> Iterator[str]:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    yield database_url


def riskwatch(url: str, *args: str, password: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"RISKWATCH_DATABASE_URL": url},
                              input=None if password is None else password + "\n")


def test_add_list_and_log_in(url: str) -> None:
    result = riskwatch(url, "users", "add", "nadia", "--role", "coordinator",
                       "--country", "hti", "--country", "SDN", password=PASSWORD)
    assert result.exit_code == 0, result.output
    assert "Added user nadia (role coordinator; HTI, SDN)" in result.stdout
    assert PASSWORD not in result.output
    listing = riskwatch(url, "users", "list")
    assert listing.exit_code == 0
    assert "nadia" in listing.stdout and "HTI, SDN" in listing.stdout and "never" in listing.stdout
    engine = make_engine(url)
    with session_scope(engine) as session:
        user = authenticate(session, "nadia", PASSWORD)
        assert user is not None and user.role == "coordinator"
        assert user.countries == ["HTI", "SDN"]
        assert PASSWORD not in user.password_hash
    engine.dispose()


def test_the_password_never_comes_from_argv(url: str) -> None:
    result = riskwatch(url, "users", "add", "x1", "--role", "admin", "--password", PASSWORD)
    assert result.exit_code == 2 and "No such option" in result.stderr


@pytest.mark.parametrize(
    ("args", "password", "code", "message"),
    [
        (["--role", "admin", "--expert", "999"], PASSWORD, 1, "no expert with id 999"),
        (["--role", "boss"], PASSWORD, 2, "'boss' is not one of"),
        (["--role", "admin"], "short", 1, "too short"),
        (["--role", "admin", "--country", "Haiti"], PASSWORD, 1, "not an ISO3 code"),
        (["--role", "admin"], "", 1, "no password on standard input"),
    ],
)
def test_add_refusals(url: str, args: list[str], password: str, code: int, message: str) -> None:
    result = riskwatch(url, "users", "add", "someone", *args, password=password)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_duplicate_names_are_refused(url: str) -> None:
    assert riskwatch(url, "users", "add", "omar", "--role", "analyst",
                     password=PASSWORD).exit_code == 0
    again = riskwatch(url, "users", "add", "OMAR", "--role", "admin", password=PASSWORD)
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_remove_deletes_or_deactivates(url: str) -> None:
    for name in ("gone", "kept"):
        assert riskwatch(url, "users", "add", name, "--role", "expert",
                         password=PASSWORD).exit_code == 0
    engine = make_engine(url)
    with session_scope(engine) as session:
        session.add(Area(pcode="AA01", name="A", admin_level=1, country_iso3="AAA"))
        session.flush()
        alert = Alert(fingerprint="r:AA01", rule="r", area_pcode="AA01", severity="warning")
        session.add(alert)
        session.flush()
        kept = session.exec(select(User).where(User.username == "kept")).one()
        session.add(Acknowledgement(alert_id=alert.id, user_id=kept.id, via="dashboard"))
    removed = riskwatch(url, "users", "remove", "gone")
    assert removed.exit_code == 0 and "Removed user gone" in removed.stdout
    deactivated = riskwatch(url, "users", "remove", "kept")
    assert deactivated.exit_code == 0 and "Deactivated user kept" in deactivated.stdout
    with Session(engine) as session:
        names = {u.username: u.active for u in session.exec(select(User)).all()}
    engine.dispose()
    assert names == {"kept": False}
    unknown = riskwatch(url, "users", "remove", "nobody")
    assert unknown.exit_code == 1 and "no user named 'nobody'" in unknown.stderr


# --- serve ----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_runs_waitress_in_a_process(tmp_path: Path) -> None:
    # The server does not depend on the backend: one SQLite database is enough here.
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    port = _free_port()
    env = {**os.environ, "RISKWATCH_DATABASE_URL": url, "RISKWATCH_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "riskwatch.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200 and r.headers["Server"] == "riskwatch"
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert f"riskwatch dashboard: http://127.0.0.1:{port}/" in output
    assert "Traceback" not in output


def test_serve_refuses_a_database_without_schema(tmp_path: Path) -> None:
    result = riskwatch(f"sqlite:///{tmp_path / 'empty.db'}", "serve", "--port", "0")
    assert result.exit_code == 1
    assert "riskwatch db upgrade" in result.stderr


def test_the_cli_does_not_load_the_dashboard_until_serve() -> None:
    code = ("import sys, riskwatch.cli; "
            "sys.exit(1 if any(m.split('.')[0] == 'dashboards' for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
