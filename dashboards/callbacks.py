"""The dashboard's Dash callbacks: thin wrappers around pure functions of :mod:`dashboards.data`,
``layout`` and ``pages``.

They run only after the gate let the request through, so :func:`current_user` is set; each
one checks the role (and the data functions the country scope) again on the server, and
answers 403 to what the user may not do, whatever the page showed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

import dash
from dash import Input, Output, State
from dash.exceptions import PreventUpdate
from flask import abort
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboards import data, layout
from dashboards.auth import (
    PAGE_ROLES,
    CurrentUser,
    current_user,
    may_open_page,
    web_context,
)
from dashboards.map_page import map_page_content
from dashboards.pages import alerts as alerts_page
from dashboards.pages import experts as experts_page
from dashboards.pages import exports as exports_page
from dashboards.pages import health as health_page
from dashboards.pages import users as users_page
from riskwatch.config import Settings

AREA_PREFIX = "/area/"


def render_page(db: Session, user: CurrentUser, pathname: str | None) -> tuple[Any, Any, Any]:
    """Header, demo banner and content of the page at ``pathname`` for ``user``."""
    path = pathname or "/"
    countries = user.countries
    is_demo = data.is_demo_database(db)
    if not may_open_page(user, path):
        content = layout.forbidden_page(path)
    elif path == "/":
        content = map_page_content(db, user)
    elif path.startswith(AREA_PREFIX) and "/" not in path[len(AREA_PREFIX):]:
        pcode = unquote(path[len(AREA_PREFIX):])
        detail = data.area_detail(db, pcode, countries)
        if detail is None:
            content = layout.unknown_area_page(pcode)
        else:
            content = layout.area_page(
                detail, data.area_series(db, pcode, countries=countries),
                scores=data.area_scores(db, pcode, countries),
                hotspots=data.hotspot_history(db, pcode, countries),
                alerts=data.area_alerts(db, pcode, countries),
                lineage=data.area_lineage(db, pcode, countries),
                stale=data.area_is_stale(db, pcode),
            )
    elif path == "/alerts":
        content = alerts_page.alerts_page(alerts_page.alerts_page_data(db, user))
    elif path == "/health":
        content = health_page.health_page(health_page.health_page_data(db, user))
    elif path == "/exports":
        content = exports_page.exports_page(user, exports_page.exports_page_data(db, user))
    elif path == "/users":
        content = users_page.users_page(users_page.users_page_data(db))
    elif path == "/experts":
        content = experts_page.experts_page(experts_page.experts_page_data(db, user))
    else:
        content = layout.not_found_page(path)
    current = "/area" if path.startswith(AREA_PREFIX) else path
    return layout.header(user, current), layout.demo_banner(is_demo), content


def _user() -> CurrentUser:
    user = current_user()
    if user is None:  # the gate answers first; this only guards against a misconfiguration
        abort(401)
    return user


def acknowledge_from_form(
    engine: Engine, user: CurrentUser, n_clicks: int | None, alert_id: Any,
    feedback: str | None, comment: str | None,
) -> tuple[str, Any]:
    """The ack form's callback: acknowledge, then the message and the refreshed alert list.

    Raises Forbidden (answered 403) for a role that may not, or an alert not among the user's.
    """
    if user.role not in alerts_page.ACK_ROLES:
        raise alerts_page.Forbidden("this role does not acknowledge alerts")
    if not n_clicks:
        raise PreventUpdate
    if alert_id in (None, ""):
        return "Choose an alert first.", dash.no_update
    message = alerts_page.acknowledge_as(engine, user, alert_id, feedback, comment)
    with Session(engine) as db:
        table = alerts_page.alerts_table(alerts_page.alerts_page_data(db, user))
    return message, table


def export_link_for(user: CurrentUser, what: str | None, export_format: str | None,
                    country: str | None, level: Any) -> tuple[str, str]:
    """The exports form's callback: the download link (empty when refused) and its text."""
    if user.role not in PAGE_ROLES["/exports"]:
        raise alerts_page.Forbidden("the exports page is not for this role")
    href, text = exports_page.export_link(user, what, export_format, country, level)
    return href or "", text


