"""The experts page (admins only): experts, their channels and deployments, and changes to them.

Lists every expert (name, language, focal point, active) with their channels (kind, the
redacted target only, health, when disabled, last success, last error with URLs and e-mail
addresses removed as on the data health page) and deployments (area, from, to). Admins may add
a deployment to an existing expert, end a deployment, re-enable a disabled channel and
deactivate an expert; the work is done by :mod:`riskwatch.experts`, which writes the audit
events. Adding experts and channels (whose targets and secrets must not travel through the
dashboard) stays with ``riskwatch experts add``.

Every action checks the role on the server (:class:`Forbidden` -> 403). An admin with a
country scope sees and changes only the experts deployed in those countries, and deploys only
to areas there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from dash import dcc, html
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboards.auth import PAGE_ROLES, CurrentUser, in_scope
from dashboards.layout import table
from dashboards.pages.alerts import Forbidden
from riskwatch.config import Settings
from riskwatch.db.models import Area, Channel, Deployment, Expert
from riskwatch.errors import RiskwatchError
from riskwatch.experts import (
    ExpertView,
    add_deployment,
    end_deployment,
    expert_ids_deployed_in,
    list_experts,
    reenable_channel,
    remove_expert,
)
from riskwatch.privacy import redact
from riskwatch.timeutil import iso_utc, to_utc, utcnow

#: The form actions, by the id of the button (or confirmation) that triggers them.
ADD_DEPLOYMENT = "deploy-submit"
END_DEPLOYMENT = "end-submit"
REENABLE_CHANNEL = "reenable-submit"
DEACTIVATE_EXPERT = "deactivate-confirm"
ACTIONS = (ADD_DEPLOYMENT, END_DEPLOYMENT, REENABLE_CHANNEL, DEACTIVATE_EXPERT)
#: Where each action's message goes (same order as ACTIONS).
RESULT_IDS = ("deploy-result", "end-result", "reenable-result", "deactivate-result")


def check_role(user: CurrentUser) -> None:
    """Forbidden unless the user's role may open and change the experts page (admins)."""
    if user.role not in PAGE_ROLES["/experts"]:
        raise Forbidden("the experts page is for admins")


# --- page data ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExpertsPageData:
    """The experts the user may see (channels' errors redacted) and today's date."""

    experts: list[ExpertView]
    today: date


def _visible_expert_ids(session: Session, user: CurrentUser) -> set[int] | None:
    """For a user with a country scope, the experts deployed there; None: every expert."""
    if not user.countries:
        return None
    return expert_ids_deployed_in(session, user.countries)


def experts_page_data(
    session: Session, user: CurrentUser, *, now: datetime | None = None
) -> ExpertsPageData:
    """Every expert (active or not) the user may see, by id; Forbidden for non-admins."""
    check_role(user)
    visible = _visible_expert_ids(session, user)
    experts = [
        replace(
            expert,
            channels=[replace(c, last_error=redact(c.last_error)) for c in expert.channels],
        )
        for expert in list_experts(session, include_inactive=True)
        if visible is None or expert.id in visible
    ]
    moment = to_utc(now) if now is not None else utcnow()
    return ExpertsPageData(experts=experts, today=moment.date())


def current_deployments(data: ExpertsPageData) -> list[tuple[ExpertView, Any]]:
    """(expert, deployment) of active experts that have not ended yet (what may be ended)."""
    return [
        (expert, deployment)
        for expert in data.experts
        if expert.active
        for deployment in expert.deployments
        if deployment.ends_on is None or deployment.ends_on >= data.today
    ]


def channels_to_reenable(data: ExpertsPageData) -> list[tuple[ExpertView, Any]]:
    """(expert, channel) of active experts whose channel is disabled or unhealthy."""
    return [
        (expert, channel)
        for expert in data.experts
        if expert.active
        for channel in expert.channels
        if channel.disabled_at is not None or not channel.healthy
    ]


def _period(starts_on: date | None, ends_on: date | None) -> str:
    start = starts_on.isoformat() if starts_on else "always"
    end = ends_on.isoformat() if ends_on else "open"
    return f"{start} to {end}"


