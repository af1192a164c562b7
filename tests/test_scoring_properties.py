"""Properties of the scoring core over generated areas, data and profiles (hypothesis)."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskwatch.catalog import INSUFFICIENT_DATA, RISK_CLASSES, ScoringModel
from riskwatch.scoring import ScoreTable, ScoringParams, score_areas
from riskwatch.transforms import Reason
from tests.test_scoring import make_indicator, make_model

MONTH_ENDS = [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]
MONTH_STARTS = [date(2023, 12, 1), date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1),
                date(2024, 4, 1)]

VALUE_RANGES: dict[str, tuple[float, float]] = {
    "children_share": (0.0, 1.0),
    "women_share": (0.0, 1.0),
    "site_overcrowding": (0.0, 1.0),
    "distance_to_border_km": (0.0, 400.0),
    "population": (0.0, 500_000.0),
    "idps": (0.0, 100_000.0),
    "abduction_events": (0.0, 30.0),
}


def property_model(aggregation: str, floor: float, weights: list[float]) -> ScoringModel:
    """Every kind of step, both directions, both normalisations, three dimensions."""
    return make_model(
        make_indicator("kids", "children_share", dimension="vulnerability", weight=weights[0]),
        make_indicator("women", "women_share", dimension="vulnerability", weight=weights[1],
                       normalisation={"method": "min_max", "reference": "level"}),
        make_indicator("border", "distance_to_border_km", weight=weights[2],
                       direction="lower_is_riskier",
                       normalisation={"method": "goalposts", "lower": 0, "upper": 150}),
        make_indicator("displaced", "idps", weight=weights[3], inputs=["idps", "population"],
                       min_denominator=100,
                       steps=[{"op": "value", "variable": "idps"},
                              {"op": "share", "denominator": "population"}],
                       normalisation={"method": "goalposts", "lower": 0, "upper": 0.5}),
        make_indicator("surge", "idps", weight=weights[4], min_denominator=10,
                       steps=[{"op": "change", "variable": "idps", "rounds": 1}]),
        make_indicator("abductions", "abduction_events", weight=weights[5],
                       inputs=["abduction_events", "population"], missing="zero_in_coverage",
                       min_denominator=100,
                       steps=[{"op": "sum_over_period", "variable": "abduction_events",
                               "days": 92},
                              {"op": "per_capita", "denominator": "population"},
                              {"op": "log1p"}, {"op": "winsorise", "upper": 0.9}],
                       normalisation={"method": "min_max", "reference": "level_period"}),
        make_indicator("crowding", "site_overcrowding", dimension="lack_of_capacity",
                       weight=weights[6]),
        aggregation=aggregation, floor=floor,
    )


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    """Areas of one or two countries, sparse observations, a profile and parameters."""
    areas = []
    for country in draw(st.sampled_from([["CCC"], ["CCC", "DDD"]])):
        areas.append((country, 0, None, country))
        for i in range(draw(st.integers(1, 3))):
            region = f"{country[0]}{i}"
            areas.append((region, 1, country, country))
            for j in range(draw(st.integers(1, 4))):
                areas.append((f"{region}{j}", 2, region, country))
    area_frame = pd.DataFrame(areas, columns=["pcode", "admin_level", "parent_pcode",
                                              "country_iso3"])
    periods = sorted(draw(st.lists(st.sampled_from(MONTH_ENDS), min_size=1, max_size=3,
                                   unique=True)))
    rows = []
    presence = draw(st.floats(0.2, 0.95))
    for pcode, level, _, _ in areas:
        if level == 0:
            continue
        for variable, (low, high) in VALUE_RANGES.items():
            dates = MONTH_STARTS if variable == "abduction_events" else periods
            for period in dates:
                if draw(st.floats(0, 1)) < presence:
                    value = draw(st.floats(low, high, allow_nan=False, allow_infinity=False))
                    if variable in ("population", "idps", "abduction_events"):
                        value = float(round(value))
                    rows.append((pcode, variable, period, value))
    frame = pd.DataFrame(rows, columns=["pcode", "variable", "period", "value"])
    frame = frame.merge(area_frame, on="pcode", how="left")
    weights = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=7, max_size=7))
    model = property_model(draw(st.sampled_from(["geometric", "arithmetic"])),
                           draw(st.sampled_from([0.1, 0.5, 1.0])), weights)
    params = ScoringParams(min_indicators=draw(st.integers(1, 3)),
                           min_weight_share=draw(st.sampled_from([0.0, 0.15, 0.4])))
    return {"observations": frame, "areas": area_frame, "periods": periods, "model": model,
            "params": params}


def run(scenario: dict[str, Any], observations: pd.DataFrame | None = None,
        areas: pd.DataFrame | None = None) -> ScoreTable:
    return score_areas(
        scenario["observations"] if observations is None else observations,
        scenario["model"], scenario["params"],
        areas=scenario["areas"] if areas is None else areas, periods=scenario["periods"],
    )


PROPERTY_SETTINGS = settings(max_examples=35, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(scenarios())
def test_every_score_lies_between_0_and_10(scenario: dict[str, Any]) -> None:
    table = run(scenario)
    units = table.units
    for column in ("risk", "exposure", "vulnerability", "lack_of_capacity"):
        values = units[column].dropna()
        assert ((values >= 0) & (values <= 10)).all(), column
    scores = table.indicators.score[~np.isnan(table.indicators.score)]
    assert ((scores >= 0) & (scores <= 10)).all()
    assert ((units["reliability"] >= 0) & (units["reliability"] <= 1)).all()
    # Reliability is rounded to 3 decimals; it never exceeds the share of weight with data.
    assert (units["reliability"] <= units["weight_share"] + 0.0005).all()
    assert set(units["risk_class"]) <= {*RISK_CLASSES, INSUFFICIENT_DATA}


@PROPERTY_SETTINGS
@given(scenarios())
def test_missing_data_is_always_flagged(scenario: dict[str, Any]) -> None:
    table = run(scenario)
    units, matrix, params = table.units, table.indicators, scenario["params"]
    present = matrix.reason == Reason.OK
    # An indicator has a score exactly when it has data; never a silent zero for a gap.
    assert np.array_equal(present, ~np.isnan(matrix.score))
    assert np.array_equal(present, ~np.isnan(matrix.value))
    assert np.isnan(table.contributions[~present]).all()
    insufficient = units["risk_class"] == INSUFFICIENT_DATA
    assert np.array_equal(insufficient.to_numpy(), units["risk"].isna().to_numpy())
    enough = (present.sum(axis=1) >= params.min_indicators) & (
        units["weight_share"].to_numpy() + 1e-9 >= params.min_weight_share)
    assert not (enough & ~present.any(axis=1)).any()
    assert np.array_equal(~insufficient.to_numpy(), enough & present.any(axis=1))
    for unit in range(0, len(units), max(1, len(units) // 7)):
        detail = table.drivers(unit)
        missing = {i for i, ok in zip(matrix.ids, present[unit], strict=True) if not ok}
        assert set(detail["unavailable"]) == missing
        assert all(reason != "ok" for reason in detail["unavailable"].values())
        if missing:
            assert units["reliability"].iloc[unit] < 1


@PROPERTY_SETTINGS
@given(scenarios())
def test_the_same_inputs_give_the_same_outputs(scenario: dict[str, Any]) -> None:
    first, second = run(scenario), run(scenario)
    pd.testing.assert_frame_equal(first.units, second.units)
    for name in ("value", "score", "reason", "inherited", "age_days"):
        np.testing.assert_array_equal(getattr(first.indicators, name),
                                      getattr(second.indicators, name))


@PROPERTY_SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_row_order_and_pcode_order_do_not_change_results(scenario: dict[str, Any],
                                                         rnd: Any) -> None:
    original = run(scenario).units.set_index(["pcode", "period"]).sort_index()

    # New pcodes in a shuffled order (so the areas sort differently), rows shuffled too.
    pcodes = list(scenario["areas"]["pcode"])
    shuffled = pcodes[:]
    rnd.shuffle(shuffled)
    rename = {old: f"X{rank:03d}" for rank, old in enumerate(shuffled)}
    back = {new: old for old, new in rename.items()}
    areas = scenario["areas"].assign(
        pcode=scenario["areas"]["pcode"].map(rename),
        parent_pcode=scenario["areas"]["parent_pcode"].map(rename),
    ).sample(frac=1.0, random_state=rnd.randrange(1 << 30))
    observations = scenario["observations"].assign(
        pcode=scenario["observations"]["pcode"].map(rename),
        parent_pcode=scenario["observations"]["parent_pcode"].map(rename),
    ).sample(frac=1.0, random_state=rnd.randrange(1 << 30))
    renamed = run(scenario, observations, areas).units
    renamed = renamed.assign(pcode=renamed["pcode"].map(back))
    renamed = renamed.set_index(["pcode", "period"]).sort_index()
    pd.testing.assert_frame_equal(original, renamed, check_exact=True)


@st.composite
def raised_input(draw: Any) -> tuple[dict[str, Any], int, float]:
    """A scenario and one admin2 observation to move in its risky direction."""
    scenario = draw(scenarios())
    frame = scenario["observations"]
    candidates = frame.index[
        frame["variable"].isin(["children_share", "women_share", "distance_to_border_km",
                                "site_overcrowding", "idps", "abduction_events"])
        & (frame["admin_level"] == 2)
    ]
    if not len(candidates):
        candidates = frame.index[frame["variable"] == "children_share"]
    position = draw(st.sampled_from(list(candidates))) if len(candidates) else -1
    step = draw(st.floats(0.001, 1.0))
    return scenario, position, step


@PROPERTY_SETTINGS
@given(raised_input())
def test_raising_an_indicator_in_its_risky_direction_never_lowers_the_risk(
    case: tuple[dict[str, Any], int, float],
) -> None:
    scenario, position, step = case
    if position < 0:
        return  # no observation to move in this scenario
    frame = scenario["observations"]
    target = frame.loc[position]
    low, high = VALUE_RANGES[target["variable"]]
    moved = frame.copy()
    if target["variable"] == "distance_to_border_km":  # nearer is riskier
        moved.loc[position, "value"] = max(low, target["value"] - step * (high - low))
    else:
        moved.loc[position, "value"] = min(high, target["value"] + step * (high - low))
    before = run(scenario).units
    after = run(scenario, moved).units
    # The units that read the moved value: its own period, or for event counts every period
    # whose 92-day window holds it. (Other periods of the area may move either way: a pooled
    # min-max reference or the base of a change shifts with the value.)
    age = (pd.to_datetime(before["period"]) - pd.Timestamp(target["period"])).dt.days
    window = 92 if target["variable"] == "abduction_events" else 1
    reads = ((before["pcode"] == target["pcode"]) & (age >= 0) & (age < window)).to_numpy()
    old, new = before.loc[reads, "risk"].to_numpy(), after.loc[reads, "risk"].to_numpy()
    assert np.array_equal(np.isnan(old), np.isnan(new))  # data presence is unchanged
    both = ~np.isnan(old)
    assert (new[both] >= old[both]).all(), (target.to_dict(), old, new)
