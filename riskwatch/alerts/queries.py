"""Read-only views of alerts for the CLI, the dashboard and the ``alerts`` export."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    User,
)
from riskwatch.timeutil import utcnow

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
    limit: int | None = None,
) -> list[AlertRow]:
    """Alerts, newest change first; filtered by state, countries (ISO3), an expert's areas."""
    statement = select(Alert)
    if state is not None:
        statement = statement.where(Alert.state == state)
    if countries:
        statement = statement.where(col(Alert.country_iso3).in_(list(countries)))
    statement = statement.order_by(col(Alert.updated_at).desc(), col(Alert.id).desc())
    alerts = list(session.exec(statement).all())
    if expert_id is not None:
        areas = expert_alert_filter(session, expert_id)
        alerts = [a for a in alerts if a.area_pcode in areas]
    if limit is not None:
        alerts = alerts[:limit]
    return _rows(session, alerts)


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
