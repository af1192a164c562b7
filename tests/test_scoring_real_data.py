"""The default catalog on real data: Afghanistan's provinces with IOM DTM and IPC (HDX HAPI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import Session, select

from riskwatch.catalog import load_catalog
from riskwatch.config import load_settings
from riskwatch.db.engine import make_engine
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import AreaScore
from riskwatch.ingest import ingest_file
from riskwatch.score_runs import ScoreRunSummary, run_score
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.db

REPO_CATALOG = Path(__file__).resolve().parents[1] / "indicators"


@pytest.fixture(scope="module")
def afghanistan(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ScoreRunSummary, pd.DataFrame]]:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not present at {SHARED_DATA}")
    engine = make_engine(module_database_url)
    upgrade(engine)
    ingest_file(engine, SHARED_DATA / "boundaries" / "afg_adm1_geoboundaries_pcodes.geojson",
                "boundaries")
    ingest_file(engine, SHARED_DATA / "dtm" / "dtm-api-admin0-2_AFG_TCD.csv", "dtm")
    # HAPI marks its "urban pattern" IPC rows (no admin code) with an error: they are refused
    # row by row, a fifth of the file.
    ingest_file(engine, SHARED_DATA / "ipc" / "hapi-food-security_AFG.csv", "hapi",
                max_bad_row_share=0.5)
    settings = load_settings(overrides={"database_url": module_database_url,
                                        "indicators_dir": str(REPO_CATALOG)},
                             cwd=tmp_path_factory.mktemp("afg"))
    summary = run_score(engine, settings)
    with Session(engine) as session:
        rows = session.exec(select(AreaScore).where(AreaScore.run_id == summary.run_id)).all()
        frame = pd.DataFrame([r.model_dump() for r in rows])
    engine.dispose()
    yield summary, frame


def test_all_34_provinces_are_scored_in_the_last_dtm_round(
    afghanistan: tuple[ScoreRunSummary, pd.DataFrame],
) -> None:
    _, frame = afghanistan
    provinces = frame[frame["area_pcode"].str.match(r"^AF\d\d$")]
    last = provinces[provinces["period"] == provinces["period"].max()]
    assert str(last["period"].iloc[0]) == "2022-12-31"  # Afghanistan's last round in the file
    assert len(last) == 34
    assert last["risk"].notna().all()
    assert set(last["risk_class"]) <= {"very_low", "low", "medium", "high", "very_high"}


def test_reliability_reflects_the_indicators_really_present(
    afghanistan: tuple[ScoreRunSummary, pd.DataFrame],
) -> None:
    summary, frame = afghanistan
    weights = load_catalog(REPO_CATALOG).model("default").global_weights()
    present = {"displacement_surge", "food_insecurity_ipc3plus"}  # DTM and IPC, nothing else
    provinces = frame[frame["area_pcode"].str.match(r"^AF\d\d$")]
    last = provinces[provinces["period"] == provinces["period"].max()]
    for row in last.itertuples():
        drivers = row.drivers
        assert set(drivers["indicators"]) == present, row.area_pcode
        assert drivers["unavailable"]["idps_share_of_population"] == "no_denominator"
        assert drivers["unavailable"]["abduction_events_rate"] == "no_data"
        assert drivers["missing_dimensions"] == ["lack_of_capacity"]
        share = sum(weights[i] for i in present)
        assert drivers["weight_share"] == round(share, 3)
        # Present, own (not inherited) values, discounted only by their age.
        assert share / 2 <= row.reliability <= share
    # No population, events or services for Afghanistan: reported as unavailable there.
    assert {"idps_share_of_population", "ct_service_coverage"} <= set(
        summary.unavailable_by_country["AFG"])
    assert summary.missing_dimensions_by_country["AFG"] == ["lack_of_capacity"]
