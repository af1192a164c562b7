"""From firing alerts to outbox rows: routing, inhibition, silences, cool-down, repeat, grouping.

For every firing alert and every expert whose active deployment covers its area:

- **review**: an alert awaiting review (review-mode country) reaches nobody until approved;
- **silence**: an active silence on the area or an ancestor (optionally for one rule) holds it;
- **inhibition**: an admin2 (or finer) alert is held back for an expert who also receives a
  firing alert of the same rule family on its admin1 area with the same or higher severity;
- **send** once per firing episode; **cool-down**: an alert that fires again within
  ``cooldown_hours`` of its last sent notification is not re-sent (HDX Signals compares with
  alerts *sent*); **severity raised** while firing: sent again; **repeat**: a firing,
  unacknowledged alert is sent again ``repeat_interval_hours`` after the last send;
- **grouping**: the alerts to send to one expert in one country/admin1 group go out as ONE
  notification per usable channel, linked to its alerts through ``NotificationAlert``.

The idempotency key hashes expert, channel, group and, per alert, its id, episode and how many
times it was already sent to that expert in that episode: re-evaluating with no new data finds
nothing to send, and a retried transaction cannot create a second row for the same message.
Every outcome is an ``AlertDecision`` row; a hold (silenced, inhibited, cooldown, ...) is
recorded once, when it differs from the last decision about that alert and expert.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from riskwatch.config import Settings
from riskwatch.db.models import Alert, AlertDecision, Notification, NotificationAlert
from riskwatch.timeutil import iso_utc, to_utc

from .explain import episode, group_of, payload_item
from .lifecycle import decision
from .routing import Routing
from .rules import AlertRules, severity_rank

SEND_DECISIONS = ("sent", "repeated")
#: Holds recorded once per change (a detail key that, when it changes, is a new decision).
_HOLD_KEYS = {
    "silenced": "silence_id",
    "inhibited": "by_alert",
    "cooldown": "episode",
    "awaiting_review": "episode",
    "no_recipient": "reason",
}


@dataclass
class PlannedNotification:
    """A notification to write (or, in a dry run, that would be written)."""

    expert_id: int
    channel_id: int
    channel_kind: str
    kind: str
    group_key: str | None
    idempotency_key: str
    payload: dict[str, Any]
    alert_ids: list[int]
    next_attempt_at: datetime
    notification_id: int | None = None


@dataclass
class History:
    """What was decided before about the alerts being considered."""

    last: dict[tuple[int, int | None], AlertDecision] = field(default_factory=dict)
    sends: dict[tuple[int, int], list[AlertDecision]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @classmethod
    def load(cls, session: Session, alert_ids: list[int]) -> History:
        history = cls()
        for start in range(0, len(alert_ids), 500):
            for row in session.exec(
                select(AlertDecision)
                .where(col(AlertDecision.alert_id).in_(alert_ids[start : start + 500]))
                .order_by(col(AlertDecision.id))
            ).all():
                assert row.alert_id is not None
                history.last[(row.alert_id, row.expert_id)] = row
                if row.decision in SEND_DECISIONS and row.expert_id is not None:
                    history.sends[(row.alert_id, row.expert_id)].append(row)
        return history

    def sends_in_episode(self, alert: Alert, expert_id: int) -> list[AlertDecision]:
        assert alert.id is not None
        number = episode(alert)
        return [
            d
            for d in self.sends.get((alert.id, expert_id), [])
            if (d.detail or {}).get("episode") == number
        ]


class Recorder:
    """Adds decisions to the session, skipping a hold identical to the last one recorded."""

    def __init__(
        self, session: Session, history: History, now: datetime, counts: dict[str, int]
    ) -> None:
        self.session, self.history, self.now, self.counts = session, history, now, counts

    def hold(
        self, alert: Alert, name: str, detail: dict[str, Any], expert_id: int | None = None
    ) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        assert alert.id is not None
        last = self.history.last.get((alert.id, expert_id))
        key = _HOLD_KEYS.get(name)
        if (
            last is not None
            and last.decision == name
            and (key is None or (last.detail or {}).get(key) == detail.get(key))
        ):
            return
        self.add(alert, name, detail, expert_id=expert_id)

    def add(
        self,
        alert: Alert,
        name: str,
        detail: dict[str, Any],
        *,
        expert_id: int | None = None,
        notification_id: int | None = None,
    ) -> AlertDecision:
        row = decision(
            alert, name, self.now, detail, expert_id=expert_id, notification_id=notification_id
        )
        self.session.add(row)
        assert alert.id is not None
        self.history.last[(alert.id, expert_id)] = row
        return row


def idempotency_key(
    kind: str, expert_id: int, channel_id: int, group_key: str | None, parts: list[str]
) -> str:
    """A stable key for one message: same alerts, episode and send number give the same key."""
    text = "|".join([kind, str(expert_id), str(channel_id), group_key or "", *sorted(parts)])
    return f"{kind}-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:48]


def _inhibitor(
    alert: Alert,
    expert_id: int,
    routing: Routing,
    rules: AlertRules,
    by_area: dict[str, list[Alert]],
) -> Alert | None:
    """A firing admin1 alert of the same family and at least the same severity that this
    expert receives, when ``alert`` lies below admin1."""
    info = routing.areas.get(alert.area_pcode)
    if info is None or info.admin_level < 2:
        return None
    admin1 = routing.areas.admin1_of(alert.area_pcode)
    if admin1 is None or expert_id not in routing.covering_experts(admin1):
        return None
    family = rules.family(alert.rule)
    for other in by_area.get(admin1, []):
        if (
            other.state == "firing"
            and rules.family(other.rule) == family
            and severity_rank(other.severity) >= severity_rank(alert.severity)
            and other.review_state not in ("pending", "expired")
            and routing.silence_for(other.area_pcode, other.rule) is None
        ):
            return other
    return None


def plan_notifications(
    session: Session,
    settings: Settings,
    rules: AlertRules,
    routing: Routing,
    firing: list[Alert],
    now: datetime,
    counts: dict[str, int],
    *,
    targets: list[Alert] | None = None,
) -> list[PlannedNotification]:
    """Decide, per alert and expert, what to send; write notifications, links and decisions.

    ``firing`` are all firing alerts (for inhibition); ``targets`` the ones to consider
    (default: all of them). Rows are added to the session (the caller's transaction).
    """
    lifecycle = rules.lifecycle
    cooldown = timedelta(hours=lifecycle.cooldown_hours)
    repeat = timedelta(hours=lifecycle.repeat_interval_hours)
    send_at = now + timedelta(seconds=lifecycle.group_wait_seconds)
    by_area: dict[str, list[Alert]] = defaultdict(list)
    for alert in firing:
        by_area[alert.area_pcode].append(alert)
    considered = sorted(targets if targets is not None else firing, key=lambda a: a.id or 0)
    history = History.load(session, [a.id for a in considered if a.id is not None])
    recorder = Recorder(session, history, now, counts)
    # (expert, group key) -> [(alert, reason, send number)]
    queue: dict[tuple[int, str | None], list[tuple[Alert, str, int]]] = defaultdict(list)

    for alert in considered:
        if alert.state != "firing":
            continue
        number = episode(alert)
        if alert.review_state in ("pending", "expired"):
            recorder.hold(
                alert, "awaiting_review", {"episode": number, "country": alert.country_iso3}
            )
            continue
        silence = routing.silence_for(alert.area_pcode, alert.rule)
        if silence is not None:
            recorder.hold(
                alert,
                "silenced",
                {
                    "silence_id": silence.id,
                    "silence_area": silence.area_pcode,
                    "until": iso_utc(silence.ends_at),
                    "author": silence.author,
                },
            )
            continue
        experts = sorted(routing.covering_experts(alert.area_pcode))
        if not experts:
            recorder.hold(
                alert, "no_recipient", {"reason": "no active deployment covers this area"}
            )
            continue
        for expert_id in experts:
            if not routing.channels.get(expert_id):
                recorder.hold(
                    alert, "no_recipient", {"reason": "no healthy, enabled channel"}, expert_id
                )
                continue
            inhibitor = _inhibitor(alert, expert_id, routing, rules, by_area)
            if inhibitor is not None:
                recorder.hold(
                    alert,
                    "inhibited",
                    {
                        "by_alert": inhibitor.id,
                        "by_rule": inhibitor.rule,
                        "by_pcode": inhibitor.area_pcode,
                        "by_severity": inhibitor.severity,
                    },
                    expert_id,
                )
                continue
            sends = history.sends_in_episode(alert, expert_id)
            if not sends:
                last_sent = to_utc(alert.notified_at) if alert.notified_at else None
                if number > 1 and last_sent is not None and now - last_sent < cooldown:
                    recorder.hold(
                        alert,
                        "cooldown",
                        {
                            "episode": number,
                            "last_sent": iso_utc(last_sent),
                            "until": iso_utc(last_sent + cooldown),
                        },
                        expert_id,
                    )
                    continue
                reason = "fired"
            elif max(
                severity_rank((d.detail or {}).get("severity", "")) for d in sends
            ) < severity_rank(alert.severity):
                reason = "severity_raised"
            elif alert.acknowledged_at is None and now - max(to_utc(d.at) for d in sends) >= repeat:
                reason = "repeat"
            else:
                continue  # already sent in this episode: nothing new
            queue[(expert_id, alert.group_key)].append((alert, reason, len(sends)))

    planned: list[PlannedNotification] = []
    for (expert_id, group_key), items in sorted(
        queue.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
    ):
        items.sort(key=lambda item: item[0].id or 0)
        expert = routing.experts[expert_id]
        payload = {
            "kind": "alert",
            "language": expert.language or "en",
            "expert_id": expert_id,
            "group": group_of(items[0][0]),
            "alerts": [payload_item(alert, settings) for alert, _, _ in items],
        }
        parts = [f"{alert.id}.{episode(alert)}.{seq}" for alert, _, seq in items]
        made: list[PlannedNotification] = []
        for channel in routing.channels[expert_id]:
            assert channel.id is not None
            key = idempotency_key("alert", expert_id, channel.id, group_key, parts)
            if (
                session.exec(
                    select(Notification.id).where(Notification.idempotency_key == key)
                ).first()
                is not None
            ):
                counts["duplicate_skipped"] = counts.get("duplicate_skipped", 0) + 1
                continue
            made.append(
                _write(
                    session,
                    PlannedNotification(
                        expert_id,
                        channel.id,
                        channel.kind,
                        "alert",
                        group_key,
                        key,
                        payload,
                        [a.id for a, _, _ in items if a.id is not None],
                        send_at,
                    ),
                    now,
                )
            )
        if not made:
            continue
        planned.extend(made)
        counts["notifications"] = counts.get("notifications", 0) + len(made)
        alert_ids = [a.id for a, _, _ in items]
        for alert, reason, seq in items:
            name = "repeated" if reason == "repeat" else "sent"
            counts[name] = counts.get(name, 0) + 1
            recorder.add(
                alert,
                name,
                {
                    "episode": episode(alert),
                    "severity": alert.severity,
                    "send_number": seq + 1,
                    "reason": reason,
                    "group_key": group_key,
                    "channels": [p.channel_id for p in made],
                    "notifications": [p.notification_id for p in made],
                },
                expert_id=expert_id,
                notification_id=made[0].notification_id,
            )
            history.sends[(alert.id, expert_id)].append(history.last[(alert.id, expert_id)])
            if len(items) > 1:
                counts["grouped"] = counts.get("grouped", 0) + 1
                recorder.add(
                    alert,
                    "grouped",
                    {"group_key": group_key, "alert_ids": alert_ids},
                    expert_id=expert_id,
                    notification_id=made[0].notification_id,
                )
            alert.notified_at = now
    return planned


def _write(session: Session, plan: PlannedNotification, now: datetime) -> PlannedNotification:
    notification = Notification(
        alert_id=plan.alert_ids[0] if plan.alert_ids else None,
        expert_id=plan.expert_id,
        channel_id=plan.channel_id,
        idempotency_key=plan.idempotency_key,
        kind=plan.kind,
        group_key=plan.group_key,
        status="pending",
        next_attempt_at=plan.next_attempt_at,
        payload=plan.payload,
        created_at=now,
    )
    session.add(notification)
    session.flush()
    plan.notification_id = notification.id
    for alert_id in plan.alert_ids:
        session.add(NotificationAlert(notification_id=notification.id, alert_id=alert_id))
    return plan
