"""A standalone HTML map of risk classes that opens with no network connection (folium).

folium writes a Leaflet page that loads Leaflet, jQuery, Bootstrap and icon fonts from CDNs.
This module builds the map with folium, then removes every external ``<script src>`` and
``<link href>`` and inlines the vendored Leaflet 1.9.4 (``riskwatch/vendor/leaflet``, BSD-2,
licence kept beside it and quoted in the page) instead, so the file works on a laptop in a
meeting room without internet. No plugin that needs jQuery or Bootstrap is used, and no tile
layer is added unless one is configured: the admin boundaries and names are the map.

Colours, legend and the hatch of "insufficient data" come from :mod:`riskwatch.map_style`.
Attribution, licence notes and the sensitivity label are inside the page (visible footer and
``<meta>`` elements).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
import shapely

from riskwatch.map_style import (
    BOUNDARY_COLOUR,
    HATCH_COLOUR,
    INSUFFICIENT_DATA,
    RISK_CLASS_COLOURS,
    RISK_CLASS_LABELS,
    class_colour,
    legend_entries,
    normalise_class,
    svg_hatch_pattern,
)

LEAFLET_VERSION = "1.9.4"
VENDOR_FOLDER = Path(__file__).resolve().parent / "vendor" / "leaflet"
#: Simplification for the export (degrees, topology kept): about 100 m, plenty for a briefing.
SIMPLIFY_TOLERANCE = 0.001
COORDINATE_DECIMALS = 5

_EXTERNAL_SCRIPT = re.compile(
    r"<script[^>]*\bsrc\s*=\s*[\"'][^\"']*[\"'][^>]*>\s*</script>", re.IGNORECASE
)
_EXTERNAL_LINK = re.compile(r"<link[^>]*\bhref\s*=\s*[\"'][^\"']*[\"'][^>]*/?>", re.IGNORECASE)


@dataclass(frozen=True)
class MapNotes:
    """What every exported map carries about itself."""

    title: str
    attribution: str
    licence: str
    sensitivity: str
    note: str | None = None  # e.g. "SYNTHETIC DEMO DATA"


def leaflet_assets() -> tuple[str, str, str]:
    """The vendored Leaflet's JavaScript, CSS and licence text."""
    return (
        (VENDOR_FOLDER / "leaflet.js").read_text(encoding="utf-8"),
        (VENDOR_FOLDER / "leaflet.css").read_text(encoding="utf-8"),
        (VENDOR_FOLDER / "LICENSE").read_text(encoding="utf-8"),
    )


