"""ACLED event exports (points with dates) -> monthly event counts per area.

Each event is placed in the area polygon that contains it (point-in-polygon; a point on a shared
border goes to one of the areas, deterministically). A point outside every polygon - a coastal
event geocoded just offshore, or on a slightly simplified border - goes to the nearest area within
``max_offshore_km``; the distance is measured in metres on the ground (candidates from an
equal-area projection, EPSG:6933, then the distance in a plane tangent to the WGS84 ellipsoid at
the point), never in degrees. Farther points are quarantined (rule ``outside_areas``).

Variables, per area and month (period = first day of the month):

* ``conflict_events``: ACLED's *political violence*: events whose ``disorder_type`` contains
  "Political violence" or, without that column, of event type Battles, Explosions/Remote
  violence or Violence against civilians (plus Riots of sub-event type Mob violence). Protests,
  violent demonstrations and strategic developments are not conflict events: they measure unrest
  or decisions, not violence that displaces and exposes people.
* ``conflict_fatalities``: the fatalities of those same events.
* ``abduction_events``: sub-event type "Abduction/forced disappearance" (any event type).
* ``sexual_violence_events``: sub-event type "Sexual violence".

The four variables are given for every area-month with at least one event. CONTRACTS makes an
area without events inside the coverage count zero: ``meta["coverage"]`` gives the countries and
months (from the first to the last event month) so that whoever uses the data can fill zeros, or
``fill_zeros=True`` writes the zeros for every area of the covered countries and months.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point

from riskwatch.sources.countries import numeric_to_iso3, to_iso3
from riskwatch.sources.report import Problem, ReadResult
from riskwatch.sources.tabular import describe_field, find_columns, read_table, result_from_table
from riskwatch.sources.values import (
    RowChecks,
    missing_column,
    observation_frame,
    parse_date_column,
    parse_number_column,
)

_WGS84_A = 6_378_137.0  # semi-major axis, metres
_WGS84_E2 = 0.00669437999014  # first eccentricity squared

#: The equal-area CRS used to find nearby areas in metres.
EQUAL_AREA_CRS = "EPSG:6933"
# EPSG:6933 stretches east-west distances by up to ~2.5x towards 70 degrees of latitude; searching
# this much farther and then measuring exactly keeps the limit right everywhere people live.
_SEARCH_FACTOR = 3.0

_POLITICAL_VIOLENCE = {"battles", "explosions/remote violence", "violence against civilians"}
ABDUCTION = "abduction/forced disappearance"
SEXUAL_VIOLENCE = "sexual violence"
VARIABLES = ["conflict_events", "conflict_fatalities", "abduction_events", "sexual_violence_events"]

_FIELDS: dict[str, tuple[list[str], list[str]]] = {
    "event_id": (["event_id_cnty"], ["#event+code", "#event+id"]),
    "date": (["event_date"], ["#date+occurred", "#date"]),
    "event_type": (["event_type"], ["#event+type-sub"]),
    "sub_event_type": (["sub_event_type"], ["#event+sub+type"]),
    "disorder_type": (["disorder_type"], ["#event+disorder+type"]),
    "latitude": (["latitude", "lat"], ["#geo+lat"]),
    "longitude": (["longitude", "lon", "lng"], ["#geo+lon"]),
    "fatalities": (["fatalities"], ["#affected+killed"]),
    "iso3": (["iso3"], ["#country+code"]),
    "iso": (["iso"], []),
}
_REQUIRED = ["date", "event_type", "sub_event_type", "latitude", "longitude", "fatalities"]


def _is_conflict(
    event_type: pd.Series, sub_event_type: pd.Series, disorder_type: pd.Series | None
) -> np.ndarray:
    if disorder_type is not None and (disorder_type != "").any():
        return disorder_type.str.lower().str.contains("political violence").to_numpy()
    event = event_type.str.strip().str.lower()
    sub = sub_event_type.str.strip().str.lower()
    return (
        event.isin(_POLITICAL_VIOLENCE) | ((event == "riots") & (sub == "mob violence"))
    ).to_numpy()


def assign_points(
    points: gpd.GeoDataFrame, areas: gpd.GeoDataFrame, *, max_offshore_km: float
) -> tuple[np.ndarray, np.ndarray]:
    """The area position (in ``areas``) of each point, -1 when none; and the offshore distance.

    Both frames in EPSG:4326. The distance (km) is 0 inside a polygon and NaN when unassigned.
    """
    assigned = np.full(len(points), -1, dtype=int)
    distance_km = np.full(len(points), np.nan)
    if points.empty:
        return assigned, distance_km
    inside = gpd.sjoin(points, areas[["geometry"]], how="inner", predicate="intersects")
    # A point on a shared border intersects two areas: take the first in area order.
    first = inside.groupby(level=0)["index_right"].min()
    assigned[first.index.to_numpy()] = first.to_numpy()
    distance_km[first.index.to_numpy()] = 0.0

    outside = np.flatnonzero(assigned < 0)
    if len(outside) == 0 or max_offshore_km <= 0:
        return assigned, distance_km
    radius_m = max_offshore_km * 1000.0
    near = gpd.sjoin(
        points.iloc[outside].to_crs(EQUAL_AREA_CRS),
        areas[["geometry"]].to_crs(EQUAL_AREA_CRS),
        how="inner",
        predicate="dwithin",
        distance=radius_m * _SEARCH_FACTOR,
    )
    point_index = near.index.to_numpy()
    area_index = near["index_right"].to_numpy()
    point_shapes = np.asarray(points.geometry.values, dtype=object)
    area_shapes = np.asarray(areas.geometry.values, dtype=object)
    metres = np.array(
        [
            _metres_to(point_shapes[p], area_shapes[a])
            for p, a in zip(point_index, area_index, strict=True)
        ],
        dtype=float,
    )
    pairs = pd.DataFrame({"point": point_index, "area": area_index, "metres": metres})
    best = pairs.sort_values(["point", "metres", "area"]).drop_duplicates("point")
    best = best[best["metres"] <= radius_m]
    assigned[best["point"].to_numpy()] = best["area"].to_numpy()
    distance_km[best["point"].to_numpy()] = best["metres"].to_numpy() / 1000.0
    return assigned, distance_km


def _metres_to(point: Point, shape) -> float:
    """Ground distance in metres from a point to a shape, in a plane tangent at the point.

    The WGS84 radii of curvature at the point's latitude turn degree offsets into metres; within
    the tens of kilometres searched here the error is far below 0.1%, and it costs no projection
    object per point (which made a pyproj round trip per offshore event slow on big exports).
    """
    latitude = np.radians(point.y)
    sin2 = np.sin(latitude) ** 2
    meridian = _WGS84_A * (1 - _WGS84_E2) / (1 - _WGS84_E2 * sin2) ** 1.5
    normal = _WGS84_A / np.sqrt(1 - _WGS84_E2 * sin2)
    scale_x = np.radians(1.0) * normal * np.cos(latitude)
    scale_y = np.radians(1.0) * meridian

    def to_local(coords: np.ndarray) -> np.ndarray:
        east = ((coords[:, 0] - point.x + 180.0) % 360.0) - 180.0  # across the antimeridian
        return np.column_stack((east * scale_x, (coords[:, 1] - point.y) * scale_y))

    return float(shapely.distance(shapely.transform(shape, to_local), Point(0, 0)))


def _months(first: dt.date, last: dt.date) -> list[dt.date]:
    months, current = [], first.replace(day=1)
    while current <= last:
        months.append(current)
        current = (current + dt.timedelta(days=32)).replace(day=1)
    return months


# --- steps shared by the point readers (ACLED here, generic events and sites elsewhere) -------


def area_polygons(
    areas: gpd.GeoDataFrame,
    result: ReadResult,
    *,
    what: str = "events",
    finest_only: bool = False,
) -> gpd.GeoDataFrame | None:
    """The areas that have geometry, in EPSG:4326 and positional index; None when there are none.

    With none, the fatal problem ``no_area_geometry`` is added to ``result``. ``finest_only``
    keeps, per country, only the areas of its finest admin level, so that nested levels given
    together do not compete for the same point.
    """
    polygons = areas[areas.geometry.notna() & ~areas.geometry.is_empty]
    if finest_only and not polygons.empty and {"admin_level", "country_iso3"} <= set(polygons):
        finest = polygons.groupby("country_iso3", dropna=False)["admin_level"].transform("max")
        polygons = polygons[polygons["admin_level"] == finest]
    if polygons.empty:
        result.problems.append(
            Problem(
                rule="no_area_geometry",
                fatal=True,
                message=f"no area polygons to place the {what} in: load boundaries first",
            )
        )
        return None
    if polygons.crs is None:  # areas from riskwatch are always EPSG:4326
        polygons = polygons.set_crs("EPSG:4326")
    return polygons.to_crs("EPSG:4326").reset_index(drop=True)


def check_dates(
    data: pd.DataFrame, column: str, checks: RowChecks, *, what: str = "the event date"
) -> list[dt.date | None]:
    """Each row's date; bad (``bad_date``) and empty (``missing_date``) dates flagged."""
    dates, date_errors = parse_date_column(data[column])
    checks.flag_errors(date_errors, rule="bad_date", column=column, values=data[column])
    checks.flag(
        [d is None and e is None for d, e in zip(dates, date_errors, strict=True)],
        rule="missing_date",
        message=f"{what} is empty",
        column=column,
        values=data[column],
    )
    return dates


