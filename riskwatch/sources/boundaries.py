"""Administrative boundaries (GeoJSON, GeoPackage, zipped shapefile) -> areas with geometry.

The pcode field is found by the file's own conventions:

* OCHA COD-AB: ``ADMn_PCODE``; the finest ``n`` present is the level (or ``level=`` picks one),
  the parent is ``ADM(n-1)_PCODE``, the name ``ADMn_EN``, else ``ADMn_FR``, ``ADMn_ES``,
  ``ADMn_PT``, else any ``ADMn_xx`` language field. The country is ``ADM0_PCODE``, which COD-AB
  writes as ISO2 (``HT``) and riskwatch keeps as ISO3 (``HTI``).
* geoBoundaries extended with pcodes: ``adminNPcode`` (names ``adminNName_en``), country from
  ``shapeGroup`` (or an ISO3 ``shapeISO``).
* Anything else: ``pcode_field=`` with ``level=`` (optionally ``name_field=``,
  ``parent_field=``).

``country_iso3=`` overrides the country (needed for codes that are not ISO, such as a synthetic
demo country); a code that cannot be converted without it is a fatal problem. An admin1 area's
parent is its country's ISO3 code; an admin0 area's pcode is the ISO3 code itself.

Geometry is reprojected to EPSG:4326 (a file without CRS is taken as 4326, noted), reduced to 2D,
repaired with shapely's ``make_valid`` when invalid (keeping the polygonal parts; each repair is
noted) and promoted to MultiPolygon. Empty or non-polygonal geometry, empty and duplicate pcodes
are row problems (every copy of a duplicate pcode is dropped).
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from riskwatch.sources.countries import to_iso3
from riskwatch.sources.report import Problem, ReadResult
from riskwatch.sources.values import RowChecks, area_frame

_COD_PCODE = re.compile(r"adm(\d)_pcode", re.I)
_GEOBOUNDARIES_PCODE = re.compile(r"admin(\d)pcod(e)?", re.I)  # shapefiles cut names at 10
_NAME_LANGUAGES = ["EN", "FR", "ES", "PT"]
_COUNTRY_FIELDS = ["shapeGroup", "shapeISO", "ISO3", "iso3", "ADM0_ISO3", "ISO_A3"]


class _Refusal(Exception):
    """A fatal problem found while working out the file's layout."""

    def __init__(self, message: str, rule: str = "bad_layout") -> None:
        super().__init__(message)
        self.rule = rule


def _fatal(rule: str, message: str) -> ReadResult:
    return ReadResult(
        frame=area_frame(), problems=[Problem(rule=rule, message=message, fatal=True)]
    )


def _source(path: Path) -> str:
    # GDAL reads a zipped shapefile in place through its /vsizip/ virtual file system.
    return f"/vsizip/{path.resolve()}" if path.suffix.lower() == ".zip" else str(path)


def _choose_layer(source: str, level: int | None, layer: str | None) -> str | None:
    layers = [str(name) for name, _ in pyogrio.list_layers(source)]
    if layer is not None:
        if layer not in layers:
            raise _Refusal(f"no layer {layer!r} (layers: {', '.join(layers)})", "missing_layer")
        return layer
    if len(layers) <= 1:
        return layers[0] if layers else None
    if level is not None:
        named = [n for n in layers if re.search(rf"adm(in)?_?{level}(?!\d)", n, re.I)]
        if len(named) == 1:
            return named[0]
        for name in layers:
            fields = pyogrio.read_info(source, layer=name)["fields"]
            levels = [int(m.group(1)) for f in fields if (m := _COD_PCODE.fullmatch(str(f)))]
            if levels and max(levels) == level:
                return name
    raise _Refusal(
        f"the file has several layers ({', '.join(layers)}); give the admin level (or the layer)",
        "several_layers",
    )


def _field(columns: list[str], name: str) -> str | None:
    """The actual column for a field name, ignoring case (shapefile tools change case)."""
    lowered = {c.lower(): c for c in columns}
    return lowered.get(name.lower())


def _layout(
    columns: list[str],
    level: int | None,
    pcode_field: str | None,
    name_field: str | None,
    parent_field: str | None,
) -> dict:
    """Which columns hold the pcode, name, parent and country, and at which level."""
    if pcode_field is not None:
        if level is None:
            raise _Refusal("pcode_field needs the admin level (level=)")
        layout = {
            "pcode": _field(columns, pcode_field),
            "level": level,
            "family": "option",
            "parent": _field(columns, parent_field) if parent_field else None,
            "name": None,
        }
        if layout["pcode"] is None:
            raise _Refusal(f"no field {pcode_field!r} in the file", "missing_column")
    else:
        layout = _detect(columns, level)
    if name_field is not None:
        layout["name"] = _field(columns, name_field)
        if layout["name"] is None:
            raise _Refusal(f"no field {name_field!r} in the file", "missing_column")
    return layout