def _feature_collection(areas: Any) -> dict[str, Any]:
    features = []
    for row in areas.itertuples():
        geometry = row.geometry
        if geometry is None or geometry.is_empty:
            continue
        simple = shapely.simplify(geometry, SIMPLIFY_TOLERANCE, preserve_topology=True)
        if simple.is_empty:
            simple = geometry
        simple = shapely.set_precision(simple, 10**-COORDINATE_DECIMALS)
        if simple.is_empty:
            simple = geometry
        risk_class = normalise_class(getattr(row, "risk_class", None))
        risk = getattr(row, "risk", None)
        features.append(
            {
                "type": "Feature",
                "id": str(row.pcode),
                "properties": {
                    "pcode": str(row.pcode),
                    "name": str(row.name),
                    "risk_class": risk_class,
                    "class_label": RISK_CLASS_LABELS[risk_class],
                    "risk": None if risk is None or risk != risk else round(float(risk), 2),
                },
                "geometry": json.loads(shapely.to_geojson(simple)),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _style(feature: dict[str, Any]) -> dict[str, Any]:
    risk_class = feature["properties"]["risk_class"]
    return {
        "fillColor": class_colour(risk_class),
        "color": HATCH_COLOUR if risk_class == INSUFFICIENT_DATA else BOUNDARY_COLOUR,
        "weight": 0.7,
        "fillOpacity": 0.85,
    }


def _legend_html() -> str:
    rows = []
    for entry in legend_entries():
        swatch = (
            f'<svg width="18" height="12"><defs>{svg_hatch_pattern("rw-hatch-legend")}'
            '</defs><rect width="18" height="12" fill="url(#rw-hatch-legend)" '
            'stroke="#555"/></svg>'
            if entry.hatched
            else f'<svg width="18" height="12"><rect width="18" height="12" '
            f'fill="{entry.colour}" stroke="#555"/></svg>'
        )
        rows.append(f'<div class="rw-legend-row">{swatch} {html.escape(entry.label)}</div>')
    return (
        '<div id="rw-legend" class="rw-panel" role="region" aria-label="Legend">'
        "<strong>Risk class</strong>" + "".join(rows) + "</div>"
    )


_PAGE_STYLE = """
.rw-panel{position:absolute;z-index:1000;background:rgba(255,255,255,.94);padding:6px 9px;
 font:12px/1.35 system-ui,sans-serif;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3)}
#rw-title{top:8px;left:50px;font-size:15px;font-weight:600;max-width:60%}
#rw-note{top:44px;left:50px;background:#fff3cd;color:#6b4e00;font-weight:700}
#rw-legend{top:8px;right:8px}
.rw-legend-row{display:flex;gap:6px;align-items:center;margin-top:3px}
#rw-footer{bottom:4px;left:4px;right:4px;font-size:11px;max-height:30%;overflow:auto}
#rw-footer details{margin-top:4px}
#rw-footer pre{white-space:pre-wrap;font-size:10px}
"""


def build_offline_map_html(
    areas: Any,
    notes: MapNotes,
    *,
    tile_url: str | None = None,
    tile_attribution: str | None = None,
) -> str:
    """The standalone HTML map of ``areas`` (GeoDataFrame: pcode, name, risk_class, risk,
    geometry) with legend, title, attribution, licence notes and sensitivity label.

    The page loads nothing from the network: Leaflet is inlined, folium's CDN scripts and
    styles are removed. ``tile_url`` adds a base map (which then needs the network to show;
    the areas still draw without it).
    """
    collection = _feature_collection(areas)
    bounds = None
    drawable = [f for f in collection["features"] if f["geometry"]]
    if drawable:
        minx, miny, maxx, maxy = shapely.total_bounds(
            [shapely.from_geojson(json.dumps(f["geometry"])) for f in drawable]
        )
        bounds = [[float(miny), float(minx)], [float(maxy), float(maxx)]]
    fmap = folium.Map(
        tiles=None,
        location=[0, 0],
        zoom_start=2,
        control_scale=True,
        prefer_canvas=False,
        attribution_control=True,
    )
    if tile_url:
        folium.TileLayer(tiles=tile_url, attr=tile_attribution or "base map").add_to(fmap)
    layer = folium.GeoJson(
        collection,
        name="areas",
        style_function=_style,
        highlight_function=lambda _feature: {"weight": 2.5, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "pcode", "class_label", "risk"],
            aliases=["Area", "pcode", "Risk class", "Risk (0-10)"],
        ),
    )
    layer.add_to(fmap)
    if bounds:
        fmap.fit_bounds(bounds)
    page = fmap.get_root().render()

    leaflet_js, leaflet_css, leaflet_licence = leaflet_assets()
    page = _EXTERNAL_SCRIPT.sub("", page)
    page = _EXTERNAL_LINK.sub("", page)
    metas = "".join(
        f'<meta name="{name}" content="{html.escape(value)}">'
        for name, value in (
            ("riskwatch:attribution", notes.attribution),
            ("riskwatch:licence", notes.licence),
            ("riskwatch:sensitivity", notes.sensitivity),
        )
    )
    head = (
        f"<title>{html.escape(notes.title)}</title>{metas}"
        f"<style>{leaflet_css}</style><style>{_PAGE_STYLE}</style>"
        # Leaflet must exist before folium's map script runs, so it goes into the head.
        f"<script>{leaflet_js}</script>"
    )
    page = page.replace("<head>", "<head>" + head, 1)
    note = (
        f'<div id="rw-note" class="rw-panel" role="note">{html.escape(notes.note)}</div>'
        if notes.note
        else ""
    )
    footer = (
        '<div id="rw-footer" class="rw-panel">'
        f"<div><strong>{html.escape(notes.sensitivity)}</strong></div>"
        f"<div>Attribution: {html.escape(notes.attribution)}</div>"
        f"<div>Licence notes: {html.escape(notes.licence)}</div>"
        "<div>Areas with insufficient data are grey and hatched: not low risk, unknown.</div>"
        f"<details><summary>Map software: Leaflet {LEAFLET_VERSION} (BSD-2-Clause), folium"
        f"</summary><pre>{html.escape(leaflet_licence)}</pre></details></div>"
    )
    overlay = (
        f'<div id="rw-title" class="rw-panel">{html.escape(notes.title)}</div>'
        + note
        + _legend_html()
        + footer
    )
    map_name, layer_name = fmap.get_name(), layer.get_name()
    # Hatching: Leaflet's SVG renderer has no fill patterns, so the pattern is added to its
    # <svg> once drawn, and the no-data areas point their fill at it.
    hatch = svg_hatch_pattern("rw-hatch").replace("'", "\\'")
    finish = f"""<script>
(function () {{
  var map = {map_name}, areas = {layer_name};
  window.riskwatchMap = map; window.riskwatchAreas = areas;
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution({json.dumps(html.escape(notes.attribution))});
  var svg = map.getPanes().overlayPane.querySelector('svg');
  if (svg) {{
    var defs = document.createElementNS('http://www.w3.org/2000/svg', 'defs');
    defs.innerHTML = '{hatch}';
    svg.insertBefore(defs, svg.firstChild);
  }}
  areas.eachLayer(function (item) {{
    if (item.feature.properties.risk_class === {json.dumps(INSUFFICIENT_DATA)} && item._path) {{
      item._path.setAttribute('fill', 'url(#rw-hatch)');
    }}
  }});
}})();
</script>"""
    page = page.replace("</body>", overlay + "</body>", 1)
    closing = page.rfind("</html>")
    page = page[:closing] + finish + "\n" + page[closing:]
    return page


def external_references(page: str) -> list[str]:
    """URLs a page would fetch by itself (scripts, stylesheets): empty for an offline map."""
    return re.findall(
        r"<(?:script|link|img|iframe)[^>]*\b(?:src|href)\s*=\s*[\"']"
        r"((?:https?:)?//[^\"']+)",
        page,
        re.IGNORECASE,
    )


__all__ = ["MapNotes", "build_offline_map_html", "external_references", "RISK_CLASS_COLOURS"]
