"""Retention: keep the job history and the outbox from growing for ever, conservatively.

Deleted after ``scheduler.retention_days``:

- finished JobRuns (a ``running`` one is never deleted: it may still be closed);
- the *contents* of delivered notifications (their payload: area names, risks, drivers). The
  notification row stays, with its idempotency key, channel and times, so that a message is
  still never sent twice and delivery statistics stay complete.

Never deleted: alerts, alert decisions, acknowledgements, silences, audit events, observations,
ingest batches, score runs and their scores (lineage and reproducibility depend on them).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from riskwatch.config import Settings
from riskwatch.db.engine import session_scope
from riskwatch.db.models import JobRun, Notification
from riskwatch.timeutil import iso_utc, to_utc, utcnow

#: Payload keys kept when a delivered notification's contents are removed.
KEPT_PAYLOAD_KEYS = ("kind", "language", "expert_id")


def apply_retention(
    engine: Engine, settings: Settings, *, now: datetime | None = None
) -> dict[str, int | str]:
    """Delete what is older than the retention; returns what was removed and the cut-off."""
    now = to_utc(now or utcnow())
    cutoff = now - timedelta(days=settings.scheduler.retention_days)
    with session_scope(engine) as session:
        deleted = session.execute(
            delete(JobRun).where(col(JobRun.status) != "running",
                                 col(JobRun.started_at) < cutoff)
        )
        job_runs = int(deleted.rowcount or 0)
        purged = 0
        old = session.exec(
            select(Notification).where(Notification.status == "delivered",
                                       col(Notification.delivered_at) < cutoff)
        )
        for notification in old:
            payload = notification.payload or {}
            if payload.get("purged_at"):
                continue
            notification.payload = {
                **{k: payload[k] for k in KEPT_PAYLOAD_KEYS if k in payload},
                "purged_at": iso_utc(now),
            }
            session.add(notification)
            purged += 1
    return {"cutoff": iso_utc(cutoff), "job_runs_deleted": job_runs,
            "notification_payloads_purged": purged}
