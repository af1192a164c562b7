"""Each transform and normalisation against values computed by hand."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from riskwatch.transforms import (
    Coverage,
    Grid,
    Reason,
    Series,
    change,
    goalposts,
    group_quantile,
    log1p,
    min_max,
    orient,
    per_capita,
    ratio_to_max,
    share,
    winsorise,
)

nan = np.nan


def day(text: str) -> int:
    return date.fromisoformat(text).toordinal()


@pytest.fixture
def series() -> Series:
    """Area 0: 100 on Jan 31, 150 on Apr 30, 300 on Jul 31; area 1: 50 on Apr 30.

    Given out of order, to check the sorting.
    """
    return Series.from_arrays(
        area=[0, 1, 0, 0],
        day=[day("2024-07-31"), day("2024-04-30"), day("2024-01-31"), day("2024-04-30")],
        value=[300.0, 50.0, 100.0, 150.0],
    )


def grid_at(*days: str, areas: int = 2) -> Grid:
    return Grid.build([np.array([day(d) for d in days])] * areas)


def test_latest_value_at_or_before_within_the_maximum_age(series: Series) -> None:
    grid = grid_at("2024-01-15", "2024-05-15", "2025-06-30")
    lookup = series.latest(grid, max_age_days=365)
    # Area 0: nothing before Jan 15; Apr 30 value at May 15 (15 days old); Jul 31 value at
    # 2025-06-30 is 334 days old. Area 1: nothing; 15 days; 426 days > 365 -> too old.
    assert lookup.reason.tolist() == [Reason.NO_DATA, Reason.OK, Reason.OK,
                                      Reason.NO_DATA, Reason.OK, Reason.TOO_OLD]
    np.testing.assert_array_equal(series.values_at(lookup), [nan, 150, 300, nan, 50, nan])
    assert lookup.age_days[[1, 2, 4]].tolist() == [15, 334, 15]


def test_value_on_the_period_itself_is_used(series: Series) -> None:
    lookup = series.latest(grid_at("2024-04-30", areas=1), max_age_days=0)
    assert series.values_at(lookup).tolist() == [150.0]
    assert lookup.age_days.tolist() == [0]


def test_change_over_k_rounds(series: Series) -> None:
    grid = grid_at("2024-07-31")
    lookup = series.latest(grid, max_age_days=365)
    current = series.values_at(lookup)
    one_back = series.back(lookup, 1)
    two_back = series.back(lookup, 2)
    np.testing.assert_array_equal(one_back, [150, nan])  # area 1 has a single round
    np.testing.assert_array_equal(two_back, [100, nan])
    absolute, _ = change(current, one_back, relative=False, min_denominator=0)
    relative, small = change(current, two_back, relative=True, min_denominator=0)
    np.testing.assert_array_equal(absolute, [150, nan])  # 300 - 150
    np.testing.assert_array_equal(relative, [2.0, nan])  # (300 - 100) / 100
    assert not small.any()
    guarded, small = change(current, one_back, relative=True, min_denominator=200)
    np.testing.assert_array_equal(guarded, [nan, nan])  # previous 150 < 200
    assert small.tolist() == [True, False]


def test_back_never_crosses_into_another_area() -> None:
    data = Series.from_arrays(area=[0, 1, 1], day=[10, 10, 20], value=[7.0, 1.0, 2.0])
    grid = Grid.build([np.array([30]), np.array([30])])
    lookup = data.latest(grid, max_age_days=100)
    np.testing.assert_array_equal(data.back(lookup, 1), [nan, 1.0])


def test_ratio_to_rolling_maximum(series: Series) -> None:
    grid = grid_at("2024-05-01", "2024-08-01", areas=1)
    lookup = series.latest(grid, max_age_days=365)
    maximum, seen = series.rolling_max(lookup, 2)
    # May 1: last two rounds 100, 150 -> max 150; Aug 1: 150, 300 -> 300.
    np.testing.assert_array_equal(maximum, [150, 300])
    assert seen.tolist() == [2, 2]
    ratio, _ = ratio_to_max(series.values_at(lookup), maximum, min_denominator=0)
    np.testing.assert_array_equal(ratio, [1.0, 1.0])
    maximum3, seen3 = series.rolling_max(lookup, 3)
    assert seen3.tolist() == [2, 3]
    np.testing.assert_array_equal(ratio_to_max(np.array([75.0, 0.0]), np.array([300.0, 0.0]),
                                               0)[0], [0.25, 0.0])


def test_sum_over_a_period_of_days() -> None:
    months = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
    data = Series.from_arrays(area=[0, 0, 0, 0], day=[day(m) for m in months],
                              value=[1.0, 2.0, 4.0, 8.0])
    grid = grid_at("2024-04-30", "2024-03-31", "2023-12-31", areas=1)
    total, count, newest = data.window_sum(grid, days=92)
    # (Jan 29, Apr 30] holds Feb, Mar, Apr: 2 + 4 + 8; (Dec 30, Mar 31]: 1 + 2 + 4; none.
    assert total.tolist() == [14.0, 7.0, 0.0]
    assert count.tolist() == [3, 3, 0]
    assert newest.tolist() == [day("2024-04-01"), day("2024-03-01"), -1]
    # The window excludes its start day: 60 days before Apr 1 is Feb 1.
    total, count, _ = data.window_sum(grid_at("2024-04-01", areas=1), days=60)
    assert total.tolist() == [12.0] and count.tolist() == [2]


def test_per_capita_share_and_minimum_denominator() -> None:
    events = np.array([3.0, 3.0, 3.0, 3.0])
    population = np.array([150_000.0, 8_000.0, 0.0, nan])
    rate, small = per_capita(events, population, per=100_000, min_denominator=10_000)
    np.testing.assert_allclose(rate, [2.0, nan, nan, nan])
    assert small.tolist() == [False, True, True, False]  # missing is not "small"
    part, small = share(np.array([25.0]), np.array([100.0]), min_denominator=0)
    assert part.tolist() == [0.25] and not small.any()


def test_log1p_domain() -> None:
    np.testing.assert_allclose(log1p(np.array([0.0, np.e - 1, -0.5, -1.0, -2.0])),
                               [0.0, 1.0, np.log(0.5), nan, nan])


def test_winsorise_within_each_group() -> None:
    values = np.array([0.0, 1.0, 2.0, 3.0, 100.0, 5.0, 5.0, nan])
    groups = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    # Group 0: 0.75 quantile of [0, 1, 2, 3, 100] = 3 (linear interpolation).
    assert group_quantile(values, groups, 0.75)[0] == 3.0
    clipped = winsorise(values, groups, lower=0.25, upper=0.75)
    np.testing.assert_array_equal(clipped, [1.0, 1.0, 2.0, 3.0, 3.0, 5.0, 5.0, nan])


def test_min_max_within_each_group() -> None:
    values = np.array([2.0, 4.0, 6.0, 10.0, 10.0, nan])
    groups = np.array([0, 0, 0, 1, 1, 1])
    # Group 0 spans 2..6; group 1 has no spread: neutral 5.
    np.testing.assert_allclose(min_max(values, groups), [0.0, 5.0, 10.0, 5.0, 5.0, nan])


def test_goalposts_and_orientation() -> None:
    scores = goalposts(np.array([-10.0, 0.0, 37.5, 150.0, 300.0, nan]), 0.0, 150.0)
    np.testing.assert_allclose(scores, [0.0, 0.0, 2.5, 10.0, 10.0, nan])
    np.testing.assert_allclose(orient(scores, "lower_is_riskier"),
                               [10.0, 10.0, 7.5, 0.0, 0.0, nan])
    np.testing.assert_allclose(orient(scores, "higher_is_riskier"), scores)


def test_event_coverage_by_group() -> None:
    # Group 0 (areas 0, 1) has events in Jan and Mar; group 1 (area 2) none at all.
    data = Series.from_arrays(area=[0, 1], day=[day("2024-01-01"), day("2024-03-01")],
                              value=[1.0, 2.0])
    grid = grid_at("2023-12-31", "2024-02-15", "2024-07-31", areas=3)
    coverage = Coverage.build(data, np.array([0, 0, 1]), grid)
    latest = coverage.latest_covered_day(grid)
    assert latest.tolist() == [-1, day("2024-01-01"), day("2024-03-01")] * 2 + [-1, -1, -1]
    # 92-day windows: before the coverage, inside it, and (May 1, Jul 31] after its end.
    assert coverage.covers_window(grid, 92).tolist() == [False, True, False] * 2 + [False] * 3


def test_grid_finds_units_by_area_and_day() -> None:
    grid = Grid.build([np.array([10, 20]), np.array([], dtype=np.int64), np.array([20])])
    assert grid.n_units == 3
    assert grid.unit_of(np.array([0, 0, 2, 1, -1]), np.array([20, 15, 20, 20, 10])).tolist() == [
        1, -1, 2, -1, -1]


def test_series_refuses_two_values_for_one_area_and_day() -> None:
    with pytest.raises(ValueError, match="two values"):
        Series.from_arrays(area=[0, 0], day=[5, 5], value=[1.0, 2.0])