class Points(NamedTuple):
    """The rows' coordinates as checked by :func:`check_coordinates`, for :func:`place_rows`."""

    latitude: np.ndarray
    longitude: np.ndarray
    column: str  # the latitude column, named in ``outside_areas`` problems
    shown: list[str] | None  # "lat, lon" as written, for problems; None keeps them out


def check_coordinates(
    data: pd.DataFrame,
    latitude: str,
    longitude: str,
    checks: RowChecks,
    *,
    show_values: bool = True,
) -> Points:
    """Each row's (latitude, longitude) as floats; empty, non-numeric, out-of-range flagged.

    ``show_values=False`` keeps the coordinates out of the problems, for points that locate
    people (sites, cases) rather than public events.
    """
    coordinates = []
    for key, column, limit in (("latitude", latitude, 90.0), ("longitude", longitude, 180.0)):
        values, errors = parse_number_column(data[column])
        shown = data[column] if show_values else None
        checks.flag_errors(errors, rule="bad_coordinates", column=column, values=shown)
        checks.flag(
            (data[column] == "").to_numpy(),
            rule="bad_coordinates",
            message=f"the {key} is empty",
            column=column,
            values=shown,
        )
        checks.flag(
            np.abs(values) > limit,
            rule="bad_coordinates",
            message=f"the {key} must lie between -{limit:g} and {limit:g}",
            column=column,
            values=shown,
        )
        coordinates.append(values)
    pairs = None
    if show_values:
        pairs = [f"{y}, {x}" for y, x in zip(data[latitude], data[longitude], strict=True)]
    return Points(coordinates[0], coordinates[1], latitude, pairs)


