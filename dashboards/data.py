"""What the dashboard shows, read from the store as plain data.

Small functions that take an open session and return dataclasses, lists and dicts, so that
each has its own unit test and the Dash callbacks stay a few lines. Nothing here writes.

``countries`` arguments carry the logged-in user's country restriction (ISO3 codes; None or
empty: all countries): an area outside it is treated as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func
from sqlmodel import Session, col, select

from riskwatch.db.models import Area, IngestBatch, Meta, Observation, Source
from riskwatch.observations import (
    combine_assessments as combine_assessments,  # re-exported: the rule lives there, not here
)
from riskwatch.observations import observations_frame, preferred_values

MAP_VARIABLE = "idps"
MAP_SIMPLIFY_TOLERANCE = 0.01  # degrees: plenty for an overview map, far fewer vertices
COORDINATE_DECIMALS = 4  # ~11 m; more digits only make the figure heavier


@dataclass(frozen=True)
class BatchSummary:
    """One ingest batch as listed on the overview."""

    id: int
    source_id: str
    source_title: str | None
    kind: str
    status: str
    rows_stored: int
    rows_quarantined: int
    finished_at: datetime | None


@dataclass(frozen=True)
class DatabaseSummary:
    """What the database holds, for the overview."""

    is_demo: bool
    areas_by_level: dict[int, int]
    observations_by_variable: dict[str, int]
    recent_batches: list[BatchSummary]


@dataclass(frozen=True)
class MapArea:
    """One area on the map: simplified GeoJSON geometry and its value (None: no data)."""

    pcode: str
    name: str
    geometry: dict[str, Any]
    value: float | None


@dataclass(frozen=True)
class MapData:
    """The areas of one admin level coloured by one variable at one period."""

    variable: str
    admin_level: int | None
    period: date | None
    areas: list[MapArea]

    @property
    def with_data(self) -> list[MapArea]:
        return [area for area in self.areas if area.value is not None]

    @property
    def without_data(self) -> list[MapArea]:
        return [area for area in self.areas if area.value is None]


@dataclass(frozen=True)
class AreaRef:
    """A link to an area: its pcode and name."""

    pcode: str
    name: str


@dataclass(frozen=True)
class AreaDetail:
    """One area's identity and neighbours in the admin hierarchy."""

    pcode: str
    name: str
    admin_level: int
    country_iso3: str
    parent: AreaRef | None
    parent_pcode: str | None
    children: list[AreaRef]


def _country_filter(countries: Sequence[str] | None) -> list[str] | None:
    return [country.upper() for country in countries] if countries else None


def is_demo_database(session: Session) -> bool:
    """Whether this is the synthetic demo database (Meta ``database_kind`` = ``demo``)."""
    meta = session.get(Meta, "database_kind")
    return meta is not None and meta.value == "demo"


def areas_by_level(session: Session, countries: Sequence[str] | None = None) -> dict[int, int]:
    """Number of areas per admin level, levels in ascending order."""
    statement = select(Area.admin_level, func.count()).group_by(Area.admin_level)
    allowed = _country_filter(countries)
    if allowed:
        statement = statement.where(col(Area.country_iso3).in_(allowed))
    rows = session.exec(statement).all()
    return {int(level): int(count) for level, count in sorted(rows)}


def current_observations_by_variable(
    session: Session, countries: Sequence[str] | None = None
) -> dict[str, int]:
    """Number of current (not superseded) observations per variable, by variable name."""
    statement = (
        select(Observation.variable, func.count())
        .where(col(Observation.superseded_at).is_(None))
        .group_by(Observation.variable)
    )
    allowed = _country_filter(countries)
    if allowed:
        statement = statement.join(Area, col(Area.pcode) == col(Observation.area_pcode)).where(
            col(Area.country_iso3).in_(allowed)
        )
    rows = session.exec(statement).all()
    return {str(variable): int(count) for variable, count in sorted(rows)}


def recent_batches(session: Session, limit: int = 10) -> list[BatchSummary]:
    """The latest ingest batches, newest first, with their source's title."""
    statement = (
        select(IngestBatch, Source.title)
        .join(Source, col(Source.id) == col(IngestBatch.source_id))
        .order_by(col(IngestBatch.started_at).desc(), col(IngestBatch.id).desc())
        .limit(limit)
    )
    return [
        BatchSummary(
            id=int(batch.id or 0),
            source_id=batch.source_id,
            source_title=title,
            kind=batch.kind,
            status=batch.status,
            rows_stored=batch.rows_stored,
            rows_quarantined=batch.rows_quarantined,
            finished_at=batch.finished_at,
        )
        for batch, title in session.exec(statement).all()
    ]


def database_summary(session: Session, countries: Sequence[str] | None = None) -> DatabaseSummary:
    """Everything the overview lists about the database's contents."""
    return DatabaseSummary(
        is_demo=is_demo_database(session),
        areas_by_level=areas_by_level(session, countries),
        observations_by_variable=current_observations_by_variable(session, countries),
        recent_batches=recent_batches(session),
    )


def finest_mapped_level(session: Session, countries: Sequence[str] | None = None) -> int | None:
    """The highest admin level that has areas with a geometry (None: nothing to draw)."""
    statement = select(func.max(Area.admin_level)).where(col(Area.geometry).is_not(None))
    allowed = _country_filter(countries)
    if allowed:
        statement = statement.where(col(Area.country_iso3).in_(allowed))
    level = session.exec(statement).one()
    return None if level is None else int(level)


