"""The scoring core (pure): composite, classes, reliability, drivers - against hand computation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from riskwatch.catalog import Indicator, Profile, ScoringModel
from riskwatch.scoring import ScoringParams, score_areas, top_drivers

JAN = date(2024, 1, 31)

# A small country: AAA > A1 > (A11, A12); a second country BBB > B1.
AREAS = pd.DataFrame(
    [("AAA", 0, None, "AAA"), ("A1", 1, "AAA", "AAA"), ("A11", 2, "A1", "AAA"),
     ("A12", 2, "A1", "AAA"), ("BBB", 0, None, "BBB"), ("B1", 1, "BBB", "BBB")],
    columns=["pcode", "admin_level", "parent_pcode", "country_iso3"],
)


# --- helpers shared by the other scoring tests -------------------------------------------------


def make_indicator(
    indicator_id: str,
    variable: str,
    *,
    dimension: str = "exposure",
    weight: float = 1.0,
    direction: str = "higher_is_riskier",
    steps: Sequence[dict[str, Any]] | None = None,
    inputs: Sequence[str] | None = None,
    normalisation: dict[str, Any] | None = None,
    missing: str = "unavailable",
    min_denominator: float = 0.0,
    max_age_days: int | None = None,
) -> Indicator:
    """An indicator built in code (defaults: the value of one variable, goalposts 0-1)."""
    return Indicator.model_validate({
        "id": indicator_id, "name": indicator_id, "description": "test",
        "rationale": {"text": "a rationale of at least twenty characters",
                      "references": ["a reference"]},
        "inputs": list(inputs or [variable]),
        "transform": list(steps or [{"op": "value", "variable": variable}]),
        "normalisation": normalisation or {"method": "goalposts", "lower": 0, "upper": 1},
        "direction": direction, "dimension": dimension, "weight": weight,
        "min_denominator": min_denominator, "missing": missing, "max_age_days": max_age_days,
    })


def make_model(
    *indicators: Indicator,
    aggregation: str = "geometric",
    floor: float = 0.5,
    dimensions: Sequence[tuple[str, float]] | None = None,
    thresholds: Sequence[float] = (2.0, 3.5, 5.0, 6.5),
) -> ScoringModel:
    used = dimensions or [(d, 1.0) for d in dict.fromkeys(i.dimension for i in indicators)]
    profile = Profile.model_validate({
        "name": "test", "title": "test", "description": "test", "aggregation": aggregation,
        "geometric_floor": floor,
        "dimensions": [{"id": d, "name": d, "weight": w} for d, w in used],
        "classes": {"thresholds": list(thresholds)},
    })
    return ScoringModel(profile, tuple(sorted(indicators, key=lambda i: i.id)))


def observations(rows: Sequence[tuple[str, str, date, float]],
                 areas: pd.DataFrame = AREAS) -> pd.DataFrame:
    """Observation rows (pcode, variable, period, value) with their areas' columns."""
    frame = pd.DataFrame(rows, columns=["pcode", "variable", "period", "value"])
    return frame.merge(areas, on="pcode", how="left")


def row(table, pcode: str, period: date = JAN) -> pd.Series:  # type: ignore[no-untyped-def]
    units = table.units
    match = units[(units["pcode"] == pcode) & (units["period"] == period)]
    assert len(match) == 1, (pcode, period)
    return match.iloc[0]


def drivers(table, pcode: str, period: date = JAN) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    units = table.units
    unit = int(np.flatnonzero((units["pcode"] == pcode) & (units["period"] == period))[0])
    return table.drivers(unit)


# --- the composite ---------------------------------------------------------------------------


def two_dimension_model(**kwargs: Any) -> ScoringModel:
    return make_model(
        make_indicator("x", "children_share", weight=1),
        make_indicator("y", "women_share", weight=3),
        make_indicator("z", "ipc_phase3plus_share", dimension="vulnerability",
                       normalisation={"method": "goalposts", "lower": 0, "upper": 0.5}),
        **kwargs,
    )


TWO_DIMENSION_DATA = [
    ("A11", "children_share", JAN, 0.2), ("A11", "women_share", JAN, 0.6),
    ("A12", "women_share", JAN, 0.5),
    ("A1", "ipc_phase3plus_share", JAN, 0.1),  # only by admin1: inherited by A11 and A12
]