def check_mapped_coordinates(
    data: pd.DataFrame, options: dict, columns: dict[str, str], checks: RowChecks
) -> Points:
    """:func:`check_coordinates` on a mapping's ``latitude_column`` and ``longitude_column``.

    ``columns`` maps the mapping's column names to the data's; the coordinates stay out of the
    problems (mapped point lists, sites and incidents, may locate people).
    """
    return check_coordinates(
        data,
        columns[options["latitude_column"]],
        columns[options["longitude_column"]],
        checks,
        show_values=False,
    )


def flag_repeated_events(data: pd.DataFrame, column: str, checks: RowChecks) -> None:
    """Flag ``duplicate_event`` on each row whose (non-empty) event id an earlier row has."""
    ids = data[column]
    checks.flag(
        (ids.duplicated() & (ids != "")).to_numpy(),
        rule="duplicate_event",
        message="event id seen before in the file; the copy is dropped",
        column=column,
        values=ids,
    )


def place_rows(
    points: Points,
    polygons: gpd.GeoDataFrame,
    checks: RowChecks,
    result: ReadResult,
    *,
    max_offshore_km: float,
    noun: str = "event",
) -> np.ndarray:
    """The area position (in ``polygons``) of each row, -1 for rows not placed.

    Only the rows that passed every check so far are placed. Rows farther than
    ``max_offshore_km`` from every area are flagged ``outside_areas`` (with ``points.shown`` as
    their value, when given); ``result`` gets a note on rows placed offshore and the counts
    ``meta["offshore_assigned"]`` and ``meta["outside_areas"]``.
    """
    latitude, longitude = points.latitude, points.longitude
    valid = np.flatnonzero(~checks.bad)
    valid_points = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(longitude[valid], latitude[valid]), crs="EPSG:4326"
    )
    placed, distance_km = assign_points(valid_points, polygons, max_offshore_km=max_offshore_km)
    area_of = np.full(len(latitude), -1, dtype=int)
    area_of[valid] = placed
    outside = np.zeros(len(latitude), dtype=bool)
    outside[valid[placed < 0]] = True
    checks.flag(
        outside,
        rule="outside_areas",
        message=f"the point is farther than {max_offshore_km:g} km from every area",
        column=points.column,
        values=points.shown,
    )
    offshore = valid[(placed >= 0) & (distance_km > 0)]
    if len(offshore):
        result.notes.append(
            f"{len(offshore)} {noun}(s) outside every polygon placed in the nearest area "
            f"(at most {np.nanmax(distance_km):.1f} km away)"
        )
    result.meta["offshore_assigned"] = int(len(offshore))
    result.meta["outside_areas"] = int(outside.sum())
    return area_of


