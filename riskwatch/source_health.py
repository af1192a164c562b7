"""Source health: which sources fail, which are stale, and which areas rest on stale data.

A source is **stale** when it declares an ``expected_cadence_days`` and its newest data (the
latest reporting date of its successful batches) or its last successful ingest is older than
that. A source is **failing** when its last attempt failed after its last success. Both are
shown by ``riskwatch status``, ``riskwatch jobs`` and ``riskwatch sources``; the areas whose
current observations come from a stale source (:func:`stale_area_pcodes`) are never presented as
low risk (the dashboard) and raise the ``stale_data`` alert rule.

When a source turns stale the pipeline records an AuditEvent (``source_stale``) and a JobRun
``source-health`` with status ``warning``: the "stale data" condition for the administrators.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.db.engine import session_scope
from riskwatch.db.models import Area, AuditEvent, IngestBatch, Observation, Source
from riskwatch.timeutil import iso_utc, to_utc, utcnow

#: Batch statuses that count as a successful ingest (an unchanged snapshot was still checked).
SUCCESSFUL = ("succeeded", "unchanged")
FAILED = ("failed", "refused")


@dataclass(frozen=True)
class SourceHealth:
    """One source as the scheduler sees it."""

    id: str
    kind: str
    title: str | None
    expected_cadence_days: int | None
    last_attempt_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error_at: dt.datetime | None
    last_error: str | None
    latest_data_date: dt.date | None
    stale: bool
    stale_reason: str
    stale_since: dt.datetime | None
    failing: bool

    @property
    def status(self) -> str:
        """``stale``, ``failing``, ``ok`` or ``never ingested``."""
        if self.stale:
            return "stale"
        if self.failing:
            return "failing"
        if self.last_success_at is None:
            return "never ingested"
        return "ok"


def source_health(session: Session, now: dt.datetime | None = None) -> list[SourceHealth]:
    """Every source in the database with its last success, last error and stale flag."""
    now = to_utc(now or utcnow())
    sources = list(session.exec(select(Source).order_by(col(Source.id))))
    batches: dict[str, list[IngestBatch]] = {}
    for batch in session.exec(select(IngestBatch).order_by(col(IngestBatch.id))):
        batches.setdefault(batch.source_id, []).append(batch)
    return [_health(source, batches.get(source.id, []), now) for source in sources]


def last_batches(session: Session) -> dict[str, IngestBatch]:
    """Each source's newest ingest batch (any status), by source id."""
    last: dict[str, IngestBatch] = {}
    for batch in session.exec(select(IngestBatch).order_by(col(IngestBatch.id))):
        last[batch.source_id] = batch
    return last


def _health(source: Source, history: list[IngestBatch], now: dt.datetime) -> SourceHealth:
    successes = [b for b in history if b.status in SUCCESSFUL]
    last_success = _latest(
        [source.last_success_at, *(b.finished_at or b.started_at for b in successes)]
    )
    last_attempt = _latest([source.last_attempt_at, *(b.started_at for b in history)])
    failed = [b for b in history if b.status in FAILED]
    last_failed = failed[-1] if failed else None
    error_at = _latest([source.last_error_at,
                        (last_failed.finished_at or last_failed.started_at)
                        if last_failed else None])
    error = source.last_error
    if last_failed is not None and (source.last_error_at is None or (
            error_at is not None and to_utc(source.last_error_at) < error_at)):
        error = str((last_failed.report or {}).get("message") or f"batch {last_failed.status}")
    failing = error_at is not None and (last_success is None or error_at > last_success)
    latest_data = _latest_date(d for b in successes for d in (b.reporting_dates or []))
    stale, reason = _staleness(now, source.expected_cadence_days, latest_data, last_success)
    return SourceHealth(
        id=source.id, kind=source.kind, title=source.title,
        expected_cadence_days=source.expected_cadence_days,
        last_attempt_at=last_attempt, last_success_at=last_success,
        last_error_at=error_at, last_error=error,
        latest_data_date=latest_data, stale=stale, stale_reason=reason,
        stale_since=to_utc(source.stale_since) if source.stale_since else None,
        failing=failing,
    )


