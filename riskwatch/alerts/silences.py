"""Silences: no notifications for an area and its sub-areas (optionally one rule) until expiry.

A silence has an author and a reason (audit trail) and always an end: alerts keep firing and
being recorded meanwhile (decision ``silenced``), and reach experts at the first evaluation
after it ends if they still fire.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.db.models import Area, AuditEvent, Silence
from riskwatch.errors import UsageError
from riskwatch.timeutil import iso_utc, to_utc, utcnow

from . import AlertRefused


def create_silence(
    engine: Engine,
    *,
    area_pcode: str,
    ends_at: datetime,
    author: str,
    reason: str,
    rule: str | None = None,
    known_rules: list[str] | None = None,
    starts_at: datetime | None = None,
    now: datetime | None = None,
) -> Silence:
    """Create a silence (checked: known area, end in the future, a reason)."""
    moment = to_utc(now) if now is not None else utcnow()
    ends = to_utc(ends_at)
    if ends <= moment:
        raise UsageError(f"--until {iso_utc(ends)} is not in the future")
    if not reason.strip():
        raise UsageError("a silence needs a reason")
    if not author.strip():
        raise UsageError("a silence needs an author")
    if rule and known_rules is not None and rule not in known_rules:
        raise UsageError(f"unknown rule {rule!r}; one of {', '.join(known_rules)}")
    with Session(engine) as session:
        if session.get(Area, area_pcode) is None:
            raise AlertRefused(f"no area {area_pcode}: silences apply to known pcodes")
        silence = Silence(
            area_pcode=area_pcode,
            rule=rule or None,
            starts_at=to_utc(starts_at) if starts_at else moment,
            ends_at=ends,
            author=author[:200],
            reason=reason[:2000],
            created_at=moment,
        )
        session.add(silence)
        session.flush()
        session.add(
            AuditEvent(
                at=moment,
                actor=author[:200],
                action="silence.create",
                object_type="silence",
                object_id=str(silence.id),
                detail={
                    "area": area_pcode,
                    "rule": rule,
                    "until": iso_utc(ends),
                    "reason": reason[:2000],
                },
            )
        )
        session.commit()
        session.refresh(silence)
        session.expunge(silence)
        return silence


def active_silences(session: Session, now: datetime | None = None) -> list[Silence]:
    """Silences in force now."""
    moment = to_utc(now) if now is not None else utcnow()
    return list(
        session.exec(
            select(Silence)
            .where(
                col(Silence.starts_at) <= moment,
                col(Silence.ends_at) > moment,
            )
            .order_by(col(Silence.id))
        ).all()
    )