def monthly_observations(
    counts: pd.DataFrame,
    polygons: gpd.GeoDataFrame,
    *,
    countries: list[str],
    months: list[dt.date],
    fill_zeros: bool,
) -> pd.DataFrame:
    """Counts indexed by (area position, month), one column per variable -> observations.

    With ``fill_zeros`` every area of ``countries`` gets every month, zero when it had no event.
    """
    if fill_zeros:
        in_coverage = np.flatnonzero(polygons["country_iso3"].isin(countries).to_numpy())
        full = pd.MultiIndex.from_product([in_coverage, months], names=["area", "period"])
        counts = counts.reindex(full.union(counts.index), fill_value=0.0)
    long = counts.reset_index().melt(
        id_vars=["area", "period"], var_name="variable", value_name="value"
    )
    picked = polygons.iloc[long["area"].to_numpy()]
    long["pcode"] = picked["pcode"].to_numpy(dtype=object)
    long["admin_level"] = picked["admin_level"].to_numpy()
    long["country_iso3"] = picked["country_iso3"].to_numpy(dtype=object)
    return observation_frame(long.sort_values(["pcode", "period", "variable"]).drop(columns="area"))


def record_coverage(
    result: ReadResult, countries: list[str], months: list[dt.date], dates: list[dt.date]
) -> None:
    """Put the coverage (countries, months, first and last event date) in meta and notes."""
    result.meta["coverage"] = {
        "countries": countries,
        "months": months,
        "start": min(dates),
        "end": max(dates),
    }
    result.notes.append(
        "event coverage: "
        + ", ".join(countries)
        + f", {months[0].isoformat()} to {months[-1].isoformat()}; areas without events in "
        "these months count zero (the first and last months may be partial)"
    )


def month_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """The first days of the months from ``first``'s month to ``last``'s, both included."""
    return _months(first, last)


# --- ACLED ------------------------------------------------------------------------------------


