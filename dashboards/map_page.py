"""The map page: risk choropleth drawn in the browser from compact, cached geometry.

The page (``/``) is Dash components: selectors (country, admin level, variable, period), the
map container, the legend and the sources' attribution. The map itself is drawn by
``assets/riskmap.js`` on a canvas inside Leaflet (vendored, BSD-2), from two gated routes:

- ``/map/geometry``: one admin level's outlines for the user's countries, simplified and
  quantised once per boundary version (:mod:`riskwatch.map_geometry`), gzip-compressed. The
  whole level at one coarse level of detail first, then finer detail per tile as the user zooms.
- ``/map/values``: per area (in the order the geometry was sent) class, value, hotspot and
  staleness codes (:mod:`riskwatch.map_values`). Changing the period or the variable fetches
  only this, never the geometry again.

Every route is behind the gate of :mod:`dashboards.auth` (401 without a session) and honours the
user's country scope: a user limited to some countries asking for another gets 403, and by
default only ever receives their own countries' areas.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dash
import numpy as np
from dash import ClientsideFunction, Input, Output, dcc, html
from dash.exceptions import PreventUpdate
from flask import (
    Flask,
    Response,
    abort,
    has_app_context,
    request,
    send_from_directory,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboards.auth import CurrentUser, current_user, web_context
from riskwatch import map_geometry, map_values
from riskwatch.config import Settings
from riskwatch.db.models import Meta
from riskwatch.hotspots import HOTSPOT_CLASSES, TEMPORAL_CLASSES
from riskwatch.map_style import (
    ALL_CLASSES,
    BOUNDARY_COLOUR,
    HATCH_COLOUR,
    HATCHED_CLASSES,
    RISK_CLASS_COLOURS,
    RISK_CLASS_LABELS,
)

GEOMETRY_PATH = "/map/geometry"
VALUES_PATH = "/map/values"
VENDOR_PATH = "/map/vendor/<path:filename>"
VENDOR_FOLDER = Path(__file__).resolve().parents[1] / "riskwatch" / "vendor" / "leaflet"
VENDOR_COMPRESSED = {"leaflet.js": "text/javascript", "leaflet.css": "text/css"}
LATEST = "latest"
ALL_COUNTRIES = "all"
KEY_TTL_SECONDS = 10.0  # how long a boundary fingerprint is trusted before it is re-checked
COMPRESSED_CACHE_ENTRIES = 32
STALE_TTL_SECONDS = 60.0
DEMO_MAP_LABEL = "SYNTHETIC DEMO DATA"
HOTSPOT_LEGEND = (
    ("hot", "Hotspot (Gi*, FDR-adjusted): thick dark outline"),
    ("cold", "Cold spot: dashed blue outline"),
    ("emerging", "New or intensifying hotspot: dot"),
    ("stale", "Stale source data: cross-hatched"),
)


# Pure functions (unit-tested) ---------------------------------------------------------------
class ScopeError(Exception):
    """A request for a country outside the user's scope."""


def allowed_countries(
    user_countries: Sequence[str] | None, requested: Sequence[str] | None
) -> list[str] | None:
    """The countries a request may see: the requested ones, checked against the user's scope.

    None means every country (an unrestricted user asking for all). A restricted user asking for
    nothing gets their own countries; asking for any other raises :class:`ScopeError`.
    """
    wanted = sorted({code.strip().upper() for code in requested or [] if code.strip()})
    if user_countries:
        scope = {code.upper() for code in user_countries}
        outside = [code for code in wanted if code not in scope]
        if outside:
            raise ScopeError(f"outside your countries: {', '.join(outside)}")
        return wanted or sorted(scope)
    return wanted or None


def parse_countries(value: str | None) -> list[str]:
    """``"AAA,BBB"`` (or empty / ``all``) as a list of codes."""
    if not value or value == ALL_COUNTRIES:
        return []
    return [part for part in value.split(",") if part.strip()]


def parse_period(value: str | None) -> date | None:
    """``latest`` / empty as None, else an ISO date (ValueError otherwise)."""
    if not value or value == LATEST:
        return None
    return date.fromisoformat(value)


