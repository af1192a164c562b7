"""Acknowledgement: an expert or user says they saw an alert, with feedback for analysts.

The first acknowledgement of an episode sets ``Alert.acknowledged_at`` (which stops repeats and
escalation); every one is an ``Acknowledgement`` row, an ``acknowledged`` decision and an audit
event. The same person acknowledging the same alert twice is refused with a clear message: an
expert or user by id, an anonymous CLI user by the ``actor`` name of the audit trail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.db.models import (
    Acknowledgement,
    Alert,
    AlertDecision,
    AuditEvent,
    Expert,
    User,
)
from riskwatch.errors import UsageError
from riskwatch.timeutil import to_utc, utcnow

from . import AlertNotFound, AlertRefused
from .explain import episode

FEEDBACK: tuple[str, ...] = ("useful", "not_useful", "false_alarm")
VIA: tuple[str, ...] = ("link", "cli", "dashboard")


def acknowledge(
    engine: Engine,
    alert_id: int,
    *,
    expert_id: int | None = None,
    user_id: int | None = None,
    feedback: str | None = None,
    comment: str | None = None,
    via: str = "cli",
    actor: str | None = None,
    now: datetime | None = None,
) -> Acknowledgement:
    """Record an acknowledgement; raises AlertNotFound, AlertRefused or UsageError."""
    if feedback is not None and feedback not in FEEDBACK:
        raise UsageError(f"unknown feedback {feedback!r}; one of {', '.join(FEEDBACK)}")
    if comment is not None and len(comment) > 2000:
        raise UsageError("the comment is longer than 2000 characters")
    moment = to_utc(now) if now is not None else utcnow()
    with Session(engine) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert {alert_id}")
        who = _actor(session, expert_id, user_id, actor)
        if _already(session, alert_id, expert_id, user_id, who):
            raise AlertRefused(f"alert {alert_id} was already acknowledged by {who}")
        ack = Acknowledgement(
            alert_id=alert_id,
            expert_id=expert_id,
            user_id=user_id,
            at=moment,
            comment=comment,
            feedback=feedback,
            via=via[:16],
        )
        session.add(ack)
        session.flush()
        if alert.acknowledged_at is None:
            alert.acknowledged_at = moment
            alert.updated_at = moment
        session.add(
            AlertDecision(
                alert_id=alert_id,
                expert_id=expert_id,
                at=moment,
                decision="acknowledged",
                detail={
                    "acknowledgement_id": ack.id,
                    "feedback": feedback,
                    "via": via,
                    "by": who,
                    "episode": episode(alert),
                },
            )
        )
        session.add(
            AuditEvent(
                at=moment,
                actor=who,
                action="alert.acknowledge",
                object_type="alert",
                object_id=str(alert_id),
                detail={
                    "acknowledgement_id": ack.id,
                    "feedback": feedback,
                    "via": via,
                    "expert_id": expert_id,
                    "user_id": user_id,
                },
            )
        )
        session.commit()
        session.refresh(ack)
        session.expunge(ack)
        return ack


def _actor(session: Session, expert_id: int | None, user_id: int | None, actor: str | None) -> str:
    """The name the audit trail shows (checks that the expert or user exists)."""
    if expert_id is not None:
        expert = session.get(Expert, expert_id)
        if expert is None:
            raise AlertRefused(f"no expert {expert_id}")
        return actor or expert.name
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None:
            raise AlertRefused(f"no user {user_id}")
        return actor or user.username
    if not actor:
        raise UsageError("say who acknowledges: an expert, a user or an actor name")
    return actor


def _already(
    session: Session, alert_id: int, expert_id: int | None, user_id: int | None, who: str
) -> bool:
    statement = select(Acknowledgement.id).where(Acknowledgement.alert_id == alert_id)
    if expert_id is not None:
        return (
            session.exec(statement.where(Acknowledgement.expert_id == expert_id)).first()
            is not None
        )
    if user_id is not None:
        return session.exec(statement.where(Acknowledgement.user_id == user_id)).first() is not None
    return (
        session.exec(
            select(AuditEvent.id).where(
                AuditEvent.action == "alert.acknowledge",
                AuditEvent.object_id == str(alert_id),
                AuditEvent.actor == who,
                col(AuditEvent.detail).is_not(None),
            )
        ).first()
        is not None
    )
