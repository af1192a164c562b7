"""Site and location assessments -> one value per area, period and rule; never a site's own row.

A site assessment (DTM's multi-sectoral location assessment, a camp coordination survey) has one
row per site: where it is, when it was assessed, how many people live there, which services it
has. The mapping (:mod:`riskwatch.sources.mapping`, ``--kind sites``) says where each site is
(``latitude_column`` and ``longitude_column``: the point is placed in the finest area polygon,
or the nearest area within 10 km; else ``pcode_column``, else ``name_column`` with
``[aliases]``), when (``date_column``: the period is the assessment date itself, as for DTM; else
the mapping's ``period``) and what to compute with ``[[rules]]``, per area and period:

* ``sum``: the column summed over the area's sites (e.g. people living in sites);
* ``mean``: the column's mean, weighted by ``weight`` when given (sites without a value are left
  out); a variable ending in ``_share`` must have values in 0-1 (``:pct`` for percentages);
* ``share``: the share of sites whose column equals one of ``value`` (ignoring case), among the
  sites where the column is filled in;
* ``ratio``: sum(``numerator``) / sum(``denominator``) over the sites having both - a ratio of
  sums, so the area's figure is the one for all its sites together.

``site_area_per_person_m2`` in the demo mapping (:data:`DEMO_SITE_RULES_TOML`) is such a ratio:
``site_area_m2 / individuals``, the square metres of site per person. LOWER means MORE crowded
(Sphere's planning figure for camp-type settlements is about 45 m2 per person), so an indicator
built on it must invert it (riskier when lower).

Privacy: site coordinates, names and ids never leave this module - not in the frame, not in
``meta``, not in problems (a problem names the file row only). A note says how many area values
rest on a single site, because such a value describes that site.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from riskwatch.sources.events import (
    area_polygons,
    check_dates,
    check_mapped_coordinates,
    place_rows,
)
from riskwatch.sources.mapping import (
    mapped_columns,
    read_mapped_table,
    resolve_aliases,
)
from riskwatch.sources.report import Problem, ReadResult
from riskwatch.sources.tabular import TableRead
from riskwatch.sources.values import RowChecks, observation_frame, parse_number_column

#: How far outside every polygon (km) a site may lie and still be placed in the nearest area.
MAX_OFFSHORE_KM = 10.0

#: The mapping used by the demo for its ``site_assessments.csv`` (a TOML mapping file's text).
DEMO_SITE_RULES_TOML = """\
# Site assessments of the riskwatch demo (site_assessments.csv), aggregated to admin2 areas.
latitude_column = "latitude"
longitude_column = "longitude"
date_column = "reportingDate"
id_column = "site_id"
aggregate_columns = ["households", "individuals", "site_area_m2", "civil_documentation_share"]

[[rules]]
variable = "idps_in_sites"          # people living in sites
rule = "sum"
column = "individuals"

[[rules]]
variable = "site_area_per_person_m2"  # m2 of site per person: LOWER means MORE crowded
rule = "ratio"
numerator = "site_area_m2"
denominator = "individuals"

[[rules]]
variable = "ct_service_coverage"    # share of sites with a counter-trafficking service
rule = "share"
column = "ct_service_available"
value = "yes"