def map_state(
    user: CurrentUser,
    choices: map_values.MapChoices,
    *,
    country: str | None,
    level: int | None,
    variable: str | None,
    period: str | None,
    tile_url: str = "",
    tile_attribution: str = "",
) -> dict[str, Any]:
    """What the browser map needs for the selectors' values (the map callback's pure core).

    Raises :class:`ScopeError` for a country outside the user's scope and ValueError for a
    level, variable or period that is not offered.
    """
    countries = allowed_countries(user.countries, parse_countries(country))
    if countries is not None and not set(countries) <= set(choices.countries):
        raise ValueError("no mapped areas in that country")
    if level is None or level not in choices.levels:
        raise ValueError(f"no mapped admin level {level!r}")
    variable = variable or map_values.RISK_VARIABLE
    labels = dict(choices.variables)
    if variable not in labels:
        raise ValueError(f"unknown variable {variable!r}")
    chosen = parse_period(period)
    if chosen is not None and chosen not in choices.periods:
        raise ValueError(f"no scores for the period {period}")
    return {
        "level": level,
        "variable": variable,
        "variable_label": labels[variable],
        "period": chosen.isoformat() if chosen else LATEST,
        "countries": ",".join(countries) if countries else ALL_COUNTRIES,
        "run": choices.run_id,
        "tile_url": tile_url,
        "tile_attribution": tile_attribution,
        "geometry_url": GEOMETRY_PATH,
        "values_url": VALUES_PATH,
        "vendor_url": "/map/vendor/",
    }


