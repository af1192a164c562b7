"""The closed vocabulary of transforms and normalisations, as vectorised numpy functions.

Everything here is pure and works on flat arrays over the scoring *grid*: every area times every
scoring period ("unit"), area-major. Three kinds of functions:

* series lookups (:class:`Series`): a variable's observations aligned to the grid - the latest
  value at or before the period within a maximum age, the value ``k`` observations earlier, the
  maximum of the last ``k`` observations, the sum over the last ``days`` days;
* element steps: per capita, share, relative change, ratio, log1p;
* steps over a reference set (groups of units): winsorise, min-max; and fixed goalposts.

A value that cannot be computed is NaN and carries a :class:`Reason`; nothing missing ever
becomes a zero here (zeros inside an event source's coverage are decided by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pandas as pd

# Days are proleptic ordinals (date.toordinal()); areas are indices. A key packs both so one
# sorted int64 array answers "latest observation of this area at or before this day".
DAY_SPAN = 1 << 22  # > 4 million days: every ordinal up to the year 11000


class Reason(IntEnum):
    """Why an indicator has no value for a unit (OK when it has one)."""

    OK = 0
    NO_DATA = 1  # no observation of an input at or before the period
    TOO_OLD = 2  # the latest observation is older than the maximum age
    NO_DENOMINATOR = 3  # the denominator (e.g. population) is missing or too old
    SMALL_DENOMINATOR = 4  # the denominator is below the indicator's minimum
    NO_HISTORY = 5  # a change or ratio needs earlier observations that do not exist
    OUT_OF_DOMAIN = 6  # the transform is undefined for the value (e.g. log1p of < -1)

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Grid:
    """The units scored: (area, period) pairs, sorted by area then period.

    Each country has its own periods (its DTM reporting dates), so the grid is not a full
    product of areas and periods; a unit is found by its key (see :meth:`unit_of`).
    """

    area_of_unit: np.ndarray  # int64, per unit
    day_of_unit: np.ndarray  # int64, per unit
    n_areas: int
    keys: np.ndarray  # area * DAY_SPAN + day, sorted

    @classmethod
    def build(cls, days_of_area: list[np.ndarray]) -> Grid:
        """Units of each area (index in the list) at its sorted, distinct days."""
        counts = np.array([len(d) for d in days_of_area], dtype=np.int64)
        days = (np.concatenate([np.asarray(d, dtype=np.int64) for d in days_of_area])
                if len(days_of_area) else np.zeros(0, dtype=np.int64))
        area = np.repeat(np.arange(len(days_of_area), dtype=np.int64), counts)
        return cls(area, days, len(days_of_area), area * DAY_SPAN + days)

    @property
    def n_units(self) -> int:
        return len(self.area_of_unit)

    def unit_of(self, area: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The unit of each (area, day), -1 where the grid has none."""
        keys = self.keys
        wanted = np.asarray(area, dtype=np.int64) * DAY_SPAN + np.asarray(day, dtype=np.int64)
        position = np.searchsorted(keys, wanted)
        safe = np.minimum(position, max(len(keys) - 1, 0))
        found = (position < len(keys)) & (np.asarray(area) >= 0)
        if len(keys):
            found &= keys[safe] == wanted
        return np.where(found, safe, -1)


@dataclass(frozen=True)
class Lookup:
    """For each unit: the position of the series observation used (-1: none) and its age."""

    position: np.ndarray  # int64
    age_days: np.ndarray  # int64 (meaningless where reason is not OK)
    reason: np.ndarray  # int8 Reason codes


