"""Read-only views of alerts for the CLI, the dashboard and the ``alerts`` export."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from riskwatch.db.models import (
    Acknowledgement,
    Alert,
    AlertDecision,
    Area,
    AuditEvent,
    Channel,
    Deployment,
    Expert,
    Notification,
    NotificationAlert,
    Silence,
    User,
)
from riskwatch.timeutil import to_utc, utcnow

from . import AlertNotFound
from .explain import episode, since, summary_lines
from .routing import AreaIndex, is_active

STATES: tuple[str, ...] = ("firing", "resolved")


@dataclass
class AlertRow:
    """One alert as lists show it."""

    id: int
    rule: str
    pcode: str
    name: str | None
    admin_level: int | None
    country_iso3: str | None
    group_key: str | None
    severity: str
    state: str
    review_state: str | None
    first_seen: datetime
    last_seen: datetime
    since: str
    episode: int
    value: float | None
    summary: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


@dataclass
class AlertDetail:
    """One alert with its explanation and full decision history."""

    alert: AlertRow
    explanation: dict[str, Any]
    lines: list[str]
    decisions: list[dict[str, Any]] = field(default_factory=list)
    acknowledgements: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)


def acknowledged_by(session: Session, alert_ids: Sequence[int]) -> dict[int, str]:
    """Who acknowledged each alert first: the expert's name, the username, or the audit actor."""
    if not alert_ids:
        return {}
    first: dict[int, Acknowledgement] = {}
    for start in range(0, len(alert_ids), 500):
        for ack in session.exec(
            select(Acknowledgement)
            .where(col(Acknowledgement.alert_id).in_(list(alert_ids[start : start + 500])))
            .order_by(col(Acknowledgement.at), col(Acknowledgement.id))
        ).all():
            first.setdefault(ack.alert_id, ack)
    return {alert_id: _ack_name(session, ack) for alert_id, ack in first.items()}


def _ack_name(session: Session, ack: Acknowledgement) -> str:
    if ack.expert_id is not None:
        expert = session.get(Expert, ack.expert_id)
        return expert.name if expert is not None else f"expert {ack.expert_id}"
    if ack.user_id is not None:
        user = session.get(User, ack.user_id)
        return user.username if user is not None else f"user {ack.user_id}"
    for event in session.exec(
        select(AuditEvent).where(
            AuditEvent.action == "alert.acknowledge", AuditEvent.object_id == str(ack.alert_id)
        )
    ).all():
        if (event.detail or {}).get("acknowledgement_id") == ack.id:
            return event.actor
    return "unknown"


def _rows(session: Session, alerts: Iterable[Alert]) -> list[AlertRow]:
    alerts = list(alerts)
    names = {}
    pcodes = sorted({a.area_pcode for a in alerts})
    for start in range(0, len(pcodes), 500):
        names.update(
            {
                p: (n, lvl)
                for p, n, lvl in session.exec(
                    select(Area.pcode, Area.name, Area.admin_level).where(
                        col(Area.pcode).in_(pcodes[start : start + 500])
                    )
                ).all()
            }
        )
    by = acknowledged_by(session, [a.id for a in alerts if a.id is not None])
    rows = []
    for alert in alerts:
        assert alert.id is not None
        name, level = names.get(alert.area_pcode, (None, None))
        rows.append(
            AlertRow(
                id=alert.id,
                rule=alert.rule,
                pcode=alert.area_pcode,
                name=name,
                admin_level=level,
                country_iso3=alert.country_iso3,
                group_key=alert.group_key,
                severity=alert.severity,
                state=alert.state,
                review_state=alert.review_state,
                first_seen=alert.first_seen,
                last_seen=alert.last_seen,
                since=since(alert),
                episode=episode(alert),
                value=alert.value,
                summary=(alert.explanation or {}).get("summary"),
                acknowledged_at=alert.acknowledged_at,
                acknowledged_by=by.get(alert.id),
            )
        )
    return rows


