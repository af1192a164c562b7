"""Composite risk scores: indicators -> 0-10 scores -> dimensions -> risk, class, reliability.

:func:`score_areas` is pure: a long frame of observations in, a :class:`ScoreTable` out, no
database. The model (DESIGN.md "Scoring model", INFORM-style):

1. **Inputs.** One value per (pcode, variable, period) - DTM already reduced to the preferred
   assessment type, summed over operations. Counts missing at a parent are summed from its
   children; shares missing at an area are inherited from its nearest ancestor, marked inherited
   (:mod:`riskwatch.hierarchy`).
2. **Alignment.** Each country's scoring periods are its periods of ``period_variables`` (DTM
   reporting dates; :mod:`riskwatch.score_inputs`). Each input is taken at its latest value at
   or before the period, if not older than the indicator's maximum age; the age is kept for
   reliability.
3. **Indicator.** The indicator's transform steps (:mod:`riskwatch.transforms`), then
   normalisation to 0-10 (min-max over a reference set or fixed goalposts), inverted where lower
   is riskier (:mod:`riskwatch.indicator_values`).
4. **Dimension.** Weighted arithmetic mean of the indicators that have a value.
5. **Risk.** Across the dimensions that have data: weighted geometric mean with each dimension
   floored at the profile's ``geometric_floor`` (INFORM), or the weighted arithmetic mean.
   Rounded to 2 decimals, then classed with the profile's four thresholds.
6. **Insufficient data.** Fewer than ``min_indicators`` indicators, or less than
   ``min_weight_share`` of the profile's weight, have a value: no risk, class
   ``insufficient_data`` - never low risk.
7. **Reliability** (0-1): sum over indicators of global weight x present x (inherited discount
   if inherited) x freshness, freshness falling linearly from 1 (current) to 0.5 at the maximum
   age.
8. **Drivers.** Each indicator's contribution to the risk: the risk split among dimensions in
   proportion to weight x dimension score, and within a dimension in proportion to weight x
   indicator score (exact for the arithmetic mean; a proportional allocation for the
   geometric one). ``top_drivers``: up to five ``id:contribution`` pairs, largest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from riskwatch.catalog import DIMENSIONS, INSUFFICIENT_DATA, RISK_CLASSES, ScoringModel
from riskwatch.indicator_values import IndicatorMatrix, indicator_matrix, max_age
from riskwatch.score_inputs import (
    AREA_COLUMNS,
    OBSERVATION_COLUMNS,
    ScoringContext,
    ScoringParams,
    build_context,
)
from riskwatch.transforms import Reason

__all__ = [
    "AREA_COLUMNS", "OBSERVATION_COLUMNS", "IndicatorMatrix", "ScoreTable", "ScoringParams",
    "score_areas", "top_drivers",
]
MAX_DRIVERS = 5


@dataclass(frozen=True)
class ScoreTable:
    """The result of :func:`score_areas`: one row per area and period."""

    units: pd.DataFrame
    indicators: IndicatorMatrix
    contributions: np.ndarray  # per unit and indicator (NaN: none)
    dimension_ids: tuple[str, ...]
    missing_dimensions: list[tuple[str, ...]] = field(repr=False)

    @property
    def periods(self) -> list[date]:
        return sorted(set(self.units["period"]))

    def latest(self) -> pd.DataFrame:
        """Each area's row at the latest period of its country (countries differ in periods)."""
        units = self.units
        last = units.groupby("country_iso3")["period"].transform("max")
        return units[units["period"] == last]

    def drivers(self, unit: int) -> dict[str, Any]:
        """What the stored ``drivers`` JSON of one unit holds (see the module docstring)."""
        matrix = self.indicators
        present = matrix.reason[unit] == Reason.OK
        row = self.units.iloc[unit]
        contributions = {
            indicator_id: round(float(value), 3)
            for indicator_id, value, ok in zip(matrix.ids, self.contributions[unit], present,
                                               strict=True)
            if ok and not np.isnan(value)
        }
        indicators = {
            indicator_id: {
                "value": _round(matrix.value[unit, i], 6),
                "score": _round(matrix.score[unit, i], 3),
                "age_days": int(matrix.age_days[unit, i]),
                "inherited": bool(matrix.inherited[unit, i]),
            }
            for i, indicator_id in enumerate(matrix.ids)
            if present[i]
        }
        unavailable = {
            indicator_id: Reason(int(matrix.reason[unit, i])).label
            for i, indicator_id in enumerate(matrix.ids)
            if not present[i]
        }
        missing = list(self.missing_dimensions[unit])
        return {
            "top_drivers": row["top_drivers"],
            "contributions": contributions,
            "indicators": indicators,
            "unavailable": unavailable,
            "missing_dimensions": missing,
            "indicators_present": int(present.sum()),
            "indicators_total": len(matrix.ids),
            "weight_share": round(float(row["weight_share"]), 3),
            "note": _reliability_note(missing, len(unavailable), len(matrix.ids),
                                      int(matrix.inherited[unit][present].sum())),
        }

    def unavailable_by_country(self) -> dict[str, list[str]]:
        """Per country, the indicators that have no value in any of its areas and periods."""
        result: dict[str, list[str]] = {}
        countries = self.units["country_iso3"].to_numpy()
        present = self.indicators.reason == Reason.OK
        for country in sorted(set(countries)):
            rows = countries == country
            missing = [i for i, ok in zip(self.indicators.ids, present[rows].any(axis=0),
                                          strict=True) if not ok]
            result[str(country)] = missing
        return result

    def missing_dimensions_by_country(self) -> dict[str, list[str]]:
        """Per country, the dimensions without data in any of its areas and periods."""
        countries = self.units["country_iso3"].to_numpy()
        result: dict[str, list[str]] = {}
        for country in sorted(set(countries)):
            rows = np.flatnonzero(countries == country)
            result[str(country)] = [
                d for d in self.dimension_ids
                if all(d in self.missing_dimensions[unit] for unit in rows)
            ]
        return result


