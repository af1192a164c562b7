"""The alert inbox: experts see their deployments' alerts, coordinators their countries'.

Who sees what (checked on the server for every list and action):

- an expert login (``User.expert_id``) sees the alerts of the areas covered by their active
  deployments, and by those of the experts they are focal point for;
- every other role sees the alerts of the countries in their scope (all without a scope).

Who may do what: acknowledging (with feedback and a comment) is for everyone who sees the
alert except analysts; silences and review-mode approvals are for admins and focal points
(an expert whom another expert names as focal point). The engine does the work
(:mod:`riskwatch.alerts.ack`, ``.review``, ``.silences``, ``.queries``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from dash import dcc, html
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboards.auth import CurrentUser
from riskwatch.alerts import AlertNotFound, AlertRefused, queries
from riskwatch.alerts.queries import AlertRow, alert_detail
from riskwatch.config import Settings
from riskwatch.db.models import Alert, Silence
from riskwatch.errors import RiskwatchError
from riskwatch.timeutil import iso_utc, to_utc

FEEDBACK_OPTIONS: list[dict[str, str]] = [
    {"label": "Useful", "value": "useful"},
    {"label": "Not useful", "value": "not_useful"},
    {"label": "False alarm", "value": "false_alarm"},
]
ACK_ROLES = frozenset({"coordinator", "expert", "admin"})
MAX_LISTED = 200


class Forbidden(Exception):
    """The user may not do this (answered with HTTP 403 by the callbacks)."""


# --- who sees what (the engine decides: riskwatch.alerts.queries) -----------------------------
def _who(user: CurrentUser) -> dict[str, Any]:
    return {"role": user.role, "countries": user.countries, "expert_id": user.expert_id}


def may_manage(session: Session, user: CurrentUser) -> bool:
    """Whether the user may create silences and approve alerts in review (admin, focal point)."""
    return queries.may_manage_alerts(session, user.role, user.expert_id)


def visible_alerts(
    session: Session, user: CurrentUser, *, state: str | None = None, limit: int = MAX_LISTED
) -> list[AlertRow]:
    """The alerts this user may see, newest change first."""
    return queries.visible_alerts(session, state=state, limit=limit, **_who(user))


def _visible_alert(session: Session, user: CurrentUser, alert_id: Any) -> Alert:
    try:
        number = int(alert_id)
    except (TypeError, ValueError):
        raise Forbidden("choose an alert") from None
    alert = queries.visible_alert(session, number, **_who(user))
    if alert is None:
        raise Forbidden(f"no alert {number} among yours")
    return alert


# --- actions (what the callbacks do) -----------------------------------------------------------
def acknowledge_as(
    engine: Engine, user: CurrentUser, alert_id: Any, feedback: str | None, comment: str | None
) -> str:
    """Acknowledge one of the user's alerts via the dashboard; the message to show.

    Raises Forbidden for analysts and for alerts the user does not see.
    """
    from riskwatch.alerts.ack import acknowledge

    if user.role not in ACK_ROLES:
        raise Forbidden("analysts do not acknowledge alerts")
    with Session(engine) as session:
        alert = _visible_alert(session, user, alert_id)
        number = int(alert.id or 0)
    text = (comment or "").strip() or None
    try:
        acknowledge(
            engine,
            number,
            expert_id=user.expert_id if user.role == "expert" else None,
            user_id=user.id,
            feedback=feedback or None,
            comment=text,
            via="dashboard",
            actor=user.username,
        )
    except (AlertNotFound, AlertRefused, RiskwatchError) as exc:
        return f"Not recorded: {exc}"
    label = {o["value"]: o["label"] for o in FEEDBACK_OPTIONS}.get(feedback or "", "no feedback")
    return f"Alert {number} acknowledged ({label}). Thank you."


def parse_until(text: str | None) -> datetime:
    """A silence end from a form: ``YYYY-MM-DD`` (end of that day, UTC) or ISO date-time."""
    value = (text or "").strip()
    if not value:
        raise ValueError("give the date the silence ends (YYYY-MM-DD)")
    try:
        if len(value) == 10:
            day = datetime.fromisoformat(value).date()
            return to_utc(datetime.combine(day, time(23, 59, 59)))
        return to_utc(datetime.fromisoformat(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def silence_as(
    engine: Engine,
    user: CurrentUser,
    pcode: str | None,
    rule: str | None,
    until: str | None,
    reason: str | None,
    *,
    now: datetime | None = None,
) -> str:
    """Create a silence for an area of the user's; the message to show (Forbidden if not theirs)."""
    from riskwatch.alerts.silences import create_silence

    with Session(engine) as session:
        if not may_manage(session, user):
            raise Forbidden("only admins and focal points create silences")
        code = (pcode or "").strip()
        if not queries.area_in_reach(session, code, **_who(user)):
            return f"Not created: no area {code!r} among yours."
    try:
        ends = parse_until(until)
        silence = create_silence(
            engine,
            area_pcode=code,
            ends_at=ends,
            author=user.username,
            reason=reason or "",
            rule=(rule or "").strip() or None,
            now=now,
        )
    except (ValueError, RiskwatchError) as exc:
        return f"Not created: {exc}"
    return (
        f"Silence {silence.id} created for {code}"
        f"{' (rule ' + silence.rule + ')' if silence.rule else ''} until "
        f"{iso_utc(silence.ends_at)}."
    )