[[rules]]
variable = "civil_documentation_share"   # per person, so weighted by the site's population
rule = "mean"
column = "civil_documentation_share"
weight = "individuals"
"""

_LEVEL_RE = re.compile(r"adm(?:in)?(\d)", re.IGNORECASE)
_KEYS = ["pcode", "admin_level", "country_iso3", "period"]


def read_site_assessments(
    path: str | Path, *, mapping: dict, areas: gpd.GeoDataFrame
) -> ReadResult:
    """Aggregate site assessments to areas by the mapping's ``[[rules]]``; observations only.

    Fatal: a bad mapping (or one without rules, location or period), a mapped column missing or
    ambiguous, no area polygons for points. Row problems (the site is left out of every rule):
    a bad or empty date, coordinates empty, not numbers or out of range, a site farther than
    10 km from every area, an empty pcode or a name not in ``[aliases]``, a rule input that is
    not a number, negative where a count or size is expected, or a share outside 0-1, the same
    site id twice on one date (the later copy).
    """
    options, table, result = read_mapped_table(path, mapping, "sites", _check_options)
    if result.fatal:
        return result
    columns = _columns(table, options, result)
    polygons = None
    if "latitude_column" in options:
        polygons = area_polygons(areas, result, what="sites", finest_only=True)
    if result.fatal:
        return result

    data = table.data
    checks = RowChecks(table.row_numbers)
    periods = _periods(data, options, columns, checks)
    _flag_repeated_sites(data, options, columns, periods, checks)
    inputs = _rule_inputs(data, options["rules"], columns, checks)
    location = _locate(data, options, columns, polygons, checks, result, table)
    checks.report(result)

    sites = pd.DataFrame({**location, "period": pd.Series(periods, dtype=object)})
    sites = pd.concat([sites, inputs], axis=1)[~checks.bad]
    if sites.empty:
        return result
    result.frame = _aggregate(sites, options["rules"], result)
    site_counts = sites.groupby(_KEYS, dropna=False).size()
    single = int((site_counts == 1).sum())
    if single:
        result.notes.append(
            f"{single} of {len(site_counts)} area value set(s) rest on a single site "
            "(such a value describes that site)"
        )
    result.meta.update(
        {
            "variables": [rule["variable"].partition(":")[0] for rule in options["rules"]],
            "periods": sorted({p for p in sites["period"] if p is not None}),
            "sites_used": len(sites),
            "areas": int(site_counts.index.droplevel("period").nunique()),
        }
    )
    return result


def _refuse(result: ReadResult, rule: str, message: str) -> ReadResult:
    result.problems.append(Problem(rule=rule, message=message, fatal=True))
    return result


def _check_options(options: dict[str, Any], result: ReadResult) -> None:
    """What a sites mapping must say: rules, where each site is, and when."""
    if "rules" not in options:
        _refuse(result, "bad_mapping", "the sites mapping needs [[rules]] (what to compute)")
    if ("latitude_column" in options) != ("longitude_column" in options):
        _refuse(result, "bad_mapping", "give both latitude_column and longitude_column")
    if not {"latitude_column", "pcode_column", "name_column"} & set(options):
        _refuse(
            result,
            "bad_mapping",
            "the sites mapping must say where each site is: latitude_column and "
            "longitude_column, or pcode_column, or name_column with [aliases]",
        )
    if "date_column" not in options and "period" not in options:
        _refuse(
            result,
            "missing_period",
            "the sites mapping must say when: date_column (each site's assessment date) or "
            "period (e.g. period = 2024-01-01)",
        )


def _columns(table: TableRead, options: dict[str, Any], result: ReadResult) -> dict[str, str]:
    """Each column the mapping names (as written there) -> its data column."""
    wanted: list[tuple[str, str]] = []
    keys = ["latitude_column", "longitude_column", "date_column", "id_column"]
    # With coordinates the point decides; a pcode or name column is then not needed.
    keys += [] if "latitude_column" in options else ["pcode_column", "name_column"]
    wanted += [(key, options[key]) for key in keys if key in options]
    if "latitude_column" in options and {"pcode_column", "name_column"} & set(options):
        result.notes.append(
            "sites are placed by their coordinates; the pcode/name column is unused"
        )
    for i, rule in enumerate(options["rules"], 1):
        for key in ("column", "weight", "numerator", "denominator"):
            if rule.get(key):
                wanted.append((f"rules[{i}].{key}", rule[key]))
    return mapped_columns(table, wanted, result.problems)


def _periods(
    data: pd.DataFrame, options: dict[str, Any], columns: dict[str, str], checks: RowChecks
) -> list[dt.date | None]:
    if "date_column" not in options:
        return [options["period"]] * len(data)
    return check_dates(data, columns[options["date_column"]], checks, what="the assessment date")


def _flag_repeated_sites(
    data: pd.DataFrame,
    options: dict[str, Any],
    columns: dict[str, str],
    periods: list,
    checks: RowChecks,
) -> None:
    if "id_column" not in options:
        return
    ids = data[columns[options["id_column"]]]
    key = pd.DataFrame({"id": ids, "period": pd.Series(periods, dtype=object)})
    checks.flag(
        (key.duplicated() & (ids != "")).to_numpy(),
        rule="duplicate_site",
        message="the same site assessed twice on this date; the later row is left out",
        column=columns[options["id_column"]],
    )


def _rule_inputs(
    data: pd.DataFrame, rules: list[dict], columns: dict[str, str], checks: RowChecks
) -> pd.DataFrame:
    """Per site and rule, the terms summed per area: ``n{i}`` (and ``d{i}``, the divisor)."""
    numbers: dict[tuple[str, bool], np.ndarray] = {}

    def number(key: str, *, percent: bool = False, non_negative: bool = True) -> np.ndarray:
        if (key, percent) not in numbers:
            column = columns[key]
            values, errors = parse_number_column(data[column], percent=percent)
            checks.flag_errors(errors, rule="bad_number", column=column, values=None)
            if non_negative:
                checks.flag(
                    values < 0,
                    rule="negative_value",
                    message=f"{key} cannot be negative",
                    column=column,
                )
            numbers[(key, percent)] = values
        return numbers[(key, percent)]

    terms: dict[str, np.ndarray] = {}
    for i, rule in enumerate(rules):
        variable, _, unit = rule["variable"].partition(":")
        kind = rule["rule"]
        if kind == "sum":
            terms[f"n{i}"] = number(rule["column"])
            continue
        if kind == "share":
            cells = data[columns[rule["column"]]].str.strip().str.lower()
            filled = (cells != "").to_numpy()
            matched = cells.isin(rule["value"]).to_numpy()
            numerator, divisor = matched.astype(float), np.ones(len(data))
            present = filled
        elif kind == "mean":
            numerator = number(rule["column"], percent=unit == "pct", non_negative=False)
            if variable.endswith("_share"):
                checks.flag_shares(
                    numerator,
                    variable=variable,
                    column=columns[rule["column"]],
                    fix=f"name the variable '{variable}:pct'",
                )
            divisor = number(rule["weight"]) if rule["weight"] else np.ones(len(data))
            present = np.isfinite(numerator) & np.isfinite(divisor)
            numerator = numerator * divisor
        else:  # ratio
            numerator, divisor = number(rule["numerator"]), number(rule["denominator"])
            present = np.isfinite(numerator) & np.isfinite(divisor)
        terms[f"n{i}"] = np.where(present, numerator, np.nan)
        terms[f"d{i}"] = np.where(present, divisor, np.nan)
    return pd.DataFrame(terms, index=data.index)


def _locate(
    data: pd.DataFrame,
    options: dict[str, Any],
    columns: dict[str, str],
    polygons: gpd.GeoDataFrame | None,
    checks: RowChecks,
    result: ReadResult,
    table: TableRead,
) -> dict[str, Any]:
    """Each site's area: pcode, admin level, country (placed last, after every other check)."""
    if polygons is not None:
        points = check_mapped_coordinates(data, options, columns, checks)
        area_of = place_rows(
            points, polygons, checks, result, max_offshore_km=MAX_OFFSHORE_KM, noun="site"
        )
        placed = area_of >= 0
        picked = polygons.iloc[np.where(placed, area_of, 0)]
        return {
            "pcode": np.where(placed, picked["pcode"].to_numpy(dtype=object), None),
            "admin_level": np.where(placed, picked["admin_level"].to_numpy(dtype=object), None),
            "country_iso3": np.where(placed, picked["country_iso3"].to_numpy(dtype=object), None),
        }
    country = options.get("country")
    if "pcode_column" in options:
        column = columns[options["pcode_column"]]
        pcodes = data[column].to_numpy(dtype=object)
        header = table.headers[table.columns.index(column)]
        found = _LEVEL_RE.search(table.tag_of(column) or header)
        level = int(found.group(1)) if found else None
    else:
        column = columns[options["name_column"]]
        pcodes, unknown = resolve_aliases(data[column], options["aliases"])
        level = None
        for name, count in unknown.items():
            first = np.flatnonzero((data[column] == name).to_numpy())[0]
            result.problems.append(
                Problem(
                    rule="unknown_area_name",
                    message=f"area name not in the mapping's [aliases] ({count} site(s))",
                    row=int(checks.row_numbers[first]),
                    column=column,
                    value=name,
                )
            )
        checks.bad |= (data[column] != "").to_numpy() & (pcodes == "")
    checks.flag(
        (data[column] == "").to_numpy(),
        rule="missing_pcode",
        message="the site's area is empty",
        column=column,
    )
    return {
        "pcode": pcodes,
        "admin_level": np.full(len(data), level, dtype=object),
        "country_iso3": np.full(len(data), country, dtype=object),
    }


def _aggregate(sites: pd.DataFrame, rules: list[dict], result: ReadResult) -> pd.DataFrame:
    """One observation per area, period and rule."""
    grouped = sites.groupby(_KEYS, dropna=False, sort=True)
    parts = []
    for i, rule in enumerate(rules):
        variable = rule["variable"].partition(":")[0]
        numerator = grouped[f"n{i}"].sum(min_count=1)
        if rule["rule"] == "sum":
            values = numerator
        else:
            divisor = grouped[f"d{i}"].sum(min_count=1)
            zero = (divisor == 0) & numerator.notna()
            if zero.any():
                result.notes.append(
                    f"{variable}: {int(zero.sum())} area value(s) left out: their sites' "
                    f"{rule.get('denominator') or rule.get('weight')} add up to 0"
                )
            values = numerator / divisor.where(divisor != 0)
        part = values.dropna().rename("value").reset_index()
        part["variable"] = variable
        parts.append(part)
    long = pd.concat(parts, ignore_index=True)
    return observation_frame(long.sort_values(["pcode", "period", "variable"]))
