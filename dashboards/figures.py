"""Plotly figures built from the plain data of :mod:`dashboards.data` (no database access)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import plotly.graph_objects as go

from riskwatch.map_style import RISK_CLASS_COLOURS


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
