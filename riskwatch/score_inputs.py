"""Scoring inputs: observations -> the grid of (area, period) units and one series per variable.

The long observation frame (one value per pcode, variable and period) becomes flat arrays; counts
are summed up the admin hierarchy (:mod:`riskwatch.hierarchy`); each country gets its scoring
periods - the periods of ``period_variables`` there (DTM reporting dates), else every period of
its inputs - and every area of the country is a unit at each of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from riskwatch.catalog import ScoringModel, VariableKind, variable_kind
from riskwatch.hierarchy import Hierarchy, Rows, aggregate_up
from riskwatch.transforms import DAY_SPAN, Grid, Series

OBSERVATION_COLUMNS = (
    "pcode", "admin_level", "parent_pcode", "country_iso3", "variable", "period", "value",
)  # fmt: skip
AREA_COLUMNS = ("pcode", "admin_level", "parent_pcode", "country_iso3")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


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


@dataclass
class ScoringContext:
    """The scoring grid and what the indicators read: series per variable, hierarchy, kinds."""

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


def _run_codes(column: pd.Series, code_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``code_of`` applied to a column through its runs of equal values.

    Observations come sorted by pcode and variable, so a column holds long runs of one value:
    comparing neighbours and looking up only each run's first value is several times faster
    than hashing every row. Correct for any order (a run may be a single row).
    """
    values = column.to_numpy(dtype=object)
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    codes = np.asarray(code_of(values[starts]), dtype=np.int64)
    return np.repeat(codes, np.diff(np.append(starts, len(values))))


def _input_rows(observations: pd.DataFrame, index: pd.Index, names: Sequence[str]) -> Rows:
    """The observations of the named variables as flat arrays (variable = position in names)."""
    wanted = {name: code for code, name in enumerate(names)}

    def variable_codes(heads: np.ndarray) -> np.ndarray:
        found, distinct = pd.factorize(heads)
        return np.array([wanted.get(v, -1) for v in distinct], dtype=np.int64)[found]

    variable = _run_codes(observations["variable"], variable_codes)
    value = observations["value"].to_numpy(dtype=np.float64)
    keep = (variable >= 0) & ~np.isnan(value)
    everything = bool(keep.all())

    def column(name: str) -> Any:
        # Plain arrays, masked only when needed: copying a frame of millions of rows is slow.
        data = observations[name]
        return data if everything else data[keep]

    area = _run_codes(column("pcode"), index.get_indexer)
    if (area < 0).any():
        unknown = sorted({str(p) for p in np.asarray(column("pcode"))[area < 0]})[:5]
        raise ValueError(f"observations name areas that are not in the area list: {unknown}")
    inherited = (column("inherited").fillna(False).to_numpy(dtype=bool)
                 if "inherited" in observations else np.zeros(len(area), dtype=bool))
    # Compact integer types: these arrays have a row per observation (millions).
    return Rows(
        area=area.astype(np.int32),
        variable=(variable if everything else variable[keep]).astype(np.int16),
        day=(_ordinal_days(column("period")) if len(area)
             else np.zeros(0, np.int64)).astype(np.int32),
        value=value if everything else value[keep],
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
    for name, part in zip(variables, rows.split_by_variable(len(variables)), strict=True):
        try:
            series[name] = Series.from_arrays(part.area, part.day, part.value, part.inherited)
        except ValueError:
            raise ValueError(
                f"observations hold two values for one pcode, variable ({name}) and period "
                "(reduce DTM to the preferred assessment type first)") from None
    return series


def build_context(
    observations: pd.DataFrame,
    model: ScoringModel,
    params: ScoringParams,
    *,
    areas: pd.DataFrame | None = None,
    periods: Sequence[date] | Mapping[str, Sequence[date]] | None = None,
) -> tuple[ScoringContext, pd.DataFrame]:
    """The grid of (area, period) units and every input series, and the sorted area frame.

    See :func:`riskwatch.scoring.score_areas` for the arguments.
    """
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
    kinds = {name: variable_kind(name, params.extra_variables) or VariableKind.OTHER
             for name in variables}
    model_rows = rows.take(rows.variable < len(variables)) if period_only else rows
    context = ScoringContext(
        grid=grid,
        hierarchy=hierarchy,
        unit_parents=hierarchy.unit_parents(grid),
        units_by_level=hierarchy.units_by_level(grid),
        country_of_area=country_of_area,
        params=params,
        series=_series_by_variable(model_rows, variables, kinds, hierarchy),
        kinds=kinds,
    )
    return context, areas


def _periods_from_rows(
    rows: Rows, period_codes: Sequence[int], country_of_area: np.ndarray
) -> dict[int, np.ndarray]:
    """Per country code, its scoring days: those of the period variables, else of any input."""
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
