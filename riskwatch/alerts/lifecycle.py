"""Alert lifecycle: fingerprint ``rule:pcode``, firing/resolved, hysteresis, review mode.

- A condition that *opens* creates the alert (or starts a new firing episode of a resolved one:
  ``explanation.episode`` + 1, ``explanation.since`` = now). A resolved alert of a score rule
  opens again only when its condition allows it (risk above the class threshold + margin).
- A firing alert stays firing while its condition *holds*. Each evaluation of a *new* score run
  in which it does not hold adds one to ``clear_streak``; at ``resolve_after_evaluations`` it
  resolves. Evaluating the same run again changes nothing (no new data, no new evidence), except
  for the stale-data rule, whose condition is time-driven and counts every evaluation.
- In a review-mode country a new episode starts with ``review_state = "pending"``.
Every change is an :class:`~riskwatch.db.models.AlertDecision` row (fired, resolved,
awaiting_review) in the evaluation's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from riskwatch.db.models import Alert, AlertDecision, Meta
from riskwatch.timeutil import iso_utc

from .conditions import Condition
from .explain import episode
from .routing import AreaIndex
from .rules import AlertRules

#: Meta key holding the id of the score run the last (committed) evaluation read.
LAST_RUN_KEY = "alerts.last_evaluated_run"


def first_evaluation(session: Session) -> bool:
    """True before any evaluation was committed (CONTRACTS: alerts on a first evaluation)."""
    return session.get(Meta, LAST_RUN_KEY) is None


def remember_evaluation(session: Session, run_id: int | None) -> None:
    row = session.get(Meta, LAST_RUN_KEY)
    value = str(run_id or "")
    if row is None:
        session.add(Meta(key=LAST_RUN_KEY, value=value))
    elif row.value != value:
        row.value = value


@dataclass
class LifecycleResult:
    firing: list[Alert] = field(default_factory=list)
    fired: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)


def decision(
    alert: Alert,
    name: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
    *,
    expert_id: int | None = None,
    notification_id: int | None = None,
) -> AlertDecision:
    return AlertDecision(
        alert_id=alert.id,
        expert_id=expert_id,
        notification_id=notification_id,
        at=now,
        decision=name,
        detail=detail or {},
    )


def _explanation(condition: Condition, number: int, started: str) -> dict[str, Any]:
    return {**condition.facts, "rule": condition.rule_id, "episode": number, "since": started}


def apply_conditions(
    session: Session,
    rules: AlertRules,
    conditions: dict[str, Condition],
    areas: AreaIndex,
    run_id: int | None,
    now: datetime,
) -> LifecycleResult:
    """Open, hold and resolve alerts; returns the alerts firing afterwards."""
    result = LifecycleResult()
    alerts = {
        a.fingerprint: a for a in session.exec(select(Alert).where(Alert.state == "firing")).all()
    }
    opening = [fp for fp, c in conditions.items() if c.opens and fp not in alerts]
    for start in range(0, len(opening), 500):
        for alert in session.exec(
            select(Alert).where(col(Alert.fingerprint).in_(opening[start : start + 500]))
        ).all():
            alerts[alert.fingerprint] = alert
    review = set(rules.review.countries)
    need = rules.lifecycle.resolve_after_evaluations
    new_decisions: list[tuple[Alert, str, dict[str, Any]]] = []

    for fingerprint in sorted(set(alerts) | set(conditions)):
        condition = conditions.get(fingerprint)
        alert = alerts.get(fingerprint)
        if alert is not None and alert.state == "firing":
            if condition is not None and condition.holds:
                _hold(alert, condition, run_id, now)
                result.firing.append(alert)
                continue
            rule = rules.rules.get(alert.rule)
            time_driven = rule is not None and rule.kind == "stale_data"
            if not time_driven and (run_id is None or alert.run_id == run_id):
                result.firing.append(alert)  # same run: no new evidence either way
                continue
            alert.clear_streak += 1
            alert.run_id = run_id if not time_driven else alert.run_id
            alert.updated_at = now
            if alert.clear_streak >= need:
                alert.state = "resolved"
                alert.resolved_at = now
                if alert.review_state == "pending":
                    alert.review_state = "expired"  # never approved, no longer relevant
                result.resolved.append(alert)
                new_decisions.append(
                    (
                        alert,
                        "resolved",
                        {
                            "episode": episode(alert),
                            "clear_evaluations": alert.clear_streak,
                            "run_id": run_id,
                        },
                    )
                )
            else:
                result.firing.append(alert)
            continue
        if condition is None or not condition.opens:
            continue
        if alert is not None and not condition.reopen_ok:
            continue  # hysteresis: resolved, and not far enough above the threshold
        alert = _open(session, alert, condition, areas, run_id, now, review)
        result.firing.append(alert)
        result.fired.append(alert)
        new_decisions.append(
            (
                alert,
                "fired",
                {
                    "episode": episode(alert),
                    "severity": alert.severity,
                    "value": alert.value,
                    "run_id": run_id,
                    "summary": condition.facts.get("summary"),
                },
            )
        )
        if alert.review_state == "pending":
            new_decisions.append(
                (
                    alert,
                    "awaiting_review",
                    {"episode": episode(alert), "country": alert.country_iso3},
                )
            )
    session.flush()  # alert ids for the decisions
    for alert, name, detail in new_decisions:
        session.add(decision(alert, name, now, detail))
    return result


def _hold(alert: Alert, condition: Condition, run_id: int | None, now: datetime) -> None:
    alert.last_seen = now
    alert.clear_streak = 0
    if run_id is not None and alert.run_id != run_id:
        alert.run_id = run_id
    if alert.severity != condition.severity:
        alert.severity = condition.severity
    if alert.value != condition.value:
        alert.value = condition.value
    explanation = _explanation(
        condition, episode(alert), (alert.explanation or {}).get("since") or iso_utc(now)
    )
    if explanation != alert.explanation:
        alert.explanation = explanation
    alert.updated_at = now


def _open(
    session: Session,
    alert: Alert | None,
    condition: Condition,
    areas: AreaIndex,
    run_id: int | None,
    now: datetime,
    review: set[str],
) -> Alert:
    info = areas.get(condition.pcode)
    country = info.country_iso3 if info is not None else condition.pcode[:3]
    number = 1 if alert is None else episode(alert) + 1
    if alert is None:
        alert = Alert(
            fingerprint=condition.fingerprint,
            rule=condition.rule_id,
            area_pcode=condition.pcode,
            severity=condition.severity,
            first_seen=now,
        )
        session.add(alert)
    alert.state = "firing"
    alert.severity = condition.severity
    alert.last_seen = now
    alert.resolved_at = None
    alert.run_id = run_id
    alert.value = condition.value
    alert.country_iso3 = country
    alert.group_key = areas.group_key(condition.pcode)
    alert.clear_streak = 0
    # A new episode is a new event: earlier acknowledgements and escalations were about the
    # previous one (they stay in the Acknowledgement rows and the decisions).
    alert.acknowledged_at = None
    alert.escalated_at = None
    alert.review_state = "pending" if country in review else None
    alert.explanation = _explanation(condition, number, iso_utc(now))
    alert.updated_at = now
    return alert
