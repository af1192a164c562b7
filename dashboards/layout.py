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

from dashboards.auth import LOGOUT_PATH, PAGE_ROLES, CurrentUser
from dashboards.data import (
    AlertSummary,
    AreaDetail,
    AreaScoreSummary,
    HotspotPoint,
    LineageRow,
)
from dashboards.figures import drivers_figure, risk_and_idps_figure
from riskwatch.map_style import RISK_CLASS_LABELS, class_colour, normalise_class
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


#: The navigation bar: (path, label), shown to the roles of PAGE_ROLES.
NAVIGATION: tuple[tuple[str, str], ...] = (
    ("/", "Map"),
    ("/alerts", "Alerts"),
    ("/health", "Data health"),
    ("/exports", "Exports"),
    ("/users", "Users"),
    ("/experts", "Experts"),
)


def navigation(user: CurrentUser, current: str = "/") -> html.Nav:
    """Links to the pages this user's role may open (the pages check again on the server)."""
    links = []
    for path, label in NAVIGATION:
        if user.role not in PAGE_ROLES[path]:
            continue
        active = current == path
        links.append(dcc.Link(label, href=path, id=f"nav-{path.strip('/') or 'map'}",
                              className="nav-link" + (" active" if active else ""),
                              title=f"{label} (current page)" if active else label))
    return html.Nav(links, className="main-nav", role="navigation")


def header(user: CurrentUser, current: str = "/") -> list[Any]:
    """Brand, the navigation, who is logged in with which role, and the logout link."""
    scope = f" · countries: {', '.join(user.countries)}" if user.countries else ""
    return [
        dcc.Link("riskwatch", href="/", className="brand"),
        navigation(user, current),
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


def table(
    caption: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], **extra: Any
) -> html.Table:
    """A data table: a caption, a header row and one row per item (``extra``: e.g. ``id``)."""
    return html.Table(
        className="data-table",
        children=[
            html.Caption(caption),
            html.Thead(html.Tr([html.Th(column, scope="col") for column in columns])),
            html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows]),
        ],
        **extra,
    )


def class_badge(risk_class: str | None) -> html.Span:
    """A risk class in its map colour (with the text, never colour alone)."""
    name = normalise_class(risk_class)
    return html.Span(RISK_CLASS_LABELS[name], className=f"class-badge class-{name}",
                     style={"background": class_colour(name),
                            "color": "#fff" if name in ("high", "very_high") else "#222"})


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def score_section(scores: AreaScoreSummary | None, stale: bool) -> html.Section:
    """Score, class, reliability and dimensions of the latest run, with the drivers chart."""
    children: list[Any] = [html.H2("Trafficking risk")]
    if stale:
        children.append(html.P(
            "Stale data: a source of this area's values is overdue. The score may be out of "
            "date; it is not a sign of low risk.", className="stale-flag", id="area-stale",
            role="note"))
    if scores is None:
        children.append(html.P("Not scored yet (no score run covers this area).",
                               className="muted"))
        return html.Section(children, className="area-score")
    latest = scores.latest
    children.append(html.Dl(className="facts", id="area-score", children=[
        html.Dt("risk (0-10)"), html.Dd(_number(latest.risk)),
        html.Dt("class"), html.Dd(class_badge(latest.risk_class)),
        html.Dt("reliability"),
        html.Dd(f"{latest.reliability:.0%}" if latest.reliability is not None else "—"),
        html.Dt("period"), html.Dd(latest.period.isoformat()),
        html.Dt("exposure / vulnerability / lack of capacity"),
        html.Dd(f"{_number(scores.exposure)} / {_number(scores.vulnerability)} / "
                f"{_number(scores.lack_of_capacity)}"),
        html.Dt("score run"), html.Dd(str(scores.run_id)),
    ]))
    children.append(html.H3("Why: the indicators that drive the score"))
    if scores.drivers:
        children.append(dcc.Graph(id="area-drivers", config=GRAPH_CONFIG,
                                  figure=drivers_figure(scores.drivers, scores.labels)))
    else:
        children.append(html.P("No driver recorded (insufficient data).", className="muted"))
    return html.Section(children, className="area-score")