def tile_source_origin(tile_url: str) -> str | None:
    """The origin (scheme://host[:port]) of a base-map tile URL template, for the CSP; None
    when no tiles are configured or the URL is not http(s)."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "a").replace("{z}", "0").replace("{x}", "0")
                     .replace("{y}", "0"))  # fmt: skip
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = parts.netloc
    if "{s}" in tile_url.split("//", 1)[-1].split("/", 1)[0]:
        host = "*." + host.split(".", 1)[1]  # Leaflet's subdomains a, b, c
    return f"{parts.scheme}://{host}"


def legend_entries() -> list[dict[str, Any]]:
    """The legend rows: the five risk classes and insufficient data (hatched)."""
    return [
        {
            "class": name,
            "label": RISK_CLASS_LABELS[name],
            "colour": RISK_CLASS_COLOURS[name],
            "hatched": name in HATCHED_CLASSES,
        }
        for name in ALL_CLASSES
    ]


def default_level(levels: Sequence[int], wanted: int | None = None) -> int | None:
    """The level shown first: ``wanted`` when mapped, else the finest one."""
    if wanted is not None and wanted in levels:
        return wanted
    return max(levels) if levels else None


# Page ---------------------------------------------------------------------------------------
def _is_demo(db: Session) -> bool:
    meta = db.get(Meta, "database_kind")
    return meta is not None and meta.value == "demo"


def _legend() -> html.Div:
    rows = []
    for entry in legend_entries():
        swatch_class = "riskmap-swatch" + (" riskmap-hatched" if entry["hatched"] else "")
        rows.append(
            html.Li(
                [
                    html.Span(className=swatch_class, style={"backgroundColor": entry["colour"]}),
                    html.Span(entry["label"]),
                ],
                className="riskmap-legend-entry",
                **{"data-class": entry["class"]},
            )
        )
    for name, label in HOTSPOT_LEGEND:
        rows.append(
            html.Li(
                [html.Span(className=f"riskmap-symbol riskmap-symbol-{name}"), html.Span(label)],
                className="riskmap-legend-overlay",
            )
        )
    return html.Div(
        className="riskmap-legend",
        children=[
            html.H2("Legend", className="riskmap-legend-title"),
            html.Ul(rows),
            html.P(
                "Colours: ColorBrewer YlOrRd (sequential, colour-blind safe); grey hatched "
                "= insufficient data, never low risk.",
                className="muted small",
            ),
        ],
    )


def map_page_content(db: Session, user: CurrentUser, settings: Settings | None = None) -> list[Any]:
    """The map page's components for ``user`` (selectors offer only their countries)."""
    choices = map_values.map_choices(db, user.countries)
    if not choices.levels:
        return [html.H1("Risk map"), html.P("No area boundaries loaded yet.")]
    level = default_level(choices.levels)
    demo = _is_demo(db)
    countries = choices.countries
    country_options = [{"label": code, "value": code} for code in countries]
    if len(countries) > 1:
        country_options.insert(0, {"label": "All countries", "value": ALL_COUNTRIES})
    period_options = [{"label": "Latest round", "value": LATEST}] + [
        {"label": period.isoformat(), "value": period.isoformat()} for period in choices.periods
    ]
    run_note = (
        f"Score run {choices.run_id}, data as of {choices.data_as_of:%Y-%m-%d %H:%M} UTC"
        if choices.run_id and choices.data_as_of
        else "No score run yet: every area shows as insufficient data."
    )
    attributions = map_values.source_attributions(db)
    attribution_text = "; ".join(item.text() for item in attributions) or "no sources recorded"
    if settings is None and has_app_context():
        settings = web_context().settings
    tile_attribution = settings.map.tile_attribution if settings is not None else ""

    def selector(label: str, component: Any) -> html.Label:
        return html.Label(
            [html.Span(label, className="riskmap-control-label"), component],
            className="riskmap-control",
        )

    controls = html.Div(
        className="riskmap-controls",
        children=[
            selector(
                "Country",
                dcc.Dropdown(
                    id="map-country",
                    options=country_options,
                    clearable=False,
                    value=ALL_COUNTRIES if len(countries) > 1 else countries[0],
                ),
            ),
            selector(
                "Admin level",
                dcc.Dropdown(
                    id="map-level",
                    clearable=False,
                    value=level,
                    options=[{"label": f"Admin {lv}", "value": lv} for lv in choices.levels],
                ),
            ),
            selector(
                "Show",
                dcc.Dropdown(
                    id="map-variable",
                    clearable=False,
                    value=map_values.RISK_VARIABLE,
                    options=[
                        {"label": label, "value": value} for value, label in choices.variables
                    ],
                ),
            ),
            selector(
                "Round / period",
                dcc.Dropdown(
                    id="map-period", options=period_options, value=LATEST, clearable=False
                ),
            ),
        ],
    )
    initial_state = map_state(
        user,
        choices,
        country=ALL_COUNTRIES if len(countries) > 1 else countries[0],
        level=level,
        variable=map_values.RISK_VARIABLE,
        period=LATEST,
        tile_url=settings.map.tile_url if settings is not None else "",
        tile_attribution=tile_attribution,
    )
    frame_children: list[Any] = [
        html.Div(
            id="riskmap",
            className="riskmap-canvas",
            role="region",
            # The canvas has no text of its own: the status line below says what it shows.
            **{"aria-label": "Risk map", "aria-describedby": "riskmap-status"},
        )
    ]
    if demo:
        frame_children.append(html.Div(DEMO_MAP_LABEL, className="riskmap-demo-label"))
    return [
        html.H1("Risk map"),
        html.P(
            [run_note, " · Click an area for its panel; scroll or use +/- to zoom."],
            className="muted",
        ),
        controls,
        # The first state is in the page, so the map starts loading without another round trip.
        dcc.Store(id="map-state", data=initial_state),
        html.Div(id="riskmap-sink", hidden=True),
        html.Div(
            className="riskmap-layout",
            children=[
                html.Div(frame_children, className="riskmap-frame"),
                _legend(),
            ],
        ),
        html.P(id="riskmap-status", className="muted small", **{"aria-live": "polite"}),
        html.P(
            [
                "Sources: ",
                attribution_text,
                *([" · Base map: ", tile_attribution] if tile_attribution else []),
            ],
            className="riskmap-attribution small",
        ),
    ]


