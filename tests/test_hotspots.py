"""Gi* hotspots, FDR, weights and emerging (temporal) classes: riskwatch.hotspots and
riskwatch.spatial_weights."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import stats

from riskwatch import spatial_weights
from riskwatch.demo import generate_scenario
from riskwatch.hotspots import (
    HOT_CLASSES,
    HOTSPOT_CLASSES,
    NOT_SIGNIFICANT,
    TEMPORAL_CLASSES,
    benjamini_hochberg,
    classify_hotspots,
    emerging_classes,
    gi_star,
    hotspot_statistics,
    mann_kendall,
)
from riskwatch.sources.boundaries import read_boundaries
from riskwatch.sources.dtm import read_dtm_table
from riskwatch.spatial_weights import build_weights, clear_weights_cache, weights_key

SIDE = 20
BLOCK = [row * SIDE + col for row in range(8, 11) for col in range(8, 11)]


@pytest.fixture(autouse=True)
def _fresh_weights_cache():
    clear_weights_cache()
    yield
    clear_weights_cache()


def grid(side: int = SIDE, *, crs: str | None = None) -> gpd.GeoDataFrame:
    """side x side unit squares, pcodes G000... row by row."""
    cells = [shapely.box(x, y, x + 1, y + 1) for y in range(side) for x in range(side)]
    pcodes = [f"G{i:03d}" for i in range(side * side)]
    return gpd.GeoDataFrame({"pcode": pcodes}, geometry=cells, crs=crs)


def planted(seed: int = 1, *, shift: float = 0.0) -> pd.Series:
    """Standard normal noise with a 3x3 block raised by 4 standard deviations."""
    values = np.random.default_rng(seed).normal(size=SIDE * SIDE)
    values[BLOCK] += 4.0
    return pd.Series(values + shift, index=grid()["pcode"])


def ord_getis_z(values: np.ndarray, neighbours: list[list[int]]) -> np.ndarray:
    """Gi* z from its textbook formula (Ord and Getis 1995, binary weights incl. self)."""
    n = values.size
    mean, sd = values.mean(), np.sqrt((values**2).mean() - values.mean() ** 2)
    z = np.empty(n)
    for i, around in enumerate(neighbours):
        members = [i, *around]
        w = len(members)
        z[i] = (values[members].sum() - mean * w) / (sd * np.sqrt((n * w - w * w) / (n - 1)))
    return z


# --- Gi* + FDR ------------------------------------------------------------------------------


def test_planted_cluster_is_hot_at_99_percent():
    result = hotspot_statistics(grid(), planted())

    assert list(result.columns) == ["pcode", "gi_z", "p_value", "p_fdr", "hotspot_class"]
    assert (result.loc[BLOCK, "hotspot_class"] == "hot_99").all()
    # Nothing hot away from the block and its ring of neighbours.
    rows, cols = np.divmod(np.arange(SIDE * SIDE), SIDE)
    far = (np.abs(rows - 9) > 2) | (np.abs(cols - 9) > 2)
    assert not result.loc[far, "hotspot_class"].isin(HOT_CLASSES).any()
    assert set(result["hotspot_class"]) <= set(HOTSPOT_CLASSES)


def test_pure_noise_flags_at_most_five_percent_hot_after_fdr():
    areas = grid()
    weights, _ = build_weights(areas)
    shares, raw_shares = [], []
    for seed in range(100):
        noise = pd.Series(np.random.default_rng(seed).normal(size=len(areas)), index=areas.pcode)
        result = hotspot_statistics(areas, noise, weights=weights)
        shares.append(result["hotspot_class"].isin(HOT_CLASSES).mean())
        raw_shares.append(((result["p_value"] <= 0.10) & (result["gi_z"] > 0)).mean())

    assert np.mean(shares) <= 0.05
    # Without the correction about 5% of the areas would be "hot" at 90%: FDR is doing work.
    assert np.mean(raw_shares) > 4 * np.mean(shares)


def test_z_matches_the_textbook_formula_and_any_sign_of_mean():
    areas = grid(6)
    values = np.random.default_rng(3).normal(size=36)
    weights, _ = build_weights(areas)
    neighbours = [
        [int(j) for j in np.flatnonzero(row) if j != i]
        for i, row in enumerate(weights.sparse.toarray())
    ]
    expected = ord_getis_z(values, neighbours)

    for shift in (50.0, 0.0, -50.0):  # esda alone flips z for a negative mean
        z, p = gi_star(values + shift, weights)
        np.testing.assert_allclose(z, expected, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(p, 2 * stats.norm.sf(np.abs(expected)), rtol=1e-9)


def test_planted_cluster_of_increases_on_a_falling_field_is_hot():
    # IDP change: most areas lose IDPs (negative mean), the block gains.
    result = hotspot_statistics(grid(), planted(shift=-10.0))
    assert (result.loc[BLOCK, "hotspot_class"] == "hot_99").all()


def test_one_area_country_is_not_significant():
    areas = gpd.GeoDataFrame({"pcode": ["XX01"]}, geometry=[shapely.box(0, 0, 1, 1)])
    result = hotspot_statistics(areas, pd.Series({"XX01": 10.0}))

    assert result["hotspot_class"].tolist() == [NOT_SIGNIFICANT]
    assert result[["gi_z", "p_value", "p_fdr"]].isna().all().all()
    weights, _ = build_weights(areas)
    assert weights.n == 1


def test_areas_neighbouring_every_other_area_are_not_significant():
    areas = grid(2)  # four squares all touching (queen): Gi* has no variance
    result = hotspot_statistics(areas, pd.Series([1.0, 2.0, 3.0, 40.0], index=areas.pcode))
    assert (result["hotspot_class"] == NOT_SIGNIFICANT).all()
    assert result["gi_z"].isna().all()


def test_island_gets_its_nearest_areas_as_neighbours():
    areas = grid(10, crs="EPSG:4326")
    island = gpd.GeoDataFrame(
        {"pcode": ["ISLAND"]}, geometry=[shapely.box(12.0, 4.5, 12.5, 5.0)], crs="EPSG:4326"
    )
    areas = pd.concat([areas, island], ignore_index=True)
    weights, _ = build_weights(areas, k_fallback=4)

    neighbours = set(weights.adjacency.loc["ISLAND"].index) - {"ISLAND"}
    # The four cells of the east coast facing the island (x = 9, y = 3..6).
    assert neighbours == {"G039", "G049", "G059", "G069"}
    assert all("ISLAND" in set(weights.adjacency.loc[p].index) for p in neighbours)

    values = pd.Series(np.random.default_rng(5).normal(size=len(areas)), index=areas.pcode)
    values[["ISLAND", *neighbours]] += 5.0
    result = hotspot_statistics(areas, values, weights=weights).set_index("pcode")
    assert result.loc["ISLAND", "hotspot_class"] in HOT_CLASSES


def test_small_archipelago_is_attached_to_the_mainland():
    areas = grid(10)
    islets = gpd.GeoDataFrame(
        {"pcode": ["ISLET1", "ISLET2"]},
        geometry=[shapely.box(12, 4, 13, 5), shapely.box(13, 4, 14, 5)],
    )
    weights, _ = build_weights(pd.concat([areas, islets], ignore_index=True), k_fallback=3)
    assert weights.n_components == 1
    assert "ISLET2" in set(weights.adjacency.loc["ISLET1"].index)


def test_missing_values_are_excluded_and_reported_not_significant():
    areas = grid()
    values = planted()
    values.iloc[[0, 1, 50, 399]] = np.nan
    values = values.drop(values.index[[5]])  # an area absent from the values altogether
    result = hotspot_statistics(areas, values)

    excluded = [0, 1, 5, 50, 399]
    assert (result.loc[excluded, "hotspot_class"] == NOT_SIGNIFICANT).all()
    assert result.loc[excluded, ["gi_z", "p_value", "p_fdr"]].isna().all().all()
    assert (result.loc[BLOCK, "hotspot_class"] == "hot_99").all()
    # The same as analysing only the areas with a value.
    kept = areas.drop(index=excluded)
    alone = hotspot_statistics(kept, values).set_index("pcode")
    pd.testing.assert_frame_equal(result.set_index("pcode").loc[kept.pcode], alone)


def test_constant_values_are_not_significant_without_warnings():
    areas = grid(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = hotspot_statistics(areas, pd.Series(7.0, index=areas.pcode))
    assert (result["hotspot_class"] == NOT_SIGNIFICANT).all()
    assert result["gi_z"].isna().all()


def test_results_are_identical_across_runs():
    first = hotspot_statistics(grid(), planted())
    clear_weights_cache()
    second = hotspot_statistics(grid(), planted())
    pd.testing.assert_frame_equal(first, second)


def test_permutations_are_reproducible_with_a_seed():
    areas = grid(10)
    values = pd.Series(np.random.default_rng(2).normal(size=100), index=areas.pcode)
    values.iloc[[44, 45, 54, 55]] += 4
    first = hotspot_statistics(areas, values, permutations=999, seed=11)
    second = hotspot_statistics(areas, values, permutations=999, seed=11)
    pd.testing.assert_frame_equal(first, second)
    assert first["p_value"].min() >= 2 / 1000  # the floor of a two-sided permutation p


def test_too_few_permutations_for_the_99_class_are_refused():
    with pytest.raises(ValueError, match="99 permutations cannot"):
        hotspot_statistics(grid(5), pd.Series(range(25), index=grid(5).pcode), permutations=99)


def test_given_weights_must_cover_the_areas_with_values():
    areas = grid(5)
    weights, _ = build_weights(areas.iloc[:20])
    values = pd.Series(np.arange(25.0), index=areas.pcode)
    with pytest.raises(ValueError, match="weights lack areas"):
        hotspot_statistics(areas, values, weights=weights)
    # A graph with more areas than analysed is cut down to them.
    full, _ = build_weights(areas)
    partial = hotspot_statistics(areas.iloc[:20], values, weights=full)
    assert len(partial) == 20


def test_duplicate_pcodes_are_refused():
    areas = pd.concat([grid(3), grid(3).iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match="duplicate pcodes"):
        build_weights(areas)
    weights, _ = build_weights(grid(3))
    values = pd.Series(1.0, index=grid(3).pcode)
    with pytest.raises(ValueError, match="duplicate pcodes"):
        hotspot_statistics(areas, values, weights=weights)


def test_benjamini_hochberg_matches_scipy_and_skips_nan():
    p = np.random.default_rng(4).uniform(size=500) ** 3
    p[::9] = np.nan
    adjusted = benjamini_hochberg(p)
    tested = ~np.isnan(p)
    np.testing.assert_allclose(adjusted[tested], stats.false_discovery_control(p[tested]))
    assert np.isnan(adjusted[~tested]).all()


def test_classes_follow_the_adjusted_p_and_the_sign_of_z():
    z = np.array([3.0, 3.0, 3.0, 3.0, -3.0, -3.0, np.nan, 0.0])
    p = np.array([0.001, 0.01, 0.05, 0.2, 0.04, 0.09, np.nan, 1.0])
    assert classify_hotspots(z, p).tolist() == [
        "hot_99",
        "hot_99",
        "hot_95",
        NOT_SIGNIFICANT,
        "cold_95",
        "cold_90",
        NOT_SIGNIFICANT,
        NOT_SIGNIFICANT,
    ]
    assert classify_hotspots(z, p, (0.05,)).tolist()[:3] == ["hot_95", "hot_95", "hot_95"]
    with pytest.raises(ValueError, match="alpha_levels"):
        classify_hotspots(z, p, (0.2,))


# --- weights cache --------------------------------------------------------------------------


def test_weights_are_cached_in_memory_by_boundary_version():
    areas = grid(6)
    first, key = build_weights(areas)
    again, same_key = build_weights(areas.copy())
    assert again is first and same_key == key

    moved = areas.copy()
    moved.loc[0, "geometry"] = shapely.box(0, 0, 1.5, 1)
    assert weights_key(moved) != key
    assert weights_key(areas, k_fallback=2) != key
    renamed = areas.assign(pcode=areas.pcode.str.replace("G", "H"))
    assert weights_key(renamed) != key


def test_weights_are_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    areas = grid(6)
    built, key = build_weights(areas, cache_dir=tmp_path)
    assert (tmp_path / f"gistar-weights-{key}.npz").is_file()

    clear_weights_cache()

    def no_rebuild(*args, **kwargs):
        raise AssertionError("weights were rebuilt instead of read from the cache")

    monkeypatch.setattr(spatial_weights, "_adjacency", no_rebuild)
    loaded, _ = build_weights(areas, cache_dir=tmp_path)
    assert (loaded.sparse != built.sparse).nnz == 0
    assert list(loaded.unique_ids) == list(built.unique_ids)


def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path):
    areas = grid(4)
    built, key = build_weights(areas, cache_dir=tmp_path)
    (tmp_path / f"gistar-weights-{key}.npz").write_bytes(b"not a zip file")
    clear_weights_cache()
    rebuilt, _ = build_weights(areas, cache_dir=tmp_path)
    assert (rebuilt.sparse != built.sparse).nnz == 0


# --- emerging hot spots ---------------------------------------------------------------------

HOT, COLD, NS = "hot_99", "cold_99", NOT_SIGNIFICANT


def emerging(cases: dict[str, tuple[list[float], list[str]]]) -> pd.Series:
    """emerging_classes on hand-made (z series, class series) per area."""
    periods = pd.date_range("2020-01-31", periods=len(next(iter(cases.values()))[0]), freq="ME")
    z = pd.DataFrame({k: v[0] for k, v in cases.items()}, index=periods).T
    classes = pd.DataFrame({k: v[1] for k, v in cases.items()}, index=periods).T
    return emerging_classes(z, classes)


def series(pattern: str, rising: float = 0.0) -> tuple[list[float], list[str]]:
    """'H' hot, 'C' cold, '.' not significant; z = +-3 (+ a trend) or 0.3."""
    z = [
        (3.0 if s == "H" else -3.0 if s == "C" else 0.3) + rising * i for i, s in enumerate(pattern)
    ]
    return z, [{"H": HOT, "C": COLD, ".": NS}[s] for s in pattern]


def mirrored(case: tuple[list[float], list[str]]) -> tuple[list[float], list[str]]:
    swap = {HOT: COLD, COLD: HOT, NS: NS}
    return [-z for z in case[0]], [swap[c] for c in case[1]]


HOT_CASES = {
    "new": series(".........H"),
    "consecutive": series(".......HHH"),
    "intensifying": series("HHHHHHHHHH", rising=0.5),
    "persistent": ([3.0, 4.0] * 5, [HOT] * 10),
    "diminishing": series("HHHHHHHHHH", rising=-0.2),
    "sporadic": series("..H..H...H"),
    "oscillating": series("..C..H...H"),
    "historical": series("HHHHHHHHH."),
    "none": series("...H......"),
}


@pytest.mark.parametrize("expected", list(HOT_CASES))
def test_emerging_hot_spot_classes(expected: str):
    assert emerging({"A1": HOT_CASES[expected]})["A1"] == expected


@pytest.mark.parametrize("expected", [c for c in HOT_CASES if c != "none"])
def test_emerging_cold_spot_classes_mirror_the_hot_ones(expected: str):
    assert emerging({"A1": mirrored(HOT_CASES[expected])})["A1"] == f"cold_{expected}"


def test_emerging_classes_edge_cases():
    result = emerging(
        {
            # One hot bin before the final run: not consecutive but sporadic.
            "gap": series("..H....HHH"),
            # Consecutive needs < 90% of the bins hot; 9 of 10 is persistent.
            "long_run": series(".HHHHHHHHH"),
            # The final step decides: cold now after a hot history is a cold pattern.
            "turned_cold": series("HHHHHHHHHC"),
            # A cold bin before, then hot only at the end: oscillating, not new.
            "flip": series("C........H"),
            "quiet": series(".........."),
        }
    )
    assert result.to_dict() == {
        "gap": "sporadic",
        "long_run": "persistent",
        "turned_cold": "cold_oscillating",
        "flip": "oscillating",
        "quiet": "none",
    }
    assert set(result) <= set(TEMPORAL_CLASSES)


def test_emerging_classes_with_missing_periods_and_a_single_step():
    z = pd.DataFrame({"p1": [np.nan, 0.1], "p2": [3.0, 3.0], "p3": [3.5, 3.2]}, index=["A", "B"])
    classes = pd.DataFrame({"p2": [HOT, HOT], "p3": [HOT, HOT]}, index=["A", "B"])
    # A not covered in p1: that bin is neither hot nor cold (2 of 3 bins hot).
    assert emerging_classes(z, classes).to_dict() == {"A": "consecutive", "B": "consecutive"}
    single = emerging_classes(z[["p3"]], classes[["p3"]])
    assert single.to_dict() == {"A": "new", "B": "new"}


def test_mann_kendall_matches_kendalls_tau():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 12)) + np.linspace(0, 2, 12)
    statistic, p = mann_kendall(x)
    time = np.arange(12)
    for row, s, p_row in zip(x, statistic, p, strict=True):
        tau = stats.kendalltau(time, row)
        assert s == pytest.approx(tau.statistic * 66)
        assert p_row == pytest.approx(tau.pvalue, abs=0.03)  # exact vs normal approximation


def test_mann_kendall_skips_missing_values_and_handles_ties():
    statistic, p = mann_kendall(
        np.array([[1.0, np.nan, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0, 5.0], [1.0, np.nan, 2, 9, 9]])
    )
    full, p_full = mann_kendall(np.array([[1.0, 2.0, 3.0, 4.0]]))
    assert statistic[0] == full[0] and p[0] == p_full[0]
    assert statistic[1] == 0 and p[1] == 1.0
    assert statistic[2] == 5 and 0 < p[2] < 1


# --- the demo's planted surge cluster --------------------------------------------------------


def test_demo_surge_cluster_is_an_emerging_hot_spot_of_idp_increase(tmp_path: Path):
    files = generate_scenario(tmp_path)
    areas = read_boundaries(files.boundaries_adm2, country_iso3="XDM").frame
    dtm = read_dtm_table(files.dtm).frame
    idps = dtm[(dtm["admin_level"] == 2) & (dtm["variable"] == "idps")]
    wide = idps.pivot(index="pcode", columns="period", values="value").reindex(areas["pcode"])
    # Round-over-round increase; NaN where the area was not covered in the round before.
    increase = wide.diff(axis=1).iloc[:, 1:]

    z, classes = {}, {}
    for period in increase.columns:
        result = hotspot_statistics(areas, increase[period]).set_index("pcode")
        z[period], classes[period] = result["gi_z"], result["hotspot_class"]
    z, classes = pd.DataFrame(z), pd.DataFrame(classes)
    temporal = emerging_classes(z, classes)

    cluster = list(files.surge_cluster)
    last = classes.columns[-1]
    assert classes.loc[cluster, last].isin(HOT_CLASSES).all()
    assert (classes.loc[cluster, last] == "hot_99").sum() >= 6
    assert temporal.loc[cluster].isin(["new", "consecutive", "intensifying"]).all()
    # The rest of the country is quiet in the last round.
    others = classes.index.difference(cluster)
    assert classes.loc[others, last].isin(HOT_CLASSES).mean() < 0.05
    # The island is analysed with mainland neighbours, not left out.
    assert z.loc[list(files.island_pcodes)].notna().all().all()


def test_permutation_p_values_are_two_sided_conditional_permutation_p_values():
    # Gi*'s conditional permutation test keeps the area's own value and redraws its neighbours
    # from the other areas. Redo it by hand for a few areas: this also pins esda's p as
    # one-sided ("directed", doubled by riskwatch), which esda announces will change.
    areas = grid(10)
    values = np.random.default_rng(6).normal(size=100)
    values[[44, 45, 54, 55]] += 1.5
    weights, _ = build_weights(areas)
    result = hotspot_statistics(
        areas, pd.Series(values, index=areas.pcode), permutations=9999, seed=1
    )
    rng = np.random.default_rng(0)
    adjacency = weights.sparse.toarray()
    for i in (44, 45, 0, 33):
        others = np.delete(np.arange(100), i)
        around = [j for j in np.flatnonzero(adjacency[i]) if j != i]
        observed = values[i] + values[around].sum()
        draws = np.argsort(rng.random((20_000, others.size)), axis=1)[:, : len(around)]
        simulated = values[i] + values[others[draws]].sum(axis=1)
        larger = (simulated >= observed).sum()
        directed = (min(larger, simulated.size - larger) + 1) / (simulated.size + 1)
        assert result.loc[i, "p_value"] == pytest.approx(min(1.0, 2 * directed), abs=0.02)
