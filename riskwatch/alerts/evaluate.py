"""One alert evaluation: conditions -> lifecycle -> outbox, in ONE transaction.

:func:`evaluate_alerts` is what ``riskwatch run``, the scheduler and ``riskwatch alerts
evaluate`` call. The alert changes, their decisions, the notifications and their links are
committed together or not at all (transactional outbox); with ``dry_run=True`` everything is
computed the same way - ids included, inside the transaction - and then rolled back.

Two evaluations at once (two CLI runs, a CLI run beside the scheduler) may race to create the
same alert or notification; the unique fingerprint and idempotency key make the loser fail as
a whole (on SQLite: a write-lock conflict), and it is retried on a fresh transaction, which
then sees the winner's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from riskwatch.config import Settings
from riskwatch.db.models import ScoreRun
from riskwatch.timeutil import to_utc, utcnow

from .conditions import RunView, evaluate_conditions
from .lifecycle import apply_conditions, first_evaluation, remember_evaluation
from .outbox import PlannedNotification, plan_notifications
from .routing import AreaIndex, Routing
from .rules import AlertRules, load_rules


@dataclass
class AlertEvaluation:
    """What one evaluation did (or, in a dry run, would do)."""

    counts: dict[str, int] = field(default_factory=dict)
    notification_ids: list[int] = field(default_factory=list)
    # When the group wait of the notifications it created ends (None: it created none).
    send_after: datetime | None = None
    run_id: int | None = None
    dry_run: bool = False
    planned: list[PlannedNotification] = field(default_factory=list)


#: Tries of one evaluation when it lost a race with a concurrent one.
ATTEMPTS = 3


def _is_lock_conflict(error: OperationalError) -> bool:
    text = str(getattr(error, "orig", error)).lower()
    return "locked" in text or "busy" in text or "deadlock" in text or "serializ" in text


def latest_run(session: Session) -> ScoreRun | None:
    """The latest succeeded score run."""
    return session.exec(
        select(ScoreRun).where(ScoreRun.status == "succeeded").order_by(col(ScoreRun.id).desc())
    ).first()


def evaluate_alerts(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    rules: AlertRules | None = None,
) -> AlertEvaluation:
    """Evaluate every enabled rule against the latest score run and write the outbox."""
    moment = to_utc(now) if now is not None else utcnow()
    rules = rules or load_rules(settings)
    for attempt in range(1, ATTEMPTS + 1):
        with Session(engine) as session:
            try:
                result = _evaluate(session, settings, rules, moment)
                result.dry_run = dry_run
                if dry_run:
                    session.rollback()
                    result.notification_ids = []
                else:
                    session.commit()
                return result
            except (IntegrityError, OperationalError) as error:
                session.rollback()
                # A lost race (unique fingerprint or key on PostgreSQL; a stale snapshot,
                # "database is locked", on SQLite) is retried; anything else is raised.
                if attempt == ATTEMPTS or (
                    isinstance(error, OperationalError) and not _is_lock_conflict(error)
                ):
                    raise
    raise AssertionError("unreachable")  # pragma: no cover


def _evaluate(
    session: Session, settings: Settings, rules: AlertRules, now: datetime
) -> AlertEvaluation:
    run = latest_run(session)
    areas = AreaIndex.load(session)
    routing = Routing.load(session, areas, now)
    view = RunView.load(session, run)
    first = first_evaluation(session)
    conditions = evaluate_conditions(
        session,
        rules,
        view,
        areas,
        routing,
        now,
        first_evaluation=first,
        privacy_threshold=settings.privacy.small_count_threshold,
    )
    run_id = run.id if run is not None else None
    lifecycle = apply_conditions(session, rules, conditions, areas, run_id, now)
    counts: dict[str, int] = {
        "conditions": len(conditions),
        "fired": len(lifecycle.fired),
        "resolved": len(lifecycle.resolved),
        "firing": len(lifecycle.firing),
        "notifications": 0,
    }
    planned = plan_notifications(session, settings, rules, routing, lifecycle.firing, now, counts)
    remember_evaluation(session, run_id)
    session.flush()
    return AlertEvaluation(
        counts=counts,
        notification_ids=[p.notification_id for p in planned if p.notification_id is not None],
        send_after=min((p.next_attempt_at for p in planned), default=None),
        run_id=run_id,
        planned=planned,
    )