def approve_as(engine: Engine, settings: Settings, user: CurrentUser, alert_id: Any) -> str:
    """Approve an alert waiting for review; the message to show (Forbidden if not allowed)."""
    from riskwatch.alerts.review import approve

    with Session(engine) as session:
        if not may_manage(session, user):
            raise Forbidden("only admins and focal points approve alerts")
        alert = _visible_alert(session, user, alert_id)
        number = int(alert.id or 0)
    try:
        approval = approve(engine, number, actor=user.username, settings=settings)
    except RiskwatchError as exc:
        return f"Not approved: {exc}"
    return f"Alert {number} approved; {len(approval.notification_ids)} notification(s) queued."


# --- page data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertsPageData:
    """Everything the alerts page shows for one user."""

    alerts: list[AlertRow]
    histories: dict[int, dict[str, list[dict[str, Any]]]]
    can_acknowledge: bool
    can_manage: bool
    silences: list[Silence]
    pending_review: list[AlertRow]


def alerts_page_data(
    session: Session, user: CurrentUser, *, now: datetime | None = None
) -> AlertsPageData:
    """The user's alerts with their decision history, and what the user may do."""
    rows = visible_alerts(session, user)
    histories: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for row in rows[:50]:  # the history of older alerts: `riskwatch alerts show ID`
        detail = alert_detail(session, row.id)
        histories[row.id] = {
            "decisions": detail.decisions,
            "acknowledgements": detail.acknowledgements,
            "notifications": detail.notifications,
        }
    manage = may_manage(session, user)
    silences: list[Silence] = []
    if manage:
        silences = queries.visible_silences(session, now=now, **_who(user))
    return AlertsPageData(
        alerts=rows,
        histories=histories,
        can_acknowledge=user.role in ACK_ROLES,
        can_manage=manage,
        silences=silences,
        pending_review=[r for r in rows if r.review_state == "pending" and r.state == "firing"],
    )


# --- layout ------------------------------------------------------------------------------------
def _history(history: dict[str, list[dict[str, Any]]] | None) -> Any:
    if not history:
        return html.Span("—", className="muted")
    items: list[Any] = []
    for decision in history.get("decisions", []):
        detail = decision.get("detail") or {}
        extra = ", ".join(
            f"{k}: {v}"
            for k, v in detail.items()
            if k in ("by", "feedback", "via", "reason", "rule")
        )
        items.append(
            html.Li(
                f"{iso_utc(decision['at'])} {decision['decision']}"
                + (f" ({extra})" if extra else "")
            )
        )
    for ack in history.get("acknowledgements", []):
        comment = f" — “{ack['comment']}”" if ack.get("comment") else ""
        items.append(
            html.Li(
                f"{iso_utc(ack['at'])} acknowledged by {ack['by']} via "
                f"{ack['via']}, feedback: {ack['feedback'] or 'none'}{comment}"
            )
        )
    for note in history.get("notifications", []):
        # Which channel kind and what happened to the message; never the channel's target.
        delivered = (
            f", delivered {iso_utc(note['delivered_at'])}" if note.get("delivered_at") else ""
        )
        items.append(
            html.Li(
                f"{iso_utc(note['created_at'])} {note['kind']} message #{note['id']} via "
                f"{note['channel']}: {note['status']} after {note['attempts']} attempt(s)"
                f"{delivered}"
            )
        )
    return html.Details([html.Summary(f"{len(items)} event(s)"), html.Ul(items)])


