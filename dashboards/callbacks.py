"""The dashboard's Dash callbacks: thin wrappers around :mod:`dashboards.data` and ``layout``.

They run only after the gate let the request through, so :func:`current_user` is set.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import dash
from dash import Input, Output
from dash.exceptions import PreventUpdate
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboards import data, layout
from dashboards.auth import CurrentUser, current_user

AREA_PREFIX = "/area/"


def render_page(db: Session, user: CurrentUser, pathname: str | None) -> tuple[Any, Any, Any]:
    """Header, demo banner and content of the page at ``pathname`` for ``user``."""
    path = pathname or "/"
    countries = user.countries
    is_demo = data.is_demo_database(db)
    if path == "/":
        content = layout.overview_page(
            data.database_summary(db, countries), data.map_data(db, countries=countries)
        )
    elif path.startswith(AREA_PREFIX) and "/" not in path[len(AREA_PREFIX):]:
        pcode = unquote(path[len(AREA_PREFIX):])
        detail = data.area_detail(db, pcode, countries)
        if detail is None:
            content = layout.unknown_area_page(pcode)
        else:
            content = layout.area_page(detail, data.area_series(db, pcode, countries=countries))
    else:
        content = layout.not_found_page(path)
    return layout.header(user), layout.demo_banner(is_demo), content


def pcode_from_click(click_data: dict[str, Any] | None) -> str | None:
    """The pcode of the map area a user clicked, from the graph's ``clickData``."""
    points = (click_data or {}).get("points") or []
    location = points[0].get("location") if points else None
    return location if isinstance(location, str) and location else None


def register_callbacks(dash_app: dash.Dash, engine: Engine) -> None:
    """Attach the page callbacks to ``dash_app`` (on the app, not the global registry)."""

    @dash_app.callback(
        Output("page-header", "children"),
        Output("demo-banner", "children"),
        Output("page-content", "children"),
        Input("url", "pathname"),
    )
    def show_page(pathname: str | None) -> tuple[Any, Any, Any]:
        user = current_user()
        if user is None:  # the gate answers first; this only guards against a misconfiguration
            raise PreventUpdate
        with Session(engine) as db:
            return render_page(db, user, pathname)

    @dash_app.callback(
        Output("url", "pathname"),
        Input("area-map", "clickData"),
        prevent_initial_call=True,
    )
    def open_clicked_area(click_data: dict[str, Any] | None) -> str:
        pcode = pcode_from_click(click_data)
        if pcode is None:
            raise PreventUpdate
        return layout.area_href(pcode)
