"""The default catalog on the synthetic demo scenario: the planted surge cluster stands out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sqlmodel import Session, select

from riskwatch import demo
from riskwatch.db.models import AreaScore
from riskwatch.score_runs import ScoreRunSummary
from tests.demo_store import build_demo_store

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def demo_run(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ScoreRunSummary, pd.DataFrame, tuple[str, ...]]]:
    data_dir = tmp_path_factory.mktemp("demo-scoring")
    _, engine, summary = build_demo_store(module_database_url, data_dir)
    assert summary is not None
    with Session(engine) as session:
        rows = session.exec(select(AreaScore).where(AreaScore.run_id == summary.run_id)).all()
        frame = pd.DataFrame([r.model_dump() for r in rows])
    engine.dispose()
    # The planted cluster, as the generator reports it (same seed, same scenario).
    cluster = demo.generate_scenario(data_dir / "scenario-copy").surge_cluster
    yield summary, frame, cluster


def test_the_planted_cluster_ranks_in_the_top_decile_in_the_last_period(
    demo_run: tuple[ScoreRunSummary, pd.DataFrame, tuple[str, ...]],
) -> None:
    summary, frame, cluster = demo_run
    last = frame[frame["period"] == max(frame["period"])]
    districts = last[last["area_pcode"].str.len() == 6].dropna(subset=["risk"])
    assert len(districts) == 200  # every admin2 area has enough data in the last round
    cutoff = districts["risk"].quantile(0.9)
    ranked = districts.set_index("area_pcode")["risk"]
    assert (ranked[list(cluster)] >= cutoff).all(), ranked[list(cluster)].to_dict()
    # The drivers say why: the surge and the abductions are among each area's top drivers.
    for pcode in cluster:
        drivers: dict[str, Any] = last.set_index("area_pcode").loc[pcode, "drivers"]
        top = {pair.split(":")[0] for pair in drivers["top_drivers"].split(";")}
        assert "displacement_surge" in top, (pcode, drivers["top_drivers"])


def test_reliability_names_what_the_demo_does_not_have(
    demo_run: tuple[ScoreRunSummary, pd.DataFrame, tuple[str, ...]],
) -> None:
    summary, frame, cluster = demo_run
    # The demo has no border, distance-to-services or household data, and its site assessments
    # give m2 per person, not the share below the Sphere minimum: those indicators are
    # unavailable (named, never read as zero); the sites do give CT services and documents.
    for indicator in ("border_proximity", "distance_to_services", "female_headed_households",
                      "site_overcrowding"):
        assert indicator in summary.unavailable_by_country["XDM"]
    assert "ct_service_coverage" not in summary.unavailable_by_country["XDM"]
    last = frame[frame["period"] == max(frame["period"])]
    district = last[last["area_pcode"] == cluster[0]].iloc[0]
    assert district["lack_of_capacity"] is not None and not pd.isna(district["lack_of_capacity"])
    drivers = district["drivers"]
    assert drivers["missing_dimensions"] == []
    assert drivers["unavailable"]["border_proximity"] == "no_data"
    assert "ct_service_coverage" in drivers["indicators"]
    # IPC is published by admin1: the district inherits its region's value, discounted.
    assert drivers["indicators"]["food_insecurity_ipc3plus"]["inherited"] is True
    assert 0 < district["reliability"] < drivers["weight_share"] <= 1