def alerts_table(data: AlertsPageData) -> Any:
    """The table of the user's alerts (newest change first) with each one's history."""
    from dashboards.layout import area_href

    if not data.alerts:
        return html.P("No alerts for your areas.", className="muted")
    header = [
        "id",
        "area",
        "rule",
        "severity",
        "state",
        "review",
        "since",
        "last seen",
        "acknowledged",
        "history",
    ]
    rows = []
    for row in data.alerts:
        rows.append(
            html.Tr(
                [
                    html.Td(str(row.id)),
                    html.Td(
                        dcc.Link(
                            f"{row.name or row.pcode} ({row.pcode})", href=area_href(row.pcode)
                        )
                    ),
                    html.Td(row.rule),
                    html.Td(row.severity),
                    html.Td(row.state, className=f"state-{row.state}"),
                    html.Td(row.review_state or ""),
                    html.Td(row.since or iso_utc(row.first_seen)),
                    html.Td(iso_utc(row.last_seen)),
                    html.Td(
                        f"{iso_utc(row.acknowledged_at)} by {row.acknowledged_by}"
                        if row.acknowledged_at
                        else "no"
                    ),
                    html.Td(_history(data.histories.get(row.id))),
                ],
                id=f"alert-row-{row.id}",
            )
        )
    return html.Table(
        className="data-table alerts-table",
        children=[
            html.Caption("Alerts (newest change first)"),
            html.Thead(html.Tr([html.Th(h, scope="col") for h in header])),
            html.Tbody(rows),
        ],
    )


def _alert_options(rows: list[AlertRow]) -> list[dict[str, Any]]:
    return [
        {"label": f"#{r.id} {r.name or r.pcode} — {r.rule} ({r.severity})", "value": r.id}
        for r in rows
    ]


def alerts_page(data: AlertsPageData) -> list[Any]:
    """The alerts page: the list, the acknowledgement form, silences and approvals."""
    children: list[Any] = [html.H1("Alerts"), html.Div(alerts_table(data), id="alerts-list")]
    if data.can_acknowledge:
        open_alerts = [r for r in data.alerts if r.state == "firing" and not r.acknowledged_at]
        children.append(
            html.Section(
                className="form-section",
                children=[
                    html.H2("Acknowledge an alert"),
                    html.Label("Alert", htmlFor="ack-alert"),
                    dcc.Dropdown(
                        id="ack-alert",
                        options=_alert_options(open_alerts),
                        placeholder="Choose an alert",
                        clearable=False,
                    ),
                    html.Label("Was it useful?"),
                    dcc.RadioItems(
                        id="ack-feedback", options=FEEDBACK_OPTIONS, value="useful", inline=True
                    ),
                    html.Label("Comment (optional)", htmlFor="ack-comment"),
                    dcc.Textarea(id="ack-comment", maxLength=2000, style={"width": "100%"}),
                    html.Button("Acknowledge", id="ack-submit", n_clicks=0, className="button"),
                    html.Div(id="ack-result", role="status"),
                ],
            )
        )
    if data.can_manage:
        silence_rows = [
            html.Li(
                f"#{s.id} {s.area_pcode}{' / ' + s.rule if s.rule else ''} "
                f"until {iso_utc(s.ends_at)} by {s.author}: {s.reason}"
            )
            for s in data.silences
        ]
        children.append(
            html.Section(
                className="form-section",
                children=[
                    html.H2("Silences"),
                    html.Ul(silence_rows)
                    if silence_rows
                    else html.P("No silences in force.", className="muted"),
                    html.Label("Area pcode (covers its sub-areas)", htmlFor="silence-area"),
                    dcc.Input(id="silence-area", type="text", maxLength=32),
                    html.Label("Rule (optional: all rules)", htmlFor="silence-rule"),
                    dcc.Input(id="silence-rule", type="text", maxLength=64),
                    html.Label("Until (YYYY-MM-DD, UTC)", htmlFor="silence-until"),
                    dcc.Input(
                        id="silence-until", type="text", maxLength=25, placeholder="YYYY-MM-DD"
                    ),
                    html.Label("Reason", htmlFor="silence-reason"),
                    dcc.Textarea(id="silence-reason", maxLength=2000, style={"width": "100%"}),
                    html.Button(
                        "Create silence", id="silence-submit", n_clicks=0, className="button"
                    ),
                    html.Div(id="silence-result", role="status"),
                ],
            )
        )
        children.append(
            html.Section(
                className="form-section",
                children=[
                    html.H2("Alerts waiting for review"),
                    dcc.Dropdown(
                        id="approve-alert",
                        options=_alert_options(data.pending_review),
                        placeholder="No alert waiting"
                        if not data.pending_review
                        else "Choose an alert",
                        clearable=False,
                    ),
                    html.Button(
                        "Approve and send", id="approve-submit", n_clicks=0, className="button"
                    ),
                    html.Div(id="approve-result", role="status"),
                ],
            )
        )
    return children