# Routes -------------------------------------------------------------------------------------
@dataclass
class MapService:
    """The map routes' state: geometry cache, boundary fingerprints, compressed answers."""

    engine: Engine
    cache: map_geometry.GeometryCache

    def __post_init__(self) -> None:
        self._keys: dict[int, tuple[float, str]] = {}
        self._compressed: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._stale: tuple[float, int, set[str]] | None = None
        self._lock = threading.Lock()

    def key(self, level: int) -> str:
        """The level's boundary fingerprint, re-checked at most every KEY_TTL_SECONDS."""
        now = time.monotonic()
        with self._lock:
            cached = self._keys.get(level)
        if cached is not None and now - cached[0] < KEY_TTL_SECONDS:
            return cached[1]
        with Session(self.engine) as db:
            key = map_geometry.level_key(db, level)
        with self._lock:
            self._keys[level] = (now, key)
        return key

    def geometry(self, level: int, lod: int) -> map_geometry.LevelGeometry:
        """The level at ``lod`` for the current boundary version (cached)."""
        return self.cache.get(self.engine, level, lod, key=self.key(level))

    def compressed(self, cache_key: tuple[Any, ...], build: Any) -> bytes:
        """gzip of ``build()``, kept for identical requests (the key includes the scope)."""
        with self._lock:
            found = self._compressed.get(cache_key)
            if found is not None:
                self._compressed.move_to_end(cache_key)
                return found
        body = gzip.compress(build(), compresslevel=6)
        with self._lock:
            self._compressed[cache_key] = body
            while len(self._compressed) > COMPRESSED_CACHE_ENTRIES:
                self._compressed.popitem(last=False)
        return body

    def stale(self) -> tuple[int, set[str]]:
        """(version, pcodes with stale source data), re-read at most every STALE_TTL_SECONDS."""
        now = time.monotonic()
        with self._lock:
            cached = self._stale
        if cached is not None and now - cached[0] < STALE_TTL_SECONDS:
            return cached[1], cached[2]
        with Session(self.engine) as db:
            pcodes = map_values.stale_pcodes(db)
        with self._lock:
            # A new version (and new cached values) only when the set itself changed.
            previous = self._stale
            if previous is None:
                version = 0
            else:
                version = previous[1] if previous[2] == pcodes else previous[1] + 1
            self._stale = (now, version, pcodes)
        return version, pcodes


def _gzip_response(body: bytes, mimetype: str, compressed: bool) -> Response:
    response = Response(body, mimetype=mimetype)
    if compressed:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    return response


def _accepts_gzip() -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


def _request_scope() -> list[str] | None:
    user = current_user()
    if user is None:  # the gate answers first; this guards against a misconfiguration
        abort(401)
    try:
        return allowed_countries(user.countries, parse_countries(request.args.get("countries")))
    except ScopeError:
        abort(403)


def _int_arg(name: str, default: int | None = None) -> int:
    value = request.args.get(name)
    if value is None:
        if default is None:
            abort(400)
        return default
    try:
        return int(value)
    except ValueError:
        abort(400)


