"""Indicator values: each indicator's transform steps and normalisation on the scoring grid.

For every unit (area, period) and indicator: the transformed value, its 0-10 score (10 riskiest),
why it is missing (:class:`riskwatch.transforms.Reason`), whether it was inherited from a
coarser level, and the age of the data. Shares and measures an area lacks are inherited from its
nearest ancestor (:func:`riskwatch.hierarchy.inherit_down`); event counts inside their source's
coverage count zero where the indicator says so (``missing = "zero_in_coverage"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskwatch.catalog import (
    ChangeStep,
    Goalposts,
    Indicator,
    Log1pStep,
    MinMax,
    PerCapitaStep,
    RatioToRollingMaxStep,
    ScoringModel,
    ShareStep,
    SumOverPeriodStep,
    ValueStep,
    VariableKind,
    WinsoriseStep,
)
from riskwatch.hierarchy import inherit_down
from riskwatch.score_inputs import ScoringContext
from riskwatch.transforms import (
    DAY_SPAN,
    Coverage,
    Reason,
    change,
    goalposts,
    log1p,
    min_max,
    orient,
    per_capita,
    ratio_to_max,
    share,
    winsorise,
)

_INHERITABLE = (VariableKind.SHARE, VariableKind.MEASURE)


@dataclass(frozen=True)
class IndicatorMatrix:
    """Per unit (rows) and indicator (columns, sorted ids): value, score and why missing."""

    ids: tuple[str, ...]
    value: np.ndarray  # transformed value before normalisation (NaN: unavailable)
    score: np.ndarray  # 0-10, 10 riskiest (NaN: unavailable)
    reason: np.ndarray  # Reason codes
    inherited: np.ndarray  # bool
    age_days: np.ndarray  # int


@dataclass
class _Slot:
    """An indicator being evaluated on the grid."""

    value: np.ndarray
    reason: np.ndarray
    age: np.ndarray
    inherited: np.ndarray

    def fail(self, mask: np.ndarray, reason: Reason) -> None:
        mask = mask & (self.reason == Reason.OK)
        self.reason[mask] = reason
        self.value[mask] = np.nan


def indicator_matrix(model: ScoringModel, context: ScoringContext) -> IndicatorMatrix:
    """Every indicator of the model evaluated and normalised at every unit of the grid."""
    units, count = context.grid.n_units, len(model.indicators)
    value = np.full((units, count), np.nan)
    score = np.full((units, count), np.nan)
    reason = np.zeros((units, count), dtype=np.int8)
    inherited = np.zeros((units, count), dtype=bool)
    age = np.zeros((units, count), dtype=np.int64)
    for column, indicator in enumerate(model.indicators):
        slot = _evaluate(indicator, context)
        value[:, column] = slot.value
        reason[:, column] = slot.reason
        inherited[:, column] = slot.inherited & (slot.reason == Reason.OK)
        age[:, column] = np.where(slot.reason == Reason.OK, slot.age, 0)
        score[:, column] = _normalise(indicator, slot.value, context)
    return IndicatorMatrix(tuple(i.id for i in model.indicators), value, score, reason,
                           inherited, age)


def max_age(indicator: Indicator, context: ScoringContext) -> int:
    """The maximum age of the indicator's main input: the step's, the file's, else the setting."""
    step_age = getattr(indicator.source, "max_age_days", None)
    return step_age or indicator.max_age_days or context.params.max_age_days


def _evaluate(indicator: Indicator, context: ScoringContext) -> _Slot:
    slot = _source(indicator, context)
    for step in indicator.transform[1:]:
        if isinstance(step, PerCapitaStep | ShareStep):
            denominator, den_inherited = _denominator(step, context)
            if isinstance(step, PerCapitaStep):
                result, small = per_capita(slot.value, denominator, step.per,
                                           indicator.min_denominator)
            else:
                result, small = share(slot.value, denominator, indicator.min_denominator)
            slot.fail(np.isnan(denominator), Reason.NO_DENOMINATOR)
            slot.fail(small, Reason.SMALL_DENOMINATOR)
            slot.value = np.where(slot.reason == Reason.OK, result, np.nan)
            slot.inherited |= den_inherited
        elif isinstance(step, Log1pStep):
            slot.value = log1p(slot.value)
            slot.fail(np.isnan(slot.value), Reason.OUT_OF_DOMAIN)
        elif isinstance(step, WinsoriseStep):
            groups = _reference_groups(indicator, context)
            slot.value = winsorise(slot.value, groups, step.lower, step.upper)
    slot.value = np.where(slot.reason == Reason.OK, slot.value, np.nan)
    return slot


