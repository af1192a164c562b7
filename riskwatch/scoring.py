"""Composite risk scores: indicators -> 0-10 scores -> dimensions -> risk, class, reliability.

:func:`score_areas` is pure: a long frame of observations in, a :class:`ScoreTable` out, no
database. The model (DESIGN.md "Scoring model", INFORM-style):

1. **Inputs.** One value per (pcode, variable, period) - DTM already reduced to the preferred
   assessment type, summed over operations. Counts missing at a parent are summed from its
   children; shares missing at an area are inherited from its nearest ancestor, marked inherited
   (:mod:`riskwatch.hierarchy`).
2. **Alignment.** The scoring periods are the periods of ``period_variables`` (DTM reporting
   dates). Each input is taken at its latest value at or before the period, if not older than
   the indicator's maximum age; the age is kept for reliability.
3. **Indicator.** The indicator's transform steps (:mod:`riskwatch.transforms`), then
   normalisation to 0-10 (min-max over a reference set or fixed goalposts), inverted where lower
   is riskier.
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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from riskwatch.catalog import (
    DIMENSIONS,
    INSUFFICIENT_DATA,
    RISK_CLASSES,
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
    variable_kind,
)
from riskwatch.hierarchy import Hierarchy, Rows, aggregate_up, inherit_down
from riskwatch.transforms import (
    DAY_SPAN,
    Coverage,
    Grid,
    Reason,
    Series,
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

OBSERVATION_COLUMNS = (
    "pcode", "admin_level", "parent_pcode", "country_iso3", "variable", "period", "value",
)  # fmt: skip
AREA_COLUMNS = ("pcode", "admin_level", "parent_pcode", "country_iso3")
MAX_DRIVERS = 5
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_INHERITABLE = (VariableKind.SHARE, VariableKind.MEASURE)


@dataclass(frozen=True)
class ScoringParams:
    """The run parameters (from ``[scoring]`` settings); stored and hashed with every run."""

    max_age_days: int = 365
    denominator_max_age_days: int = 1826
    inherited_discount: float = 0.5
    min_indicators: int = 2
    min_weight_share: float = 0.15
    period_variables: tuple[str, ...] = ("idps",)
    extra_variables: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["period_variables"] = list(self.period_variables)
        data["extra_variables"] = list(self.extra_variables)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoringParams:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("period_variables", "extra_variables"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


@dataclass(frozen=True)
class IndicatorMatrix:
    """Per unit (rows) and indicator (columns, sorted ids): value, score and why missing."""

    ids: tuple[str, ...]
    value: np.ndarray  # transformed value before normalisation (NaN: unavailable)
    score: np.ndarray  # 0-10, 10 riskiest (NaN: unavailable)
    reason: np.ndarray  # Reason codes
    inherited: np.ndarray  # bool
    age_days: np.ndarray  # int


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


def scoring_periods(
    observations: pd.DataFrame, period_variables: Iterable[str]
) -> dict[str, list[date]]:
    """The periods scored in each country: those of ``period_variables`` (its DTM reporting
    dates) in that country, else every period of its observations."""
    result: dict[str, list[date]] = {}
    if observations.empty:
        return result
    chosen = observations["variable"].isin(list(period_variables))
    for country, rows in observations.groupby("country_iso3", sort=True):
        picked = rows[chosen.loc[rows.index]]
        source = picked if not picked.empty else rows
        result[str(country)] = sorted({_as_date(p) for p in source["period"].unique()})
    return result


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
    ``periods``: one list for every country, or a list per country (ISO3); default
    :func:`scoring_periods`. Areas of a country without periods are not scored. The result
    does not depend on the order of rows or areas.
    """
    params = params or ScoringParams()
    _require_columns(observations, OBSERVATION_COLUMNS, "observations")
    areas = _area_frame(observations if areas is None else areas)
    index = pd.Index(areas["pcode"])
    hierarchy = Hierarchy(
        parent_of_area=index.get_indexer(areas["parent_pcode"].astype(object)).astype(np.int64),
        level_of_area=areas["admin_level"].to_numpy(dtype=np.int64),
    )
    country_codes, countries = pd.factorize(areas["country_iso3"].astype(str), sort=True)
    country_of_area = country_codes.astype(np.int64)

    variables = model.variables
    period_only = [v for v in params.period_variables if v not in variables]
    rows = _input_rows(observations, index, [*variables, *period_only])
    if periods is None:
        period_codes = [i for i, name in enumerate([*variables, *period_only])
                        if name in params.period_variables]
        days_by_country = _periods_from_rows(rows, period_codes, country_of_area)
    else:
        days_by_country = _days_by_country(periods, list(countries))
    empty = np.zeros(0, dtype=np.int64)
    grid = Grid.build([days_by_country.get(int(c), empty) for c in country_of_area])
    context = _Context(
        grid=grid,
        hierarchy=hierarchy,
        unit_parents=hierarchy.unit_parents(grid),
        units_by_level=hierarchy.units_by_level(grid),
        country_of_area=country_of_area,
        params=params,
    )
    kinds = {name: variable_kind(name, params.extra_variables) or VariableKind.OTHER
             for name in variables}
    model_rows = rows.take(rows.variable < len(variables))
    context.series = _series_by_variable(model_rows, variables, kinds, hierarchy)
    context.kinds = kinds

    matrix = _indicator_matrix(model, context)
    return _compose(model, params, areas, matrix, context)


