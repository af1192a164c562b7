"""What the map colours: per area, a class, a value, hotspot and staleness flags.

Read from the latest succeeded score run (:class:`~riskwatch.db.models.AreaScore` and
:class:`~riskwatch.db.models.Hotspot`) for one admin level, one period and one variable: the
risk, one of its dimensions or one indicator's 0-10 score. The result is aligned to a given list
of pcodes (the order in which the map's geometry was sent), so re-colouring the map sends only
these small arrays, never geometry again.

Missing data never reads as low risk: an area without a score in the period, or scored
``insufficient_data``, gets the class :data:`NO_DATA_CODE` and is drawn as such (grey,
hatched). Areas whose data come from a stale source (:mod:`riskwatch.source_health`) are flagged.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, col, select

from riskwatch.catalog import INSUFFICIENT_DATA, RISK_CLASSES
from riskwatch.db.models import Area, AreaScore, Hotspot, IndicatorProfile, ScoreRun, Source
from riskwatch.hotspots import HOTSPOT_CLASSES, TEMPORAL_CLASSES

log = logging.getLogger(__name__)

RISK_VARIABLE = "risk"
DIMENSION_VARIABLES = ("exposure", "vulnerability", "lack_of_capacity")
INDICATOR_PREFIX = "indicator:"
#: Class code of an area without a usable value (insufficient data, or not scored).
NO_DATA_CODE = len(RISK_CLASSES)
#: Hotspot code of an area without a hotspot row (not analysed).
NO_HOTSPOT_CODE = -1
DEFAULT_THRESHOLDS = (2.0, 3.5, 5.0, 6.5)
VARIABLE_LABELS = {
    RISK_VARIABLE: "Risk (0-10)",
    "exposure": "Exposure (0-10)",
    "vulnerability": "Vulnerability (0-10)",
    "lack_of_capacity": "Lack of protection capacity (0-10)",
}
# Hotspot rows that are not about the risk or an indicator's score.
_NON_INDICATOR_HOTSPOTS = frozenset({RISK_VARIABLE, "conflict_events"})


@dataclass(frozen=True)
class MapChoices:
    """What a user can pick on the map: the run, its periods, levels and variables."""

    run_id: int | None
    data_as_of: datetime | None
    periods: list[date]
    levels: list[int]
    variables: list[tuple[str, str]]  # (value, label)
    countries: list[str]
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS


@dataclass
class AreaValues:
    """Per area, in the order of the ``pcodes`` asked for."""

    run_id: int | None
    level: int
    variable: str
    period: date | None  # None: each country's latest period of the run
    classes: list[int] = field(default_factory=list)  # index in RISK_CLASSES, or NO_DATA_CODE
    values: list[float | None] = field(default_factory=list)
    hotspots: list[int] = field(default_factory=list)  # index in HOTSPOT_CLASSES, or -1
    temporal: list[int] = field(default_factory=list)  # index in TEMPORAL_CLASSES, or -1
    stale: list[int] = field(default_factory=list)  # 1: data from a stale source
    periods: list[str | None] = field(default_factory=list)  # the period each value is of
    period_codes: list[int] = field(default_factory=list)  # index in period_names, or -1
    period_names: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what the map's values route sends)."""
        return {
            "run": self.run_id,
            "level": self.level,
            "variable": self.variable,
            "period": self.period.isoformat() if self.period else None,
            "classes": self.classes,
            "values": self.values,
            "hotspots": self.hotspots,
            "temporal": self.temporal,
            "stale": self.stale,
            "period_codes": self.period_codes,
            "period_names": self.period_names,
            "class_names": [*RISK_CLASSES, INSUFFICIENT_DATA],
            "hotspot_names": list(HOTSPOT_CLASSES),
            "temporal_names": list(TEMPORAL_CLASSES),
        }


def latest_run(session: Session) -> ScoreRun | None:
    """The latest succeeded score run (what the map shows)."""
    return session.exec(
        select(ScoreRun).where(ScoreRun.status == "succeeded").order_by(col(ScoreRun.id).desc())
    ).first()


def _profile(session: Session, run: ScoreRun | None) -> dict[str, Any]:
    if run is None or run.profile_id is None:
        return {}
    profile = session.get(IndicatorProfile, run.profile_id)
    return (profile.content or {}) if profile is not None else {}


def class_thresholds(session: Session, run: ScoreRun | None) -> tuple[float, ...]:
    """The run's profile's class thresholds (four breaks on the 0-10 scale)."""
    classes = (_profile(session, run).get("profile") or {}).get("classes") or {}
    thresholds = classes.get("thresholds")
    if isinstance(thresholds, list) and len(thresholds) == len(RISK_CLASSES) - 1:
        return tuple(float(value) for value in thresholds)
    return DEFAULT_THRESHOLDS