def _round(value: float, digits: int) -> float | None:
    return None if np.isnan(value) else round(float(value), digits)


def _reliability_note(
    missing_dimensions: list[str], unavailable: int, total: int, inherited: int
) -> str:
    parts = []
    if missing_dimensions:
        parts.append("no data for " + ", ".join(d.replace("_", " ") for d in missing_dimensions))
    parts.append(f"{total - unavailable} of {total} indicators with data")
    if inherited:
        parts.append(f"{inherited} inherited from a coarser level")
    return "; ".join(parts)


# --- entry point -----------------------------------------------------------------------------


def score_areas(
    observations: pd.DataFrame,
    model: ScoringModel,
    params: ScoringParams | None = None,
    *,
    areas: pd.DataFrame | None = None,
    periods: Sequence[date] | Mapping[str, Sequence[date]] | None = None,
) -> ScoreTable:
    """Score every area at every period of its country (see the module docstring).

    ``observations``: columns :data:`OBSERVATION_COLUMNS`, optionally ``inherited`` (rows a
    caller already copied from a coarser level); one value per pcode, variable and period.
    ``areas``: columns :data:`AREA_COLUMNS`; default: the areas named in the observations
    (areas without any observation are scored too, as insufficient data).
    ``periods``: one list for every country, or a list per country (ISO3); default: in each
    country the periods of ``params.period_variables`` there (DTM reporting dates), else every
    period of its inputs. Areas of a country without periods are not scored. The result does
    not depend on the order of rows or areas.
    """
    params = params or ScoringParams()
    context, areas = build_context(observations, model, params, areas=areas, periods=periods)
    return _compose(model, params, areas, indicator_matrix(model, context), context)


# --- composite -------------------------------------------------------------------------------


# Units per block of the composite: a block's units x indicators matrices stay in the CPU
# cache, which keeps the time linear in the number of areas.
_BLOCK = 8192


@dataclass(frozen=True)
class _Composite:
    """What the composite needs of the model, as arrays over the indicators (sorted ids)."""

    weights: np.ndarray  # within-dimension weights
    share_of_profile: np.ndarray  # global weights (sum 1)
    dimension_of: np.ndarray  # index into the profile's dimensions
    dimension_weights: np.ndarray
    max_ages: np.ndarray  # days, for freshness
    thresholds: np.ndarray
    aggregation: str
    floor: float
    params: ScoringParams

    @classmethod
    def of(cls, model: ScoringModel, params: ScoringParams, context: ScoringContext) -> _Composite:
        global_weights = model.global_weights()
        dims = list(model.dimension_ids)
        return cls(
            weights=np.array([model.weight(i.id) for i in model.indicators]),
            share_of_profile=np.array([global_weights[i.id] for i in model.indicators]),
            dimension_of=np.array([dims.index(i.dimension) for i in model.indicators]),
            dimension_weights=np.array([d.weight for d in model.profile.dimensions]),
            max_ages=np.array([max_age(i, context) for i in model.indicators], dtype=float),
            thresholds=np.array(model.profile.classes.thresholds),
            aggregation=model.profile.aggregation,
            floor=model.profile.geometric_floor,
            params=params,
        )