def form_options(data: ExpertsPageData) -> dict[str, list[dict[str, Any]]]:
    """The choices of the four forms, by dropdown id."""
    active = [{"label": f"#{e.id} {e.name}", "value": e.id} for e in data.experts if e.active]
    return {
        "deploy-expert": active,
        "end-deployment": [
            {
                "label": f"{e.name}: {d.area_name} ({d.area_pcode}), "
                f"{_period(d.starts_on, d.ends_on)}",
                "value": d.id,
            }
            for e, d in current_deployments(data)
        ],
        "reenable-channel": [
            {
                "label": f"{e.name}: {c.kind} {c.target} "
                f"({'disabled' if c.disabled_at else 'unhealthy'})",
                "value": c.id,
            }
            for e, c in channels_to_reenable(data)
        ],
        "deactivate-expert": active,
    }


# --- actions ------------------------------------------------------------------------------------
def parse_day(text: str | None, what: str) -> date | None:
    """An optional ``YYYY-MM-DD`` from a form; ValueError with a readable message."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from None


def _number(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"choose {what} first") from None


def _expert_visible(session: Session, user: CurrentUser, expert_id: int) -> bool:
    visible = _visible_expert_ids(session, user)
    return visible is None or expert_id in visible


def add_deployment_as(
    engine: Engine,
    user: CurrentUser,
    expert_id: Any,
    pcode: str | None,
    starts: str | None,
    ends: str | None,
) -> str:
    """Deploy an expert to an area for a period; the message to show."""
    check_role(user)
    try:
        number = _number(expert_id, "an expert")
        code = (pcode or "").strip()
        if not code:
            raise ValueError("give the area's pcode")
        starts_on = parse_day(starts, "from")
        ends_on = parse_day(ends, "to")
        with Session(engine) as session:
            if not _expert_visible(session, user, number):
                return f"Not added: no expert {number} among yours."
            area = session.get(Area, code) or session.get(Area, code.upper())
            if area is not None and not in_scope(user, area.country_iso3):
                return f"Not added: no area {code!r} among yours."
        added = add_deployment(
            engine, number, code, starts_on=starts_on, ends_on=ends_on, actor=user.username
        )
    except (ValueError, RiskwatchError) as exc:
        return f"Not added: {exc}"
    return (
        f"Deployment {added.id} added: expert {number} to {added.area_name} "
        f"({added.area_pcode}), {_period(added.starts_on, added.ends_on)}."
    )


def end_deployment_as(
    engine: Engine, user: CurrentUser, deployment_id: Any, *, today: date | None = None
) -> str:
    """End one of the visible deployments now; the message to show."""
    check_role(user)
    try:
        number = _number(deployment_id, "a deployment")
        with Session(engine) as session:
            deployment = session.get(Deployment, number)
            area = session.get(Area, deployment.area_pcode) if deployment else None
            if (
                deployment is None
                or area is None
                or not in_scope(user, area.country_iso3)
                or not _expert_visible(session, user, deployment.expert_id)
            ):
                return f"Not ended: no deployment {number} among yours."
        last_day = end_deployment(engine, number, actor=user.username, today=today)
    except (ValueError, RiskwatchError) as exc:
        return f"Not ended: {exc}"
    if last_day is None:
        return f"Deployment {number} had not started; it was removed."
    return f"Deployment {number} ended; its last day was {last_day.isoformat()}."


def reenable_channel_as(engine: Engine, user: CurrentUser, channel_id: Any) -> str:
    """Clear a channel's disabled state (after someone fixed it); the message to show."""
    check_role(user)
    try:
        number = _number(channel_id, "a channel")
        with Session(engine) as session:
            channel = session.get(Channel, number)
            if channel is None or not _expert_visible(session, user, channel.expert_id):
                return f"Not re-enabled: no channel {number} among yours."
            expert = session.get(Expert, channel.expert_id)
            if expert is None or not expert.active:
                return f"Not re-enabled: channel {number} belongs to a removed expert."
        reenable_channel(engine, number, actor=user.username)
    except (ValueError, RiskwatchError) as exc:
        return f"Not re-enabled: {exc}"
    return f"Channel {number} re-enabled; the next notification will try it again."


