"""Displacement surges per area and their roll-up: riskwatch.surges."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskwatch.demo import generate_scenario
from riskwatch.sources.dtm import read_dtm_table
from riskwatch.surges import (
    NO_PREVIOUS_VALUE,
    SURGE_COLUMNS,
    aggregate_surges,
    detect_surges,
)
from tests.conftest import SHARED_DATA

DTM_FILE = SHARED_DATA / "dtm" / "dtm-api-admin0-2_AFG_TCD.csv"


def frame(values: dict[str, list[float | None]], periods: list[str]) -> pd.DataFrame:
    """Long pcode/period/value rows from {pcode: values per period} (None: not covered)."""
    rows = [
        {"pcode": pcode, "period": dt.date.fromisoformat(period), "value": value}
        for pcode, series in values.items()
        for period, value in zip(periods, series, strict=True)
        if value is not None
    ]
    return pd.DataFrame(rows)


QUARTERS = ["2024-01-31", "2024-04-30", "2024-07-31", "2024-10-31", "2025-01-31"]


def row(result: pd.DataFrame, pcode: str, period: str) -> pd.Series:
    match = result[(result["pcode"] == pcode) & (result["period"] == dt.date.fromisoformat(period))]
    assert len(match) == 1, (pcode, period)
    return match.iloc[0]


# --- synthetic series -------------------------------------------------------------------------


def test_a_jump_past_both_thresholds_is_a_surge():
    result = detect_surges(frame({"A": [10_000, 10_500, 30_000, 31_000, 29_000]}, QUARTERS))

    assert list(result.columns) == SURGE_COLUMNS
    assert result["surge"].tolist() == [False, False, True, False, False]
    jump = row(result, "A", "2024-07-31")
    assert jump["surge_size"] == 19_500  # over the previous round, the first window given
    assert jump["reason"] == "previous_round;max_365d;max_1095d"
    assert result["surge_size"].isna().tolist() == [True, True, False, True, True]


def test_first_appearance_and_return_after_a_gap_are_never_surges():
    # The rounds are the periods present in the data: ALWAYS keeps every round in it.
    result = detect_surges(
        frame(
            {
                "NEW": [None, None, None, 400_000, 800_000],  # enters coverage huge, then doubles
                "GAP": [1_000, None, 50_000, 51_000, 52_000],  # not covered the round before
                "ALWAYS": [1_000, 1_000, 1_000, 1_000, 1_000],
            },
            QUARTERS,
        )
    )
    assert not row(result, "NEW", "2024-10-31")["surge"]
    assert row(result, "NEW", "2024-10-31")["reason"] == NO_PREVIOUS_VALUE
    assert row(result, "NEW", "2025-01-31")["surge"]
    assert not row(result, "GAP", "2024-07-31")["surge"]
    assert row(result, "GAP", "2024-07-31")["reason"] == NO_PREVIOUS_VALUE
    assert not row(result, "GAP", "2024-01-31")["surge"]


def test_the_absolute_and_relative_gates():
    data = frame(
        {
            "SMALL": [1_000, 4_000, 4_000, 4_000, 4_000],  # x4 but only +3,000
            "BIG": [1_000_000, 1_010_000, 1_010_000, 1_010_000, 1_010_000],  # +10,000 but +1%
        },
        QUARTERS,
    )
    assert not detect_surges(data)["surge"].any()
    assert row(detect_surges(data, min_absolute=2_000), "SMALL", "2024-04-30")["surge"]
    assert row(detect_surges(data, min_ratio=1.0), "BIG", "2024-04-30")["surge"]
    with pytest.raises(ValueError, match="min_ratio"):
        detect_surges(data, min_ratio=0.5)


def test_rolling_maxima_need_a_level_not_seen_in_the_window():
    periods = ["2022-01-31", "2022-07-31", "2023-01-31", "2023-07-31", "2024-01-31"]
    data = frame({"A": [60_000, 20_000, 30_000, 45_000, 80_000]}, periods)
    result = detect_surges(data)
    # Recovering from a dip: 45,000 beats the round before and the last year's maximum
    # (30,000; the round exactly 365 days before counts), not the three-year one (60,000).
    assert row(result, "A", "2023-07-31")["reason"] == "previous_round;max_365d"
    assert row(result, "A", "2024-01-31")["reason"] == "previous_round;max_365d;max_1095d"
    only_three_years = detect_surges(data, windows=(3 * 365,))
    assert not row(only_three_years, "A", "2023-07-31")["surge"]
    three_years = row(only_three_years, "A", "2024-01-31")
    assert three_years["surge"] and three_years["surge_size"] == 20_000
    assert three_years["reason"] == "max_1095d"


def test_conflict_events_use_the_same_machinery_and_zero_is_a_value():
    months = ["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01", "2025-05-01"]
    events = frame({"A": [0, 0, 40, 2, 3], "B": [None, None, 60, 61, 60]}, months)
    result = detect_surges(events, min_absolute=20)
    assert row(result, "A", "2025-03-01")["surge"]
    assert row(result, "A", "2025-03-01")["surge_size"] == 40
    assert not row(result, "B", "2025-03-01")["surge"]  # outside coverage before: missing


def test_round_calendars_are_per_group():
    periods = ["2024-01-31", "2024-04-30"]
    one = frame({"A1": [1_000, 20_000]}, periods).assign(country="AAA")
    other = frame({"B1": [1_000, 20_000]}, ["2024-02-29", "2024-05-31"]).assign(country="BBB")
    both = pd.concat([one, other], ignore_index=True)
    # Without groups B1's first round would follow A1's and look "not covered" in between.
    result = detect_surges(both, by=["country"])
    assert result.columns[0] == "country"
    assert result.groupby("pcode")["surge"].sum().to_dict() == {"A1": 1, "B1": 1}
    assert detect_surges(both)["surge"].sum() == 0


def test_bad_input_is_refused_and_empty_input_gives_an_empty_frame():
    data = frame({"A": [1.0, 2.0]}, QUARTERS[:2])
    with pytest.raises(ValueError, match="more than one value"):
        detect_surges(pd.concat([data, data]))
    with pytest.raises(ValueError, match="missing columns: value"):
        detect_surges(data.drop(columns="value"))
    with pytest.raises(ValueError, match="window"):
        detect_surges(data, windows=("last_week",))
    empty = detect_surges(data.assign(value=np.nan))
    assert empty.empty and list(empty.columns) == SURGE_COLUMNS


def test_aggregation_to_admin1_and_country():
    surges = detect_surges(
        frame(
            {
                "R1A": [10_000, 30_000, 30_000],
                "R1B": [5_000, 20_000, 20_000],
                "R2A": [None, 90_000, 90_000],  # enters coverage: not counted
                "R2B": [8_000, 8_000, 8_000],
            },
            QUARTERS[:3],
        )
    )
    admin1 = aggregate_surges(surges, {"R1A": "R1", "R1B": "R1", "R2A": "R2", "R2B": "R2"})
    second = admin1[admin1["period"] == dt.date(2024, 4, 30)].set_index("pcode")
    assert second.loc["R1", "surge"] and second.loc["R1", "surge_size"] == 35_000
    assert second.loc["R1", "areas_surging"] == 2 and second.loc["R1", "areas"] == 2
    assert second.loc["R1", "surging_pcodes"] == "R1A;R1B"
    assert not second.loc["R2", "surge"] and np.isnan(second.loc["R2", "surge_size"])

    country = aggregate_surges(surges, pd.Series("XXX", index=["R1A", "R1B", "R2A", "R2B"]))
    assert country.set_index("period").loc[dt.date(2024, 4, 30), "surge_size"] == 35_000
    with pytest.raises(ValueError, match="no parent for: R2B"):
        aggregate_surges(surges, {"R1A": "R1", "R1B": "R1", "R2A": "R2"})


# --- real DTM data: Afghanistan, admin1 --------------------------------------------------------

needs_shared_data = pytest.mark.skipif(
    not DTM_FILE.is_file(), reason=f"real DTM data not available ({DTM_FILE})"
)


@pytest.fixture(scope="module")
def dtm_idps() -> pd.DataFrame:
    observations = read_dtm_table(DTM_FILE).frame
    return observations[observations["variable"] == "idps"]


@pytest.fixture(scope="module")
def afghanistan(dtm_idps: pd.DataFrame) -> pd.DataFrame:
    provinces = dtm_idps[(dtm_idps["country_iso3"] == "AFG") & (dtm_idps["admin_level"] == 1)]
    assert set(provinces["assessment_type"]) == {"BA"}  # one figure per province and round
    return detect_surges(provinces)


@needs_shared_data
@pytest.mark.parametrize(
    ("pcode", "period", "size"),
    [
        ("AF32", "2019-06-30", 342_843),  # Hirat ~544,500 -> 887,343
        ("AF01", "2022-12-31", 304_327),  # Kabul ~755,200 -> 1,059,573
        ("AF01", "2021-12-31", 159_563),  # Kabul ~524,500 -> 684,028
        ("AF21", "2019-06-30", 89_152),  # Balkh, two rounds in a row
        ("AF21", "2019-12-31", 107_165),
        ("AF22", "2022-12-31", 73_930),  # Sar-e-Pul
    ],
)
def test_afghanistan_provinces_jumping_between_consecutive_rounds_surge(
    afghanistan: pd.DataFrame, pcode: str, period: str, size: int
):
    surge = row(afghanistan, pcode, period)
    assert surge["surge"]
    assert surge["surge_size"] == size
    assert surge["reason"].startswith("previous_round")


@needs_shared_data
@pytest.mark.parametrize(
    ("pcode", "period"),
    [
        ("AF32", "2017-12-31"),  # Hirat enters coverage with 419,035 IDPs
        ("AF30", "2018-12-31"),  # Hilmand enters with 344,449
        ("AF28", "2018-09-30"),  # Jawzjan enters with 238,004
        ("AF11", "2018-12-31"),  # Ghazni enters with 158,711
    ],
)
def test_afghanistan_provinces_entering_coverage_do_not_surge(
    afghanistan: pd.DataFrame, pcode: str, period: str
):
    entry = row(afghanistan, pcode, period)
    assert not entry["surge"]
    assert entry["reason"] == NO_PREVIOUS_VALUE


@needs_shared_data
@pytest.mark.parametrize(
    ("pcode", "period"),
    [
        ("AF01", "2017-12-31"),  # Kabul ~355,000 -> ~181,000
        ("AF31", "2021-03-30"),  # Badghis ~246,000 -> ~94,000
        ("AF30", "2022-12-31"),  # Hilmand ~497,000 -> ~350,000
        ("AF27", "2021-03-30"),  # Kandahar ~269,000 -> ~137,000
    ],
)
def test_afghanistan_dips_do_not_surge(afghanistan: pd.DataFrame, pcode: str, period: str):
    dip = row(afghanistan, pcode, period)
    assert not dip["surge"] and dip["reason"] == ""


@needs_shared_data
def test_afghanistan_windows_and_gates(dtm_idps: pd.DataFrame, afghanistan: pd.DataFrame):
    # Badghis recovering after its dip beats the round before and the last year's maximum,
    # not the last three years' (~314,000).
    assert row(afghanistan, "AF31", "2022-04-30")["reason"] == "previous_round;max_365d"
    # Hirat +187,000 in 2022-12 is only +19%: below the default ratio, above 1.1.
    assert not row(afghanistan, "AF32", "2022-12-31")["surge"]
    provinces = dtm_idps[(dtm_idps["country_iso3"] == "AFG") & (dtm_idps["admin_level"] == 1)]
    assert row(detect_surges(provinces, min_ratio=1.1), "AF32", "2022-12-31")["surge"]
    # Nuristan, a small province: +5,336 passes the default 5,000 IDPs, not 6,000.
    assert row(afghanistan, "AF16", "2021-12-31")["surge_size"] == 5_336
    assert not row(detect_surges(provinces, min_absolute=6_000), "AF16", "2021-12-31")["surge"]


@needs_shared_data
def test_afghanistan_country_roll_up(afghanistan: pd.DataFrame):
    parents = pd.Series("AFG", index=afghanistan["pcode"].unique())
    country = aggregate_surges(afghanistan, parents).set_index("period")
    june_2019 = country.loc[dt.date(2019, 6, 30)]
    assert june_2019["surge"] and june_2019["areas"] == 34
    expected = afghanistan.loc[afghanistan["period"] == dt.date(2019, 6, 30), "surge_size"].sum()
    assert june_2019["surge_size"] == expected
    assert "AF32" in june_2019["surging_pcodes"].split(";")
    # The first round (3 provinces) cannot surge: nothing was covered before.
    assert not country.loc[dt.date(2017, 3, 30), "surge"]


@needs_shared_data
def test_two_countries_and_assessment_types_in_one_frame(dtm_idps: pd.DataFrame):
    provinces = dtm_idps[dtm_idps["admin_level"] == 1]
    keys = ["country_iso3", "assessment_type"]
    together = detect_surges(provinces, by=keys)
    for (country, assessment), part in provinces.groupby(keys):
        alone = detect_surges(part)
        mine = together[
            (together["country_iso3"] == country) & (together["assessment_type"] == assessment)
        ]
        pd.testing.assert_frame_equal(
            mine[alone.columns].reset_index(drop=True), alone.reset_index(drop=True)
        )


# --- the demo scenario --------------------------------------------------------------------------


def test_demo_surge_cluster_surges_and_late_entrants_do_not(tmp_path: Path):
    files = generate_scenario(tmp_path)
    observations = read_dtm_table(files.dtm).frame
    idps = observations[(observations["admin_level"] == 2) & (observations["variable"] == "idps")]
    result = detect_surges(idps)

    last = max(result["period"])
    surging = set(result.loc[result["surge"] & (result["period"] == last), "pcode"])
    assert set(files.surge_cluster) <= surging
    first_round = min(result["period"])
    entries = result[(result["reason"] == NO_PREVIOUS_VALUE) & (result["period"] > first_round)]
    assert len(entries) > 0  # the scenario has late entrants...
    assert not entries["surge"].any()  # ...which are never surges