def expert_alert_filter(session: Session, expert_id: int, now: datetime | None = None) -> set[str]:
    """Areas (pcodes) inside the expert's active deployments."""
    today = (now or utcnow()).date()
    deployed = {
        d.area_pcode
        for d in session.exec(select(Deployment).where(Deployment.expert_id == expert_id)).all()
        if is_active(d, today)
    }
    if not deployed:
        return set()
    return AreaIndex.load(session).descendants_or_self(deployed)


def list_alerts(
    session: Session,
    *,
    state: str | None = None,
    countries: Sequence[str] | None = None,
    expert_id: int | None = None,
    areas: Collection[str] | None = None,
    limit: int | None = None,
) -> list[AlertRow]:
    """Alerts, newest change first; filtered by state, countries (ISO3), an expert's areas,
    a set of pcodes (``areas``)."""
    statement = select(Alert)
    if state is not None:
        statement = statement.where(Alert.state == state)
    if countries:
        statement = statement.where(col(Alert.country_iso3).in_(list(countries)))
    statement = statement.order_by(col(Alert.updated_at).desc(), col(Alert.id).desc())
    alerts = list(session.exec(statement).all())
    if expert_id is not None:
        expert_areas = expert_alert_filter(session, expert_id)
        alerts = [a for a in alerts if a.area_pcode in expert_areas]
    if areas is not None:
        alerts = [a for a in alerts if a.area_pcode in areas]
    if limit is not None:
        alerts = alerts[:limit]
    return _rows(session, alerts)


# --- who sees which alerts (the dashboard passes the login's role, countries and expert) ---------
def team_expert_ids(session: Session, expert_id: int | None) -> list[int]:
    """The expert behind an expert login and the experts they are focal point for."""
    if expert_id is None:
        return []
    followed = session.exec(select(Expert.id).where(Expert.focal_point_id == expert_id)).all()
    return [expert_id, *sorted(int(e) for e in followed if e is not None)]


def is_focal_point(session: Session, expert_id: int | None) -> bool:
    """Whether another expert names this expert as their focal point."""
    return len(team_expert_ids(session, expert_id)) > 1


def may_manage_alerts(session: Session, role: str, expert_id: int | None) -> bool:
    """Whether a login may create silences and approve alerts in review (admin, focal point)."""
    return role == "admin" or (role == "expert" and is_focal_point(session, expert_id))


def in_countries(countries: Sequence[str] | None, country_iso3: str | None) -> bool:
    """Whether a country is within a scope of ISO3 codes (no scope: every country)."""
    if not countries:
        return True
    return country_iso3 is not None and country_iso3.upper() in countries


def covered_areas(session: Session, role: str, expert_id: int | None) -> set[str] | None:
    """The pcodes an expert login's alerts come from (their active deployments and those of
    the experts they are focal point for); None for the other roles (they go by country)."""
    if role != "expert":
        return None
    areas: set[str] = set()
    for member in team_expert_ids(session, expert_id):
        areas |= expert_alert_filter(session, member)
    return areas


def visible_alerts(
    session: Session,
    *,
    role: str,
    countries: Sequence[str] | None,
    expert_id: int | None,
    state: str | None = None,
    limit: int | None = None,
) -> list[AlertRow]:
    """The alerts a login may see, newest change first."""
    return list_alerts(
        session,
        state=state,
        countries=list(countries or []) or None,
        areas=covered_areas(session, role, expert_id),
        limit=limit,
    )


def can_see_alert(
    session: Session,
    alert: Alert,
    *,
    role: str,
    countries: Sequence[str] | None,
    expert_id: int | None,
) -> bool:
    """Whether ``alert`` is one of the login's (same rule as :func:`visible_alerts`)."""
    if not in_countries(countries, alert.country_iso3):
        return False
    areas = covered_areas(session, role, expert_id)
    return areas is None or alert.area_pcode in areas