def _periods_from_rows(
    rows: Rows, period_codes: Sequence[int], country_of_area: np.ndarray
) -> dict[int, np.ndarray]:
    """Per country code, its scoring days (see :func:`scoring_periods`)."""
    country = country_of_area[rows.area]
    chosen = np.isin(rows.variable, np.asarray(period_codes, dtype=np.int64))
    result: dict[int, np.ndarray] = {}
    for subset in (chosen, ~chosen):  # the period variables first, else every input
        pairs = np.sort(pd.unique(country[subset] * DAY_SPAN + rows.day[subset]))
        for code in np.unique(pairs // DAY_SPAN):
            if int(code) not in result:
                result[int(code)] = pairs[pairs // DAY_SPAN == code] % DAY_SPAN
    return result


def _days_by_country(
    periods: Sequence[date] | Mapping[str, Sequence[date]], countries: list[str]
) -> dict[int, np.ndarray]:
    """Given periods as scoring days per country code (codes index ``countries``)."""
    def days(values: Iterable[Any]) -> np.ndarray:
        return np.array(sorted({_as_date(p).toordinal() for p in values}), dtype=np.int64)

    if isinstance(periods, Mapping):
        given = {str(country): days(values) for country, values in periods.items()}
        return {code: given[name] for code, name in enumerate(countries) if name in given}
    shared = days(periods)
    return {code: shared for code in range(len(countries))}


# --- inputs ----------------------------------------------------------------------------------


@dataclass
class _Context:
    grid: Grid
    hierarchy: Hierarchy
    unit_parents: np.ndarray
    units_by_level: list[np.ndarray]
    country_of_area: np.ndarray
    params: ScoringParams
    series: dict[str, Series] = field(default_factory=dict)
    kinds: dict[str, VariableKind] = field(default_factory=dict)

    def coverage_groups(self) -> np.ndarray:
        """Event coverage is per country and admin level."""
        levels = self.hierarchy.level_of_area
        return self.country_of_area * (int(levels.max()) + 1 if len(levels) else 1) + levels


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack the column(s) {', '.join(missing)}")


def _area_frame(frame: pd.DataFrame) -> pd.DataFrame:
    _require_columns(frame, AREA_COLUMNS, "areas")
    areas = frame.loc[:, list(AREA_COLUMNS)].drop_duplicates("pcode")
    areas = areas.assign(pcode=areas["pcode"].astype(str)).sort_values("pcode", kind="stable")
    return areas.reset_index(drop=True)


def _as_date(value: Any) -> date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value if type(value) is date else value.date()  # type: ignore[attr-defined]
    return pd.Timestamp(value).date()


def _ordinal_days(periods: pd.Series) -> np.ndarray:
    # Few distinct periods, many rows: convert the distinct ones only.
    codes, distinct = pd.factorize(periods, sort=False)
    as_days = pd.to_datetime(pd.Series(distinct)).to_numpy().astype("datetime64[D]")
    return (as_days.astype(np.int64) + _EPOCH_ORDINAL)[codes]


def _input_rows(observations: pd.DataFrame, index: pd.Index, names: Sequence[str]) -> Rows:
    """The observations of the named variables as flat arrays (variable = position in names)."""
    # One hashing pass over the variable names: codes of the wanted variables, -1 for others.
    found, distinct = pd.factorize(observations["variable"])
    wanted = {name: code for code, name in enumerate(names)}
    code_of = np.array([wanted.get(v, -1) for v in distinct], dtype=np.int64)
    variable = code_of[found] if len(found) else np.zeros(0, dtype=np.int64)
    keep = (variable >= 0) & observations["value"].notna().to_numpy()
    relevant, variable = observations[keep], variable[keep]
    area = index.get_indexer(relevant["pcode"].astype(str))
    if (area < 0).any():
        unknown = sorted(set(relevant["pcode"].astype(str)[area < 0]))[:5]
        raise ValueError(f"observations name areas that are not in the area list: {unknown}")
    inherited = (relevant["inherited"].fillna(False).astype(bool).to_numpy()
                 if "inherited" in relevant else np.zeros(len(relevant), dtype=bool))
    return Rows(
        area=area.astype(np.int64),
        variable=variable,
        day=_ordinal_days(relevant["period"]) if len(relevant) else np.zeros(0, np.int64),
        value=relevant["value"].to_numpy(dtype=np.float64),
        inherited=inherited,
    )


def _series_by_variable(
    rows: Rows, variables: Sequence[str], kinds: dict[str, VariableKind], hierarchy: Hierarchy
) -> dict[str, Series]:
    """Each input variable as a Series, after summing counts up the hierarchy."""
    codes = {name: code for code, name in enumerate(variables)}
    # Parent rows are only added where none exists, so an input duplicate stays a duplicate.
    rows = aggregate_up(rows, hierarchy, {codes[n]: k for n, k in kinds.items()})
    series = {}
    for name, code in codes.items():
        part = rows.take(rows.variable == code)
        try:
            series[name] = Series.from_arrays(part.area, part.day, part.value, part.inherited)
        except ValueError:
            raise ValueError(
                f"observations hold two values for one pcode, variable ({name}) and period "
                "(reduce DTM to the preferred assessment type first)") from None
    return series


# --- indicators ------------------------------------------------------------------------------


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


def _indicator_matrix(model: ScoringModel, context: _Context) -> IndicatorMatrix:
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


def _max_age(indicator: Indicator, context: _Context) -> int:
    step_age = getattr(indicator.source, "max_age_days", None)
    return step_age or indicator.max_age_days or context.params.max_age_days


def _evaluate(indicator: Indicator, context: _Context) -> _Slot:
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


def _source(indicator: Indicator, context: _Context) -> _Slot:
    """The first step: read the main variable's series on the grid."""
    step = indicator.source
    series = context.series[step.variable]
    grid = context.grid
    max_age = _max_age(indicator, context)
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
        lookup = series.latest(grid, max_age)
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
            zero = (covered_day >= 0) & (grid.day_of_unit - covered_day <= max_age) & (
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


def _denominator(step: PerCapitaStep | ShareStep, context: _Context) -> tuple[np.ndarray, ...]:
    """The denominator on the grid (NaN where missing or older than its maximum age)."""
    series = context.series[step.denominator]
    max_age = step.max_age_days or context.params.denominator_max_age_days
    lookup = series.latest(context.grid, max_age)
    value = series.values_at(lookup)
    inherited = series.inherited_at(lookup)
    if context.kinds[step.denominator] in _INHERITABLE:
        reason, age = lookup.reason.copy(), lookup.age_days.copy()
        inherit_down(value, reason, age, inherited,
                     unit_parents=context.unit_parents, units_by_level=context.units_by_level)
    return value, inherited


def _reference_groups(indicator: Indicator, context: _Context) -> np.ndarray:
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


def _normalise(indicator: Indicator, values: np.ndarray, context: _Context) -> np.ndarray:
    norm = indicator.normalisation
    if isinstance(norm, Goalposts):
        scaled = goalposts(values, norm.lower, norm.upper)
    else:
        scaled = min_max(values, _reference_groups(indicator, context))
    return orient(scaled, indicator.direction)


# --- composite -------------------------------------------------------------------------------


def _compose(
    model: ScoringModel,
    params: ScoringParams,
    areas: pd.DataFrame,
    matrix: IndicatorMatrix,
    context: _Context,
) -> ScoreTable:
    profile = model.profile
    weights = np.array([model.weight(i) for i in matrix.ids])
    global_weights = model.global_weights()
    share_of_profile = np.array([global_weights[i] for i in matrix.ids])
    present = matrix.reason == Reason.OK
    scores = np.where(present, matrix.score, 0.0)

    dimension_scores: dict[str, np.ndarray] = {}
    for spec in profile.dimensions:
        columns = np.array([model.indicators[k].dimension == spec.id
                            for k in range(len(matrix.ids))])
        weight_present = (present[:, columns] * weights[columns]).sum(axis=1)
        weighted = (scores[:, columns] * weights[columns]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            dimension_scores[spec.id] = np.where(weight_present > 0,
                                                 weighted / weight_present, np.nan)

    dim_weights = np.array([spec.weight for spec in profile.dimensions])
    stacked = np.column_stack([dimension_scores[s.id] for s in profile.dimensions])
    has_dimension = ~np.isnan(stacked)
    weight_total = (has_dimension * dim_weights).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if profile.aggregation == "geometric":
            floored = np.log(np.fmax(np.where(has_dimension, stacked, 1.0),
                                     profile.geometric_floor))
            risk = np.exp((np.where(has_dimension, floored, 0.0) * dim_weights).sum(axis=1)
                          / weight_total)
        else:
            risk = (np.where(has_dimension, stacked, 0.0) * dim_weights).sum(axis=1) / weight_total

    indicators_present = present.sum(axis=1)
    weight_share = (present * share_of_profile).sum(axis=1)
    sufficient = (indicators_present >= params.min_indicators) & (
        weight_share + 1e-9 >= params.min_weight_share
    ) & (weight_total > 0)
    risk = np.where(sufficient, np.round(risk, 2), np.nan)
    classes = np.array(RISK_CLASSES, dtype=object)[
        np.searchsorted(np.array(profile.classes.thresholds), np.nan_to_num(risk), side="right")
    ]
    risk_class = np.where(sufficient, classes, INSUFFICIENT_DATA)

    reliability = _reliability(model, params, matrix, share_of_profile, context)
    contributions = _contributions(model, matrix, scores, present, weights, stacked,
                                   has_dimension, dim_weights, risk)
    profile_dims = [s.id for s in profile.dimensions]
    missing_by_unit = _missing_dimensions(has_dimension, profile_dims)

    area = context.grid.area_of_unit
    day_codes, day_values = pd.factorize(context.grid.day_of_unit)
    dates = np.array([date.fromordinal(int(d)) for d in day_values], dtype=object)
    units = pd.DataFrame({
        "pcode": areas["pcode"].to_numpy(dtype=object)[area],
        "admin_level": areas["admin_level"].to_numpy(dtype=np.int64)[area],
        "country_iso3": areas["country_iso3"].to_numpy(dtype=object)[area],
        "period": dates[day_codes] if len(dates) else np.array([], dtype=object),
        "risk": risk,
        "risk_class": risk_class,
        "reliability": np.round(reliability, 3),
        **{d: (np.round(dimension_scores[d], 2) if d in dimension_scores
               else np.full(len(risk), np.nan)) for d in DIMENSIONS},
        "indicators_present": indicators_present,
        "weight_share": weight_share,
        "top_drivers": top_drivers(contributions, matrix.ids),
    })
    # An area without enough data shows no dimension scores either: nothing reads as low risk.
    for d in DIMENSIONS:
        units.loc[~sufficient, d] = np.nan
    return ScoreTable(units, matrix, contributions, tuple(profile_dims), missing_by_unit)


def _reliability(
    model: ScoringModel,
    params: ScoringParams,
    matrix: IndicatorMatrix,
    share_of_profile: np.ndarray,
    context: _Context,
) -> np.ndarray:
    """Weighted share of indicators present, discounted for inheritance and age."""
    max_ages = np.array([_max_age(i, context) for i in model.indicators], dtype=np.float64)
    freshness = 1.0 - 0.5 * np.clip(matrix.age_days / max_ages, 0.0, 1.0)
    discount = np.where(matrix.inherited, params.inherited_discount, 1.0)
    present = matrix.reason == Reason.OK
    return (present * discount * freshness * share_of_profile).sum(axis=1)


def _contributions(
    model: ScoringModel,
    matrix: IndicatorMatrix,
    scores: np.ndarray,
    present: np.ndarray,
    weights: np.ndarray,
    dimensions: np.ndarray,
    has_dimension: np.ndarray,
    dim_weights: np.ndarray,
    risk: np.ndarray,
) -> np.ndarray:
    """Each indicator's share of the risk (see the module docstring); NaN where none."""
    profile_dims = [s.id for s in model.profile.dimensions]
    dim_of_indicator = np.array([profile_dims.index(i.dimension) for i in model.indicators])
    dimension_mass = np.where(has_dimension, dimensions, 0.0) * dim_weights
    total_mass = dimension_mass.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        dimension_share = np.where(total_mass > 0, dimension_mass / total_mass, 0.0)
    indicator_mass = np.where(present, scores * weights, 0.0)
    within_total = np.zeros_like(dimension_mass)
    for d in range(len(profile_dims)):
        within_total[:, d] = indicator_mass[:, dim_of_indicator == d].sum(axis=1)
    denominator = within_total[:, dim_of_indicator]
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.where(denominator > 0, indicator_mass / denominator, 0.0)
    result = risk[:, None] * dimension_share[:, dim_of_indicator] * within
    return np.where(present & ~np.isnan(risk)[:, None], result, np.nan)


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
    units = contributions.shape[0]
    result = np.full(units, "", dtype=object)
    if not len(ids) or not units:
        return result
    rounded = np.round(np.nan_to_num(contributions, nan=-1.0), 2)
    order = np.argsort(-rounded, axis=1, kind="stable")[:, :MAX_DRIVERS]
    values = np.take_along_axis(rounded, order, axis=1)
    shown = values > 0  # sorted descending: the shown ones come first in each row
    # A contribution is at most the risk (<= 10): every "id:x.yz" text fits a small table,
    # built once instead of formatting a number per area.
    cents = np.clip(np.rint(values * 100), 0, 1000).astype(np.int64)
    table = np.array([[f"{name}:{c / 100:.2f}" for c in range(1001)] for name in ids],
                     dtype=object)
    pairs = table[order, cents]
    result[shown[:, 0]] = pairs[shown[:, 0], 0]
    for rank in range(1, order.shape[1]):
        more = shown[:, rank]
        result[more] = result[more] + ";" + pairs[more, rank]
    return result
