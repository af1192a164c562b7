"""Score runs in the database: versioned profiles, reproducible --as-of, stages, the command."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.cli import cli
from riskwatch.config import Settings, load_settings
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import (
    Area,
    AreaScore,
    Hotspot,
    IndicatorProfile,
    IngestBatch,
    JobRun,
    Observation,
    ScoreRun,
    Source,
)
from riskwatch.errors import RiskwatchError
from riskwatch.score_runs import ScoreRunContext, run_score
from riskwatch.timeutil import utcnow

pytestmark = pytest.mark.db

REPO_CATALOG = Path(__file__).resolve().parents[1] / "indicators"
ROUND_1, ROUND_2 = date(2025, 1, 31), date(2025, 4, 30)
AREAS = [("TST", 0, None), ("TST01", 1, "TST"), ("TST0101", 2, "TST01"),
         ("TST0102", 2, "TST01"), ("TST0103", 2, "TST01")]


def seed(engine: Engine) -> None:
    """A small country with DTM rounds (BA and SA), IPC by admin1, population, abductions."""
    upgrade(engine)
    with session_scope(engine) as session:
        session.add(Source(id="test", kind="table", location="test"))
        session.flush()
        batch = IngestBatch(source_id="test", kind="table", location="test", status="succeeded")
        session.add(batch)
        for pcode, level, parent in AREAS:
            session.add(Area(pcode=pcode, name=pcode, admin_level=level, parent_pcode=parent,
                             country_iso3="TST"))
        session.flush()
        rows: list[tuple[str, str, date, float, str, str]] = []
        for i, pcode in enumerate(["TST0101", "TST0102", "TST0103"]):
            rows += [
                (pcode, "population", date(2024, 1, 1), 100_000.0 * (i + 1), "", ""),
                (pcode, "idps", ROUND_1, 4_000.0 * (i + 1), "op-a", "BA"),
                (pcode, "idps", ROUND_2, 4_000.0 * (i + 1) * (1 + i), "op-a", "BA"),
                # A site assessment of the same people: never added to the baseline.
                (pcode, "idps", ROUND_2, 999_999.0, "op-a", "SA"),
                (pcode, "abduction_events", date(2025, 3, 1), float(i * 3), "", ""),
            ]
        rows.append(("TST0101", "idps", ROUND_2, 1_000.0, "op-b", "BA"))  # a second operation
        rows.append(("TST01", "ipc_phase3plus_share", date(2024, 11, 1), 0.3, "", ""))
        for pcode, variable, period, value, operation, kind in rows:
            session.add(Observation(area_pcode=pcode, variable=variable, period=period,
                                    value=value, operation=operation, assessment_type=kind,
                                    batch_id=batch.id))


@pytest.fixture
def engine(database_url: str) -> Engine:
    engine = make_engine(database_url)
    seed(engine)
    return engine


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO_CATALOG, catalog)
    return load_settings(overrides={"database_url": database_url,
                                    "indicators_dir": str(catalog)})


def scores(engine: Engine, run_id: int) -> list[tuple[Any, ...]]:
    with Session(engine) as session:
        rows = session.exec(
            select(AreaScore).where(AreaScore.run_id == run_id)
            .order_by(AreaScore.area_pcode, AreaScore.period)
        ).all()
        return [(r.area_pcode, r.period, r.risk, r.risk_class, r.reliability, r.exposure,
                 r.vulnerability, r.lack_of_capacity, r.drivers) for r in rows]


def edit_weight(settings: Settings, indicator: str, weight: int) -> None:
    path = settings.resolved_indicators_dir / f"{indicator}.toml"
    text = path.read_text()
    start = text.index("\nweight = ")
    end = text.index("\n", start + 1)
    path.write_text(text[:start] + f"\nweight = {weight}" + text[end:])


def test_a_run_stores_every_area_and_period_with_its_profile_version(
    engine: Engine, settings: Settings
) -> None:
    summary = run_score(engine, settings)
    assert summary.run_id is not None
    assert summary.periods == [ROUND_1, ROUND_2]
    rows = scores(engine, summary.run_id)
    assert len(rows) == len(AREAS) * 2
    with Session(engine) as session:
        run = session.get(ScoreRun, summary.run_id)
        profile = session.get(IndicatorProfile, run.profile_id)
    assert run.status == "succeeded" and run.finished_at is not None
    assert (profile.name, profile.version) == ("default", 1)
    assert run.profile_hash == profile.content_hash == summary.profile_hash
    assert run.params["scoring"]["min_weight_share"] == 0.15
    assert run.params["assessment_preference"] == ["BA", "SA", "ETT"]
    assert run.data_as_of == summary.data_as_of

    by_key = {(r[0], r[1]): r for r in rows}
    district = by_key[("TST0103", ROUND_2)]
    drivers = district[8]
    # Baseline assessment only (the SA figure is the same people): 12,000 x 3 = 36,000 IDPs.
    assert drivers["indicators"]["idps_share_of_population"]["value"] == 0.12
    assert drivers["indicators"]["displacement_surge"]["value"] == 2.0
    assert drivers["indicators"]["food_insecurity_ipc3plus"]["inherited"] is True
    assert drivers["missing_dimensions"] == ["lack_of_capacity"]
    assert drivers["top_drivers"].split(";")[0].split(":")[0] in drivers["contributions"]
    # Two operations of the same assessment type are added.
    first = by_key[("TST0101", ROUND_2)][8]
    assert first["indicators"]["idps_share_of_population"]["value"] == 0.05
    # The first round has no earlier round: no surge, reported as such.
    assert by_key[("TST0101", ROUND_1)][8]["unavailable"]["displacement_surge"] == "no_history"

    again = run_score(engine, settings)
    assert again.profile_version == 1  # same content: same version
    edit_weight(settings, "displacement_surge", 5)
    changed = run_score(engine, settings)
    assert changed.profile_version == 2 and changed.profile_hash != summary.profile_hash


def test_as_of_reproduces_an_earlier_run_exactly(engine: Engine, settings: Settings) -> None:
    first = run_score(engine, settings)
    assert first.run_id is not None and first.data_as_of is not None

    # Afterwards: a revised figure, a new profile version and other settings.
    later = first.data_as_of + timedelta(seconds=1)
    with session_scope(engine) as session:
        current = session.exec(select(Observation).where(
            Observation.area_pcode == "TST0102", Observation.variable == "idps",
            Observation.period == ROUND_2, Observation.assessment_type == "BA")).one()
        session.execute(update(Observation).where(col(Observation.id) == current.id)
                        .values(superseded_at=later))
        session.add(Observation(area_pcode="TST0102", variable="idps", period=ROUND_2,
                                value=60_000.0, operation="op-a", assessment_type="BA",
                                version=2, batch_id=current.batch_id, recorded_at=later))
    edit_weight(settings, "abduction_events_rate", 1)
    stricter = settings.model_copy(update={"scoring": settings.scoring.model_copy(
        update={"min_weight_share": 0.5})})
    second = run_score(engine, stricter)
    assert scores(engine, second.run_id) != scores(engine, first.run_id)
    assert second.profile_version == 2

    reproduced = run_score(engine, stricter, as_of=first.data_as_of)
    assert reproduced.params_from == f"run {first.run_id}"
    assert reproduced.profile_version == 1
    assert reproduced.params_hash == first.params_hash
    assert scores(engine, reproduced.run_id) == scores(engine, first.run_id)
    with Session(engine) as session:
        one = session.get(ScoreRun, first.run_id)
        three = session.get(ScoreRun, reproduced.run_id)
        assert (three.profile_id, three.profile_hash, three.data_as_of, three.params) == (
            one.profile_id, one.profile_hash, one.data_as_of, one.params)

    with pytest.raises(RiskwatchError, match="no version of profile 'default'"):
        run_score(engine, settings, as_of=first.data_as_of - timedelta(days=1))


def test_extra_stages_write_in_the_same_run_and_a_failure_leaves_no_partial_run(
    engine: Engine, settings: Settings
) -> None:
    seen: dict[str, Any] = {}

    def hotspots(context: ScoreRunContext) -> None:
        seen["rows"] = len(context.table.units)
        latest = context.table.latest()
        for row in latest.itertuples():
            context.session.add(Hotspot(run_id=context.run.id, area_pcode=row.pcode,
                                        period=row.period, variable="risk"))

    summary = run_score(engine, settings, stages=(), extra_stages=[hotspots])
    assert seen["rows"] == len(AREAS) * 2
    with Session(engine) as session:
        stored = session.exec(select(Hotspot).where(Hotspot.run_id == summary.run_id)).all()
    assert len(stored) == len(AREAS)

    def broken(context: ScoreRunContext) -> None:
        raise RuntimeError("stage failed")

    with pytest.raises(RuntimeError, match="stage failed"):
        run_score(engine, settings, extra_stages=[broken])
    with Session(engine) as session:
        runs = session.exec(select(ScoreRun).order_by(ScoreRun.id)).all()
        assert [r.status for r in runs] == ["succeeded", "failed"]
        assert session.exec(select(AreaScore).where(AreaScore.run_id == runs[1].id)).all() == []


def test_nothing_to_score_without_areas(database_url: str, settings: Settings) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    summary = run_score(engine, settings)
    assert summary.run_id is None and "no areas" in (summary.message or "")


def test_score_command(engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch,
                       database_url: str) -> None:
    monkeypatch.setenv("RISKWATCH_DATABASE_URL", database_url)
    monkeypatch.setenv("RISKWATCH_INDICATORS_DIR", str(settings.resolved_indicators_dir))
    runner = CliRunner()
    result = runner.invoke(cli, ["score"])
    assert result.exit_code == 0, result.output
    assert "Score run 1: profile default version 1" in result.output
    assert "Scored 5 areas at 2 period(s) (10 scores), 2025-01-31 to 2025-04-30." in result.output
    assert "Unavailable in TST (no data for their inputs, not counted as zero): " \
           "border_proximity" in result.output
    assert "No data at all in TST for: lack_of_capacity (risk computed from the other " \
           "dimensions, reliability lowered)." in result.output
    # Hotspots come with every run: no geometry here, so none is hot; the IDP surges show.
    assert "Hotspots of the risk in TST (2025-04-30): hot_99 0, hot_95 0, hot_90 0." \
        in result.output
    # The admin1 parent TST01 surges through its children (the sum of their increases).
    assert "IDP surges in the latest period: 3 area(s): TST01 (+32,000); TST0103 (+24,000); " \
           "TST0102 (+8,000)." in result.output
    as_of = result.output.split("data as of ")[1].split(",")[0]

    reproduced = runner.invoke(cli, ["score", "--as-of", as_of])
    assert reproduced.exit_code == 0, reproduced.output
    assert "Reproduced score run 2" in reproduced.output
    assert scores(engine, 2) == scores(engine, 1)

    assert runner.invoke(cli, ["score", "--as-of", "last tuesday"]).exit_code == 2
    unknown = runner.invoke(cli, ["score", "--profile", "nope"])
    assert unknown.exit_code == 1
    assert "unknown profile 'nope'" in unknown.output and "Traceback" not in unknown.output
    early = runner.invoke(cli, ["score", "--as-of", "2001-01-01"])
    assert early.exit_code == 1 and "no version of profile" in early.output
    with Session(engine) as session:
        jobs = session.exec(select(JobRun).where(JobRun.job == "score").order_by(JobRun.id)).all()
    assert [j.status for j in jobs] == ["succeeded", "succeeded", "failed", "failed"]
    assert jobs[0].counts["area_scores"] == 10 and jobs[0].finished_at <= utcnow()
    assert jobs[0].counts["surging_areas_latest_period"] == 3  # two areas and TST01