def _compose(
    model: ScoringModel,
    params: ScoringParams,
    areas: pd.DataFrame,
    matrix: IndicatorMatrix,
    context: ScoringContext,
) -> ScoreTable:
    composite = _Composite.of(model, params, context)
    units = context.grid.n_units
    n_dims = len(composite.dimension_weights)
    risk = np.full(units, np.nan)
    sufficient = np.zeros(units, dtype=bool)
    reliability = np.zeros(units)
    dimensions = np.full((units, n_dims), np.nan)
    present_count = np.zeros(units, dtype=np.int64)
    weight_share = np.zeros(units)
    contributions = np.full(matrix.score.shape, np.nan)
    drivers = np.full(units, "", dtype=object)
    table = _driver_table(matrix.ids)
    for low in range(0, units, _BLOCK):
        rows = slice(low, min(units, low + _BLOCK))
        block = _compose_block(composite, matrix.score[rows], matrix.reason[rows],
                               matrix.inherited[rows], matrix.age_days[rows])
        (risk[rows], sufficient[rows], reliability[rows], dimensions[rows],
         present_count[rows], weight_share[rows], contributions[rows]) = block
        drivers[rows] = _driver_texts(contributions[rows], table)

    classes = np.array(RISK_CLASSES, dtype=object)[
        np.searchsorted(composite.thresholds, np.nan_to_num(risk), side="right")
    ]
    profile_dims = list(model.dimension_ids)
    area = context.grid.area_of_unit
    day_codes, day_values = pd.factorize(context.grid.day_of_unit)
    dates = np.array([date.fromordinal(int(d)) for d in day_values], dtype=object)
    # An area without enough data shows no dimension scores either: nothing reads as low risk.
    shown = np.where(sufficient[:, None], np.round(dimensions, 2), np.nan)
    frame = pd.DataFrame({
        "pcode": areas["pcode"].to_numpy(dtype=object)[area],
        "admin_level": areas["admin_level"].to_numpy(dtype=np.int64)[area],
        "country_iso3": areas["country_iso3"].to_numpy(dtype=object)[area],
        "period": dates[day_codes] if len(dates) else np.array([], dtype=object),
        "risk": risk,
        "risk_class": np.where(sufficient, classes, INSUFFICIENT_DATA),
        "reliability": np.round(reliability, 3),
        **{d: (shown[:, profile_dims.index(d)] if d in profile_dims
               else np.full(units, np.nan)) for d in DIMENSIONS},
        "indicators_present": present_count,
        "weight_share": weight_share,
        "top_drivers": drivers,
    })
    missing = _missing_dimensions(~np.isnan(dimensions), profile_dims)
    return ScoreTable(frame, matrix, contributions, tuple(profile_dims), missing)


