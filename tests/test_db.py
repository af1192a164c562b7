"""Migrations, geometry storage and the database-facing CLI, on SQLite and PostgreSQL+PostGIS."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import inspect, text
from sqlmodel import Session, SQLModel, select

from riskwatch.cli import cli
from riskwatch.db.engine import make_engine
from riskwatch.db.migrate import SchemaError, head_revision, require_current_schema, schema_state
from riskwatch.db.migrate import upgrade as migrate_upgrade
from riskwatch.db.models import Area

pytestmark = pytest.mark.db


def test_upgrade_creates_every_table_and_is_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    assert schema_state(engine).current is None
    before = migrate_upgrade(engine)
    assert before.current is None
    assert schema_state(engine).current == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    # A second upgrade changes nothing and says the schema was current.
    assert migrate_upgrade(engine).current == head_revision()
    require_current_schema(engine)


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    """Autogenerate finds nothing to do: the migrations and the SQLModel tables agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(database_url)
    migrate_upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, SQLModel.metadata)
    # PostGIS adds its own tables (spatial_ref_sys); the GiST index on area.geometry is created by
    # the migration for PostgreSQL only and is deliberately not on the model.
    ignored = ("spatial_ref_sys", "topology", "ix_area_geometry")
    ours = [d for d in diff if not any(name in repr(d) for name in ignored)]
    assert ours == []


def test_geometry_round_trips_as_postgis_or_wkb(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate_upgrade(engine)
    shape = MultiPolygon([Polygon([(40, -15), (41, -15), (41.5, -14), (40, -14)])])
    with Session(engine) as session:
        session.add(Area(pcode="XD01", name="North", admin_level=1, country_iso3="XDM",
                         geometry=shape))
        session.add(Area(pcode="XD02", name="Gazetteer only", admin_level=1, country_iso3="XDM"))
        session.commit()
    with Session(engine) as session:
        stored = session.exec(select(Area).where(Area.pcode == "XD01")).one()
        assert stored.geometry is not None and stored.geometry.equals(shape)
        assert session.exec(select(Area).where(Area.pcode == "XD02")).one().geometry is None
        if engine.dialect.name == "postgresql":
            srid, kind = session.execute(
                text("SELECT ST_SRID(geometry), GeometryType(geometry) FROM area "
                     "WHERE pcode = 'XD01'")
            ).one()
            assert (srid, kind) == (4326, "MULTIPOLYGON")
            covered = session.execute(
                text("SELECT pcode FROM area WHERE ST_Contains(geometry, "
                     "ST_SetSRID(ST_Point(40.5, -14.5), 4326))")
            ).all()
            assert covered == [("XD01",)]


def test_schema_newer_than_the_code_is_refused(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate_upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(SchemaError, match="newer than this riskwatch"):
        schema_state(engine)

    runner = CliRunner()
    env = {"RISKWATCH_DATABASE_URL": database_url}
    for args in (["status"], ["db", "upgrade"]):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 1, result.output
        assert "newer than this riskwatch" in result.output
        assert "Traceback" not in result.output


def test_cli_db_upgrade_then_status(database_url: str) -> None:
    runner = CliRunner()
    env = {"RISKWATCH_DATABASE_URL": database_url}
    first = runner.invoke(cli, ["db", "upgrade"], env=env)
    assert first.exit_code == 0, first.output
    assert f"upgraded from empty to {head_revision()}" in first.output
    again = runner.invoke(cli, ["db", "upgrade"], env=env)
    assert again.exit_code == 0 and "nothing to do" in again.output

    status = runner.invoke(cli, ["status"], env=env)
    assert status.exit_code == 0, status.output
    assert f"Schema version: {head_revision()} (up to date)" in status.output
    assert "areas" in status.output and "Scheduler: not running" in status.output


def test_status_names_the_default_sqlite_file_before_and_after_creation(tmp_path: Path) -> None:
    runner = CliRunner()
    expected = tmp_path / "data" / "riskwatch.db"
    before = runner.invoke(cli, ["status"])
    assert before.exit_code == 0
    assert f"SQLite file {expected} (not created yet)" in before.output
    assert not expected.exists()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    after = runner.invoke(cli, ["status"])
    assert f"SQLite file: {expected}" in after.output


def test_unreachable_database_is_one_line_with_masked_password() -> None:
    url = "postgresql+psycopg://rw:s3cret-pw@127.0.0.1:1/riskwatch"
    result = CliRunner().invoke(cli, ["status"], env={"RISKWATCH_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "s3cret-pw" not in result.output
    assert "cannot reach the database postgresql+psycopg://rw:***@127.0.0.1:1/riskwatch" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_help_for_every_command() -> None:
    runner = CliRunner()

    def walk(command, path):  # type: ignore[no-untyped-def]
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(cli, [])


def test_unknown_command_and_option_are_usage_errors() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["frobnicate"]).exit_code == 2
    assert runner.invoke(cli, ["status", "--frob"]).exit_code == 2
    assert runner.invoke(cli, ["demo", "--port", "0"]).exit_code == 2
