"""Dash components for the dashboard's pages, built from plain data (no database access).

The layout served at ``/_dash-layout`` is a data-free shell (:func:`shell`); the page content is
filled in by a callback after the gate has checked the session, so nothing about the data or
the user is ever in the shell itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from urllib.parse import quote

from dash import dcc, html

from dashboards.auth import LOGOUT_PATH, CurrentUser
from dashboards.data import AreaDetail, DatabaseSummary, MapData
from dashboards.figures import choropleth_figure, series_figure
from riskwatch.timeutil import iso_utc

DEMO_BANNER_TEXT = "SYNTHETIC DEMO DATA — not a real country or crisis"
UNKNOWN_AREA_TEXT = "Unknown area"
MAX_LISTED_CHILDREN = 100
GRAPH_CONFIG = {"displaylogo": False, "responsive": True}


def area_href(pcode: str) -> str:
    """The dashboard URL of an area's page."""
    return "/area/" + quote(pcode, safe="")


def shell() -> html.Div:
    """The page frame: URL, header, banner slot and content slot, filled by the page callback."""
    return html.Div(
        className="app",
        children=[
            dcc.Location(id="url", refresh="callback-nav"),
            html.Header(
                id="page-header",
                className="page-header",
                children=html.Span("riskwatch", className="brand"),
            ),
            html.Div(id="demo-banner"),
            html.Main(
                id="page-content",
                className="page-content",
                children=html.P("Loading…", className="muted"),
            ),
        ],
    )


def header(user: CurrentUser) -> list[Any]:
    """Brand, who is logged in with which role, and the logout link."""
    scope = f" · countries: {', '.join(user.countries)}" if user.countries else ""
    return [
        dcc.Link("riskwatch", href="/", className="brand"),
        html.Span(
            className="user-info",
            children=[
                html.Span(user.username, className="user-name"),
                html.Span(f" ({user.role}){scope}", className="user-role"),
                # A plain link, not dcc.Link: logging out has to reach the server.
                html.A("Log out", href=LOGOUT_PATH, className="logout-link"),
            ],
        ),
    ]


def demo_banner(is_demo: bool) -> html.Div | None:
    """The banner that marks the synthetic demo database (None for a real database)."""
    if not is_demo:
        return None
    return html.Div(DEMO_BANNER_TEXT, className="demo-banner", role="note")


def _table(caption: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> html.Table:
    return html.Table(
        className="data-table",
        children=[
            html.Caption(caption),
            html.Thead(html.Tr([html.Th(column, scope="col") for column in columns])),
            html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows]),
        ],
    )


def summary_section(summary: DatabaseSummary) -> html.Section:
    """Tables of what the database holds: areas, current observations, latest ingests."""
    children: list[Any] = [html.H2("What the database holds")]
    if summary.areas_by_level:
        children.append(
            _table(
                "Areas by admin level",
                ["admin level", "areas"],
                [(level, f"{count:,}") for level, count in summary.areas_by_level.items()],
            )
        )
    else:
        children.append(html.P("No areas loaded yet."))
    if summary.observations_by_variable:
        children.append(
            _table(
                "Current observations by variable",
                ["variable", "observations"],
                [(name, f"{count:,}") for name, count in summary.observations_by_variable.items()],
            )
        )
    else:
        children.append(html.P("No observations loaded yet."))
    if summary.recent_batches:
        children.append(
            _table(
                "Latest ingest batches",
                ["batch", "source", "kind", "status", "rows stored", "quarantined", "finished"],
                [
                    (
                        batch.id,
                        batch.source_title or batch.source_id,
                        batch.kind,
                        batch.status,
                        f"{batch.rows_stored:,}",
                        f"{batch.rows_quarantined:,}",
                        iso_utc(batch.finished_at) or "not finished",
                    )
                    for batch in summary.recent_batches
                ],
            )
        )
    else:
        children.append(html.P("No ingest batches yet."))
    return html.Section(className="summary", children=children)


def map_section(data: MapData) -> html.Section:
    """The choropleth of the finest admin level, or a note when there is nothing to draw."""
    if not data.areas:
        return html.Section(
            className="map",
            children=[html.H2("Map"), html.P("No area boundaries loaded yet.")],
        )
    period = data.period.isoformat() if data.period else "no period with data"
    title = f"IDPs by area, admin level {data.admin_level}, {period}"
    return html.Section(
        className="map",
        children=[
            html.H2(title),
            html.P(
                f"{len(data.with_data)} of {len(data.areas)} areas have a value for this "
                "period; grey areas have no data (not zero). Click an area for its page.",
                className="muted",
            ),
            dcc.Graph(
                id="area-map",
                figure=choropleth_figure(data),
                config=GRAPH_CONFIG,
                className="map-graph",
            ),
        ],
    )


def overview_page(summary: DatabaseSummary, data: MapData) -> list[Any]:
    """The home page: the map and the summary of the database."""
    return [html.H1("Overview"), map_section(data), summary_section(summary)]


def area_page(detail: AreaDetail, series: Sequence[tuple[date, float]]) -> list[Any]:
    """An area's identity, its place in the hierarchy and its IDP figures over time."""
    parent: Any
    if detail.parent is not None:
        parent = dcc.Link(
            f"{detail.parent.name} ({detail.parent.pcode})", href=area_href(detail.parent.pcode)
        )
    elif detail.parent_pcode:
        parent = detail.parent_pcode
    else:
        parent = "none"
    facts = html.Dl(
        className="facts",
        children=[
            html.Dt("pcode"),
            html.Dd(detail.pcode),
            html.Dt("admin level"),
            html.Dd(str(detail.admin_level)),
            html.Dt("country"),
            html.Dd(detail.country_iso3),
            html.Dt("parent"),
            html.Dd(parent),
        ],
    )
    children: list[Any] = [
        dcc.Link("← Overview", href="/", className="back-link"),
        html.H1(detail.name),
        facts,
    ]
    if detail.children:
        shown = detail.children[:MAX_LISTED_CHILDREN]
        items = [
            html.Li(dcc.Link(f"{child.name} ({child.pcode})", href=area_href(child.pcode)))
            for child in shown
        ]
        if len(detail.children) > len(shown):
            items.append(html.Li(f"and {len(detail.children) - len(shown)} more"))
        children += [html.H2("Sub-areas"), html.Ul(items, className="children")]
    children.append(html.H2("IDPs over time"))
    if series:
        children.append(
            dcc.Graph(id="area-series", figure=series_figure(series), config=GRAPH_CONFIG)
        )
    else:
        children.append(html.P("No IDP figures for this area (no data, not zero)."))
    return children


def unknown_area_page(pcode: str) -> list[Any]:
    """The friendly answer for a pcode that is not a known area (or not visible to the user)."""
    return [
        html.H1(UNKNOWN_AREA_TEXT),
        html.P(f"There is no area with the pcode {pcode!r} in this database."),
        dcc.Link("← Overview", href="/"),
    ]


def not_found_page(path: str) -> list[Any]:
    """Any other path inside the dashboard."""
    return [
        html.H1("Page not found"),
        html.P(f"The dashboard has no page at {path}."),
        dcc.Link("← Overview", href="/"),
    ]
