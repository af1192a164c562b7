"""Generic point events (any dated, geolocated incident list) -> counts per area and month.

The mapping (:mod:`riskwatch.sources.mapping`, ``--kind events``) names the latitude, longitude
and date columns and lists ``[[counts]]``: each a variable counting the events that pass its
``filter`` (every filtered column equal to one of its values, ignoring case and surrounding
spaces), or summing its ``sum_column`` over them (e.g. fatalities). Placement and months follow
ACLED's reader (:mod:`riskwatch.sources.events`, whose steps this module reuses): point in the
finest area polygon, else the nearest area within ``max_offshore_km``; the period is the first day
of the event's month; every variable is given for each area-month with at least one event, and
``meta["coverage"]`` gives the countries and months inside which an area without events counts
zero.

Coordinates never appear in problems: an incident list may locate people (cases, survivors),
and the row number is enough to find the row in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from riskwatch.sources.events import (
    area_polygons,
    check_dates,
    check_mapped_coordinates,
    flag_repeated_events,
    month_range,
    monthly_observations,
    place_rows,
    record_coverage,
)
from riskwatch.sources.mapping import (
    mapped_columns,
    read_mapped_table,
)
from riskwatch.sources.report import Problem, ReadResult
from riskwatch.sources.tabular import TableRead
from riskwatch.sources.values import RowChecks, parse_number_column

_REQUIRED = ("latitude_column", "longitude_column", "date_column", "counts")


def read_point_events(
    path: str | Path,
    *,
    mapping: dict,
    areas: gpd.GeoDataFrame,
    max_offshore_km: float = 10.0,
    fill_zeros: bool = False,
) -> ReadResult:
    """Count the mapped events per area (finest-level polygons) and month.

    Fatal: a bad mapping (or one without latitude, longitude, date columns and counts), a mapped
    column missing or ambiguous, no area polygons. Row problems (the event is dropped): a bad or
    empty date, coordinates empty, not numbers or out of range, a bad or negative number in a
    ``sum_column``, an id seen before (with ``id_column``; the later copy), a point farther than
    ``max_offshore_km`` from every area. ``fill_zeros`` writes zeros for every area of the
    covered countries and months, as ``read_acled_events`` does.
    """
    options, table, result = read_mapped_table(path, mapping, "events", _check_options)
    if result.fatal:
        return result

    columns = _columns(table, options, result)
    polygons = area_polygons(areas, result, what="events", finest_only=True)
    if result.fatal or polygons is None:
        return result

    data = table.data
    checks = RowChecks(table.row_numbers)
    dates = check_dates(data, columns[options["date_column"]], checks)
    points = check_mapped_coordinates(data, options, columns, checks)
    sums = _sum_columns(data, options["counts"], columns, checks)
    if "id_column" in options:
        flag_repeated_events(data, columns[options["id_column"]], checks)
    area_of = place_rows(points, polygons, checks, result, max_offshore_km=max_offshore_km)
    checks.report(result)

    good = ~checks.bad
    if not good.any():
        return result
    events = pd.DataFrame(
        {"area": area_of, "period": [d.replace(day=1) if d else None for d in dates]}
    )
    variables = []
    for count in options["counts"]:
        selected = _selected(data, count["filter"], columns)
        column = count["sum_column"]
        events[count["variable"]] = (
            np.where(selected, np.nan_to_num(sums[column]), 0.0) if column else selected
        )
        variables.append(count["variable"])
    events = events[good]
    counts = events.groupby(["area", "period"])[variables].sum().astype(float)

    countries = _coverage_countries(options, polygons, events["area"])
    months = month_range(min(events["period"]), max(events["period"]))
    result.frame = monthly_observations(
        counts, polygons, countries=countries, months=months, fill_zeros=fill_zeros
    )
    record_coverage(result, countries, months, list(np.array(dates, dtype=object)[good]))
    result.meta["variables"] = variables
    return result


def _check_options(options: dict[str, Any], result: ReadResult) -> None:
    """What an events mapping must say: the point and date columns, and what to count."""
    for key in _REQUIRED:
        if key not in options:
            result.problems.append(
                Problem(
                    rule="bad_mapping",
                    message=f"the events mapping needs {key} ({', '.join(_REQUIRED)})",
                    fatal=True,
                )
            )


def _columns(table: TableRead, options: dict[str, Any], result: ReadResult) -> dict[str, str]:
    """Each column the mapping names (as written there) -> its data column.

    A missing or ambiguous column adds a fatal problem naming the key that asked for it.
    """
    wanted: list[tuple[str, str]] = [
        (key, options[key])
        for key in ("latitude_column", "longitude_column", "date_column", "id_column")
        if key in options
    ]
    for i, count in enumerate(options["counts"], 1):
        wanted += [(f"counts[{i}].filter", column) for column in count["filter"]]
        if count["sum_column"]:
            wanted.append((f"counts[{i}].sum_column", count["sum_column"]))
    return mapped_columns(table, wanted, result.problems)


def _sum_columns(
    data: pd.DataFrame, counts: list[dict], columns: dict[str, str], checks: RowChecks
) -> dict[str, np.ndarray]:
    """The numbers of each ``sum_column`` (empty = 0 events' worth); bad and negative flagged."""
    sums = {}
    for count in counts:
        key = count["sum_column"]
        if not key or key in sums:
            continue
        text = data[columns[key]]
        values, errors = parse_number_column(text)
        checks.flag_errors(errors, rule="bad_number", column=columns[key], values=text)
        checks.flag(
            values < 0,
            rule="negative_value",
            message=f"{key} cannot be negative",
            column=columns[key],
            values=text,
        )
        sums[key] = values
    return sums


def _selected(data: pd.DataFrame, filters: dict[str, list[str]], columns: dict[str, str]):
    """Rows passing every filter (a column equal to one of its values, ignoring case)."""
    selected = np.ones(len(data), dtype=bool)
    for key, values in filters.items():
        cells = data[columns[key]].str.strip().str.lower()
        selected &= cells.isin(values).to_numpy()
    return selected


def _coverage_countries(
    options: dict[str, Any], polygons: gpd.GeoDataFrame, areas_hit: pd.Series
) -> list[str]:
    """The mapping's country, and the countries the events fell in."""
    codes = set(polygons["country_iso3"].iloc[areas_hit.to_numpy()].dropna())
    if "country" in options:
        codes.add(options["country"])
    return sorted(codes)
