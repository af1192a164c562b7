"""Writing an export (:class:`riskwatch.exports.ExportTable`) as csv, geojson, gpkg, html, png.

html and png are maps of risk classes (``scores``): a standalone folium page that opens without
a network (:mod:`riskwatch.offline_map`) and an image drawn by matplotlib
(:mod:`riskwatch.map_png`); both carry attribution, licence notes and the sensitivity label.

Deterministic: no timestamps and one number format, so the same data gives the same bytes.
Streamed in chunks of rows, so a large export is never held as text in memory.

Number format (csv cells and GeoJSON number tokens): an integral value within +/-2**53 is
written without decimals (``1250``, never ``1250.0``); any other value as the shortest decimal
that reads back as exactly the same 64-bit float, in positional notation (``0.35``,
``0.000012``, never ``1.2e-05``). A missing or suppressed value is an empty cell (``null`` in
GeoJSON, NULL in gpkg).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from riskwatch.exports import ExportTable, check_destination

DEMO_NOTE = "SYNTHETIC DEMO DATA - not a real country or crisis"

COORDINATE_DECIMALS = 6  # ~0.1 m: exact enough for admin boundaries, far smaller files
CSV_LINE_END = "\n"
_CHUNK_ROWS = 50_000  # rows formatted at a time: bounded memory for large exports
_MAX_EXACT_INTEGER = 2.0**53


def format_numbers(values: pd.Series) -> list[str]:
    """CSV text of float values, by the module's number rule (blank for missing)."""
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    out = np.full(len(numbers), "", dtype=object)
    finite = np.isfinite(numbers)
    integral = finite & (np.floor(numbers) == numbers) & (np.abs(numbers) < _MAX_EXACT_INTEGER)
    out[integral] = numbers[integral].astype(np.int64).astype(str)
    rest = np.flatnonzero(finite & ~integral)
    out[rest] = [np.format_float_positional(numbers[i], unique=True, trim="-") for i in rest]
    return out.tolist()


def _text_cells(values: pd.Series, kind: str) -> list[str]:
    """One column's CSV cells: exact, blank for missing (column-wise, not value by value)."""
    if kind == "number":
        return format_numbers(values)
    missing = values.isna()
    if kind == "integer":
        if not missing.any():
            return values.astype("int64").astype("str").tolist()
        return ["" if gone else str(int(v))
                for v, gone in zip(values.tolist(), missing.tolist(), strict=True)]
    if kind == "date":
        # Few distinct periods: format each once.
        distinct = {v: v.isoformat() for v in values[~missing].unique()}
        return values.map(distinct).astype("object").where(~missing, "").tolist()
    return values.astype("str").where(~missing, "").tolist()


def _chunks(frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), _CHUNK_ROWS):
        yield frame.iloc[start:start + _CHUNK_ROWS]


def write_csv(table: ExportTable, stream: IO[str]) -> None:
    """Header row, HXL hashtag row, data rows; nothing else (CONTRACTS.md, "Exports")."""
    writer = csv.writer(stream, lineterminator=CSV_LINE_END)
    writer.writerow(table.spec.names)
    writer.writerow([column.hxl for column in table.spec.columns])
    for chunk in _chunks(table.frame):
        cells = [_text_cells(chunk[c.name], c.kind) for c in table.spec.columns]
        writer.writerows(zip(*cells, strict=True))


def _json_cells(values: pd.Series, kind: str) -> list[str]:
    """One column's GeoJSON property values as JSON tokens (numbers as in the CSV)."""
    if kind in ("number", "integer"):
        cells = format_numbers(values.astype("float64"))
        return [cell or "null" for cell in cells]
    texts = _text_cells(values, kind)
    missing = values.isna().tolist()
    return ["null" if gone else json.dumps(text, ensure_ascii=False)
            for text, gone in zip(texts, missing, strict=True)]


def geometry_json(geometries: list[BaseGeometry | None]) -> list[str]:
    """GeoJSON geometry texts, coordinates rounded to COORDINATE_DECIMALS ("null" for none)."""
    array = np.array(geometries, dtype=object)
    present = np.array([g is not None for g in geometries], dtype=bool)
    out = np.full(len(geometries), "null", dtype=object)
    if present.any():
        rounded = shapely.transform(
            array[present], lambda coords: np.round(coords, COORDINATE_DECIMALS)
        )
        out[present] = shapely.to_geojson(rounded)
    return out.tolist()