def read_acled_events(
    path: str | Path,
    areas: gpd.GeoDataFrame,
    *,
    max_offshore_km: float = 10.0,
    fill_zeros: bool = False,
    sheet: str | int | None = None,
) -> ReadResult:
    """Read an ACLED export and count events per area (finest-level polygons) and month.

    Row problems (the event is dropped): a bad or empty date, latitude or longitude out of range
    or not a number, a bad fatality count, an event id seen before (the later copy), a point
    farther than ``max_offshore_km`` from every area (``outside_areas``). ``meta["coverage"]``
    holds the countries (ISO3, from the ``iso3``/``iso`` columns, else the areas the events fell
    in) and months covered; ``meta["offshore_assigned"]`` the events placed in a nearby area.
    """
    table = read_table(path, sheet=sheet)
    result = result_from_table(table, observation_frame())
    if table.fatal:
        return result
    columns = find_columns(table, _FIELDS)
    for key in _REQUIRED:
        if columns[key] is None:
            result.problems.append(missing_column(key, describe_field(_FIELDS, key)))
    polygons = area_polygons(areas, result)
    if result.fatal or polygons is None:
        return result

    data = table.data
    checks = RowChecks(table.row_numbers)
    dates = check_dates(data, columns["date"], checks)
    points = check_coordinates(data, columns["latitude"], columns["longitude"], checks)
    fatalities, errors = parse_number_column(data[columns["fatalities"]])
    checks.flag_errors(
        errors, rule="bad_number", column=columns["fatalities"], values=data[columns["fatalities"]]
    )
    checks.flag(
        fatalities < 0,
        rule="negative_value",
        message="fatalities cannot be negative",
        column=columns["fatalities"],
        values=data[columns["fatalities"]],
    )
    if columns["event_id"] is not None:
        flag_repeated_events(data, columns["event_id"], checks)

    # Place only the events that passed every other check.
    area_of = place_rows(points, polygons, checks, result, max_offshore_km=max_offshore_km)
    checks.report(result)

    good = ~checks.bad
    if not good.any():
        return result
    disorder = data[columns["disorder_type"]] if columns["disorder_type"] else None
    sub = data[columns["sub_event_type"]].str.strip().str.lower()
    events = pd.DataFrame(
        {
            "area": area_of,
            "period": [d.replace(day=1) if d else None for d in dates],
            "conflict_events": _is_conflict(
                data[columns["event_type"]], data[columns["sub_event_type"]], disorder
            ),
            "abduction_events": (sub == ABDUCTION).to_numpy(),
            "sexual_violence_events": (sub == SEXUAL_VIOLENCE).to_numpy(),
            "fatalities": np.nan_to_num(fatalities),
        }
    )[good]
    events["conflict_fatalities"] = np.where(events["conflict_events"], events["fatalities"], 0.0)
    counts = events.groupby(["area", "period"])[VARIABLES].sum().astype(float)

    coverage_countries = _coverage_countries(data[good], columns, polygons, events["area"])
    months = _months(min(events["period"]), max(events["period"]))
    result.frame = monthly_observations(
        counts, polygons, countries=coverage_countries, months=months, fill_zeros=fill_zeros
    )
    record_coverage(result, coverage_countries, months, list(np.array(dates, dtype=object)[good]))
    return result


def _coverage_countries(
    data: pd.DataFrame, columns: dict, polygons: gpd.GeoDataFrame, areas_hit: pd.Series
) -> list[str]:
    """The countries the export covers: its ISO3 (or numeric ISO) codes and where events fell."""
    if columns["iso3"] is not None:
        codes = {to_iso3(c) or c.strip().upper() for c in data[columns["iso3"]] if c.strip()}
    elif columns["iso"] is not None:
        codes = {numeric_to_iso3(c) for c in data[columns["iso"]] if c.strip()}
    else:
        codes = set()
    codes.discard(None)
    # The countries the events fell in are covered whatever the file's own codes say.
    codes |= set(polygons["country_iso3"].iloc[areas_hit.to_numpy()].dropna())
    return sorted(codes)