def test_geometric_composite_by_hand() -> None:
    table = score_areas(observations(TWO_DIMENSION_DATA), two_dimension_model(), areas=AREAS,
                        periods=[JAN])
    a11 = row(table, "A11")
    # exposure = (1 x 2.0 + 3 x 6.0) / 4 = 5.0; vulnerability = 0.1 / 0.5 x 10 = 2.0 (inherited)
    assert a11["exposure"] == 5.0 and a11["vulnerability"] == 2.0
    assert np.isnan(a11["lack_of_capacity"])
    assert a11["risk"] == round(np.sqrt(5.0 * 2.0), 2) == 3.16
    assert a11["risk_class"] == "low"
    # reliability: x 0.5 x 1/4 + y 0.5 x 3/4 + z 0.5 x 0.5 (inherited discount) = 0.75
    assert a11["reliability"] == 0.75
    # contributions: dimensions split 5:2, exposure split 2:18 -> y 2.03, z 0.90, x 0.23
    assert a11["top_drivers"] == "y:2.03;z:0.90;x:0.23"
    detail = drivers(table, "A11")
    assert detail["indicators"]["z"]["inherited"] is True
    assert detail["indicators"]["x"]["inherited"] is False
    assert sum(detail["contributions"].values()) == pytest.approx(3.16, abs=0.002)
    assert detail["unavailable"] == {} and detail["missing_dimensions"] == []

    a12 = row(table, "A12")
    assert a12["exposure"] == 5.0 and a12["risk"] == 3.16
    assert a12["reliability"] == 0.625  # x missing
    assert drivers(table, "A12")["unavailable"] == {"x": "no_data"}


def test_arithmetic_composite_and_classes() -> None:
    table = score_areas(observations(TWO_DIMENSION_DATA),
                        two_dimension_model(aggregation="arithmetic"), areas=AREAS, periods=[JAN])
    a11 = row(table, "A11")
    assert a11["risk"] == 3.5  # (5 + 2) / 2
    assert a11["risk_class"] == "medium"  # a threshold is the class's lower bound
    # Contributions of the arithmetic mean are exact: 0.5 x 1/4 x 2, 0.5 x 3/4 x 6, 0.5 x 2
    assert a11["top_drivers"] == "y:2.25;z:1.00;x:0.25"


def test_dimension_weights_and_floor() -> None:
    data = [("A11", "children_share", JAN, 0.0), ("A11", "women_share", JAN, 0.0),
            ("A11", "ipc_phase3plus_share", JAN, 0.4)]
    table = score_areas(observations(data), two_dimension_model(floor=0.5), areas=AREAS,
                        periods=[JAN])
    # exposure 0 counts as the floor 0.5: sqrt(0.5 x 8) = 2.0
    assert row(table, "A11")["risk"] == 2.0
    weighted = two_dimension_model(dimensions=[("exposure", 1.0), ("vulnerability", 3.0)])
    table = score_areas(observations(data), weighted, areas=AREAS, periods=[JAN])
    assert row(table, "A11")["risk"] == round(0.5 ** 0.25 * 8.0 ** 0.75, 2)


def test_insufficient_data_is_never_low_risk() -> None:
    data = observations(TWO_DIMENSION_DATA)
    model = two_dimension_model()
    strict = score_areas(data, model, ScoringParams(min_indicators=3), areas=AREAS,
                         periods=[JAN])
    a12 = row(strict, "A12")
    assert np.isnan(a12["risk"]) and a12["risk_class"] == "insufficient_data"
    assert np.isnan(a12["exposure"]) and np.isnan(a12["vulnerability"])
    assert a12["top_drivers"] == ""
    assert row(strict, "A11")["risk"] == 3.16
    # A12's indicators carry 0.375 + 0.5 of the profile's weight
    by_weight = score_areas(data, model, ScoringParams(min_weight_share=0.9), areas=AREAS,
                            periods=[JAN])
    assert row(by_weight, "A12")["risk_class"] == "insufficient_data"
    assert row(by_weight, "A11")["risk_class"] == "low"
    # An area without any data at all (BBB) is insufficient, not zero.
    assert row(strict, "BBB")["risk_class"] == "insufficient_data"


def test_a_dimension_without_data_is_left_out_and_named() -> None:
    data = [("B1", "children_share", JAN, 0.3), ("B1", "women_share", JAN, 0.7)]
    table = score_areas(observations(data), two_dimension_model(), areas=AREAS, periods=[JAN])
    b1 = row(table, "B1")
    assert b1["risk"] == b1["exposure"] == 6.0  # (3 + 3 x 7) / 4; no vulnerability data
    detail = drivers(table, "B1")
    assert detail["missing_dimensions"] == ["vulnerability"]
    assert detail["unavailable"] == {"z": "no_data"}
    assert detail["note"].startswith("no data for vulnerability; 2 of 3 indicators with data")
    assert b1["reliability"] == 0.5
    assert table.unavailable_by_country()["BBB"] == ["z"]


def test_reliability_falls_with_the_age_of_the_data() -> None:
    model = make_model(make_indicator("x", "children_share", max_age_days=100),
                       make_indicator("y", "women_share"))
    data = [("A11", "children_share", date(2023, 12, 22), 0.5),  # 40 days old
            ("A11", "women_share", date(2022, 1, 1), 0.5)]  # 760 days: beyond the default 365
    table = score_areas(observations(data), model, areas=AREAS, periods=[JAN])
    detail = drivers(table, "A11")
    assert detail["unavailable"] == {"y": "too_old"}
    assert detail["indicators"]["x"]["age_days"] == 40
    # x is half the profile: 0.5 x (1 - 0.5 x 40 / 100)
    assert row(table, "A11")["reliability"] == 0.4