def _staleness(
    now: dt.datetime, cadence: int | None, latest_data: dt.date | None,
    last_success: dt.datetime | None,
) -> tuple[bool, str]:
    if cadence is None:
        return False, "no expected cadence declared"
    if last_success is None:
        return False, "never ingested successfully"
    if latest_data is not None and (now.date() - latest_data).days > cadence:
        return True, (f"newest data dated {latest_data} ({(now.date() - latest_data).days} "
                      f"days ago); expected every {cadence} days")
    age = (now - last_success).days
    if age > cadence:
        return True, (f"last successful ingest {iso_utc(last_success)} ({age} days ago); "
                      f"expected every {cadence} days")
    return False, f"within {cadence} days"


def stale_area_pcodes(session: Session, now: dt.datetime | None = None) -> set[str]:
    """Areas whose current observations come from a stale source, with their sub-areas.

    Sub-areas are included because they inherit coarser values (an admin1 IPC phase counts for
    its districts), so their scores rest on the stale data too.
    """
    stale = [h.id for h in source_health(session, now) if h.stale]
    if not stale:
        return set()
    batch_ids = list(session.exec(
        select(IngestBatch.id).where(col(IngestBatch.source_id).in_(stale))
    ))
    if not batch_ids:
        return set()
    pcodes: set[str] = set()
    for start in range(0, len(batch_ids), 500):
        chunk = batch_ids[start:start + 500]
        pcodes.update(session.exec(
            select(Observation.area_pcode).where(col(Observation.batch_id).in_(chunk),
                                                 col(Observation.superseded_at).is_(None))
            .distinct()
        ))
    return pcodes | _descendants(session, pcodes)


def _descendants(session: Session, pcodes: set[str]) -> set[str]:
    children: dict[str, list[str]] = {}
    for pcode, parent in session.exec(select(Area.pcode, Area.parent_pcode)):
        if parent is not None:
            children.setdefault(parent, []).append(pcode)
    found: set[str] = set()
    todo = list(pcodes)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and child not in pcodes:
                found.add(child)
                todo.append(child)
    return found


@dataclass(frozen=True)
class HealthUpdate:
    """What :func:`update_source_health` changed."""

    health: list[SourceHealth]
    newly_stale: list[str]
    recovered: list[str]

    @property
    def stale(self) -> list[str]:
        return [h.id for h in self.health if h.stale]

    @property
    def failing(self) -> list[str]:
        return [h.id for h in self.health if h.failing]


def update_source_health(
    engine: Engine, now: dt.datetime | None = None, *, actor: str = "scheduler"
) -> HealthUpdate:
    """Set or clear ``Source.stale_since``; audit every source that turns stale or recovers."""
    now = to_utc(now or utcnow())
    newly_stale: list[str] = []
    recovered: list[str] = []
    with session_scope(engine) as session:
        health = source_health(session, now)
        for item in health:
            source = session.get(Source, item.id)
            assert source is not None
            if item.stale and source.stale_since is None:
                source.stale_since = now
                newly_stale.append(item.id)
                session.add(AuditEvent(at=now, actor=actor, action="source_stale",
                                       object_type="source", object_id=item.id,
                                       detail={"reason": item.stale_reason}))
            elif not item.stale and source.stale_since is not None:
                source.stale_since = None
                recovered.append(item.id)
                session.add(AuditEvent(at=now, actor=actor, action="source_fresh",
                                       object_type="source", object_id=item.id,
                                       detail={"reason": item.stale_reason}))
            session.add(source)
        health = source_health(session, now)
    return HealthUpdate(health=health, newly_stale=newly_stale, recovered=recovered)


def _latest(values: list[dt.datetime | None]) -> dt.datetime | None:
    present = [to_utc(v) for v in values if v is not None]
    return max(present, default=None)


def _latest_date(values: object) -> dt.date | None:
    dates = []
    for value in values:  # type: ignore[attr-defined]
        try:
            dates.append(dt.date.fromisoformat(str(value)[:10]))
        except ValueError:
            continue
    return max(dates, default=None)