def _detect(columns: list[str], level: int | None) -> dict:
    for family, pattern in (("cod", _COD_PCODE), ("geoboundaries", _GEOBOUNDARIES_PCODE)):
        levels = {int(m.group(1)): c for c in columns if (m := pattern.fullmatch(c))}
        if not levels:
            continue
        n = max(levels) if level is None else level
        if n not in levels:
            raise _Refusal(
                f"no admin level {n} pcode field (found {', '.join(levels.values())})",
                "missing_column",
            )
        if family == "cod":
            name = next(
                (
                    _field(columns, f"ADM{n}_{lang}")
                    for lang in _NAME_LANGUAGES
                    if _field(columns, f"ADM{n}_{lang}")
                ),
                None,
            )
            name = name or next(
                (c for c in columns if re.fullmatch(rf"adm{n}_[a-z]{{2}}", c, re.I)), None
            )
        else:
            name = (
                _field(columns, f"admin{n}Name_en")
                or _field(columns, f"admin{n}Name")
                or _field(columns, "shapeName")
            )
        return {
            "pcode": levels[n],
            "level": n,
            "family": family,
            "parent": levels.get(n - 1) if n >= 2 else None,
            "name": name,
        }
    raise _Refusal(
        "no pcode field found (COD-AB ADMn_PCODE or geoBoundaries adminNPcode); "
        "give pcode_field and level",
        "missing_column",
    )


def _countries(
    frame: pd.DataFrame, layout: dict, override: str | None, notes: list[str]
) -> np.ndarray:
    """ISO3 country of every feature, from the override, the file, or the pcode prefix."""
    if override:
        return np.full(len(frame), override.strip().upper(), dtype=object)
    columns = list(frame.columns)
    candidates = [_field(columns, "ADM0_PCODE")] if layout["family"] == "cod" else []
    candidates += [_field(columns, name) for name in _COUNTRY_FIELDS]
    for column in filter(None, candidates):
        codes = frame[column].astype(str).str.strip()
        converted = {code: to_iso3(code) for code in set(codes)}
        if all(converted.values()):
            changed = sorted(f"{k}->{v}" for k, v in converted.items() if k != v)
            if changed:
                notes.append(f"country codes from {column} converted to ISO3: {', '.join(changed)}")
            return codes.map(converted).to_numpy(dtype=object)
        if column == candidates[0] and layout["family"] == "cod":
            bad = sorted(k for k, v in converted.items() if v is None)
            raise _Refusal(
                f"{column} {', '.join(map(repr, bad))} is not an ISO 3166 country code; give the "
                "country's ISO3 code (country_iso3=, --country)",
                "unknown_country",
            )
    prefixes = frame[layout["pcode"]].astype(str).str.extract(r"^([A-Za-z]{2,3})")[0]
    converted = {p: to_iso3(p) for p in set(prefixes.dropna())}
    if converted and all(converted.values()) and prefixes.notna().all():
        notes.append(
            "country taken from the pcode prefixes: "
            + ", ".join(sorted(f"{k}->{v}" for k, v in converted.items()))
        )
        return prefixes.map(converted).to_numpy(dtype=object)
    raise _Refusal(
        "cannot tell the country of the areas; give its ISO3 code (country_iso3=)",
        "unknown_country",
    )


def _polygonal(geometry: BaseGeometry) -> MultiPolygon:
    """The polygonal part of a geometry as one MultiPolygon (empty when there is none)."""
    parts: list[Polygon] = []
    stack = [geometry]
    while stack:
        item = stack.pop()
        if isinstance(item, Polygon):
            if not item.is_empty:
                parts.append(item)
        elif hasattr(item, "geoms"):
            stack.extend(item.geoms)
    parts.reverse()
    return MultiPolygon(parts)


def _geometries(
    frame: gpd.GeoDataFrame, pcodes: np.ndarray, checks: RowChecks, notes: list[str]
) -> list[MultiPolygon | None]:
    """Repaired 2D MultiPolygons; empty or non-polygonal geometry flagged (then None)."""
    # Vectorised tests first: real admin2 sets have tens of thousands of detailed polygons,
    # and only the few invalid ones need the slow path.
    geometries = shapely.force_2d(np.asarray(frame.geometry.values, dtype=object))
    missing = shapely.is_missing(geometries) | shapely.is_empty(geometries)
    kinds = shapely.get_type_id(geometries)
    polygonal_kinds = [
        shapely.GeometryType.POLYGON,
        shapely.GeometryType.MULTIPOLYGON,
        shapely.GeometryType.GEOMETRYCOLLECTION,
    ]
    not_polygonal = ~missing & ~np.isin(kinds, polygonal_kinds)
    invalid = ~missing & ~not_polygonal & ~shapely.is_valid(geometries)
    for position in np.flatnonzero(invalid):
        reason = shapely.is_valid_reason(geometries[position])
        geometries[position] = shapely.make_valid(geometries[position])
        notes.append(
            f"row {checks.row_numbers[position]} ({pcodes[position]}): invalid geometry "
            f"repaired with make_valid ({reason})"
        )
    out: list[MultiPolygon | None] = [None] * len(geometries)
    empty = missing.copy()
    for position in np.flatnonzero(~missing & ~not_polygonal):
        polygonal = _polygonal(geometries[position])
        if polygonal.is_empty:
            empty[position] = True
        else:
            out[position] = polygonal
    checks.flag(
        empty,
        rule="empty_geometry",
        message="the area has no (polygonal) geometry",
        column="geometry",
        values=pcodes,
    )
    checks.flag(
        not_polygonal,
        rule="not_polygon",
        message="the area's geometry is not a polygon",
        column="geometry",
        values=[str(shapely.GeometryType(k).name) if k >= 0 else "" for k in kinds],
    )
    return out


