"""The daily digest: one message per expert and day listing the alerts firing in their areas.

Queued by the scheduler (``scheduler.digest_schedule``) when ``[digest] enabled`` in the rules
file. At most one digest per expert, channel and UTC day: the idempotency key is
``digest:<expert>:<channel>:<date>``, so calling it twice a day creates nothing the second time.
Alerts awaiting review or silenced are left out, as they are from alert messages.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.config import Settings
from riskwatch.db.models import Alert, Notification, NotificationAlert
from riskwatch.timeutil import to_utc, utcnow

from .explain import payload_item
from .routing import AreaIndex, Routing
from .rules import AlertRules, load_rules, severity_rank


def queue_daily_digest(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    rules: AlertRules | None = None,
) -> dict[str, int]:
    """Create today's digest notifications (one transaction); returns counts."""
    moment = to_utc(now) if now is not None else utcnow()
    rules = rules or load_rules(settings)
    counts = {
        "enabled": int(rules.digest.enabled),
        "experts": 0,
        "notifications": 0,
        "already_queued": 0,
        "nothing_firing": 0,
    }
    if not rules.digest.enabled:
        return counts
    send_at = moment + timedelta(seconds=rules.lifecycle.group_wait_seconds)
    day = moment.date().isoformat()
    with Session(engine) as session:
        routing = Routing.load(session, AreaIndex.load(session), moment)
        firing = session.exec(
            select(Alert).where(Alert.state == "firing").order_by(col(Alert.id))
        ).all()
        shown = [
            a
            for a in firing
            if a.review_state not in ("pending", "expired")
            and routing.silence_for(a.area_pcode, a.rule) is None
        ]
        for expert_id in sorted(routing.experts):
            channels = routing.channels.get(expert_id, [])
            if not channels or not routing.expert_areas(expert_id):
                continue
            counts["experts"] += 1
            mine = [a for a in shown if expert_id in routing.covering_experts(a.area_pcode)]
            if not mine:
                counts["nothing_firing"] += 1
                continue
            mine.sort(key=lambda a: (-severity_rank(a.severity), a.group_key or "", a.id or 0))
            expert = routing.experts[expert_id]
            payload = {
                "kind": "digest",
                "language": expert.language or "en",
                "expert_id": expert_id,
                "group": {
                    "key": None,
                    "country_iso3": None,
                    "country_name": None,
                    "admin1_pcode": None,
                    "admin1_name": None,
                },
                "alerts": [payload_item(a, settings) for a in mine],
                "day": day,
            }
            for channel in channels:
                key = f"digest:{expert_id}:{channel.id}:{day}"
                if (
                    session.exec(
                        select(Notification.id).where(Notification.idempotency_key == key)
                    ).first()
                    is not None
                ):
                    counts["already_queued"] += 1
                    continue
                notification = Notification(
                    alert_id=mine[0].id,
                    expert_id=expert_id,
                    channel_id=channel.id,  # type: ignore[arg-type]
                    idempotency_key=key,
                    kind="digest",
                    status="pending",
                    next_attempt_at=send_at,
                    payload=payload,
                    created_at=moment,
                )
                session.add(notification)
                session.flush()
                for alert in mine:
                    session.add(
                        NotificationAlert(
                            notification_id=notification.id,  # type: ignore[arg-type]
                            alert_id=alert.id,
                        )
                    )  # type: ignore[arg-type]
                counts["notifications"] += 1
        session.commit()
    return counts