def _compose_block(
    composite: _Composite,
    score: np.ndarray,
    reason: np.ndarray,
    inherited: np.ndarray,
    age_days: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Dimensions, risk, sufficiency, reliability and contributions of a block of units."""
    present = reason == Reason.OK
    scores = np.where(present, score, 0.0)
    weights, dimension_of = composite.weights, composite.dimension_of
    n_dims = len(composite.dimension_weights)
    dimensions = np.full((len(score), n_dims), np.nan)
    for d in range(n_dims):
        columns = dimension_of == d
        weight_present = (present[:, columns] * weights[columns]).sum(axis=1)
        weighted = (scores[:, columns] * weights[columns]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            dimensions[:, d] = np.where(weight_present > 0, weighted / weight_present, np.nan)

    dim_weights = composite.dimension_weights
    has_dimension = ~np.isnan(dimensions)
    weight_total = (has_dimension * dim_weights).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if composite.aggregation == "geometric":
            floored = np.log(np.fmax(np.where(has_dimension, dimensions, 1.0), composite.floor))
            risk = np.exp((np.where(has_dimension, floored, 0.0) * dim_weights).sum(axis=1)
                          / weight_total)
        else:
            risk = ((np.where(has_dimension, dimensions, 0.0) * dim_weights).sum(axis=1)
                    / weight_total)

    params = composite.params
    present_count = present.sum(axis=1)
    weight_share = (present * composite.share_of_profile).sum(axis=1)
    sufficient = (present_count >= params.min_indicators) & (
        weight_share + 1e-9 >= params.min_weight_share
    ) & (weight_total > 0)
    risk = np.where(sufficient, np.round(risk, 2), np.nan)
    reliability = _reliability(composite, present, inherited, age_days)
    contributions = _contributions(composite, scores, present, dimensions, has_dimension, risk)
    return (risk, sufficient, reliability, dimensions, present_count, weight_share,
            contributions)


def _reliability(
    composite: _Composite, present: np.ndarray, inherited: np.ndarray, age_days: np.ndarray
) -> np.ndarray:
    """Weighted share of indicators present, discounted for inheritance and age."""
    weight = age_days / composite.max_ages
    np.clip(weight, 0.0, 1.0, out=weight)
    weight *= -0.5
    weight += 1.0  # freshness: 1 when current, 0.5 at the maximum age
    weight *= composite.share_of_profile
    weight[inherited] *= composite.params.inherited_discount
    weight[~present] = 0.0
    return weight.sum(axis=1)


def _contributions(
    composite: _Composite,
    scores: np.ndarray,
    present: np.ndarray,
    dimensions: np.ndarray,
    has_dimension: np.ndarray,
    risk: np.ndarray,
) -> np.ndarray:
    """Each indicator's share of the risk (see the module docstring); NaN where none."""
    dimension_of = composite.dimension_of
    dimension_mass = np.where(has_dimension, dimensions, 0.0) * composite.dimension_weights
    total_mass = dimension_mass.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        dimension_share = np.where(total_mass > 0, dimension_mass / total_mass, 0.0)
    indicator_mass = scores * composite.weights  # scores are 0 where unavailable
    within_total = np.zeros_like(dimension_mass)
    for d in range(dimension_mass.shape[1]):
        within_total[:, d] = indicator_mass[:, dimension_of == d].sum(axis=1)
    denominator = within_total[:, dimension_of]
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.divide(indicator_mass, denominator, out=indicator_mass)
    within[~(denominator > 0)] = 0.0
    result = (risk[:, None] * dimension_share)[:, dimension_of]
    result *= within
    result[~present] = np.nan
    return result


def _missing_dimensions(has_dimension: np.ndarray, ids: list[str]) -> list[tuple[str, ...]]:
    """Per unit, the profile's dimensions without data (few distinct patterns: encode them)."""
    codes = has_dimension.astype(np.int64) @ (1 << np.arange(len(ids), dtype=np.int64))
    patterns = {
        int(code): tuple(d for bit, d in enumerate(ids) if not (int(code) >> bit) & 1)
        for code in np.unique(codes)
    }
    lookup = np.empty(len(patterns), dtype=object)
    keys = np.array(sorted(patterns), dtype=np.int64)
    for position, code in enumerate(keys):
        lookup[position] = patterns[int(code)]
    return list(lookup[np.searchsorted(keys, codes)])


def top_drivers(contributions: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """``id:contribution`` pairs joined by ``;``: the five largest positive, largest first.

    Ties keep the indicators' id order; contributions are shown with two decimals and those that
    round to zero are left out.
    """
    return _driver_texts(contributions, _driver_table(ids))


def _driver_table(ids: Sequence[str]) -> np.ndarray:
    """Every "id:x.yz" text: a contribution is at most the risk (<= 10), so a small table built
    once replaces formatting a number per area."""
    return np.array([[f"{name}:{c / 100:.2f}" for c in range(1001)] for name in ids],
                    dtype=object)


def _driver_texts(contributions: np.ndarray, table: np.ndarray) -> np.ndarray:
    units = contributions.shape[0]
    result = np.full(units, "", dtype=object)
    if not table.shape[0] or not units:
        return result
    rounded = np.round(np.nan_to_num(contributions, nan=-1.0), 2)
    order = np.argsort(-rounded, axis=1, kind="stable")[:, :MAX_DRIVERS]
    values = np.take_along_axis(rounded, order, axis=1)
    shown = values > 0  # sorted descending: the shown ones come first in each row
    cents = np.clip(np.rint(values * 100), 0, 1000).astype(np.int64)
    pairs = table[order, cents]
    result[shown[:, 0]] = pairs[shown[:, 0], 0]
    for rank in range(1, order.shape[1]):
        more = shown[:, rank]
        result[more] = result[more] + ";" + pairs[more, rank]
    return result