def deactivate_expert_as(
    engine: Engine, settings: Settings, user: CurrentUser, expert_id: Any
) -> str:
    """Deactivate an expert (as ``riskwatch experts remove``); the message to show."""
    check_role(user)
    try:
        number = _number(expert_id, "an expert")
        with Session(engine) as session:
            if not _expert_visible(session, user, number):
                return f"Not deactivated: no expert {number} among yours."
        name = remove_expert(engine, settings, number, actor=user.username)
    except (ValueError, RiskwatchError) as exc:
        return f"Not deactivated: {exc}"
    return (
        f"Expert {number} ({name}) deactivated: deployments ended, channel targets erased; "
        "the history is kept."
    )


@dataclass(frozen=True)
class ExpertsForm:
    """What the four forms hold when a button is pressed."""

    deploy_expert: Any = None
    deploy_area: str | None = None
    deploy_from: str | None = None
    deploy_to: str | None = None
    end_deployment: Any = None
    reenable_channel: Any = None
    deactivate_expert: Any = None


def experts_action(
    engine: Engine,
    settings: Settings,
    user: CurrentUser,
    action: str | None,
    form: ExpertsForm,
    *,
    now: datetime | None = None,
) -> tuple[Any, ...]:
    """The experts page's callback: do ``action``, then the callback's outputs.

    Outputs: the four forms' messages (the action's, the others empty), the refreshed experts
    list and the refreshed choices of the four dropdowns. Forbidden for non-admins; ValueError
    for an unknown action.
    """
    check_role(user)
    moment = to_utc(now) if now is not None else utcnow()
    if action == ADD_DEPLOYMENT:
        message = add_deployment_as(
            engine, user, form.deploy_expert, form.deploy_area, form.deploy_from, form.deploy_to
        )
    elif action == END_DEPLOYMENT:
        message = end_deployment_as(engine, user, form.end_deployment, today=moment.date())
    elif action == REENABLE_CHANNEL:
        message = reenable_channel_as(engine, user, form.reenable_channel)
    elif action == DEACTIVATE_EXPERT:
        message = deactivate_expert_as(engine, settings, user, form.deactivate_expert)
    else:
        raise ValueError(f"unknown experts action {action!r}")
    with Session(engine) as session:
        data = experts_page_data(session, user, now=moment)
    messages = tuple(message if name == action else "" for name in ACTIONS)
    options = form_options(data)
    return (
        *messages,
        experts_list(data),
        options["deploy-expert"],
        options["end-deployment"],
        options["reenable-channel"],
        options["deactivate-expert"],
    )


# --- layout -------------------------------------------------------------------------------------
def _channel_state(channel: Any) -> str:
    if channel.disabled_at is not None:
        return "disabled"
    return "healthy" if channel.healthy else "unhealthy"


def _expert_section(expert: ExpertView) -> html.Section:
    focal = (
        f"{expert.focal_point_name} (#{expert.focal_point_id})" if expert.focal_point_id else "none"
    )
    children: list[Any] = [
        html.H2(f"#{expert.id} {expert.name}" + ("" if expert.active else " (deactivated)")),
        html.Dl(
            className="facts",
            children=[
                html.Dt("language"),
                html.Dd(expert.language),
                html.Dt("focal point"),
                html.Dd(focal),
                html.Dt("state"),
                html.Dd("active" if expert.active else "deactivated"),
            ],
        ),
    ]
    if expert.channels:
        children.append(
            table(
                "Channels",
                [
                    "channel",
                    "kind",
                    "target (redacted)",
                    "health",
                    "disabled",
                    "failures",
                    "last success",
                    "last error",
                ],
                [
                    [
                        c.id,
                        c.kind,
                        c.target,
                        _channel_state(c),
                        iso_utc(c.disabled_at),
                        c.consecutive_failures,
                        iso_utc(c.last_success_at) or "never",
                        f"{iso_utc(c.last_error_at)} {c.last_error}" if c.last_error else "",
                    ]
                    for c in expert.channels
                ],
                id=f"expert-{expert.id}-channels",
            )
        )
    else:
        children.append(html.P("No channel.", className="muted"))
    if expert.deployments:
        children.append(
            table(
                "Deployments (each covers the area's sub-areas)",
                ["deployment", "area", "pcode", "admin level", "from", "to"],
                [
                    [
                        d.id,
                        d.area_name,
                        d.area_pcode,
                        d.admin_level,
                        d.starts_on.isoformat() if d.starts_on else "",
                        d.ends_on.isoformat() if d.ends_on else "",
                    ]
                    for d in expert.deployments
                ],
                id=f"expert-{expert.id}-deployments",
            )
        )
    else:
        children.append(html.P("No deployment.", className="muted"))
    return html.Section(children, className="expert", id=f"expert-{expert.id}")