def latest_period(
    session: Session,
    variable: str,
    admin_level: int,
    countries: Sequence[str] | None = None,
) -> date | None:
    """The latest period with a current value of ``variable`` at ``admin_level``."""
    statement = (
        select(func.max(Observation.period))
        .join(Area, col(Area.pcode) == col(Observation.area_pcode))
        .where(
            Observation.variable == variable,
            col(Observation.superseded_at).is_(None),
            Area.admin_level == admin_level,
        )
    )
    allowed = _country_filter(countries)
    if allowed:
        statement = statement.where(col(Area.country_iso3).in_(allowed))
    return session.exec(statement).one()


def values_at_period(
    session: Session, variable: str, period: date, pcodes: Sequence[str]
) -> dict[str, float]:
    """The current value of ``variable`` at ``period`` for each of ``pcodes`` that has one.

    The preferred assessment type, summed over operations (riskwatch.observations).
    """
    if not pcodes:
        return {}
    frame = observations_frame(session, variables=[variable], period=period, pcodes=pcodes)
    combined = preferred_values(frame)
    return dict(zip(combined["pcode"].tolist(), combined["value"].tolist(), strict=True))


def _rounded(coordinates: Any) -> Any:
    if isinstance(coordinates, (list, tuple)):
        if coordinates and isinstance(coordinates[0], (int, float)):
            return [round(float(number), COORDINATE_DECIMALS) for number in coordinates]
        return [_rounded(part) for part in coordinates]
    return coordinates


def simplified_geojson(
    geometry: BaseGeometry, tolerance: float = MAP_SIMPLIFY_TOLERANCE
) -> dict[str, Any]:
    """A GeoJSON geometry simplified for the overview map, coordinates rounded."""
    simple = shapely.simplify(geometry, tolerance, preserve_topology=True)
    if simple.is_empty:  # a sliver smaller than the tolerance: keep the original outline
        simple = geometry
    geojson = dict(mapping(simple))
    geojson["coordinates"] = _rounded(geojson["coordinates"])
    return geojson


def map_data(
    session: Session,
    variable: str = MAP_VARIABLE,
    countries: Sequence[str] | None = None,
    tolerance: float = MAP_SIMPLIFY_TOLERANCE,
) -> MapData:
    """The finest mapped level's areas with the latest current value of ``variable``.

    One period for the whole map (the latest one at that level): an area without a value in
    that period has ``value`` None ("no data"), never 0 and never an older value.
    """
    level = finest_mapped_level(session, countries)
    if level is None:
        return MapData(variable=variable, admin_level=None, period=None, areas=[])
    statement = (
        select(Area)
        .where(Area.admin_level == level, col(Area.geometry).is_not(None))
        .order_by(col(Area.pcode))
    )
    allowed = _country_filter(countries)
    if allowed:
        statement = statement.where(col(Area.country_iso3).in_(allowed))
    areas = list(session.exec(statement).all())
    period = latest_period(session, variable, level, countries)
    values = (
        values_at_period(session, variable, period, [area.pcode for area in areas])
        if period is not None
        else {}
    )
    return MapData(
        variable=variable,
        admin_level=level,
        period=period,
        areas=[
            MapArea(
                pcode=area.pcode,
                name=area.name,
                geometry=simplified_geojson(area.geometry, tolerance),
                value=values.get(area.pcode),
            )
            for area in areas
            if area.geometry is not None
        ],
    )


def _visible_area(session: Session, pcode: str, countries: Sequence[str] | None) -> Area | None:
    area = session.get(Area, pcode)
    if area is None:
        return None
    allowed = _country_filter(countries)
    if allowed and area.country_iso3 not in allowed:
        return None
    return area


def area_detail(
    session: Session, pcode: str, countries: Sequence[str] | None = None
) -> AreaDetail | None:
    """An area's identity, parent and sub-areas; None when unknown (or outside ``countries``)."""
    area = _visible_area(session, pcode, countries)
    if area is None:
        return None
    parent = session.get(Area, area.parent_pcode) if area.parent_pcode else None
    children = session.exec(
        select(Area.pcode, Area.name)
        .where(Area.parent_pcode == area.pcode)
        .order_by(col(Area.pcode))
    ).all()
    return AreaDetail(
        pcode=area.pcode,
        name=area.name,
        admin_level=area.admin_level,
        country_iso3=area.country_iso3,
        parent=AreaRef(parent.pcode, parent.name) if parent is not None else None,
        parent_pcode=area.parent_pcode,
        children=[AreaRef(child_pcode, child_name) for child_pcode, child_name in children],
    )


def area_series(
    session: Session,
    pcode: str,
    variable: str = MAP_VARIABLE,
    countries: Sequence[str] | None = None,
) -> list[tuple[date, float]]:
    """The current values of ``variable`` for one area, one per period, oldest first."""
    if _visible_area(session, pcode, countries) is None:
        return []
    frame = observations_frame(session, variables=[variable], pcodes=[pcode])
    combined = preferred_values(frame)  # sorted by pcode, variable, period
    return list(zip(combined["period"].tolist(), combined["value"].tolist(), strict=True))
