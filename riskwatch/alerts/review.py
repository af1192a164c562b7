"""Review mode (HDX Signals' human triage): alerts of listed countries wait for approval.

``[review] countries`` in the rules file. A new firing episode there starts with
``review_state = "pending"`` and reaches nobody; :func:`approve` records who approved it and
creates its notifications at once, through the same routing and outbox as an evaluation (so
silences, inhibition and grouping apply), in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from riskwatch.config import Settings, load_settings
from riskwatch.db.models import Alert, AuditEvent
from riskwatch.timeutil import to_utc, utcnow

from . import AlertNotFound, AlertRefused
from .explain import episode
from .lifecycle import decision
from .outbox import plan_notifications
from .routing import AreaIndex, Routing
from .rules import AlertRules, load_rules


@dataclass
class Approval:
    """An approved alert and the notifications its approval created."""

    alert_id: int
    notification_ids: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def approve(
    engine: Engine,
    alert_id: int,
    *,
    actor: str,
    settings: Settings | None = None,
    rules: AlertRules | None = None,
    now: datetime | None = None,
) -> Approval:
    """Approve an alert awaiting review and queue its notifications."""
    if not actor:
        raise AlertRefused("say who approves (an actor name for the audit trail)")
    settings = settings or load_settings()
    rules = rules or load_rules(settings)
    moment = to_utc(now) if now is not None else utcnow()
    with Session(engine) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert {alert_id}")
        if alert.review_state != "pending" or alert.state != "firing":
            state = alert.review_state or "not in review"
            raise AlertRefused(
                f"alert {alert_id} is not awaiting review ({alert.state}, review: {state})"
            )
        alert.review_state = "approved"
        alert.updated_at = moment
        session.add(decision(alert, "approved", moment, {"by": actor, "episode": episode(alert)}))
        session.add(
            AuditEvent(
                at=moment,
                actor=actor,
                action="alert.approve",
                object_type="alert",
                object_id=str(alert_id),
                detail={"episode": episode(alert), "rule": alert.rule, "pcode": alert.area_pcode},
            )
        )
        routing = Routing.load(session, AreaIndex.load(session), moment)
        firing = list(session.exec(select(Alert).where(Alert.state == "firing")).all())
        counts: dict[str, int] = {"notifications": 0}
        planned = plan_notifications(
            session, settings, rules, routing, firing, moment, counts, targets=[alert]
        )
        session.commit()
        return Approval(
            alert_id, [p.notification_id for p in planned if p.notification_id is not None], counts
        )