def _source(indicator: Indicator, context: ScoringContext) -> _Slot:
    """The first step: read the main variable's series on the grid."""
    step = indicator.source
    series = context.series[step.variable]
    grid = context.grid
    oldest = max_age(indicator, context)
    zero_filled = indicator.missing == "zero_in_coverage"
    if isinstance(step, SumOverPeriodStep):
        total, count, newest = series.window_sum(grid, step.days)
        has = count > 0
        slot = _Slot(np.where(has, total, np.nan),
                     np.where(has, Reason.OK, Reason.NO_DATA).astype(np.int8),
                     np.where(has, grid.day_of_unit - newest, 0),
                     np.zeros(grid.n_units, dtype=bool))
        if len(series):
            slot.inherited = has & series.inherited[np.maximum(
                np.searchsorted(series.keys, grid.keys, side="right") - 1, 0)]
        if zero_filled:
            coverage = Coverage.build(series, context.coverage_groups(), grid)
            covered_day = coverage.latest_covered_day(grid)
            zero = ~has & coverage.covers_window(grid, step.days) & (covered_day >= 0)
            slot.value[zero] = 0.0
            slot.reason[zero] = Reason.OK
            slot.age[zero] = (grid.day_of_unit - covered_day)[zero]
    else:
        lookup = series.latest(grid, oldest)
        current = series.values_at(lookup)
        slot = _Slot(current, lookup.reason.copy(), lookup.age_days.copy(),
                     series.inherited_at(lookup))
        if isinstance(step, ChangeStep):
            previous = series.back(lookup, step.rounds)
            result, small = change(current, previous, relative=step.relative,
                                   min_denominator=indicator.min_denominator)
            slot.fail(np.isnan(previous), Reason.NO_HISTORY)
            slot.fail(small, Reason.SMALL_DENOMINATOR)
            slot.value = result
        elif isinstance(step, RatioToRollingMaxStep):
            maximum, seen = series.rolling_max(lookup, step.rounds)
            result, small = ratio_to_max(current, maximum, indicator.min_denominator)
            slot.fail(seen < 2, Reason.NO_HISTORY)
            slot.fail(small, Reason.SMALL_DENOMINATOR)
            slot.value = result
        elif isinstance(step, ValueStep) and zero_filled:
            coverage = Coverage.build(series, context.coverage_groups(), grid)
            covered_day = coverage.latest_covered_day(grid)
            observed_day = grid.day_of_unit - lookup.age_days
            zero = (covered_day >= 0) & (grid.day_of_unit - covered_day <= oldest) & (
                (slot.reason != Reason.OK) | (observed_day < covered_day)
            )
            slot.value = np.where(zero, 0.0, slot.value)
            slot.reason[zero] = Reason.OK
            slot.age[zero] = (grid.day_of_unit - covered_day)[zero]
            slot.inherited[zero] = False
    slot.value = np.where(slot.reason == Reason.OK, slot.value, np.nan)
    if context.kinds[step.variable] in _INHERITABLE:
        inherit_down(slot.value, slot.reason, slot.age, slot.inherited,
                     unit_parents=context.unit_parents, units_by_level=context.units_by_level)
    return slot


def _denominator(
    step: PerCapitaStep | ShareStep, context: ScoringContext
) -> tuple[np.ndarray, np.ndarray]:
    """The denominator on the grid (NaN where missing or older than its maximum age)."""
    series = context.series[step.denominator]
    oldest = step.max_age_days or context.params.denominator_max_age_days
    lookup = series.latest(context.grid, oldest)
    value = series.values_at(lookup)
    inherited = series.inherited_at(lookup)
    if context.kinds[step.denominator] in _INHERITABLE:
        reason, age = lookup.reason.copy(), lookup.age_days.copy()
        inherit_down(value, reason, age, inherited,
                     unit_parents=context.unit_parents, units_by_level=context.units_by_level)
    return value, inherited


def _reference_groups(indicator: Indicator, context: ScoringContext) -> np.ndarray:
    """Group of each unit in the indicator's reference set (min-max and winsorise)."""
    grid = context.grid
    level = context.hierarchy.level_of_area[grid.area_of_unit]
    reference = (indicator.normalisation.reference
                 if isinstance(indicator.normalisation, MinMax) else "level")
    if reference == "level_period":
        return pd.factorize(level * DAY_SPAN + grid.day_of_unit)[0]
    if reference == "country_level":
        country = context.country_of_area[grid.area_of_unit]
        return country * (int(level.max()) + 1 if len(level) else 1) + level
    return level


def _normalise(indicator: Indicator, values: np.ndarray, context: ScoringContext) -> np.ndarray:
    norm = indicator.normalisation
    if isinstance(norm, Goalposts):
        scaled = goalposts(values, norm.lower, norm.upper)
    else:
        scaled = min_max(values, _reference_groups(indicator, context))
    return orient(scaled, indicator.direction)
