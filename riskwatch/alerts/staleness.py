"""Which sources are stale and which areas their data covers (for the ``stale_data`` rule).

A source with an expected cadence is stale when its latest *succeeded* batch (one that brought
data; an ``unchanged`` re-fetch brings nothing new) finished longer than its cadence ago, or when
the scheduler marked it stale (``Source.stale_since``). When the scheduler's
:func:`riskwatch.source_health.stale_area_pcodes` exists it decides which areas are stale; the
computation here is the fallback and names the stale sources for the explanations.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from riskwatch.db.models import Area, IngestBatch, Observation, Source
from riskwatch.timeutil import to_utc


def stale_sources(session: Session, now: datetime) -> dict[str, datetime | None]:
    """Stale source ids with the time of their latest succeeded batch (None: never).

    The scheduler's source health decides when it exists (one definition of "stale" for the
    map, ``riskwatch sources`` and the alerts); else the rule in the module docstring.
    """
    try:
        from riskwatch.source_health import source_health
    except ImportError:
        return own_stale_sources(session, now)
    return {h.id: h.last_success_at for h in source_health(session, now) if h.stale}


def own_stale_sources(session: Session, now: datetime) -> dict[str, datetime | None]:
    """Stale sources by this module's rule (fallback without the scheduler's source health)."""
    last = dict(
        session.exec(
            select(IngestBatch.source_id, func.max(IngestBatch.finished_at))
            .where(IngestBatch.status == "succeeded")
            .group_by(IngestBatch.source_id)
        ).all()
    )
    stale: dict[str, datetime | None] = {}
    for source in session.exec(select(Source).order_by(col(Source.id))).all():
        finished = last.get(source.id)
        finished = to_utc(finished) if finished is not None else None
        if (
            source.stale_since is not None
            or source.expected_cadence_days
            and (finished is None or now - finished > timedelta(days=source.expected_cadence_days))
        ):
            stale[source.id] = finished
    return stale


def stale_source_countries(session: Session, source_ids: list[str]) -> dict[str, list[str]]:
    """Country ISO3 -> the stale sources that have data there."""
    if not source_ids:
        return {}
    rows = session.exec(
        select(Area.country_iso3, IngestBatch.source_id)
        .distinct()
        .join(Observation, col(Observation.area_pcode) == col(Area.pcode))
        .join(IngestBatch, col(IngestBatch.id) == col(Observation.batch_id))
        .where(col(IngestBatch.source_id).in_(source_ids))
    ).all()
    countries: dict[str, list[str]] = {}
    for country, source_id in rows:
        countries.setdefault(str(country), []).append(str(source_id))
    return {country: sorted(ids) for country, ids in countries.items()}


def own_stale_area_pcodes(session: Session, source_ids: list[str]) -> set[str]:
    """Areas with current observations from the stale sources."""
    if not source_ids:
        return set()
    return {
        str(p)
        for p in session.exec(
            select(Observation.area_pcode)
            .distinct()
            .join(IngestBatch, col(IngestBatch.id) == col(Observation.batch_id))
            .where(
                col(IngestBatch.source_id).in_(source_ids), col(Observation.superseded_at).is_(None)
            )
        ).all()
    }


def stale_area_pcodes(session: Session, now: datetime, source_ids: list[str]) -> set[str]:
    """Areas whose data is stale: the scheduler's view when available, else our own."""
    try:
        from riskwatch.source_health import stale_area_pcodes as scheduler_view
    except ImportError:
        return own_stale_area_pcodes(session, source_ids)
    return {str(pcode) for pcode in scheduler_view(session, now)}
