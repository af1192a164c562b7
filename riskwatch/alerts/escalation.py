"""Escalation: a critical alert nobody acknowledged goes to the experts' focal point, once.

A firing, critical alert that is not acknowledged ``escalate_after_minutes`` after its first
notification of the current episode was created is sent (``kind = "escalation"``) to the focal
point (``Expert.focal_point_id``) of each expert who received it, on the focal point's usable
channels; ``Alert.escalated_at`` marks it done, so it escalates once per episode. An alert
whose recipients have no focal point gets a ``no_recipient`` decision instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.config import Settings
from riskwatch.db.models import Alert, AlertDecision, Notification, NotificationAlert
from riskwatch.timeutil import iso_utc, to_utc, utcnow

from .explain import episode, group_of, payload_item
from .lifecycle import decision
from .outbox import SEND_DECISIONS, idempotency_key
from .routing import AreaIndex, Routing
from .rules import AlertRules, load_rules


def escalate_unacknowledged(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    rules: AlertRules | None = None,
) -> dict[str, int]:
    """Escalate overdue critical alerts (one transaction); returns counts."""
    moment = to_utc(now) if now is not None else utcnow()
    rules = rules or load_rules(settings)
    wait = timedelta(minutes=rules.lifecycle.escalate_after_minutes)
    send_at = moment + timedelta(seconds=rules.lifecycle.group_wait_seconds)
    counts = {"checked": 0, "escalated": 0, "notifications": 0, "no_recipient": 0}
    with Session(engine) as session:
        candidates = session.exec(
            select(Alert)
            .where(
                Alert.state == "firing",
                Alert.severity == "critical",
                col(Alert.acknowledged_at).is_(None),
                col(Alert.escalated_at).is_(None),
            )
            .order_by(col(Alert.id))
        ).all()
        if not candidates:
            return counts
        routing = Routing.load(session, AreaIndex.load(session), moment)
        for alert in candidates:
            assert alert.id is not None
            number = episode(alert)
            sends = [
                d
                for d in session.exec(
                    select(AlertDecision)
                    .where(
                        AlertDecision.alert_id == alert.id,
                        col(AlertDecision.decision).in_(SEND_DECISIONS),
                    )
                    .order_by(col(AlertDecision.id))
                ).all()
                # The wait runs from the first message that said "critical" (an alert raised
                # from warning to critical has not been unacknowledged as critical for long).
                if (d.detail or {}).get("episode") == number
                and (d.detail or {}).get("severity") == "critical"
            ]
            if not sends:
                continue
            counts["checked"] += 1
            first_sent = to_utc(sends[0].at)
            if moment - first_sent < wait:
                continue
            receivers = sorted({d.expert_id for d in sends if d.expert_id is not None})
            focal_points = sorted(
                {
                    routing.experts[e].focal_point_id
                    for e in receivers
                    if e in routing.experts and routing.experts[e].focal_point_id is not None
                }
            )
            made: list[int] = []
            for focal_id in focal_points:
                assert focal_id is not None
                focal = routing.experts.get(focal_id)
                if focal is None:
                    continue
                payload: dict[str, Any] = {
                    "kind": "escalation",
                    "language": focal.language or "en",
                    "expert_id": focal_id,
                    "group": group_of(alert),
                    "alerts": [payload_item(alert, settings)],
                    "unacknowledged_since": iso_utc(sends[0].at),
                }
                focal_made: list[int] = []
                for channel in routing.channels.get(focal_id, []):
                    assert channel.id is not None
                    key = idempotency_key(
                        "escalation",
                        focal_id,
                        channel.id,
                        alert.group_key,
                        [f"{alert.id}.{number}"],
                    )
                    if (
                        session.exec(
                            select(Notification.id).where(Notification.idempotency_key == key)
                        ).first()
                        is not None
                    ):
                        continue
                    notification = Notification(
                        alert_id=alert.id,
                        expert_id=focal_id,
                        channel_id=channel.id,
                        idempotency_key=key,
                        kind="escalation",
                        group_key=alert.group_key,
                        status="pending",
                        next_attempt_at=send_at,
                        payload=payload,
                        created_at=moment,
                    )
                    session.add(notification)
                    session.flush()
                    assert notification.id is not None
                    session.add(
                        NotificationAlert(notification_id=notification.id, alert_id=alert.id)
                    )
                    made.append(notification.id)
                    focal_made.append(notification.id)
                if focal_made:
                    session.add(
                        decision(
                            alert,
                            "escalated",
                            moment,
                            {
                                "episode": number,
                                "first_sent": iso_utc(sends[0].at),
                                "after_minutes": rules.lifecycle.escalate_after_minutes,
                                "receivers": receivers,
                                "notifications": focal_made,
                            },
                            expert_id=focal_id,
                            notification_id=focal_made[0],
                        )
                    )
            if made:
                alert.escalated_at = moment
                counts["escalated"] += 1
                counts["notifications"] += len(made)
            else:
                last = session.exec(
                    select(AlertDecision)
                    .where(AlertDecision.alert_id == alert.id)
                    .order_by(col(AlertDecision.id).desc())
                ).first()
                if (
                    last is None
                    or last.decision != "no_recipient"
                    or (last.detail or {}).get("escalation") is not True
                ):
                    session.add(
                        decision(
                            alert,
                            "no_recipient",
                            moment,
                            {
                                "escalation": True,
                                "episode": number,
                                "reason": "no focal point with a usable channel",
                            },
                        )
                    )
                counts["no_recipient"] += 1
        session.commit()
    return counts
