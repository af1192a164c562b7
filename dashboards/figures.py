"""Plotly figures built from the plain data of :mod:`dashboards.data` (no database access)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import plotly.graph_objects as go

from dashboards.data import MapArea, MapData
from riskwatch.map_style import RISK_CLASS_COLOURS

NO_DATA_COLOUR = "#bdbdbd"
# Sequential, colour-blind safe, light = few, dark = many; grey stays reserved for "no data".
VALUE_COLOURSCALE = "YlOrRd"
BOUNDARY_COLOUR = "#444444"


def _feature_collection(areas: Sequence[MapArea]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": area.pcode, "properties": {}, "geometry": area.geometry}
            for area in areas
        ],
    }


def _coordinates(geometry: dict[str, Any]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []

    def walk(part: Any) -> None:
        if part and isinstance(part[0], (int, float)):
            points.append((float(part[0]), float(part[1])))
        else:
            for item in part:
                walk(item)

    walk(geometry.get("coordinates", []))
    return points


def map_view(areas: Sequence[MapArea]) -> tuple[dict[str, float], float]:
    """Centre and zoom that frame all areas (web-mercator zoom from the larger extent)."""
    points = [point for area in areas for point in _coordinates(area.geometry)]
    if not points:
        return {"lon": 0.0, "lat": 0.0}, 1.0
    lons = [lon for lon, _ in points]
    lats = [lat for _, lat in points]
    span = max(max(lons) - min(lons), (max(lats) - min(lats)) * 1.5, 1e-3)
    zoom = max(0.0, min(12.0, math.log2(360.0 / span) - 0.5))
    centre = {"lon": (min(lons) + max(lons)) / 2, "lat": (min(lats) + max(lats)) / 2}
    return centre, zoom


def choropleth_figure(data: MapData, value_label: str = "IDPs") -> go.Figure:
    """Boundaries coloured by value, areas without a value grey and labelled "no data".

    Two traces rather than one: a missing value must never take the colour of a small one.
    No base-map tiles ("white-bg"), so the map needs no network.
    """
    figure = go.Figure()
    with_data, without_data = data.with_data, data.without_data
    if without_data:
        figure.add_trace(
            go.Choroplethmap(
                geojson=_feature_collection(without_data),
                locations=[area.pcode for area in without_data],
                z=[0] * len(without_data),
                colorscale=[[0, NO_DATA_COLOUR], [1, NO_DATA_COLOUR]],
                showscale=False,
                customdata=[[area.name] for area in without_data],
                hovertemplate="<b>%{customdata[0]}</b> (%{location})<br>no data<extra></extra>",
                marker={"line": {"color": BOUNDARY_COLOUR, "width": 0.5}},
                name="no data",
            )
        )
    if with_data:
        figure.add_trace(
            go.Choroplethmap(
                geojson=_feature_collection(with_data),
                locations=[area.pcode for area in with_data],
                z=[area.value for area in with_data],
                colorscale=VALUE_COLOURSCALE,
                zmin=0,
                colorbar={"title": {"text": value_label}},
                customdata=[[area.name] for area in with_data],
                hovertemplate=(
                    "<b>%{customdata[0]}</b> (%{location})<br>"
                    + value_label
                    + ": %{z:,.0f}<extra></extra>"
                ),
                marker={"line": {"color": BOUNDARY_COLOUR, "width": 0.5}},
                name=value_label,
            )
        )
    centre, zoom = map_view(data.areas)
    figure.update_layout(
        map={"style": "white-bg", "center": centre, "zoom": zoom},
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        height=520,
        showlegend=False,
    )
    return figure


def series_figure(series: Sequence[tuple[date, float]], value_label: str = "IDPs") -> go.Figure:
    """A line of one variable over periods (markers, since rounds are irregular)."""
    figure = go.Figure(
        go.Scatter(
            x=[period.isoformat() for period, _ in series],
            y=[value for _, value in series],
            mode="lines+markers",
            name=value_label,
            hovertemplate="%{x}<br>" + value_label + ": %{y:,.0f}<extra></extra>",
        )
    )
    figure.update_layout(
        xaxis={"title": {"text": "period"}, "type": "date"},
        yaxis={"title": {"text": value_label}, "rangemode": "tozero"},
        margin={"l": 60, "r": 20, "t": 20, "b": 50},
        height=360,
    )
    return figure


def drivers_figure(
    drivers: Sequence[tuple[str, float]],
    labels: dict[str, str] | None = None,
    limit: int = 10,
) -> go.Figure:
    """Horizontal bars of the indicators' contributions to the risk score, largest on top
    (indicator names from ``labels``, else the ids made readable)."""
    shown = list(drivers)[:limit]
    names = labels or {}
    figure = go.Figure(
        go.Bar(
            x=[value for _, value in reversed(shown)],
            y=[names.get(name, name.replace("_", " ")) for name, _ in reversed(shown)],
            orientation="h",
            marker={"color": RISK_CLASS_COLOURS["high"]},
            hovertemplate="%{y}: %{x:.2f} points<extra></extra>",
            name="contribution",
        )
    )
    figure.update_layout(
        xaxis={"title": {"text": "contribution to the risk score (points of 10)"},
               "rangemode": "tozero"},
        yaxis={"automargin": True},
        margin={"l": 10, "r": 20, "t": 10, "b": 50},
        height=max(180, 40 + 32 * len(shown)),
    )
    return figure


def risk_and_idps_figure(
    risk: Sequence[tuple[date, float | None]], idps: Sequence[tuple[date, float]]
) -> go.Figure:
    """Risk score (left axis, 0-10) and IDPs (right axis) over periods, markers per round.

    A period without a risk (insufficient data) is a gap in the line, not a zero.
    """
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        x=[period.isoformat() for period, _ in risk], y=[value for _, value in risk],
        mode="lines+markers", name="risk (0-10)", yaxis="y",
        line={"color": RISK_CLASS_COLOURS["very_high"]},
        hovertemplate="%{x}<br>risk: %{y:.2f}<extra></extra>",
    ))
    figure.add_trace(go.Scatter(
        x=[period.isoformat() for period, _ in idps], y=[value for _, value in idps],
        mode="lines+markers", name="IDPs", yaxis="y2", line={"color": "#2c7fb8", "dash": "dot"},
        hovertemplate="%{x}<br>IDPs: %{y:,.0f}<extra></extra>",
    ))
    figure.update_layout(
        xaxis={"title": {"text": "period"}, "type": "date"},
        yaxis={"title": {"text": "risk (0-10)"}, "range": [0, 10]},
        yaxis2={"title": {"text": "IDPs"}, "overlaying": "y", "side": "right",
                "rangemode": "tozero"},
        legend={"orientation": "h", "y": 1.12},
        margin={"l": 60, "r": 60, "t": 30, "b": 50},
        height=360,
    )
    return figure