def class_of(value: float | None, thresholds: Sequence[float]) -> int:
    """Class code of a 0-10 value (the same breaks as the risk), NO_DATA_CODE for None."""
    if value is None or value != value:  # None or NaN
        return NO_DATA_CODE
    return bisect_right(thresholds, value)


def map_choices(session: Session, countries: Sequence[str] | None = None) -> MapChoices:
    """Periods, admin levels, variables and countries of the latest run within ``countries``."""
    run = latest_run(session)
    country_statement = select(Area.country_iso3).where(col(Area.geometry).is_not(None))
    if countries:
        country_statement = country_statement.where(col(Area.country_iso3).in_(list(countries)))
    visible = sorted({str(code) for code in session.exec(country_statement.distinct()).all()})
    level_statement = select(Area.admin_level).where(col(Area.geometry).is_not(None))
    if countries:
        level_statement = level_statement.where(col(Area.country_iso3).in_(list(countries)))
    levels = sorted(int(level) for level in session.exec(level_statement.distinct()).all())
    variables = [(name, VARIABLE_LABELS[name]) for name in (RISK_VARIABLE, *DIMENSION_VARIABLES)]
    if run is None:
        return MapChoices(None, None, [], levels, variables, visible)
    statement = select(AreaScore.period).where(AreaScore.run_id == run.id)
    if countries:
        statement = statement.join(Area, col(Area.pcode) == col(AreaScore.area_pcode)).where(
            col(Area.country_iso3).in_(list(countries))
        )
    periods = sorted(set(session.exec(statement.distinct()).all()), reverse=True)
    names = {
        str(item.get("id")): str(item.get("name") or item.get("id"))
        for item in (_profile(session, run).get("indicators") or [])
        if isinstance(item, dict)
    }
    analysed = session.exec(
        select(Hotspot.variable).where(Hotspot.run_id == run.id).distinct()
    ).all()
    for indicator in sorted(set(analysed) - _NON_INDICATOR_HOTSPOTS):
        variables.append((INDICATOR_PREFIX + indicator, names.get(indicator, indicator)))
    return MapChoices(
        run.id, run.data_as_of, periods, levels, variables, visible, class_thresholds(session, run)
    )


def stale_pcodes(session: Session, now: datetime | None = None) -> set[str]:
    """Areas whose data come from a stale source (empty when source health is unavailable)."""
    try:
        from riskwatch.source_health import stale_area_pcodes
    except ImportError:  # an older engine without source health: nothing is flagged
        return set()
    return stale_area_pcodes(session, now)