def write_geojson(table: ExportTable, stream: IO[str]) -> None:
    """A FeatureCollection: one feature per row, the CSV columns as properties.

    Attribution, licence and sensitivity are foreign members of the collection. Areas without a
    boundary (gazetteer) have ``"geometry": null``. Streamed feature by feature.
    """
    about = table.about
    head = {
        "type": "FeatureCollection",
        "attribution": about.attribution,
        "licence": about.licence,
        "sensitivity": about.sensitivity,
        "sources": [
            {"id": s.id, "title": s.title, "attribution": s.attribution, "licence": s.licence}
            for s in about.sources
        ],
        "export": {"what": about.what, "filters": about.filters,
                   "schema_revision": about.schema_revision, "rows": about.rows,
                   "suppressed_values": about.suppressed},
    }
    stream.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [\n')
    keys = [json.dumps(c.name) for c in table.spec.columns]
    with_id = table.spec.what == "areas"  # pcode is unique only among areas
    first = True
    for chunk in _chunks(table.frame):
        cells = [_json_cells(chunk[c.name], c.kind) for c in table.spec.columns]
        pcodes = chunk["pcode"].tolist()
        # Observation rows repeat their area: convert each area's geometry once per chunk.
        distinct = list(dict.fromkeys(pcodes))
        shape_of = dict(zip(distinct, geometry_json([table.geometries.get(p) for p in distinct]),
                            strict=True))
        shapes = [shape_of[pcode] for pcode in pcodes]
        for pcode, shape_json, *values in zip(pcodes, shapes, *cells, strict=True):
            properties = ", ".join(f"{k}: {v}" for k, v in zip(keys, values, strict=True))
            feature_id = f'"id": {json.dumps(pcode, ensure_ascii=False)}, ' if with_id else ""
            stream.write(("" if first else ",\n") + '{"type": "Feature", ' + feature_id
                         + f'"properties": {{{properties}}}, "geometry": {shape_json}}}')
            first = False
    stream.write("\n]}\n")


def _gpkg_frame(table: ExportTable) -> Any:
    import geopandas as gpd

    frame = table.frame
    columns: dict[str, Any] = {}
    for column in table.spec.columns:
        values = frame[column.name]
        if column.kind == "date":
            columns[column.name] = _text_cells(values, "date")
        elif column.kind == "text":
            columns[column.name] = values.astype("object").where(values.notna(), None)
        else:
            columns[column.name] = values
    geometry = [table.geometries.get(pcode) for pcode in frame["pcode"].tolist()]
    return gpd.GeoDataFrame(columns, geometry=geometry, crs="EPSG:4326")


def write_gpkg(table: ExportTable, path: Path) -> None:
    """A layer named after the export (same rows and columns) and a non-spatial ``about`` table.

    The about pairs are also the layer's metadata, for tools that show that instead.
    """
    import pyogrio

    about = dict(table.about.items())
    layer = _gpkg_frame(table)
    pyogrio.write_dataframe(layer, path, layer=table.spec.what, driver="GPKG",
                            geometry_type="MultiPolygon", promote_to_multi=True,
                            layer_metadata=about)
    pairs = pd.DataFrame(table.about.items(), columns=["key", "value"])
    pyogrio.write_dataframe(pairs, path, layer="about", driver="GPKG")


def map_frame(table: ExportTable) -> Any:
    """The export's rows as a GeoDataFrame for the map formats (pcode, name, risk_class, risk,
    geometry); areas without a boundary keep an empty geometry and are not drawn."""
    import geopandas as gpd

    frame = table.frame
    pcodes = frame["pcode"].astype(str).tolist()
    return gpd.GeoDataFrame(
        {
            "pcode": pcodes,
            "name": [table.names.get(pcode, pcode) for pcode in pcodes],
            "risk_class": frame["risk_class"].astype("object").tolist(),
            "risk": pd.to_numeric(frame["risk"], errors="coerce").tolist(),
        },
        geometry=[table.geometries.get(pcode) for pcode in pcodes],
        crs="EPSG:4326",
    )


def map_title(table: ExportTable) -> str:
    """A map's title: what, admin level, period(s) and run, from the export's filters."""
    periods = sorted({p.isoformat() for p in table.frame["period"].dropna().tolist()})
    when = (periods[0] if len(periods) == 1 else
            f"{periods[0]} to {periods[-1]} (latest of each country)" if periods else "no data")
    level = table.about.filters.get("level", "?").split(" ")[0]
    run = table.about.filters.get("run", "?").split(" ")[0]
    return f"Trafficking risk by area - admin level {level}, {when} (score run {run})"


def map_footer(table: ExportTable) -> str:
    """The provenance printed on a PNG map: sensitivity, attribution, licence notes."""
    about = table.about
    demo = f"{DEMO_NOTE}. " if table.is_demo else ""
    return (f"{demo}{about.sensitivity}\nAttribution: {about.attribution}\n"
            f"Licence notes: {about.licence}\nMade with riskwatch; grey hatched areas have "
            "insufficient data (unknown risk, not low).")


def write_html(table: ExportTable, stream: IO[str]) -> None:
    """A standalone HTML map of the scores' risk classes (no network needed to open it)."""
    from riskwatch.offline_map import MapNotes, build_offline_map_html

    about = table.about
    notes = MapNotes(title=map_title(table), attribution=about.attribution,
                     licence=about.licence, sensitivity=about.sensitivity,
                     note=DEMO_NOTE if table.is_demo else None)
    stream.write(build_offline_map_html(map_frame(table), notes))


def png_bytes(table: ExportTable, *, width_px: int = 1200, height_px: int = 900) -> bytes:
    """A PNG map of the scores' risk classes, provenance drawn in and in its text chunks."""
    from riskwatch.map_png import render_map_png

    about = table.about
    return render_map_png(
        map_frame(table), title=map_title(table), footer=map_footer(table),
        width_px=width_px, height_px=height_px,
        metadata={"Attribution": about.attribution, "Licence": about.licence,
                  "Sensitivity": about.sensitivity,
                  **({"Note": DEMO_NOTE} if table.is_demo else {})},
    )


def sidecar_path(out: Path) -> Path:
    """``PATH.about.txt`` beside a csv export at ``PATH``."""
    return out.with_name(out.name + ".about.txt")


def _replace_atomically(target: Path, write: Callable[[Path], None], suffix: str = "") -> None:
    """Write to a temporary file beside ``target``, then rename: no half-written exports.

    ``suffix`` ends the temporary name (GDAL wants ``.gpkg`` on a GeoPackage).
    """
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}{suffix}")
    try:
        partial.unlink(missing_ok=True)
        write(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _write_text_file(target: Path, write: Callable[[IO[str]], None]) -> None:
    def to_path(path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as stream:
            write(stream)

    _replace_atomically(target, to_path)


def write_export(table: ExportTable, export_format: str, *, out: Path | None,
                 stdout: IO[bytes]) -> list[Path]:
    """Write ``table`` to ``out`` (csv also gets its sidecar) or to ``stdout``; files written."""
    writers: dict[str, Callable[[ExportTable, IO[str]], None]] = {
        "csv": write_csv, "geojson": write_geojson, "html": write_html,
    }
    check_destination(export_format, out)
    if export_format == "gpkg":
        assert out is not None
        _replace_atomically(out, lambda path: write_gpkg(table, path), suffix=".gpkg")
        return [out]
    if export_format == "png":
        assert out is not None
        image = png_bytes(table)
        _replace_atomically(out, lambda path: path.write_bytes(image))
        return [out]
    write = writers[export_format]
    if out is None:
        # UTF-8 whatever the locale, and "\n" untranslated, so the bytes are the same everywhere.
        stream = io.TextIOWrapper(stdout, encoding="utf-8", newline="")
        try:
            write(table, stream)
            stream.flush()
        finally:
            stream.detach()  # leave standard output open for the caller
        return []
    _write_text_file(out, lambda stream: write(table, stream))
    if export_format != "csv":
        return [out]
    sidecar = sidecar_path(out)

    def write_sidecar(stream: IO[str]) -> None:
        stream.write(table.about.as_text(export_format))

    _write_text_file(sidecar, write_sidecar)
    return [out, sidecar]
