"""The hotspot stage of a score run: Gi* of the risk, temporal classes, IDP surges, exports.

The pure part runs on a small grid; the database part on the demo scenario, whose planted
surge cluster must come out hot, emerging and surging, on both backends.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner, Result
from sqlmodel import Session, select

from riskwatch import demo
from riskwatch.cli import cli
from riskwatch.config import Settings
from riskwatch.db.engine import make_engine
from riskwatch.db.models import Area, AreaScore, Hotspot
from riskwatch.hotspot_stage import (
    CONFLICT_VARIABLE,
    hotspot_rows,
    risk_hotspots,
    rolled_up_surges,
    surges_of,
    variable_hotspots,
)
from riskwatch.hotspots import HOT_CLASSES, HOTSPOT_CLASSES, TEMPORAL_CLASSES
from riskwatch.score_runs import ScoreRunSummary, run_score
from riskwatch.spatial_weights import clear_weights_cache
from tests.demo_store import build_demo_store

SIDE = 8
PERIODS = [date(2025, 1, 31), date(2025, 4, 30), date(2025, 7, 31)]
CLUSTER = [f"G{row * SIDE + c:02d}" for row in (3, 4) for c in (3, 4)]


# --- pure: a grid with a cluster that appears in the second period -----------------------------
def grid_units() -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    cells = [shapely.box(x, y, x + 1, y + 1) for y in range(SIDE) for x in range(SIDE)]
    pcodes = [f"G{i:02d}" for i in range(SIDE * SIDE)]
    areas = gpd.GeoDataFrame({"pcode": pcodes}, geometry=cells, crs="EPSG:4326")
    rng = np.random.default_rng(7)
    rows = []
    for t, period in enumerate(PERIODS):
        risk = rng.uniform(2.0, 4.0, size=len(pcodes))
        for i, pcode in enumerate(pcodes):
            value = risk[i] + (5.0 if t >= 1 and pcode in CLUSTER else 0.0)
            if pcode == "G63" and t == 2:
                value = np.nan  # insufficient data in the last period
            rows.append((pcode, 2, "TST", period, value))
    units = pd.DataFrame(rows, columns=["pcode", "admin_level", "country_iso3", "period",
                                        "risk"])
    # An area without geometry (a gazetteer area) is scored but never analysed.
    extra = pd.DataFrame([("GX", 2, "TST", p, 9.0) for p in PERIODS], columns=units.columns)
    return pd.concat([units, extra], ignore_index=True), areas


def test_surges_roll_up_to_scored_admin1_and_country_parents() -> None:
    # Four admin2 cells per admin1 (A1, A2, A3 in TST), A3 not scored: its children roll up
    # nowhere. A2 has its own surge, which wins over its children's sum.
    areas = pd.DataFrame(
        [("TST", 0, None, "TST"), ("A1", 1, None, "TST"), ("A2", 1, "TST", "TST"),
         ("A3", 1, "TST", "TST")]
        + [(f"{parent}{i}", 2, parent, "TST") for parent in ("A1", "A2", "A3") for i in range(4)],
        columns=["pcode", "admin_level", "parent_pcode", "country_iso3"])
    p0, p1 = PERIODS[:2]
    own = pd.DataFrame(
        [("A10", p1, True, 6000.0), ("A11", p1, True, 7000.0), ("A12", p1, False, np.nan),
         ("A20", p1, True, 9000.0), ("A2", p1, True, 20000.0), ("A2", p0, False, np.nan),
         ("A30", p1, True, 8000.0), ("A10", p0, False, np.nan)],
        columns=["pcode", "period", "surge", "surge_size"])
    rolled = rolled_up_surges(own, areas, scored={"TST", "A1", "A2", "A10", "A11", "A12", "A20"})
    by = rolled.set_index(["pcode", "period"])
    assert by.loc[("A1", p1), "surge"] and by.loc[("A1", p1), "surge_size"] == 13000.0
    assert by.loc[("A2", p1), "surge"] and by.loc[("A2", p1), "surge_size"] == 20000.0
    assert not by.loc[("A2", p0), "surge"]
    assert ("A3", p1) not in by.index  # not a scored area
    # The country sums its admin1 flags (A1 from children, A2 its own), not the admin2 ones.
    assert by.loc[("TST", p1), "surge"] and by.loc[("TST", p1), "surge_size"] == 33000.0
    assert ("TST", p0) not in by.index and ("A1", p0) not in by.index
    assert by.loc[("A30", p1), "surge"]  # the areas' own flags are kept


def test_indicator_hotspots_skip_periods_with_few_areas() -> None:
    clear_weights_cache()
    units, areas = grid_units()
    values = units.rename(columns={"risk": "value"}).assign(variable="ind")
    # In the first period only two areas have a value: not analysed, no rows.
    first = values["period"] == PERIODS[0]
    values.loc[first & ~values["pcode"].isin(["G00", "G01"]), "value"] = np.nan
    stats = variable_hotspots(values, areas)
    assert set(stats["variable"]) == {"ind"}
    assert PERIODS[0] not in set(stats["period"])
    later = stats[stats["period"] == PERIODS[1]].set_index("pcode")
    assert later.loc[CLUSTER, "hotspot_class"].isin(list(HOT_CLASSES)).all()
    # No row for an area without a value (G63 last period) or without a geometry (GX).
    assert ("G63", PERIODS[2]) not in set(zip(stats["pcode"], stats["period"], strict=True))
    assert "GX" not in set(stats["pcode"])


def test_grid_cluster_is_hot_and_emerges_period_by_period() -> None:
    clear_weights_cache()
    units, areas = grid_units()
    idps = pd.DataFrame({
        "pcode": ["G27"] * 3, "period": PERIODS, "value": [1000.0, 9000.0, 9500.0],
        "admin_level": 2, "country_iso3": "TST",
    })
    rows = hotspot_rows(units, risk_hotspots(units, areas), surges_of(idps))
    assert len(rows) == len(units)
    by = rows.set_index(["pcode", "period"])
    # Hot from the second period on: "new" when it appears, "consecutive" the period after.
    for pcode in CLUSTER:
        assert by.loc[(pcode, PERIODS[0]), "hotspot_class"] not in HOT_CLASSES
        assert by.loc[(pcode, PERIODS[1]), "hotspot_class"] in HOT_CLASSES
        assert by.loc[(pcode, PERIODS[1]), "temporal_class"] == "new"
        assert by.loc[(pcode, PERIODS[2]), "temporal_class"] == "consecutive"
    # Not analysed: no risk (G63, last period) or no geometry (GX).
    for key in [("G63", PERIODS[2]), ("GX", PERIODS[0])]:
        assert by.loc[key, "hotspot_class"] == "not_significant"
        assert by.loc[key, "temporal_class"] == "none"
        assert np.isnan(by.loc[key, "gi_z"]) and np.isnan(by.loc[key, "p_fdr"])
    # The surge: +8,000 IDPs, flagged in the second period only.
    assert by.loc[("G27", PERIODS[1]), "surge"]
    assert by.loc[("G27", PERIODS[1]), "surge_size"] == 8000.0
    assert not by.loc[("G27", PERIODS[2]), "surge"]
    assert np.isnan(by.loc[("G27", PERIODS[2]), "surge_size"])
    assert not rows.loc[rows["pcode"] != "G27", "surge"].any()


# --- the demo, through a real score run ------------------------------------------------------
@dataclass
class DemoRun:
    url: str
    settings: Settings
    summary: ScoreRunSummary
    hotspots: pd.DataFrame
    scores: pd.DataFrame
    cluster: tuple[str, ...]

    def export(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["export", *args],
                                  env={"RISKWATCH_DATABASE_URL": self.url})


def stored(url: str, model: type, run_id: int) -> pd.DataFrame:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = session.exec(select(model).where(model.run_id == run_id)).all()
        frame = pd.DataFrame([row.model_dump() for row in rows])
    engine.dispose()
    return frame


@pytest.fixture(scope="module")
def demo_run(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoRun]:
    data_dir = tmp_path_factory.mktemp("demo-hotspots")
    settings, engine, summary = build_demo_store(module_database_url, data_dir)
    engine.dispose()
    assert summary is not None and summary.run_id is not None
    cluster = demo.generate_scenario(data_dir / "scenario-copy").surge_cluster
    yield DemoRun(module_database_url, settings, summary,
                  stored(module_database_url, Hotspot, summary.run_id),
                  stored(module_database_url, AreaScore, summary.run_id), cluster)


@pytest.mark.db
def test_every_scored_area_and_period_has_a_hotspot_row(demo_run: DemoRun) -> None:
    hotspots, scores = demo_run.hotspots, demo_run.scores
    assert "risk" in set(hotspots["variable"])
    hotspots = hotspots[hotspots["variable"] == "risk"]
    key = ["area_pcode", "period"]
    assert len(hotspots) == len(scores)
    assert set(map(tuple, hotspots[key].to_numpy())) == set(map(tuple, scores[key].to_numpy()))
    assert set(hotspots["hotspot_class"]) <= set(HOTSPOT_CLASSES)
    assert set(hotspots["temporal_class"]) <= set(TEMPORAL_CLASSES)
    # Cells without a risk are not analysed.
    merged = hotspots.merge(scores[[*key, "risk"]], on=key)
    missing = merged[merged["risk"].isna()]
    assert (missing["hotspot_class"] == "not_significant").all()
    assert (missing["temporal_class"] == "none").all()
    assert missing["gi_z"].isna().all()
    # surge_size is there exactly when there is a surge.
    assert (hotspots["surge_size"].notna() == hotspots["surge"]).all()


@pytest.mark.db
def test_the_planted_cluster_is_hot_emerging_and_surging(demo_run: DemoRun) -> None:
    hotspots = demo_run.hotspots[demo_run.hotspots["variable"] == "risk"]
    last = hotspots[hotspots["period"] == hotspots["period"].max()].set_index("area_pcode")
    cluster = last.loc[list(demo_run.cluster)]
    assert cluster["hotspot_class"].isin(["hot_90", "hot_95", "hot_99"]).all(), cluster
    emerging = cluster["temporal_class"].isin(["new", "consecutive", "intensifying"])
    assert emerging.sum() > len(cluster) / 2, cluster["temporal_class"].to_dict()
    surging = cluster["surge"] & (cluster["surge_size"] > 5000)
    assert surging.sum() > len(cluster) / 2, cluster[["surge", "surge_size"]]
    # Outside the cluster, hot areas are few: the statistic is not painting the whole map.
    assert last["hotspot_class"].isin(list(HOT_CLASSES)).sum() < 3 * len(cluster)


@pytest.mark.db
def test_the_planted_cluster_emerges_as_new_in_the_last_rounds(demo_run: DemoRun) -> None:
    """The issue's check: the surge cluster is a *new* hotspot in the demo's last rounds.

    The demo's surge builds over its last three rounds, so (ESRI's definitions) most cluster
    areas are "new" in the round the cluster first appears and "consecutive" after it.
    """
    hotspots = demo_run.hotspots[demo_run.hotspots["variable"] == "risk"]
    last_rounds = sorted(hotspots["period"].unique())[-3:]
    recent = hotspots[hotspots["period"].isin(last_rounds)
                      & hotspots["area_pcode"].isin(demo_run.cluster)]
    emerged_new = set(recent.loc[recent["temporal_class"].isin(["new", "intensifying"]),
                                 "area_pcode"])
    assert len(emerged_new) >= len(demo_run.cluster) / 2, recent[
        ["area_pcode", "period", "temporal_class"]].to_string()
    # Before those rounds the cluster was not a hotspot: "new" is not a relabelled old one.
    earlier = hotspots[(hotspots["period"] < last_rounds[0])
                       & hotspots["area_pcode"].isin(emerged_new)]
    assert not earlier["hotspot_class"].isin(list(HOT_CLASSES)).any()


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.db
def test_hotspots_and_scores_csv_follow_the_contract(demo_run: DemoRun) -> None:
    result = demo_run.export("hotspots", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = read_csv(result.stdout)
    assert rows[0] == ["pcode", "admin_level", "period", "variable", "gi_z", "p_value", "p_fdr",
                       "hotspot_class", "temporal_class", "surge", "surge_size", "run"]
    assert rows[1][:4] == ["#adm+code", "#adm+level", "#date", "#indicator+code"]
    data = pd.DataFrame(rows[2:], columns=rows[0])
    districts = demo_run.scores[demo_run.scores["area_pcode"].str.len() == 6]
    assert len(data) == districts["area_pcode"].nunique()  # one row per area (admin2)
    assert data["pcode"].is_unique and set(data["admin_level"]) == {"2"}
    assert set(data["period"]) == {max(demo_run.scores["period"]).isoformat()}
    assert set(data["surge"]) == {"true", "false"}
    assert (data["surge_size"] == "").eq(data["surge"] == "false").all()
    assert set(data["run"]) == {str(demo_run.summary.run_id)}
    hot = data.set_index("pcode").loc[list(demo_run.cluster), "hotspot_class"]
    assert hot.str.startswith("hot_").all()

    result = demo_run.export("scores", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = read_csv(result.stdout)
    assert rows[0] == ["pcode", "admin_level", "period", "risk", "risk_class", "reliability",
                       "exposure", "vulnerability", "lack_of_capacity", "top_drivers", "run"]
    assert rows[1][3:5] == ["#severity+num", "#severity+type"]
    scores = pd.DataFrame(rows[2:], columns=rows[0])
    assert len(scores) == len(data) and scores["pcode"].tolist() == data["pcode"].tolist()
    top = scores.set_index("pcode").loc[demo_run.cluster[0], "top_drivers"]
    assert "displacement_surge:" in top


@pytest.mark.db
def test_export_filters_and_refusals(demo_run: DemoRun) -> None:
    first = min(demo_run.scores["period"]).isoformat()
    result = demo_run.export("hotspots", "--format", "csv", "--level", "1", "--period", first)
    assert result.exit_code == 0, result.output
    rows = read_csv(result.stdout)[2:]
    assert rows and {r[1] for r in rows} == {"1"} and {r[2] for r in rows} == {first}
    result = demo_run.export("hotspots", "--format", "csv", "--variable", "idps")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "no hotspots of 'idps'" in message and "displacement_surge" in message, message
    # An indicator of the profile without data in the demo: known, but no rows.
    result = demo_run.export("hotspots", "--format", "csv", "--variable", "border_proximity")
    assert result.exit_code == 1
    assert "no hotspots of 'border_proximity' in score run" in " ".join(result.stderr.split())
    result = demo_run.export("scores", "--format", "csv", "--run", "999")
    assert result.exit_code == 1 and "no score run 999" in result.stderr
    result = demo_run.export("hotspots", "--format", "geojson", "--country", "XDM")
    assert result.exit_code == 0, result.output
    assert '"hotspot_class"' in result.stdout


@pytest.mark.db
def test_a_rerun_without_new_data_gives_the_same_hotspots(demo_run: DemoRun) -> None:
    engine = make_engine(demo_run.url)
    again = run_score(engine, demo_run.settings)
    engine.dispose()
    assert again.run_id is not None and again.run_id != demo_run.summary.run_id
    columns = ["area_pcode", "period", "variable", "gi_z", "p_value", "p_fdr",
               "hotspot_class", "temporal_class", "surge", "surge_size"]

    def values(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[columns].sort_values(["variable", "area_pcode", "period"],
                                          ignore_index=True)

    pd.testing.assert_frame_equal(values(stored(demo_run.url, Hotspot, again.run_id)),
                                  values(demo_run.hotspots))


@pytest.mark.db
def test_indicator_hotspots_find_the_planted_cluster(demo_run: DemoRun) -> None:
    hotspots = demo_run.hotspots
    surge = hotspots[hotspots["variable"] == "displacement_surge"]
    assert not surge.empty
    assert set(hotspots["variable"]) - {"risk", CONFLICT_VARIABLE}  # several indicators
    last = surge[surge["period"] == surge["period"].max()].set_index("area_pcode")
    cluster = last.loc[list(demo_run.cluster)]
    assert cluster["hotspot_class"].isin(list(HOT_CLASSES)).all(), cluster
    # The displacement surge flags follow the risk row of the same area and period.
    risk = hotspots[hotspots["variable"] == "risk"].set_index(["area_pcode", "period"])
    flags = surge.set_index(["area_pcode", "period"])["surge"]
    assert (risk.loc[flags.index, "surge"] == flags).all()

    result = demo_run.export("hotspots", "--format", "csv", "--variable", "displacement_surge")
    assert result.exit_code == 0, result.output
    rows = read_csv(result.stdout)
    data = pd.DataFrame(rows[2:], columns=rows[0])
    assert set(data["variable"]) == {"displacement_surge"} and data["pcode"].is_unique
    hot = data.set_index("pcode").loc[list(demo_run.cluster), "hotspot_class"]
    assert hot.str.startswith("hot_").all()


@pytest.mark.db
def test_admin1_parents_of_the_surge_cluster_surge(demo_run: DemoRun) -> None:
    engine = make_engine(demo_run.url)
    with Session(engine) as session:
        parents = {a.pcode: a.parent_pcode for a in session.exec(select(Area)).all()}
    engine.dispose()
    risk = demo_run.hotspots[demo_run.hotspots["variable"] == "risk"]
    last = risk[risk["period"] == risk["period"].max()].set_index("area_pcode")
    surging_children = [p for p in demo_run.cluster if last.loc[p, "surge"]]
    admin1 = sorted({parents[p] for p in surging_children})
    assert admin1 and last.loc[admin1, "surge"].all(), last.loc[admin1]
    assert (last.loc[admin1, "surge_size"] > 0).all()
    # Conflict surges are rows of their own, never in the displacement column of other rows.
    conflict = demo_run.hotspots[demo_run.hotspots["variable"] == CONFLICT_VARIABLE]
    assert (conflict["surge_size"].notna() == conflict["surge"]).all()