def hotspot_section(history: Sequence[HotspotPoint]) -> html.Section:
    """The risk hotspot class per period: since when is this a hotspot."""
    if not history:
        body: Any = html.P("No hotspot analysis for this area.", className="muted")
    else:
        body = table("Hotspot class of the risk score per period",
                      ["period", "hotspot class", "temporal class", "surge"],
                      [(p.period.isoformat(), p.hotspot_class.replace("_", " "),
                        p.temporal_class.replace("_", " "), "yes" if p.surge else "")
                       for p in reversed(history)])
    return html.Section([html.H2("Hotspot history"), body], className="area-hotspots",
                        id="area-hotspots")


def alerts_section(alerts: Sequence[AlertSummary]) -> html.Section:
    """The area's firing alerts."""
    if not alerts:
        body: Any = html.P("No active alert.", className="muted")
    else:
        body = html.Ul([html.Li([
            html.Strong(f"#{a.id} {a.rule} ({a.severity})"), f" since {iso_utc(a.first_seen)}: ",
            a.summary, " — acknowledged" if a.acknowledged_at else " — not acknowledged",
        ]) for a in alerts])
    return html.Section([html.H2("Active alerts"), body, dcc.Link("All alerts →",
                                                                   href="/alerts")],
                        className="area-alerts", id="area-alerts")


def lineage_section(lineage: Sequence[LineageRow]) -> html.Section:
    """Where the area's current values come from, and how fresh they are."""
    if not lineage:
        body: Any = html.P("No observations for this area.", className="muted")
    else:
        body = table("Data freshness and lineage (latest current value per variable)",
                      ["variable", "period", "round", "source", "batch", "ingested"],
                      [(row.variable, row.period.isoformat(), row.round or "",
                        row.source_title or row.source_id, f"#{row.batch_id}",
                        iso_utc(row.ingested_at) or "not finished") for row in lineage])
    return html.Section([html.H2("Data freshness and lineage"), body],
                        className="area-lineage", id="area-lineage")


def area_page(
    detail: AreaDetail,
    series: Sequence[tuple[date, float]],
    scores: AreaScoreSummary | None = None,
    hotspots: Sequence[HotspotPoint] = (),
    alerts: Sequence[AlertSummary] = (),
    lineage: Sequence[LineageRow] = (),
    stale: bool = False,
) -> list[Any]:
    """An area's risk (score, class, reliability, drivers), its history (risk and IDPs over
    rounds, hotspot classes), active alerts, data lineage and place in the hierarchy."""
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
        dcc.Link("← Map", href="/", className="back-link"),
        html.H1(detail.name),
        facts,
        score_section(scores, stale),
        alerts_section(alerts),
        html.H2("Risk and IDPs over rounds"),
    ]
    risk_series = [(p.period, p.risk) for p in scores.series] if scores else []
    if series or risk_series:
        children.append(dcc.Graph(id="area-series", config=GRAPH_CONFIG,
                                  figure=risk_and_idps_figure(risk_series, series)))
    else:
        children.append(html.P("No risk scores or IDP figures for this area (no data, not "
                               "zero).", className="muted"))
    children += [hotspot_section(hotspots), lineage_section(lineage)]
    if detail.children:
        shown = detail.children[:MAX_LISTED_CHILDREN]
        items = [
            html.Li(dcc.Link(f"{child.name} ({child.pcode})", href=area_href(child.pcode)))
            for child in shown
        ]
        if len(detail.children) > len(shown):
            items.append(html.Li(f"and {len(detail.children) - len(shown)} more"))
        children += [html.H2("Sub-areas"), html.Ul(items, className="children")]
    return children


def unknown_area_page(pcode: str) -> list[Any]:
    """The friendly answer for a pcode that is not a known area (or not visible to the user)."""
    return [
        html.H1(UNKNOWN_AREA_TEXT),
        html.P(f"There is no area with the pcode {pcode!r} in this database."),
        dcc.Link("← Overview", href="/"),
    ]


def forbidden_page(path: str) -> list[Any]:
    """A page the user's role may not open (the 403 of a page rendered by the callback)."""
    return [
        html.H1("Not allowed", id="forbidden"),
        html.P(f"Your role cannot open {path}. Ask an administrator if you need it."),
        dcc.Link("← Map", href="/"),
    ]


def not_found_page(path: str) -> list[Any]:
    """Any other path inside the dashboard."""
    return [
        html.H1("Page not found"),
        html.P(f"The dashboard has no page at {path}."),
        dcc.Link("← Overview", href="/"),
    ]