@dataclass(frozen=True)
class Series:
    """One variable's observations, sorted by area then day (one value per area and day)."""

    area: np.ndarray  # int64
    day: np.ndarray  # int64
    value: np.ndarray  # float64
    inherited: np.ndarray  # bool: the row itself was inherited by the caller
    keys: np.ndarray  # area * DAY_SPAN + day, sorted and unique

    @classmethod
    def from_arrays(
        cls,
        area: np.ndarray,
        day: np.ndarray,
        value: np.ndarray,
        inherited: np.ndarray | None = None,
    ) -> Series:
        area = np.asarray(area, dtype=np.int64)
        day = np.asarray(day, dtype=np.int64)
        keys = area * DAY_SPAN + day
        values = np.asarray(value, dtype=np.float64)
        flags = (np.zeros(len(area), dtype=bool) if inherited is None
                 else np.asarray(inherited, dtype=bool))
        if len(keys) > 1 and not bool((keys[1:] >= keys[:-1]).all()):
            order = np.argsort(keys)  # keys are unique (checked below): no need for stability
            keys, area, day, values, flags = (a[order] for a in (keys, area, day, values, flags))
        if len(keys) > 1 and bool((keys[1:] == keys[:-1]).any()):
            raise ValueError("a series holds two values for the same area and period")
        return cls(area, day, values, flags, keys)

    def __len__(self) -> int:
        return len(self.area)

    # --- lookups ---------------------------------------------------------------------------
    def latest(self, grid: Grid, max_age_days: int) -> Lookup:
        """The latest observation at or before each unit's period, if at most that old."""
        position = np.searchsorted(self.keys, grid.keys, side="right") - 1
        has = self._same_area(position, grid.area_of_unit)
        safe = np.where(has, position, 0)
        age = np.where(has, grid.day_of_unit - self.day[safe] if len(self) else 0, 0)
        fresh = has & (age <= max_age_days)
        reason = np.where(fresh, Reason.OK, np.where(has, Reason.TOO_OLD, Reason.NO_DATA))
        return Lookup(np.where(has, position, -1), age.astype(np.int64), reason.astype(np.int8))

    def values_at(self, lookup: Lookup) -> np.ndarray:
        """The looked-up values (NaN where the lookup failed)."""
        ok = lookup.reason == Reason.OK
        if not len(self):
            return np.full(len(ok), np.nan)
        return np.where(ok, self.value[np.where(ok, lookup.position, 0)], np.nan)

    def inherited_at(self, lookup: Lookup) -> np.ndarray:
        ok = lookup.reason == Reason.OK
        if not len(self):
            return np.zeros(len(ok), dtype=bool)
        return ok & self.inherited[np.where(ok, lookup.position, 0)]

    def back(self, lookup: Lookup, rounds: int) -> np.ndarray:
        """The value ``rounds`` observations before the looked-up one (NaN when none)."""
        earlier = lookup.position - rounds
        ok = (lookup.reason == Reason.OK) & (earlier >= 0)
        ok &= self._same_area(np.where(ok, earlier, 0), self._area_at(lookup.position))
        return np.where(ok, self.value[np.where(ok, earlier, 0)] if len(self) else 0, np.nan)

    def rolling_max(self, lookup: Lookup, rounds: int) -> tuple[np.ndarray, np.ndarray]:
        """Maximum and count of the last ``rounds`` observations up to the looked-up one."""
        ok = lookup.reason == Reason.OK
        area = self._area_at(lookup.position)
        maximum = np.full(len(ok), -np.inf)
        count = np.zeros(len(ok), dtype=np.int64)
        for offset in range(rounds):
            earlier = lookup.position - offset
            valid = ok & (earlier >= 0)
            valid &= self._same_area(np.where(valid, earlier, 0), area)
            if not valid.any():
                break
            values = self.value[np.where(valid, earlier, 0)]
            maximum = np.where(valid, np.fmax(maximum, values), maximum)
            count += valid
        return np.where(count > 0, maximum, np.nan), count

    def window_sum(self, grid: Grid, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sum, count and newest day of the observations dated in (period - days, period].

        The sum runs in period order within each area, so the result does not depend on other
        areas or on the order of rows (a global cumulative sum would).
        """
        keys = self.keys
        high = np.searchsorted(keys, grid.keys, side="right")
        low = np.searchsorted(keys, grid.keys - days, side="right")
        count = (high - low).astype(np.int64)
        total = np.zeros(grid.n_units)
        for offset in range(int(count.max()) if len(count) else 0):
            take = count > offset
            total[take] += self.value[low[take] + offset]
        newest = np.where(count > 0, self.day[np.maximum(high - 1, 0)] if len(self) else 0, -1)
        return total, count, newest.astype(np.int64)

    # --- helpers ---------------------------------------------------------------------------
    def _area_at(self, position: np.ndarray) -> np.ndarray:
        if not len(self):
            return np.full(len(position), -1, dtype=np.int64)
        return np.where(position >= 0, self.area[np.maximum(position, 0)], -1)

    def _same_area(self, position: np.ndarray, area: np.ndarray) -> np.ndarray:
        if not len(self):
            return np.zeros(len(position), dtype=bool)
        return (position >= 0) & (self.area[np.clip(position, 0, len(self) - 1)] == area)


@dataclass(frozen=True)
class Coverage:
    """Where an event variable is covered: per group of units (country x admin level).

    Inside the coverage - from the group's first to its last observed period - an area without a
    row counts zero (CONTRACTS.md, event sources); outside it the value is missing.
    """

    group_of_unit: np.ndarray  # int64 per unit (-1: the group has no observation at all)
    first_day: np.ndarray  # per group
    last_day: np.ndarray  # per group
    observed_keys: np.ndarray  # sorted group * DAY_SPAN + day of every observed period

    @classmethod
    def build(cls, series: Series, group_of_area: np.ndarray, grid: Grid) -> Coverage:
        groups = group_of_area[series.area]
        n_groups = int(group_of_area.max()) + 1 if len(group_of_area) else 0
        # Few distinct (group, day) pairs among many rows: reduce first (hash), then sort.
        observed = np.sort(pd.unique(groups * DAY_SPAN + series.day))
        observed_group, observed_day = observed // DAY_SPAN, observed % DAY_SPAN
        first = np.full(n_groups, np.iinfo(np.int64).max)
        last = np.full(n_groups, np.iinfo(np.int64).min)
        np.minimum.at(first, observed_group, observed_day)
        np.maximum.at(last, observed_group, observed_day)
        unit_group = group_of_area[grid.area_of_unit]
        has = np.zeros(n_groups, dtype=bool)
        has[observed_group] = True
        return cls(np.where(has[unit_group], unit_group, -1), first, last, observed)

    def latest_covered_day(self, grid: Grid) -> np.ndarray:
        """The latest observed period of the unit's group at or before its period (-1: none)."""
        group = self.group_of_unit
        if not len(self.observed_keys):
            return np.full(grid.n_units, -1, dtype=np.int64)
        keys = np.where(group >= 0, group, 0) * DAY_SPAN + grid.day_of_unit
        position = np.searchsorted(self.observed_keys, keys, side="right") - 1
        safe = np.maximum(position, 0)
        same = (position >= 0) & (self.observed_keys[safe] // DAY_SPAN == group) & (group >= 0)
        return np.where(same, self.observed_keys[safe] % DAY_SPAN, -1)

    def covers_window(self, grid: Grid, days: int) -> np.ndarray:
        """Whether the coverage overlaps (period - days, period] for each unit."""
        group = self.group_of_unit
        safe = np.where(group >= 0, group, 0)
        return (group >= 0) & (self.first_day[safe] <= grid.day_of_unit) & (
            self.last_day[safe] > grid.day_of_unit - days
        )


# --- element steps ---------------------------------------------------------------------------


def divide(
    numerator: np.ndarray, denominator: np.ndarray, min_denominator: float
) -> tuple[np.ndarray, np.ndarray]:
    """numerator / denominator; NaN (flagged in the second array) where the denominator is
    missing, not positive or below ``min_denominator``."""
    small = ~np.isnan(denominator) & ((denominator <= 0) | (denominator < min_denominator))
    usable = ~np.isnan(denominator) & ~small
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(usable, numerator / np.where(usable, denominator, 1.0), np.nan)
    return result, small


def per_capita(
    numerator: np.ndarray, population: np.ndarray, per: float, min_denominator: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rate per ``per`` residents (e.g. per 100,000); see :func:`divide` for the flags."""
    rate, small = divide(numerator, population, min_denominator)
    return rate * per, small


def share(
    part: np.ndarray, whole: np.ndarray, min_denominator: float
) -> tuple[np.ndarray, np.ndarray]:
    """part / whole; see :func:`divide` for the flags."""
    return divide(part, whole, min_denominator)


def change(
    current: np.ndarray, previous: np.ndarray, *, relative: bool, min_denominator: float
) -> tuple[np.ndarray, np.ndarray]:
    """current - previous, or (current - previous) / previous when ``relative``."""
    difference = current - previous
    if not relative:
        return difference, np.zeros(len(current), dtype=bool)
    return divide(difference, previous, min_denominator)


def ratio_to_max(
    current: np.ndarray, maximum: np.ndarray, min_denominator: float
) -> tuple[np.ndarray, np.ndarray]:
    """current / rolling maximum (0-1); 0 when the maximum is 0 and so is the value."""
    small = ~np.isnan(maximum) & (maximum < min_denominator) & (maximum > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(maximum > 0, current / np.where(maximum > 0, maximum, 1.0), 0.0)
    ratio = np.where(np.isnan(maximum) | np.isnan(current) | small, np.nan, ratio)
    return ratio, small


def log1p(values: np.ndarray) -> np.ndarray:
    """log(1 + x); NaN below -1 (undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        result = np.log1p(np.where(values >= -1, values, np.nan))
    return np.where(np.isinf(result), np.nan, result)


# --- reference sets and normalisation --------------------------------------------------------


def winsorise(values: np.ndarray, groups: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Clip each value to the ``lower``/``upper`` quantiles of its group (NaN ignored)."""
    result = values.copy()
    if lower > 0:
        result = np.where(np.isnan(result), result,
                          np.fmax(result, group_quantile(values, groups, lower)))
    if upper < 1:
        result = np.where(np.isnan(result), result,
                          np.fmin(result, group_quantile(values, groups, upper)))
    return result


def group_quantile(values: np.ndarray, groups: np.ndarray, quantile: float) -> np.ndarray:
    """The ``quantile`` of each unit's group (linear interpolation, NaN ignored), per unit."""
    frame = pd.DataFrame({"group": groups, "value": values}).dropna()
    per_group = frame.groupby("group")["value"].quantile(quantile)
    return pd.Series(groups).map(per_group).to_numpy(dtype=np.float64)


def min_max(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """0-10 by min-max within each group; 5 (neutral) where a group has no spread."""
    series = pd.Series(values)
    grouped = series.groupby(groups)
    low = grouped.transform("min").to_numpy()
    high = grouped.transform("max").to_numpy()
    spread = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(spread > 0, (values - low) / np.where(spread > 0, spread, 1.0), 0.5)
    return np.where(np.isnan(values), np.nan, scaled * 10.0)


def goalposts(values: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """0-10 between fixed goalposts, clipped outside them."""
    return np.clip((values - lower) / (upper - lower), 0.0, 1.0) * 10.0


def orient(scores: np.ndarray, direction: str) -> np.ndarray:
    """Scores oriented so that 10 is always the riskiest (inverted when lower is riskier)."""
    return 10.0 - scores if direction == "lower_is_riskier" else scores
