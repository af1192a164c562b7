"""Tests of the synthetic Demoland scenario generator (riskwatch.demo)."""

from __future__ import annotations

import hashlib
from collections import deque
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from riskwatch.demo import (
    DEMO_COUNTRY_ISO2,
    DEMO_COUNTRY_ISO3,
    DEMO_COUNTRY_NAME,
    DEMO_SEED,
    SYNTHETIC_LABEL,
    ScenarioFiles,
    generate_scenario,
)

METRIC_CRS = "EPSG:32738"  # UTM zone 38S, covers Demoland


def _all_paths(files: ScenarioFiles) -> list[Path]:
    return [
        files.boundaries_adm1,
        files.boundaries_adm2,
        files.dtm,
        files.acled,
        files.ipc,
        files.population,
        files.sites,
        files.readme,
    ]


def _digests(files: ScenarioFiles) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in _all_paths(files)}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioFiles:
    return generate_scenario(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def adm2(scenario: ScenarioFiles) -> gpd.GeoDataFrame:
    return gpd.read_file(scenario.boundaries_adm2)


@pytest.fixture(scope="module")
def adm1(scenario: ScenarioFiles) -> gpd.GeoDataFrame:
    return gpd.read_file(scenario.boundaries_adm1)


@pytest.fixture(scope="module")
def dtm(scenario: ScenarioFiles) -> pd.DataFrame:
    frame = pd.read_csv(scenario.dtm, skiprows=[1], dtype=str, keep_default_na=False)
    for col in ("adminLevel", "numPresentIdpInd", "numberMales", "numberFemales", "roundNumber"):
        frame[col] = frame[col].astype(int)
    return frame


@pytest.fixture(scope="module")
def acled(scenario: ScenarioFiles) -> pd.DataFrame:
    return pd.read_csv(scenario.acled, dtype={"admin1": str, "admin2": str}, keep_default_na=False)


@pytest.fixture(scope="module")
def idps_by_area(dtm: pd.DataFrame) -> pd.DataFrame:
    """Admin2 IDPs summed over the split rows: one row per pcode, one column per round."""
    level2 = dtm[dtm.adminLevel == 2]
    return level2.pivot_table(
        index="admin2Pcode", columns="roundNumber", values="numPresentIdpInd", aggfunc="sum"
    )


def test_same_seed_gives_byte_identical_files(scenario: ScenarioFiles, tmp_path: Path) -> None:
    again = generate_scenario(tmp_path / "again", seed=DEMO_SEED)
    assert _digests(again) == _digests(scenario)
    assert again.surge_cluster == scenario.surge_cluster
    assert again.island_pcodes == scenario.island_pcodes


def test_different_seed_gives_different_boundaries(scenario: ScenarioFiles, tmp_path: Path) -> None:
    other = generate_scenario(tmp_path / "other", seed=DEMO_SEED + 1)
    assert other.boundaries_adm2.read_bytes() != scenario.boundaries_adm2.read_bytes()
    assert other.boundaries_adm1.read_bytes() != scenario.boundaries_adm1.read_bytes()


def test_csv_files_are_utf8_without_bom_and_unix_newlines(scenario: ScenarioFiles) -> None:
    for path in (scenario.dtm, scenario.acled, scenario.ipc, scenario.population, scenario.sites):
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf"), path.name
        assert b"\r" not in data, path.name
        assert data.endswith(b"\n"), path.name
        data.decode("utf-8")


def test_readme_labels_data_as_synthetic(scenario: ScenarioFiles) -> None:
    text = scenario.readme.read_text(encoding="utf-8")
    assert text.startswith(SYNTHETIC_LABEL)
    assert str(DEMO_SEED) in text
    assert "riskwatch" in text
    for path in _all_paths(scenario)[:-1]:
        assert path.name in text


def test_boundaries_counts_codes_and_validity(
    adm1: gpd.GeoDataFrame, adm2: gpd.GeoDataFrame
) -> None:
    assert 14 <= len(adm1) <= 16
    assert 180 <= len(adm2) <= 230
    assert list(adm1.ADM1_PCODE) == [f"{DEMO_COUNTRY_ISO2}{i:02d}" for i in range(1, len(adm1) + 1)]
    assert list(adm2.ADM2_PCODE) == sorted(adm2.ADM2_PCODE)
    assert adm2.ADM2_PCODE.is_unique and adm2.ADM2_EN.is_unique and adm1.ADM1_EN.is_unique
    assert adm2.ADM2_PCODE.str.fullmatch(r"XD\d{4}").all()
    assert (adm2.ADM2_PCODE.str[:4] == adm2.ADM1_PCODE).all()
    assert (adm2.ADM0_PCODE == DEMO_COUNTRY_ISO2).all() and (adm1.ADM0_PCODE == "XD").all()
    assert (adm2.ADM0_EN == DEMO_COUNTRY_NAME).all()
    for col in ("ADM2_EN", "ADM1_EN", "date", "validOn"):
        assert col in adm2.columns
    for frame in (adm1, adm2):
        assert frame.crs.to_epsg() == 4326
        assert (frame.geom_type == "MultiPolygon").all()
        assert frame.is_valid.all()
    # admin2 cells form a coverage: shared edges, no gaps or overlaps between them.
    assert shapely.coverage_is_valid(adm2.geometry.values)
    names = dict(zip(adm1.ADM1_PCODE, adm1.ADM1_EN, strict=True))
    expected_names = adm2.ADM1_PCODE.map(names)
    assert (expected_names == adm2.ADM1_EN).all()


def test_admin1_is_exact_union_of_its_admin2(
    adm1: gpd.GeoDataFrame, adm2: gpd.GeoDataFrame
) -> None:
    for pcode, geom in zip(adm1.ADM1_PCODE, adm1.geometry, strict=True):
        union = shapely.union_all(adm2.geometry[adm2.ADM1_PCODE.eq(pcode)].values)
        assert geom.symmetric_difference(union).area < 1e-8 * geom.area, pcode
    assert set(adm2.ADM1_PCODE) == set(adm1.ADM1_PCODE)


def test_island_is_separate_from_mainland(scenario: ScenarioFiles, adm2: gpd.GeoDataFrame) -> None:
    assert 2 <= len(scenario.island_pcodes) <= 4
    is_island = adm2.ADM2_PCODE.isin(scenario.island_pcodes)
    assert is_island.sum() == len(scenario.island_pcodes)
    metric = adm2.to_crs(METRIC_CRS)
    island = shapely.union_all(metric.geometry[is_island].values)
    mainland = shapely.union_all(metric.geometry[~is_island].values)
    assert not island.touches(mainland) and not island.intersects(mainland)
    assert 10_000 < island.distance(mainland) < 100_000  # a few tens of km off the coast
    assert isinstance(mainland, shapely.Polygon)  # the mainland is one piece


def test_dtm_header_and_hxl_rows(scenario: ScenarioFiles) -> None:
    lines = scenario.dtm.read_text(encoding="utf-8").split("\n")
    assert lines[0].startswith("id,operation,admin0Name,admin0Pcode,admin1Name,admin1Pcode,")
    assert lines[0].endswith("idpOriginAdmin1Pcode,assessmentType,operationStatus")
    assert lines[1].startswith("#id+code,#operation+name,#country+name,#country+code,")
    assert len(lines[0].split(",")) == len(lines[1].split(",")) == 21


def test_dtm_codes_dates_and_rounds(dtm: pd.DataFrame) -> None:
    assert (dtm.admin0Pcode == DEMO_COUNTRY_ISO3).all()
    assert (dtm.admin0Name == DEMO_COUNTRY_NAME).all()
    assert list(dtm["id"].astype(int)) == list(range(1, len(dtm) + 1))
    assert set(dtm.roundNumber) == set(range(1, 11))
    assert (dtm.assessmentType == "BA").all() and (dtm.operationStatus == "Active").all()
    dates = pd.to_datetime(dtm.reportingDate, format="%Y-%m-%dT%H:%M:%S")
    assert (dates.dt.year == dtm.yearReportingDate.astype(int)).all()
    assert (dates.dt.month == dtm.monthReportingDate.astype(int)).all()
    per_round = dtm.groupby("roundNumber").reportingDate.nunique()
    assert (per_round == 1).all()
    level2 = dtm[dtm.adminLevel == 2]
    assert (level2.admin2Pcode.str[:4] == level2.admin1Pcode).all()
    assert ((dtm.adminLevel == 0) == (dtm.admin1Pcode == "")).all()
    assert ((dtm.adminLevel <= 1) == (dtm.admin2Pcode == "")).all()


def test_dtm_totals_are_consistent_across_levels(dtm: pd.DataFrame) -> None:
    totals = dtm.groupby(["roundNumber", "adminLevel"]).numPresentIdpInd.sum().unstack()
    assert (totals[0] == totals[1]).all()
    assert (totals[1] == totals[2]).all()
    per_adm1 = dtm.groupby(["roundNumber", "adminLevel", "admin1Pcode"]).numPresentIdpInd.sum()
    level1 = per_adm1.xs(1, level="adminLevel")
    level2 = per_adm1.xs(2, level="adminLevel")
    pd.testing.assert_series_equal(level1, level2)


def test_dtm_sexes_add_up(dtm: pd.DataFrame) -> None:
    assert (dtm.numberMales + dtm.numberFemales == dtm.numPresentIdpInd).all()
    assert (dtm.numPresentIdpInd > 0).all()


def test_dtm_rows_are_split_by_reason_and_origin(dtm: pd.DataFrame) -> None:
    level2 = dtm[dtm.adminLevel == 2]
    rows = level2.groupby(["roundNumber", "admin2Pcode"]).size()
    assert (rows >= 3).sum() > 50
    assert set(level2.displacementReason) == {"Conflict", "Natural disaster", "Other"}
    assert (level2.idpOriginAdmin1Pcode != level2.admin1Pcode).any()


def test_dtm_coverage_grows(idps_by_area: pd.DataFrame, adm2: gpd.GeoDataFrame) -> None:
    first = idps_by_area.notna().idxmax(axis=1)
    assert (first > 1).sum() >= 3  # some areas join coverage later
    assert (first == 1).sum() >= 150
    assert set(idps_by_area.index) == set(adm2.ADM2_PCODE)


def test_surge_cluster_is_connected_and_surging(
    scenario: ScenarioFiles, adm2: gpd.GeoDataFrame, idps_by_area: pd.DataFrame
) -> None:
    cluster = list(scenario.surge_cluster)
    assert 6 <= len(cluster) <= 10
    assert not set(cluster) & set(scenario.island_pcodes)
    geoms = adm2.set_index("ADM2_PCODE").geometry
    edges = {
        (a, b)
        for a in cluster
        for b in cluster
        if a != b and geoms[a].boundary.intersection(geoms[b].boundary).length > 0
    }
    seen = {cluster[0]}
    queue = deque([cluster[0]])
    while queue:
        a = queue.popleft()
        for x, b in edges:
            if x == a and b not in seen:
                seen.add(b)
                queue.append(b)
    assert seen == set(cluster)

    last = idps_by_area[10]
    before = idps_by_area[7]
    surging = (last - before > 5_000) & (last / before > 2)
    assert surging[cluster].all()
    assert set(surging[surging].index) == set(cluster)  # nothing else looks like a surge
    assert (idps_by_area.loc[cluster, 10] > idps_by_area.loc[cluster, 9]).all()


def test_offshore_events(acled: pd.DataFrame, adm2: gpd.GeoDataFrame) -> None:
    points = gpd.GeoSeries(gpd.points_from_xy(acled.longitude, acled.latitude), crs="EPSG:4326")
    land = shapely.union_all(adm2.geometry.values)
    inside = shapely.intersects(land, points.values)
    offshore = points[~inside].to_crs(METRIC_CRS)
    land_m = shapely.union_all(adm2.to_crs(METRIC_CRS).geometry.values)
    distance = shapely.distance(land_m, offshore.values)
    near = distance < 10_000
    far = distance > 30_000
    assert near.sum() >= 5
    assert far.sum() >= 2
    assert (near | far).all()
    assert (distance[near] > 1_000).all()


def test_onshore_events_fall_in_their_admin2(acled: pd.DataFrame, adm2: gpd.GeoDataFrame) -> None:
    assert 1_500 <= len(acled) <= 10_000
    assert (acled.country == DEMO_COUNTRY_NAME).all()
    assert acled.event_id_cnty.is_unique
    points = gpd.GeoDataFrame(
        acled, geometry=gpd.points_from_xy(acled.longitude, acled.latitude), crs="EPSG:4326"
    )
    joined = gpd.sjoin(points, adm2[["ADM2_EN", "ADM1_EN", "geometry"]], predicate="within")
    assert len(joined) >= len(acled) - 20
    assert (joined.admin2 == joined.ADM2_EN).all()
    assert (joined.admin1 == joined.ADM1_EN).all()
    named = acled[acled.admin2 != ""]
    assert set(named.admin2) <= set(adm2.ADM2_EN)
    assert pd.to_datetime(acled.event_date, format="%Y-%m-%d").notna().all()
    assert acled.notes.str.len().max() < 200
    kinds = set(zip(acled.event_type, acled.sub_event_type, strict=True))
    assert ("Violence against civilians", "Abduction/forced disappearance") in kinds
    assert ("Violence against civilians", "Sexual violence") in kinds
    assert ("Protests", "Peaceful protest") in kinds


def test_abductions_concentrate_in_surge_cluster(
    scenario: ScenarioFiles, acled: pd.DataFrame, adm2: gpd.GeoDataFrame
) -> None:
    names = set(adm2.ADM2_EN[adm2.ADM2_PCODE.isin(scenario.surge_cluster)])
    recent = acled[pd.to_datetime(acled.event_date) >= "2025-11-01"]
    abduction = recent.sub_event_type == "Abduction/forced disappearance"
    in_cluster = recent.admin2.isin(names)
    share_cluster = abduction[in_cluster].mean()
    share_elsewhere = abduction[~in_cluster].mean()
    assert share_cluster > 2 * share_elsewhere
    per_area_cluster = in_cluster.sum() / len(names)
    per_area_elsewhere = (~in_cluster).sum() / (len(adm2) - len(names))
    assert per_area_cluster > 2 * per_area_elsewhere


def test_population_file(scenario: ScenarioFiles, adm2: gpd.GeoDataFrame) -> None:
    lines = scenario.population.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "ADM2_PCODE,ADM2_EN,ADM1_PCODE,population,children_share,women_share"
    assert lines[1].startswith("#adm2+code,#adm2+name,#adm1+code,#population+total,")
    pop = pd.read_csv(scenario.population, skiprows=[1])
    assert list(pop.ADM2_PCODE) == list(adm2.ADM2_PCODE)
    small = pop.population < 5_000
    assert 1 <= small.sum() <= 10
    assert pop.population[~small].between(20_000, 600_000).all()
    for col in ("children_share", "women_share"):
        assert pop[col].between(0, 1).all()


def test_ipc_file_is_consistent(scenario: ScenarioFiles) -> None:
    ipc = pd.read_csv(scenario.ipc, dtype=str, keep_default_na=False)
    assert (ipc.location_code == DEMO_COUNTRY_ISO3).all()
    assert (ipc.admin_level == "1").all()
    assert set(ipc.ipc_phase) == {"1", "2", "3", "4", "5", "3+", "all"}
    assert 2 <= ipc.reference_period_start.nunique() <= 3
    ipc["pop"] = ipc.population_in_phase.astype(int)
    wide = ipc.pivot_table(
        index=["admin1_code", "reference_period_start"], columns="ipc_phase", values="pop"
    )
    assert (wide[["1", "2", "3", "4", "5"]].sum(axis=1) == wide["all"]).all()
    assert (wide[["3", "4", "5"]].sum(axis=1) == wide["3+"]).all()
    total = ipc.groupby(["admin1_code", "reference_period_start"])["pop"].transform("max")
    expected = (ipc["pop"] / total).round(2)
    assert np.allclose(ipc.population_fraction_in_phase.astype(float), expected)
    share = (wide["3+"] / wide["all"]).xs(ipc.reference_period_start.max(), level=1)
    cluster_regions = {p[:4] for p in scenario.surge_cluster}
    assert share.idxmax() in cluster_regions


def test_site_assessments(
    scenario: ScenarioFiles, adm2: gpd.GeoDataFrame, dtm: pd.DataFrame
) -> None:
    sites = pd.read_csv(scenario.sites, dtype={"admin2Pcode": str})
    assert 120 <= len(sites) <= 180
    assert sites.site_id.is_unique
    assert set(sites.ct_service_available) == {"yes", "no"}
    assert (sites.reportingDate == dtm.reportingDate[dtm.roundNumber == 10].iloc[0]).all()
    geoms = adm2.set_index("ADM2_PCODE").geometry
    inside = [
        geoms[p].contains(shapely.Point(x, y))
        for p, x, y in zip(sites.admin2Pcode, sites.longitude, sites.latitude, strict=True)
    ]
    assert all(inside)
    assert (sites.admin2Pcode.str[:4] == sites.admin1Pcode).all()
    per_person = sites.site_area_m2 / sites.individuals
    assert per_person.min() < 15 and per_person.max() > 40
    in_cluster = sites.admin2Pcode.isin(scenario.surge_cluster)
    assert in_cluster.sum() / len(scenario.surge_cluster) > 2 * (
        (~in_cluster).sum() / (len(adm2) - len(scenario.surge_cluster))
    )
    assert (sites.households <= sites.individuals).all()