def experts_list(data: ExpertsPageData) -> Any:
    """Every visible expert with channels and deployments."""
    if not data.experts:
        return html.P("No experts yet: add them with `riskwatch experts add`.", className="muted")
    summary = table(
        "Experts",
        ["expert", "name", "language", "focal point", "state", "channels", "deployments"],
        [
            [
                e.id,
                e.name,
                e.language,
                e.focal_point_name or "",
                "active" if e.active else "deactivated",
                len(e.channels),
                len(e.deployments),
            ]
            for e in data.experts
        ],
        id="experts-table",
    )
    return html.Div([summary, *(_expert_section(e) for e in data.experts)])


def _dropdown(dropdown_id: str, options: list[dict[str, Any]], empty: str) -> dcc.Dropdown:
    return dcc.Dropdown(
        id=dropdown_id,
        options=options,
        placeholder=empty if not options else "Choose",
        clearable=False,
    )


def experts_page(data: ExpertsPageData) -> list[Any]:
    """The experts page: the list and the four forms."""
    options = form_options(data)
    return [
        html.H1("Experts"),
        html.P(
            "Add experts and their channels with `riskwatch experts add` on the server "
            "(channel addresses and secrets never travel through the dashboard). Every change "
            "here is recorded in the audit trail.",
            className="muted",
        ),
        html.Div(experts_list(data), id="experts-list"),
        html.Section(
            className="form-section",
            children=[
                html.H2("Add a deployment"),
                html.Label("Expert", htmlFor="deploy-expert"),
                _dropdown("deploy-expert", options["deploy-expert"], "No active expert"),
                html.Label("Area pcode (covers its sub-areas)", htmlFor="deploy-area"),
                dcc.Input(id="deploy-area", type="text", maxLength=32),
                html.Label("From (YYYY-MM-DD, optional)", htmlFor="deploy-from"),
                dcc.Input(id="deploy-from", type="text", maxLength=10, placeholder="YYYY-MM-DD"),
                html.Label("To (YYYY-MM-DD, optional)", htmlFor="deploy-to"),
                dcc.Input(id="deploy-to", type="text", maxLength=10, placeholder="YYYY-MM-DD"),
                html.Button("Add deployment", id=ADD_DEPLOYMENT, n_clicks=0, className="button"),
                html.Div(id="deploy-result", role="status"),
            ],
        ),
        html.Section(
            className="form-section",
            children=[
                html.H2("End a deployment"),
                html.P("It stops covering its areas today.", className="muted"),
                _dropdown("end-deployment", options["end-deployment"], "No current deployment"),
                html.Button("End deployment", id=END_DEPLOYMENT, n_clicks=0, className="button"),
                html.Div(id="end-result", role="status"),
            ],
        ),
        html.Section(
            className="form-section",
            children=[
                html.H2("Re-enable a channel"),
                html.P(
                    "After the target was fixed (e.g. a webhook that answered 410 Gone).",
                    className="muted",
                ),
                _dropdown("reenable-channel", options["reenable-channel"], "No disabled channel"),
                html.Button(
                    "Re-enable channel", id=REENABLE_CHANNEL, n_clicks=0, className="button"
                ),
                html.Div(id="reenable-result", role="status"),
            ],
        ),
        html.Section(
            className="form-section",
            children=[
                html.H2("Deactivate an expert"),
                html.P(
                    "Ends the expert's deployments and erases the channel targets; "
                    "notifications and acknowledgements stay in the history.",
                    className="muted",
                ),
                _dropdown("deactivate-expert", options["deactivate-expert"], "No active expert"),
                dcc.ConfirmDialogProvider(
                    id=DEACTIVATE_EXPERT,
                    message="Deactivate this expert? Their channel targets are erased.",
                    children=html.Button(
                        "Deactivate expert", id="deactivate-submit", className="button"
                    ),
                ),
                html.Div(id="deactivate-result", role="status"),
            ],
        ),
    ]
