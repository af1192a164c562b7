"""The one query layer for observations: exports, the dashboard and scoring read them here.

Two steps, kept apart on purpose:

- :func:`observations_frame` reads raw rows (one per area, variable, period, operation and
  assessment type) in one SQL query, filtered in the database, either the current versions or
  the versions as known at a moment (``as_of``), so an earlier state is reproduced exactly.
- :func:`preferred_values` combines them the way CONTRACTS.md ("Observations") prescribes: per
  area, variable and period the preferred DTM assessment type (default BA, then SA, then ETT),
  summed over operations. Assessment types are never added together: a baseline and a site
  assessment of the same round count the same people.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, func, or_, select, type_coerce
from sqlalchemy.types import NullType
from sqlmodel import Session, col

from riskwatch.db.models import Area, IngestBatch, Observation
from riskwatch.timeutil import to_utc

#: CONTRACTS.md ("Observations"): the assessment type used when several cover one area and period.
DEFAULT_ASSESSMENT_PREFERENCE: tuple[str, ...] = ("BA", "SA", "ETT")

#: Columns of :func:`observations_frame`, in this order.
OBSERVATION_FRAME_COLUMNS: list[str] = [
    "pcode", "admin_level", "country_iso3", "variable", "period", "value", "operation",
    "assessment_type", "round", "source_id", "batch_id", "version", "recorded_at",
]

#: The key of one raw observation series (one value per period and version).
RAW_KEY: list[str] = ["pcode", "variable", "period", "assessment_type", "operation"]

# Larger pcode lists are filtered in pandas: SQLite caps the number of bound parameters, and a
# huge IN list is slower to plan than a scan of the (already narrowed) result.
_MAX_PCODES_IN_SQL = 2000


def observations_frame(
    session: Session,
    *,
    variables: Collection[str] | None = None,
    countries: Collection[str] | None = None,
    levels: Collection[int] | None = None,
    period: date | None = None,
    pcodes: Collection[str] | None = None,
    as_of: datetime | None = None,
    current_only: bool = True,
) -> pd.DataFrame:
    """Raw observations joined with their area and source, one query, filtered in SQL.

    Which versions:

    - ``as_of`` given: each value as known at that time, i.e. the version recorded at or before
      ``as_of`` and not superseded by then (``current_only`` is then irrelevant). A naive
      datetime is taken as UTC.
    - else ``current_only`` (the default): the current versions (``superseded_at`` empty).
    - else every version, for history views.

    Filters (None: no filter): ``variables``; ``countries`` (ISO3, any case); ``levels`` (admin
    levels); ``period`` (one reporting date); ``pcodes``.

    Columns are :data:`OBSERVATION_FRAME_COLUMNS`: ``period`` holds ``datetime.date`` objects,
    ``operation`` and ``assessment_type`` are ``""`` when the source has none, ``round`` is
    missing (NaN) when unknown, ``recorded_at`` is ``datetime64`` in UTC. Rows are sorted by
    pcode, variable, period, assessment type, operation and version, by code point (the same on
    every backend: the sort happens here, not under the database's collation).
    """
    statement = _where(
        _select_observations(), variables=variables, countries=countries, levels=levels,
        period=period, as_of=as_of, current_only=current_only,
    )
    pcode_list = sorted(set(pcodes)) if pcodes is not None else None
    if pcode_list is not None and len(pcode_list) <= _MAX_PCODES_IN_SQL:
        statement = statement.where(col(Observation.area_pcode).in_(pcode_list))

    # Core execution: the ORM's row processing costs seconds at a million rows.
    rows = session.connection().execute(statement).all()
    frame = _typed_frame(rows)
    if pcode_list is not None and len(pcode_list) > _MAX_PCODES_IN_SQL:
        frame = frame[frame["pcode"].isin(pcode_list)]
    return frame.sort_values(RAW_KEY + ["version"], kind="stable", ignore_index=True)


def _select_observations() -> Select[*tuple[Any, ...]]:
    # period and recorded_at come back as the driver gives them (no per-row conversion in
    # Python, the slow part at a million rows): strings on SQLite, date/datetime on PostgreSQL.
    # _typed_frame converts them column-wise.
    return (
        select(
            col(Observation.area_pcode),
            col(Area.admin_level),
            col(Area.country_iso3),
            col(Observation.variable),
            type_coerce(col(Observation.period), NullType()).label("period"),
            col(Observation.value),
            col(Observation.operation),
            col(Observation.assessment_type),
            col(Observation.round),
            col(IngestBatch.source_id),
            col(Observation.batch_id),
            col(Observation.version),
            type_coerce(col(Observation.recorded_at), NullType()).label("recorded_at"),
        )
        .join(Area, col(Area.pcode) == col(Observation.area_pcode))
        .join(IngestBatch, col(IngestBatch.id) == col(Observation.batch_id))
    )


def _where(
    statement: Select[*tuple[Any, ...]],
    *,
    variables: Collection[str] | None,
    countries: Collection[str] | None,
    levels: Collection[int] | None,
    period: date | None,
    as_of: datetime | None,
    current_only: bool,
) -> Select[*tuple[Any, ...]]:
    """The version rule and filters of :func:`observations_frame` (``Area`` must be joined)."""
    if as_of is not None:
        moment = to_utc(as_of)
        statement = statement.where(
            col(Observation.recorded_at) <= moment,
            or_(
                col(Observation.superseded_at).is_(None),
                col(Observation.superseded_at) > moment,
            ),
        )
    elif current_only:
        statement = statement.where(col(Observation.superseded_at).is_(None))
    if variables is not None:
        statement = statement.where(col(Observation.variable).in_(sorted(set(variables))))
    if countries is not None:
        statement = statement.where(
            col(Area.country_iso3).in_(sorted({country.upper() for country in countries}))
        )
    if levels is not None:
        statement = statement.where(col(Area.admin_level).in_(sorted({int(n) for n in levels})))
    if period is not None:
        statement = statement.where(col(Observation.period) == period)
    return statement


def finest_observed_level(
    session: Session,
    *,
    variables: Collection[str] | None = None,
    countries: Collection[str] | None = None,
    period: date | None = None,
    as_of: datetime | None = None,
    current_only: bool = True,
) -> int | None:
    """The highest admin level with observations matching the filters (None: there are none).

    Same version rule and filters as :func:`observations_frame`.
    """
    statement: Select[*tuple[Any, ...]] = select(func.max(Area.admin_level)).join(
        Observation, col(Observation.area_pcode) == col(Area.pcode)
    )
    statement = _where(statement, variables=variables, countries=countries, levels=None,
                       period=period, as_of=as_of, current_only=current_only)
    level = session.execute(statement).scalar_one_or_none()
    return None if level is None else int(level)


def known_variables(session: Session) -> list[str]:
    """Every variable with at least one observation (any version), sorted."""
    rows = session.execute(select(col(Observation.variable)).distinct()).scalars().all()
    return sorted(str(variable) for variable in rows)


def _typed_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """The query rows as a frame with the same dtypes on both backends (also when empty)."""
    # Plain tuples and dtype=object take pandas' fast constructor path: no per-value type
    # inference (which turns a million datetimes into seconds of work).
    frame = pd.DataFrame(
        [tuple(row) for row in rows], columns=OBSERVATION_FRAME_COLUMNS, dtype="object"
    )
    for name in ("pcode", "country_iso3", "variable", "operation", "assessment_type",
                 "source_id"):
        frame[name] = frame[name].astype("str")
    for name in ("admin_level", "batch_id", "version"):
        frame[name] = frame[name].astype("int64")
    frame["value"] = frame["value"].astype("float64")
    frame["round"] = frame["round"].astype("str")  # None stays missing (NaN)
    frame["period"] = _dates(frame["period"])
    frame["recorded_at"] = _utc_timestamps(frame["recorded_at"])
    return frame


def _dates(values: pd.Series) -> pd.Series:
    """``datetime.date`` objects (as the readers produce them) from ISO strings or dates.

    Converted once per distinct period (there are few), so the same objects are shared.
    """
    distinct = {value: value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
                for value in values.unique()}
    return values.map(distinct).astype("object")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _utc_timestamps(values: pd.Series) -> pd.Series:
    """``datetime64[us, UTC]`` from SQLite's offset-less UTC strings or PostgreSQL's datetimes."""
    if len(values) and isinstance(values.iloc[0], datetime):
        # Exact integer microseconds; pandas' own conversion of aware objects is ~4x slower.
        micros = np.fromiter(
            ((value - _EPOCH) // _MICROSECOND for value in values), dtype="int64",
            count=len(values),
        )
        stamps = pd.to_datetime(micros, unit="us", utc=True).astype("datetime64[us, UTC]")
        return pd.Series(stamps, index=values.index)
    return pd.to_datetime(values, utc=True, format="ISO8601").astype("datetime64[us, UTC]")


def assessment_rank(
    assessment_type: str, preference: Sequence[str] = DEFAULT_ASSESSMENT_PREFERENCE
) -> tuple[int, str]:
    """Sort key of an assessment type: preferred ones first, then other types, then none.

    A type not in ``preference`` still beats an empty one: the empty type is what non-DTM
    sources carry, and a DTM figure of the same variable is the more specific one.
    """
    if assessment_type in preference:
        return (list(preference).index(assessment_type), assessment_type)
    if assessment_type:
        return (len(preference), assessment_type)
    return (len(preference) + 1, "")


def combine_assessments(
    rows: Iterable[tuple[str, str, float]],
    preference: Sequence[str] = DEFAULT_ASSESSMENT_PREFERENCE,
) -> float | None:
    """One value from ``(assessment_type, operation, value)`` rows of one area and period.

    The preferred assessment type present wins and its operations are summed; the other types
    count the same people again and are left out. None when there are no rows.
    """
    by_type: dict[str, float] = defaultdict(float)
    for assessment_type, _operation, value in rows:
        by_type[assessment_type] += value
    if not by_type:
        return None
    preferred = min(by_type, key=lambda kind: assessment_rank(kind, preference))
    return by_type[preferred]


#: Columns of :func:`preferred_values` (``admin_level``/``country_iso3`` only when given).
PREFERRED_COLUMNS: list[str] = [
    "pcode", "admin_level", "country_iso3", "variable", "period", "assessment_type", "value",
    "operations",
]


def preferred_values(
    frame: pd.DataFrame, preference: Sequence[str] = DEFAULT_ASSESSMENT_PREFERENCE
) -> pd.DataFrame:
    """Per area, variable and period: the preferred assessment type's values summed over operations.

    ``frame`` is an :func:`observations_frame` (one version per key: current or as of a time).
    The result has one row per pcode, variable and period with the ``assessment_type`` used, the
    ``value`` and the number of ``operations`` summed; non-DTM rows (empty assessment type) pass
    through unchanged. Vectorised: the ranking touches only the few distinct types.
    """
    keys = ["pcode", "variable", "period"]
    carried = [name for name in ("admin_level", "country_iso3") if name in frame.columns]
    columns = [c for c in PREFERRED_COLUMNS if c in keys + carried
               or c in ("assessment_type", "value", "operations")]
    if frame.empty:
        empty = pd.DataFrame({name: pd.Series(dtype=frame[name].dtype) if name in frame
                              else pd.Series(dtype="int64") for name in columns})
        return empty[columns]
    types = frame["assessment_type"].unique()
    order = sorted(types, key=lambda kind: assessment_rank(kind, preference))
    rank = frame["assessment_type"].map({kind: position for position, kind in enumerate(order)})
    best = rank.groupby([frame[key] for key in keys], sort=False).transform("min")
    chosen = frame.loc[rank.eq(best), keys + carried + ["assessment_type", "value"]]
    combined = (
        chosen.groupby(keys + carried + ["assessment_type"], sort=True, dropna=False)["value"]
        .agg(value="sum", operations="size")
        .reset_index()
    )
    combined["operations"] = combined["operations"].astype("int64")
    return combined[columns]