def area_values(
    session: Session,
    pcodes: Sequence[str],
    *,
    level: int,
    variable: str = RISK_VARIABLE,
    period: date | None = None,
    stale: set[str] | None = None,
) -> AreaValues:
    """Class, value, hotspot and staleness of each of ``pcodes`` (all at ``level``).

    ``period`` None: each country's latest period in the run (countries report at their own
    dates). An area without a row in that period is "no data", never an older value.
    """
    run = latest_run(session)
    result = AreaValues(
        run_id=run.id if run else None, level=level, variable=variable, period=period
    )
    count = len(pcodes)
    result.classes = [NO_DATA_CODE] * count
    result.values = [None] * count
    result.hotspots = [NO_HOTSPOT_CODE] * count
    result.temporal = [NO_HOTSPOT_CODE] * count
    result.periods = [None] * count
    result.period_codes = [-1] * count
    stale = stale or set()
    result.stale = [1 if pcode in stale else 0 for pcode in pcodes]
    if run is None or not count:
        return result
    position = {pcode: index for index, pcode in enumerate(pcodes)}
    indicator = variable[len(INDICATOR_PREFIX) :] if variable.startswith(INDICATOR_PREFIX) else None
    if indicator is None and variable not in (RISK_VARIABLE, *DIMENSION_VARIABLES):
        raise ValueError(f"unknown map variable {variable!r}")
    thresholds = class_thresholds(session, run)
    chosen = _chosen_periods(session, run.id, level, period)

    columns: list[Any] = [
        col(AreaScore.area_pcode),
        col(AreaScore.period),
        col(AreaScore.risk_class),
    ]
    if indicator is not None:
        columns.append(col(AreaScore.drivers))
    else:
        columns.append(getattr(AreaScore, variable))
    statement = (
        select(*columns, col(Area.country_iso3))
        .join(Area, col(Area.pcode) == col(AreaScore.area_pcode))
        .where(AreaScore.run_id == run.id, Area.admin_level == level)
    )
    # Only the periods shown (per country): the latest of each, or the one asked for.
    statement = statement.where(col(AreaScore.period).in_(sorted(set(chosen.values()))))
    period_names = sorted({shown.isoformat() for shown in chosen.values()})
    result.period_names = period_names
    # Core rows and numpy, not ORM objects and a loop per area: this runs for every area of a
    # level at each re-colouring (50,000 areas in well under a second).
    rows = session.connection().execute(statement).all()
    if rows:
        row_pcodes, row_periods, row_classes, raws, row_countries = zip(*rows, strict=True)
        index = pd.Index(pcodes).get_indexer(list(row_pcodes))
        shown = np.array(
            [chosen.get(country) == period for country, period in zip(row_countries,
                                                                       row_periods, strict=True)]
        )  # fmt: skip
        keep = (index >= 0) & shown
        if indicator is not None:
            numbers = np.array([_indicator_score(raw, indicator) for raw in raws], dtype=float)
        else:
            numbers = np.array(raws, dtype=float)  # None becomes NaN
            # An insufficient-data area shows no score at all.
            numbers[np.array(row_classes, dtype=object) == INSUFFICIENT_DATA] = np.nan
        codes = np.searchsorted(np.asarray(thresholds), numbers, side="right")
        codes[np.isnan(numbers)] = NO_DATA_CODE
        classes = np.full(count, NO_DATA_CODE, dtype=np.int64)
        values = np.full(count, np.nan)
        period_codes = np.full(count, -1, dtype=np.int64)
        classes[index[keep]] = codes[keep]
        values[index[keep]] = np.round(numbers[keep], 3)
        name_codes = {name: code for code, name in enumerate(period_names)}
        period_codes[index[keep]] = [
            name_codes[period.isoformat()] for period, kept in zip(row_periods, keep, strict=True)
            if kept
        ]  # fmt: skip
        result.classes = classes.tolist()
        result.values = [None if value != value else value for value in values.tolist()]
        result.period_codes = period_codes.tolist()
        result.periods = [period_names[code] if code >= 0 else None for code in result.period_codes]

    hotspot_variable = indicator or RISK_VARIABLE
    hotspot_statement = (
        select(
            col(Hotspot.area_pcode),
            col(Hotspot.period),
            col(Hotspot.hotspot_class),
            col(Hotspot.temporal_class),
            col(Area.country_iso3),
        )
        .join(Area, col(Area.pcode) == col(Hotspot.area_pcode))
        .where(
            Hotspot.run_id == run.id,
            Hotspot.variable == hotspot_variable,
            Area.admin_level == level,
        )
    )
    hotspot_statement = hotspot_statement.where(
        col(Hotspot.period).in_(sorted(set(chosen.values())))
    )
    hotspot_codes = {name: code for code, name in enumerate(HOTSPOT_CLASSES)}
    temporal_codes = {name: code for code, name in enumerate(TEMPORAL_CLASSES)}
    for pcode, row_period, hotspot_class, temporal_class, country in (
        session.connection().execute(hotspot_statement).all()
    ):
        index = position.get(pcode)
        if index is None or chosen.get(country) != row_period:
            continue
        result.hotspots[index] = hotspot_codes.get(hotspot_class, NO_HOTSPOT_CODE)
        result.temporal[index] = temporal_codes.get(temporal_class, NO_HOTSPOT_CODE)
    return result


def _indicator_score(drivers: Any, indicator: str) -> float:
    """An indicator's 0-10 score from an AreaScore's drivers JSON (NaN when absent)."""
    detail = ((drivers or {}).get("indicators") or {}).get(indicator) or {}
    score = detail.get("score")
    return float(score) if isinstance(score, (int, float)) else float("nan")


def _chosen_periods(
    session: Session, run_id: int | None, level: int, period: date | None
) -> dict[str, date]:
    """Per country, the period shown: ``period`` itself, else the country's latest."""
    statement = (
        select(col(Area.country_iso3), func.max(AreaScore.period))
        .join(Area, col(Area.pcode) == col(AreaScore.area_pcode))
        .where(AreaScore.run_id == run_id, Area.admin_level == level)
        .group_by(col(Area.country_iso3))
    )
    latest = {str(country): value for country, value in session.exec(statement).all()}
    if period is None:
        return latest
    return {country: period for country in latest}


@dataclass(frozen=True)
class Attribution:
    """One source's credit line on the map."""

    source_id: str
    title: str | None
    attribution: str | None
    licence: str | None

    def text(self) -> str:
        """``title (id): attribution; licence``, saying so when none is recorded."""
        name = f"{self.title} ({self.source_id})" if self.title else self.source_id
        credit = self.attribution or "attribution not recorded"
        return f"{name}: {credit}" + (f"; licence: {self.licence}" if self.licence else "")


def source_attributions(session: Session) -> list[Attribution]:
    """Every source the store holds data from, for the map's attribution line.

    Sources that credit the same title, attribution and licence share one line (``id1, id2``),
    so a publisher with several files is named once.
    """
    rows = session.exec(select(Source).order_by(col(Source.id))).all()
    grouped: dict[tuple[str | None, str | None, str | None], list[str]] = {}
    for row in rows:
        grouped.setdefault((row.title, row.attribution, row.licence), []).append(row.id)
    return [
        Attribution(", ".join(ids), title, attribution, licence)
        for (title, attribution, licence), ids in grouped.items()
    ]
