"""`riskwatch demo`: the scenario through the real pipeline, determinism and isolation."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from riskwatch.cli import cli
from riskwatch.db.engine import make_engine
from riskwatch.db.kind import is_demo_database
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import Source

pytestmark = pytest.mark.db

# The content the demo promises to leave identical on a second run (bookkeeping such as job runs
# and ingest batch attempts may grow). Observations include their version and the batch that
# brought them: a re-run must not add versions or re-attribute values.
CONTENT_QUERIES = {
    "areas": "SELECT pcode, name, admin_level, parent_pcode, country_iso3, boundary_version "
             "FROM area ORDER BY pcode",
    "observations": "SELECT area_pcode, variable, period, value, operation, assessment_type, "
                    "round, version, batch_id, superseded_at IS NULL FROM observation "
                    "ORDER BY area_pcode, variable, period, operation, assessment_type, version",
    "score runs": "SELECT count(*) FROM score_run",
    "area scores": "SELECT run_id, area_pcode, period, risk, risk_class FROM area_score "
                   "ORDER BY run_id, area_pcode, period",
    "hotspots": "SELECT run_id, area_pcode, period, variable, hotspot_class, temporal_class "
                "FROM hotspot ORDER BY run_id, area_pcode, period, variable",
    "alerts": "SELECT fingerprint, rule, area_pcode, severity, state FROM alert "
              "ORDER BY fingerprint",
    "users": "SELECT username, role, is_demo FROM app_user ORDER BY username",
}


def content(engine: Engine) -> dict[str, tuple[int, str]]:
    """Row count and digest of each kind of content."""
    digests = {}
    with engine.connect() as connection:
        for name, query in CONTENT_QUERIES.items():
            rows = connection.execute(text(query)).all()
            normalised = repr([tuple(_plain(v) for v in row) for row in rows])
            digests[name] = (len(rows), hashlib.sha256(normalised.encode()).hexdigest())
        geometry = connection.execute(text("SELECT pcode, geometry FROM area ORDER BY pcode"))
        # PostGIS returns hex EWKB text, SQLite WKB bytes: either way a stable representation.
        shapes = [(pcode, g if g is None or isinstance(g, str) else bytes(g))
                  for pcode, g in geometry]
    digests["geometries"] = (len(shapes), hashlib.sha256(repr(shapes).encode()).hexdigest())
    return digests


def _plain(value: object) -> object:
    if isinstance(value, float):
        return round(value, 9)
    return value


def test_demo_builds_the_scenario_and_a_second_run_changes_no_content(database_url: str) -> None:
    runner = CliRunner()
    env = {"RISKWATCH_DATABASE_URL": database_url}
    first = runner.invoke(cli, ["demo", "--no-serve"], env=env)
    assert first.exit_code == 0, first.output
    assert "SYNTHETIC" in first.output
    assert "Demo logins" in first.output and "coordinator" in first.output
    # One full cycle through the pipeline of `riskwatch run`, with its schedule and history.
    assert "not built yet" not in first.output
    assert "Alerts:" in first.output and "firing" in first.output
    assert "Schedule" in first.output and "pipeline" in first.output
    assert "Job history" in first.output and "demo-cycle" in first.output

    engine = make_engine(database_url)
    with Session(engine) as session:
        assert is_demo_database(session)
    after_first = content(engine)
    areas, _ = after_first["areas"]
    observations, _ = after_first["observations"]
    assert 200 <= areas <= 260  # country + ~15 admin1 + ~200 admin2
    assert observations > 5000
    with engine.connect() as connection:
        variables = {v for (v,) in connection.execute(
            text("SELECT DISTINCT variable FROM observation"))}
        # Every source of the scenario arrived through its reader.
        assert {"idps", "conflict_events", "abduction_events", "population",
                "ipc_phase3plus_share"} <= variables
        # Offshore events too far from land are quarantined and counted, not dropped silently.
        quarantined = connection.execute(
            text("SELECT rows_quarantined FROM ingest_batch WHERE source_id = 'demo-acled'")
        ).scalar_one()
        assert quarantined >= 2

    with engine.connect() as connection:
        notifications = connection.execute(text("SELECT count(*) FROM notification")).scalar()

    second = runner.invoke(cli, ["demo", "--no-serve"], env=env)
    assert second.exit_code == 0, second.output
    assert content(engine) == after_first
    with engine.connect() as connection:
        # Nothing new to say: the second cycle sends no message again.
        assert connection.execute(text("SELECT count(*) FROM notification")).scalar() \
            == notifications
        cycles = connection.execute(
            text("SELECT status FROM job_run WHERE job = 'demo-cycle'")).scalars().all()
    assert cycles == ["succeeded", "succeeded"]


def test_demo_refuses_a_database_with_other_data(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    with Session(engine) as session:
        session.add(Source(id="real-dtm", kind="dtm", location="/data/dtm.csv"))
        session.commit()
    before = content(engine)

    result = CliRunner().invoke(cli, ["demo", "--no-serve"],
                                env={"RISKWATCH_DATABASE_URL": database_url})
    assert result.exit_code == 1
    assert "not demo data" in result.output and "refuses" in result.output
    assert "Traceback" not in result.output
    assert content(engine) == before
    with Session(engine) as session:
        assert not is_demo_database(session)


def test_demo_uses_its_own_database_file_when_none_is_configured(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    demo_file = tmp_path / "data" / "demo" / "riskwatch-demo.db"
    assert demo_file.exists()
    # The operator's default database is left alone.
    assert not (tmp_path / "data" / "riskwatch.db").exists()