def read_boundaries(
    path: str | Path,
    *,
    level: int | None = None,
    country_iso3: str | None = None,
    pcode_field: str | None = None,
    name_field: str | None = None,
    parent_field: str | None = None,
    layer: str | None = None,
) -> ReadResult:
    """Read boundaries into areas (AREA_COLUMNS, EPSG:4326 MultiPolygons), validating each feature.

    Problem rows are features (1-based, in file order). ``meta`` gives the level, layer, fields
    used, the source CRS and the countries.
    """
    path = Path(path)
    if not path.exists():
        return _fatal("unreadable_file", f"{path.name}: file not found")
    source = _source(path)
    try:
        chosen = _choose_layer(source, level, layer)
        frame = gpd.read_file(source, layer=chosen, engine="pyogrio")
    except _Refusal as refusal:
        return _fatal(refusal.rule, str(refusal))
    except Exception as error:  # GDAL's many ways of failing become one clear problem
        return _fatal("unreadable_file", f"{path.name}: cannot be read as boundaries ({error})")

    notes: list[str] = []
    columns = [c for c in frame.columns if c != frame.geometry.name]
    try:
        layout = _layout(columns, level, pcode_field, name_field, parent_field)
        countries = _countries(frame, layout, country_iso3, notes)
    except _Refusal as refusal:
        return _fatal(refusal.rule, str(refusal))
    n = layout["level"]

    source_crs = frame.crs.to_string() if frame.crs is not None else None
    if frame.crs is None:
        notes.append("the file has no CRS: coordinates taken as EPSG:4326 (longitude, latitude)")
        frame = frame.set_crs("EPSG:4326")
        minx, miny, maxx, maxy = frame.total_bounds
        if len(frame) and (min(minx, miny) < -180 or maxx > 180 or abs(maxy) > 90):
            return _fatal("bad_crs", "the file has no CRS and its coordinates are not degrees")
    elif frame.crs.to_epsg() != 4326:
        notes.append(f"reprojected from {source_crs} to EPSG:4326")
        frame = frame.to_crs("EPSG:4326")

    checks = RowChecks(np.arange(1, len(frame) + 1))
    if n == 0:
        pcodes = countries.copy()
    else:
        pcodes = frame[layout["pcode"]].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    checks.flag(
        pcodes == "",
        rule="missing_pcode",
        message="the area has no pcode",
        column=layout["pcode"],
        values=pcodes,
    )
    duplicated = pd.Series(pcodes).duplicated(keep=False).to_numpy() & (pcodes != "")
    checks.flag(
        duplicated,
        rule="duplicate_pcode",
        message="pcode used by more than one area; every copy is dropped",
        column=layout["pcode"],
        values=pcodes,
    )
    geometries = _geometries(frame, pcodes, checks, notes)

    if n <= 1:
        parents = countries if n == 1 else np.full(len(frame), None, dtype=object)
    elif layout["parent"] is not None:
        parents = frame[layout["parent"]].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    else:
        parents = np.full(len(frame), None, dtype=object)
        notes.append(f"no admin level {n - 1} pcode field: parent_pcode left empty")
    names = (
        frame[layout["name"]].to_numpy(dtype=object)
        if layout["name"]
        else np.full(len(frame), None, dtype=object)
    )
    if layout["name"] is None:
        notes.append("no name field found: names left empty (give name_field)")
    keep = ~checks.bad
    areas = pd.DataFrame(
        {
            "pcode": pcodes,
            "name": [None if v is None or v != v or v == "" else str(v).strip() for v in names],
            "admin_level": n,
            "parent_pcode": [p or None for p in parents],
            "country_iso3": countries,
            "geometry": geometries,
        }
    )[keep]
    return ReadResult(
        frame=area_frame(areas),
        problems=checks.problems,
        rows_read=len(frame),
        rows_quarantined=checks.quarantined,
        notes=notes,
        meta={
            "admin_level": n,
            "layer": chosen,
            "pcode_field": layout["pcode"],
            "name_field": layout["name"],
            "parent_field": layout["parent"] if n >= 2 else None,
            "source_crs": source_crs,
            "countries": sorted(set(countries[keep])),
        },
    )