def experts_from_form(
    engine: Engine, settings: Settings, user: CurrentUser, triggered: Any,
    values: Sequence[Any],
) -> tuple[Any, ...]:
    """The experts page's callback: the role first, then the action of the pressed button.

    ``values`` are the callback's arguments: the clicks of the four buttons (ACTIONS order),
    then the forms' fields (ExpertsForm order). Raises Forbidden (answered 403) for any role
    but admin, PreventUpdate when no button was pressed.
    """
    experts_page.check_role(user)
    if triggered not in experts_page.ACTIONS:
        raise PreventUpdate
    clicks = values[: len(experts_page.ACTIONS)]
    if not clicks[experts_page.ACTIONS.index(triggered)]:
        raise PreventUpdate
    form = experts_page.ExpertsForm(*values[len(experts_page.ACTIONS):])
    return experts_page.experts_action(engine, settings, user, triggered, form)


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
        Output("ack-result", "children"),
        Output("alerts-list", "children"),
        Input("ack-submit", "n_clicks"),
        State("ack-alert", "value"),
        State("ack-feedback", "value"),
        State("ack-comment", "value"),
        prevent_initial_call=True,
    )
    def acknowledge_alert(n_clicks: int | None, alert_id: Any, feedback: str | None,
                          comment: str | None) -> tuple[str, Any]:
        try:
            return acknowledge_from_form(engine, _user(), n_clicks, alert_id, feedback, comment)
        except alerts_page.Forbidden:
            abort(403)

    @dash_app.callback(
        Output("silence-result", "children"),
        Input("silence-submit", "n_clicks"),
        State("silence-area", "value"),
        State("silence-rule", "value"),
        State("silence-until", "value"),
        State("silence-reason", "value"),
        prevent_initial_call=True,
    )
    def create_silence(n_clicks: int | None, pcode: str | None, rule: str | None,
                       until: str | None, reason: str | None) -> str:
        user = _user()
        if not n_clicks:
            raise PreventUpdate
        try:
            return alerts_page.silence_as(engine, user, pcode, rule, until, reason)
        except alerts_page.Forbidden:
            abort(403)

    @dash_app.callback(
        Output("approve-result", "children"),
        Input("approve-submit", "n_clicks"),
        State("approve-alert", "value"),
        prevent_initial_call=True,
    )
    def approve_alert(n_clicks: int | None, alert_id: Any) -> str:
        user = _user()
        if not n_clicks:
            raise PreventUpdate
        try:
            return alerts_page.approve_as(engine, web_context().settings, user, alert_id)
        except alerts_page.Forbidden:
            abort(403)

    @dash_app.callback(
        *(Output(result, "children") for result in experts_page.RESULT_IDS),
        Output("experts-list", "children"),
        Output("deploy-expert", "options"),
        Output("end-deployment", "options"),
        Output("reenable-channel", "options"),
        Output("deactivate-expert", "options"),
        Input(experts_page.ADD_DEPLOYMENT, "n_clicks"),
        Input(experts_page.END_DEPLOYMENT, "n_clicks"),
        Input(experts_page.REENABLE_CHANNEL, "n_clicks"),
        Input(experts_page.DEACTIVATE_EXPERT, "submit_n_clicks"),
        State("deploy-expert", "value"),
        State("deploy-area", "value"),
        State("deploy-from", "value"),
        State("deploy-to", "value"),
        State("end-deployment", "value"),
        State("reenable-channel", "value"),
        State("deactivate-expert", "value"),
        prevent_initial_call=True,
    )
    def manage_experts(*values: Any) -> tuple[Any, ...]:
        try:
            return experts_from_form(
                engine, web_context().settings, _user(), dash.ctx.triggered_id, values
            )
        except alerts_page.Forbidden:
            abort(403)

    @dash_app.callback(
        Output("export-link", "href"),
        Output("export-link", "children"),
        Input("export-what", "value"),
        Input("export-format", "value"),
        Input("export-country", "value"),
        Input("export-level", "value"),
    )
    def update_export_link(what: str | None, export_format: str | None, country: str | None,
                           level: Any) -> tuple[str, str]:
        try:
            return export_link_for(_user(), what, export_format, country, level)
        except alerts_page.Forbidden:
            abort(403)