def visible_alert(
    session: Session,
    alert_id: int,
    *,
    role: str,
    countries: Sequence[str] | None,
    expert_id: int | None,
) -> Alert | None:
    """The alert if the login may see it; None when it does not exist or is not theirs
    (answered alike, so an alert outside one's reach cannot be told from a missing one)."""
    alert = session.get(Alert, alert_id)
    if alert is None or not can_see_alert(
        session, alert, role=role, countries=countries, expert_id=expert_id
    ):
        return None
    return alert


def area_in_reach(
    session: Session,
    pcode: str,
    *,
    role: str,
    countries: Sequence[str] | None,
    expert_id: int | None,
) -> bool:
    """Whether an area is one of the login's (its country in scope, covered for an expert)."""
    area = session.get(Area, pcode) if pcode else None
    if area is None or not in_countries(countries, area.country_iso3):
        return False
    areas = covered_areas(session, role, expert_id)
    return areas is None or pcode in areas


def visible_silences(
    session: Session,
    *,
    role: str,
    countries: Sequence[str] | None,
    expert_id: int | None,
    now: datetime | None = None,
) -> list[Silence]:
    """The silences in force on the login's areas, ending soonest first."""
    moment = to_utc(now) if now is not None else utcnow()
    allowed = covered_areas(session, role, expert_id)
    statement = (
        select(Silence, Area.country_iso3)
        .join(Area, col(Area.pcode) == col(Silence.area_pcode))
        .where(col(Silence.ends_at) > moment)
        .order_by(col(Silence.ends_at))
    )
    return [
        s
        for s, country in session.exec(statement).all()
        if in_countries(countries, country) and (allowed is None or s.area_pcode in allowed)
    ]


def acknowledged_alert_ids(
    session: Session, alert_ids: Sequence[int], expert_id: int | None = None
) -> list[int]:
    """Of ``alert_ids``, those this expert (or, without one, anybody) acknowledged already."""
    done = []
    for alert_id in alert_ids:
        query = select(Acknowledgement.id).where(Acknowledgement.alert_id == alert_id)
        if expert_id is not None:
            query = query.where(Acknowledgement.expert_id == expert_id)
        if session.exec(query).first() is not None:
            done.append(alert_id)
    return done


def alert_detail(session: Session, alert_id: int) -> AlertDetail:
    """An alert's explanation, decisions, acknowledgements and notifications."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(f"no alert {alert_id}")
    row = _rows(session, [alert])[0]
    decisions = [
        {
            "at": d.at,
            "decision": d.decision,
            "expert_id": d.expert_id,
            "notification_id": d.notification_id,
            "detail": d.detail or {},
        }
        for d in session.exec(
            select(AlertDecision)
            .where(AlertDecision.alert_id == alert_id)
            .order_by(col(AlertDecision.id))
        ).all()
    ]
    acknowledgements = [
        {
            "at": a.at,
            "expert_id": a.expert_id,
            "user_id": a.user_id,
            "feedback": a.feedback,
            "comment": a.comment,
            "via": a.via,
            "by": _ack_name(session, a),
        }
        for a in session.exec(
            select(Acknowledgement)
            .where(Acknowledgement.alert_id == alert_id)
            .order_by(col(Acknowledgement.id))
        ).all()
    ]
    notifications = [
        {
            "id": n.id,
            "kind": n.kind,
            "expert_id": n.expert_id,
            "channel_id": n.channel_id,
            "channel": kind,
            "status": n.status,
            "attempts": n.attempts,
            "created_at": n.created_at,
            "delivered_at": n.delivered_at,
        }
        for n, kind in session.exec(
            select(Notification, Channel.kind)
            .join(NotificationAlert, col(NotificationAlert.notification_id) == Notification.id)
            .join(Channel, col(Channel.id) == Notification.channel_id)
            .where(NotificationAlert.alert_id == alert_id)
            .order_by(col(Notification.id))
        ).all()
    ]
    return AlertDetail(
        row,
        dict(alert.explanation or {}),
        summary_lines(alert),
        decisions,
        acknowledgements,
        notifications,
    )
