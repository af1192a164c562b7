"""Shared fixtures: every database-facing test runs on SQLite and on PostgreSQL + PostGIS.

PostgreSQL comes from RISKWATCH_TEST_POSTGRES_URL (an admin URL such as
postgresql+psycopg://postgres@127.0.0.1:5432/postgres); each test gets a fresh database of its
own. Without the variable the PostgreSQL variants skip with a reason, unless
RISKWATCH_TEST_REQUIRE_SERVICES=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POSTGRES_ENV = "RISKWATCH_TEST_POSTGRES_URL"
REQUIRE_ENV = "RISKWATCH_TEST_REQUIRE_SERVICES"


def services_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false")


def skip_or_fail(reason: str) -> None:
    """Skip outside CI; in CI a missing service is a failure, never a silent skip."""
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set, so this is a failure)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's RISKWATCH_* settings or ./config by accident."""
    for name in list(os.environ):
        if name.startswith("RISKWATCH_") and name not in (POSTGRES_ENV, REQUIRE_ENV):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RISKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


def _postgres_database() -> Iterator[str]:
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        skip_or_fail(f"PostgreSQL not configured: set {POSTGRES_ENV} to run the PostgreSQL variant")
    name = f"riskwatch_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means "absent"
        admin.dispose()
        skip_or_fail(f"PostgreSQL at {make_url(admin_url).render_as_string()} unusable: {exc}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'riskwatch-test.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database on each backend, shared by the tests of one module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'riskwatch-test.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not present at {SHARED_DATA}")
    return SHARED_DATA


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Show how many database tests ran on each backend (CI's summary shows the counts)."""
    counts: dict[tuple[str, str], int] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            for backend in ("sqlite", "postgresql"):
                if f"[{backend}" in nodeid or f"-{backend}]" in nodeid or f"-{backend}-" in nodeid:
                    key = (backend, outcome)
                    counts[key] = counts.get(key, 0) + 1
    if not counts:
        return
    terminalreporter.section("database backends")
    for backend in ("sqlite", "postgresql"):
        parts = [f"{counts[(backend, o)]} {o}" for o in ("passed", "failed", "error", "skipped")
                 if counts.get((backend, o))]
        terminalreporter.write_line(f"{backend}: {', '.join(parts) or 'none'}")