def install_map(server: Flask, dash_app: dash.Dash, engine: Engine, settings: Settings) -> None:
    """Add the map's routes and callbacks (all behind the gate that ``create_app`` installed)."""
    service = MapService(
        engine=engine,
        cache=map_geometry.GeometryCache(settings.resolved_data_dir / map_geometry.CACHE_FOLDER),
    )
    server.extensions["riskwatch_map"] = service

    def geometry_view() -> Response:
        countries = _request_scope()
        level = _int_arg("level")
        lod = _int_arg("lod", -1)
        tile = request.args.get("tile")
        if lod < 0 or lod >= len(map_geometry.LOD_ZOOMS):
            # The first request of a level: the LOD that fits the whole selection.
            extent = service.cache.extent(engine, level, service.key(level))
            lod = map_geometry.first_lod(extent.bboxes, extent.countries, countries)
        geometry = service.geometry(level, lod)
        selection = geometry.select(countries)
        scope = tuple(countries) if countries is not None else None
        extra: dict[str, Any] = {"tile": tile, "countries": list(scope or [])}

        def build() -> bytes:
            if not tile:
                extra["bounds"] = list(geometry.bounds(selection))
                extra["lod_zooms"] = list(map_geometry.LOD_ZOOMS)
                extra["tile_zoom_offset"] = map_geometry.TILE_ZOOM_OFFSET
                return map_geometry.encode(
                    geometry, selection, np.arange(len(selection)), with_meta=True, extra=extra
                )
            try:
                z, x, y = (int(part) for part in tile.split("/"))
            except ValueError:
                abort(400)
            if z != map_geometry.tile_zoom(lod):
                abort(400)
            inside = geometry.select(countries, map_geometry.tile_bounds(z, x, y))
            ids = np.searchsorted(selection, inside)
            return map_geometry.encode(geometry, inside, ids, with_meta=False, extra=extra)

        cache_key = (geometry.key, level, lod, scope, tile)
        if _accepts_gzip():
            body = service.compressed(cache_key, build)
            return _gzip_response(body, "application/octet-stream", True)
        return _gzip_response(build(), "application/octet-stream", False)

    def values_view() -> Response:
        countries = _request_scope()
        level = _int_arg("level")
        variable = request.args.get("variable") or map_values.RISK_VARIABLE
        try:
            period = parse_period(request.args.get("period"))
        except ValueError:
            abort(400)
        # The order of the areas is the geometry's, at every LOD: no geometry needed here.
        key = service.key(level)
        extent = service.cache.extent(engine, level, key)
        pcodes = extent.pcodes[extent.select(countries)].tolist()
        with Session(engine) as db:
            run = map_values.latest_run(db)
        stale_version, stale = service.stale()

        def build() -> bytes:
            with Session(engine) as db:
                try:
                    values = map_values.area_values(
                        db, pcodes, level=level, variable=variable, period=period, stale=stale
                    )
                except ValueError:
                    abort(400)
            payload = values.as_json()
            payload["key"] = key
            payload["areas"] = len(pcodes)
            return json.dumps(payload, separators=(",", ":")).encode("utf-8")

        # The same answer for everyone allowed these countries until a new score run, new
        # boundaries or a new staleness check: computed once, kept compressed.
        scope = tuple(countries) if countries is not None else None
        cache_key = ("values", key, run.id if run else None, level, variable, period, scope,
                     stale_version)  # fmt: skip
        body = service.compressed(cache_key, build)
        if _accepts_gzip():
            return _gzip_response(body, "application/json", True)
        return _gzip_response(gzip.decompress(body), "application/json", False)

    def vendor_view(filename: str) -> Response:
        if filename in VENDOR_COMPRESSED and _accepts_gzip():
            path = VENDOR_FOLDER / filename
            body = service.compressed(("vendor", filename), path.read_bytes)
            response = _gzip_response(body, VENDOR_COMPRESSED[filename], True)
            return response
        return send_from_directory(VENDOR_FOLDER, filename, max_age=86400)

    tile_origin = tile_source_origin(settings.map.tile_url)
    if tile_origin:
        # The app's Content-Security-Policy allows images from this site only; configured
        # base-map tiles come from their server. This runs after the app's header hook.
        def allow_tiles(response: Response) -> Response:
            policy = response.headers.get("Content-Security-Policy")
            if policy and "img-src " in policy:
                response.headers["Content-Security-Policy"] = policy.replace(
                    "img-src ", f"img-src {tile_origin} ", 1
                )
            return response

        server.after_request(allow_tiles)

    server.add_url_rule(GEOMETRY_PATH, "map_geometry", geometry_view)
    server.add_url_rule(VALUES_PATH, "map_values", values_view)
    server.add_url_rule(VENDOR_PATH, "map_vendor", vendor_view)
    register_map_callbacks(dash_app, engine, settings)


def register_map_callbacks(dash_app: dash.Dash, engine: Engine, settings: Settings) -> None:
    """The selectors -> map state callback, and the browser-side redraw."""

    @dash_app.callback(
        Output("map-state", "data"),
        Input("map-country", "value"),
        Input("map-level", "value"),
        Input("map-variable", "value"),
        Input("map-period", "value"),
        prevent_initial_call=True,
    )
    def update_map_state(
        country: str | None, level: int | None, variable: str | None, period: str | None
    ) -> dict[str, Any]:
        user = current_user()
        if user is None:
            raise PreventUpdate
        with Session(engine) as db:
            choices = map_values.map_choices(db, user.countries)
        try:
            return map_state(
                user,
                choices,
                country=country,
                level=level,
                variable=variable,
                period=period,
                tile_url=settings.map.tile_url,
                tile_attribution=settings.map.tile_attribution,
            )
        except ScopeError:
            abort(403)
        except ValueError as error:
            raise PreventUpdate from error

    dash_app.clientside_callback(
        ClientsideFunction(namespace="riskmap", function_name="update"),
        Output("riskmap-sink", "children"),
        Input("map-state", "data"),
    )


# For the legend overlay symbols and tests.
STYLE = {
    "boundary": BOUNDARY_COLOUR,
    "hatch": HATCH_COLOUR,
    "hotspot_classes": list(HOTSPOT_CLASSES),
    "temporal_classes": list(TEMPORAL_CLASSES),
}