def test_counts_are_summed_up_and_shares_inherited_down() -> None:
    model = make_model(
        make_indicator("displaced", "idps", inputs=["idps", "population"],
                       steps=[{"op": "value", "variable": "idps"},
                              {"op": "share", "denominator": "population"}]),
        make_indicator("food", "ipc_phase3plus_share", dimension="vulnerability"),
    )
    data = [("A11", "population", JAN, 1000.0), ("A12", "population", JAN, 3000.0),
            ("A1", "idps", JAN, 400.0), ("A11", "idps", JAN, 100.0), ("A12", "idps", JAN, 300.0),
            ("AAA", "ipc_phase3plus_share", JAN, 0.3)]
    table = score_areas(observations(data), model, areas=AREAS, periods=[JAN])
    # A1's population is the sum of its children (4,000); AAA's too (through A1).
    assert drivers(table, "A1")["indicators"]["displaced"]["value"] == 0.1
    assert drivers(table, "AAA")["indicators"]["displaced"]["value"] == 0.1  # idps summed too
    assert drivers(table, "A12")["indicators"]["displaced"]["value"] == 0.1
    # The country's IPC share reaches A1 and the districts, marked inherited.
    for pcode in ("A1", "A11", "A12"):
        assert drivers(table, pcode)["indicators"]["food"]["inherited"] is True
    assert drivers(table, "AAA")["indicators"]["food"]["inherited"] is False

    partial = [r for r in data if not (r[0] == "A12" and r[1] == "population")]
    table = score_areas(observations(partial), model, areas=AREAS, periods=[JAN])
    # Without A12's population, A1's would be a partial sum: not made up.
    assert drivers(table, "A1")["unavailable"] == {"displaced": "no_denominator"}


def test_events_count_zero_inside_their_coverage_only() -> None:
    model = make_model(
        make_indicator("abductions", "abduction_events", missing="zero_in_coverage",
                       steps=[{"op": "sum_over_period", "variable": "abduction_events",
                               "days": 92}],
                       normalisation={"method": "goalposts", "lower": 0, "upper": 10}),
        make_indicator("kids", "children_share"),
    )
    march = date(2024, 3, 31)
    data = [("A11", "abduction_events", date(2024, 1, 1), 2.0),
            ("A11", "abduction_events", date(2024, 3, 1), 3.0),
            ("A11", "children_share", march, 0.5), ("A12", "children_share", march, 0.5),
            ("B1", "children_share", march, 0.5)]
    table = score_areas(observations(data), model, areas=AREAS, periods=[march])
    assert drivers(table, "A11", march)["indicators"]["abductions"]["value"] == 5.0
    # A12 is inside AAA's admin2 coverage: no row means no event, i.e. 0.
    assert drivers(table, "A12", march)["indicators"]["abductions"]["value"] == 0.0
    # A1 gets the sum of its districts; BBB has no event data at all: unavailable, not 0.
    assert drivers(table, "A1", march)["indicators"]["abductions"]["value"] == 5.0
    assert drivers(table, "B1", march)["unavailable"] == {"abductions": "no_data"}
    assert table.unavailable_by_country()["BBB"] == ["abductions"]


def test_each_country_is_scored_at_its_own_periods() -> None:
    feb = date(2024, 2, 29)
    data = observations([("A11", "idps", JAN, 10.0), ("B1", "idps", feb, 20.0),
                         ("B1", "children_share", date(2023, 6, 1), 0.4)])
    model = make_model(make_indicator("kids", "children_share"))
    table = score_areas(data, model, areas=AREAS)
    periods = table.units.groupby("country_iso3")["period"].unique()
    assert list(periods["AAA"]) == [JAN] and list(periods["BBB"]) == [feb]
    assert len(table.units) == 6
    # Without the period variables, a country's periods are those of all its inputs.
    other = score_areas(data, model, ScoringParams(period_variables=("nothing",)), areas=AREAS)
    periods = other.units.groupby("country_iso3")["period"].unique()
    assert list(periods["BBB"]) == [date(2023, 6, 1)] and "AAA" not in periods
    # Given periods apply to every country.
    given = score_areas(data, model, areas=AREAS, periods=[feb])
    assert set(given.units["period"]) == {feb} and len(given.units) == 6


def test_top_drivers_format() -> None:
    contributions = np.array([[1.234, np.nan, 0.001, 2.0, 1.234, 0.5, 0.7],
                              [np.nan] * 7])
    assert top_drivers(contributions, list("abcdefg")).tolist() == [
        "d:2.00;a:1.23;e:1.23;g:0.70;f:0.50", ""]


def test_duplicate_observations_are_refused() -> None:
    data = observations([("A11", "children_share", JAN, 0.2), ("A11", "children_share", JAN, 0.3)])
    with pytest.raises(ValueError, match="two values for one pcode"):
        score_areas(data, make_model(make_indicator("x", "children_share")), areas=AREAS)
