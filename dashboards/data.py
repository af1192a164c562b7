"""What the dashboard shows, read from the store as plain data.

Small functions that take an open session and return dataclasses, lists and dicts, so that
each has its own unit test and the Dash callbacks stay a few lines. Nothing here writes.

``countries`` arguments carry the logged-in user's country restriction (ISO3 codes; None or
empty: all countries): an area outside it is treated as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from riskwatch.db.models import (
    Alert,
    Area,
    AreaScore,
    Hotspot,
    IndicatorProfile,
    IngestBatch,
    Meta,
    Observation,
    ScoreRun,
    Source,
)
from riskwatch.observations import (
    combine_assessments as combine_assessments,  # re-exported: the rule lives there, not here
)
from riskwatch.observations import observations_frame, preferred_values

MAP_VARIABLE = "idps"


@dataclass(frozen=True)
class AreaRef:
    """A link to an area: its pcode and name."""

    pcode: str
    name: str


@dataclass(frozen=True)
class AreaDetail:
    """One area's identity and neighbours in the admin hierarchy."""

    pcode: str
    name: str
    admin_level: int
    country_iso3: str
    parent: AreaRef | None
    parent_pcode: str | None
    children: list[AreaRef]


def _country_filter(countries: Sequence[str] | None) -> list[str] | None:
    return [country.upper() for country in countries] if countries else None


def is_demo_database(session: Session) -> bool:
    """Whether this is the synthetic demo database (Meta ``database_kind`` = ``demo``)."""
    meta = session.get(Meta, "database_kind")
    return meta is not None and meta.value == "demo"


def _visible_area(session: Session, pcode: str, countries: Sequence[str] | None) -> Area | None:
    area = session.get(Area, pcode)
    if area is None:
        return None
    allowed = _country_filter(countries)
    if allowed and area.country_iso3 not in allowed:
        return None
    return area


def area_detail(
    session: Session, pcode: str, countries: Sequence[str] | None = None
) -> AreaDetail | None:
    """An area's identity, parent and sub-areas; None when unknown (or outside ``countries``)."""
    area = _visible_area(session, pcode, countries)
    if area is None:
        return None
    parent = session.get(Area, area.parent_pcode) if area.parent_pcode else None
    children = session.exec(
        select(Area.pcode, Area.name)
        .where(Area.parent_pcode == area.pcode)
        .order_by(col(Area.pcode))
    ).all()
    return AreaDetail(
        pcode=area.pcode,
        name=area.name,
        admin_level=area.admin_level,
        country_iso3=area.country_iso3,
        parent=AreaRef(parent.pcode, parent.name) if parent is not None else None,
        parent_pcode=area.parent_pcode,
        children=[AreaRef(child_pcode, child_name) for child_pcode, child_name in children],
    )


def area_series(
    session: Session,
    pcode: str,
    variable: str = MAP_VARIABLE,
    countries: Sequence[str] | None = None,
) -> list[tuple[date, float]]:
    """The current values of ``variable`` for one area, one per period, oldest first."""
    if _visible_area(session, pcode, countries) is None:
        return []
    frame = observations_frame(session, variables=[variable], pcodes=[pcode])
    combined = preferred_values(frame)  # sorted by pcode, variable, period
    return list(zip(combined["period"].tolist(), combined["value"].tolist(), strict=True))


# --- the area page: scores, drivers, hotspots, alerts, lineage ----------------------------------
@dataclass(frozen=True)
class ScorePoint:
    """One area score of the latest score run."""

    period: date
    risk: float | None
    risk_class: str
    reliability: float | None


@dataclass(frozen=True)
class AreaScoreSummary:
    """An area's latest score, its drivers and its risk over the periods of the latest run."""

    run_id: int
    latest: ScorePoint
    exposure: float | None
    vulnerability: float | None
    lack_of_capacity: float | None
    drivers: list[tuple[str, float]]  # (indicator id, contribution), largest first
    series: list[ScorePoint]  # oldest first
    labels: dict[str, str] = field(default_factory=dict)  # indicator id -> its name


def indicator_labels(session: Session, run_id: int) -> dict[str, str]:
    """Indicator names of a score run's profile version (id -> name), for charts."""
    run = session.get(ScoreRun, run_id)
    profile = session.get(IndicatorProfile, run.profile_id) if run and run.profile_id else None
    content = (profile.content or {}) if profile is not None else {}
    return {
        str(item["id"]): str(item.get("name") or item["id"])
        for item in content.get("indicators") or []
        if isinstance(item, dict) and item.get("id")
    }


@dataclass(frozen=True)
class HotspotPoint:
    """The risk hotspot class of an area in one period."""

    period: date
    hotspot_class: str
    temporal_class: str
    surge: bool


@dataclass(frozen=True)
class LineageRow:
    """Where an area's current values of one variable come from."""

    variable: str
    period: date
    round: str | None
    source_id: str
    source_title: str | None
    batch_id: int
    ingested_at: datetime | None


@dataclass(frozen=True)
class AlertSummary:
    """An alert as listed on an area page or the alert inbox."""

    id: int
    rule: str
    pcode: str
    area_name: str
    country_iso3: str
    severity: str
    state: str
    review_state: str | None
    first_seen: datetime
    last_seen: datetime
    acknowledged_at: datetime | None
    summary: str


def latest_score_run_id(session: Session) -> int | None:
    """The id of the latest succeeded score run (None: nothing scored yet)."""
    return session.exec(
        select(ScoreRun.id).where(ScoreRun.status == "succeeded")
        .order_by(col(ScoreRun.id).desc())
    ).first()


def parse_drivers(drivers: dict[str, Any] | None) -> list[tuple[str, float]]:
    """The contributions of a stored ``drivers`` JSON, largest first (else its top_drivers)."""
    if not isinstance(drivers, dict):
        return []
    contributions = drivers.get("contributions")
    pairs: list[tuple[str, float]] = []
    if isinstance(contributions, dict) and contributions:
        pairs = [(str(name), float(value)) for name, value in contributions.items()
                 if isinstance(value, (int, float))]
    else:
        for item in str(drivers.get("top_drivers") or "").split(";"):
            name, _, value = item.partition(":")
            try:
                pairs.append((name, float(value)))
            except ValueError:
                continue
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))


def area_scores(
    session: Session, pcode: str, countries: Sequence[str] | None = None
) -> AreaScoreSummary | None:
    """The area's scores in the latest succeeded run; None when not scored (or not visible)."""
    if _visible_area(session, pcode, countries) is None:
        return None
    run_id = latest_score_run_id(session)
    if run_id is None:
        return None
    rows = list(session.exec(
        select(AreaScore).where(AreaScore.run_id == run_id, AreaScore.area_pcode == pcode)
        .order_by(col(AreaScore.period))
    ).all())
    if not rows:
        return None
    latest = rows[-1]
    points = [ScorePoint(r.period, r.risk, r.risk_class, r.reliability) for r in rows]
    return AreaScoreSummary(
        run_id=run_id, latest=points[-1], exposure=latest.exposure,
        vulnerability=latest.vulnerability, lack_of_capacity=latest.lack_of_capacity,
        drivers=parse_drivers(latest.drivers), series=points,
        labels=indicator_labels(session, run_id),
    )


def hotspot_history(
    session: Session, pcode: str, countries: Sequence[str] | None = None,
    variable: str = "risk",
) -> list[HotspotPoint]:
    """The area's hotspot class per period in the latest run (risk score), oldest first."""
    if _visible_area(session, pcode, countries) is None:
        return []
    run_id = latest_score_run_id(session)
    if run_id is None:
        return []
    rows = session.exec(
        select(Hotspot).where(Hotspot.run_id == run_id, Hotspot.area_pcode == pcode,
                              Hotspot.variable == variable)
        .order_by(col(Hotspot.period))
    ).all()
    return [HotspotPoint(r.period, r.hotspot_class, r.temporal_class, bool(r.surge))
            for r in rows]


def area_lineage(
    session: Session, pcode: str, countries: Sequence[str] | None = None
) -> list[LineageRow]:
    """Per variable, the latest current value's period, round, source, batch and ingest time."""
    if _visible_area(session, pcode, countries) is None:
        return []
    rows = session.exec(
        select(Observation.variable, Observation.period, Observation.round,
               IngestBatch.source_id, IngestBatch.id)
        .join(IngestBatch, col(IngestBatch.id) == col(Observation.batch_id))
        .where(Observation.area_pcode == pcode, col(Observation.superseded_at).is_(None))
    ).all()
    latest: dict[str, tuple[date, str | None, str, int]] = {}
    for variable, period, round_code, source_id, batch_id in rows:
        known = latest.get(variable)
        if known is None or (period, batch_id) > (known[0], known[3]):
            latest[variable] = (period, round_code, source_id, int(batch_id))
    if not latest:
        return []
    batch_ids = sorted({entry[3] for entry in latest.values()})
    finished = dict(session.exec(
        select(IngestBatch.id, IngestBatch.finished_at).where(col(IngestBatch.id).in_(batch_ids))
    ).all())
    titles = dict(session.exec(select(Source.id, Source.title)).all())
    return [
        LineageRow(variable, period, round_code, source_id, titles.get(source_id), batch_id,
                   finished.get(batch_id))
        for variable, (period, round_code, source_id, batch_id) in sorted(latest.items())
    ]


def area_is_stale(session: Session, pcode: str, now: datetime | None = None) -> bool:
    """Whether the area's current data come from a stale source (riskwatch.source_health)."""
    from riskwatch.source_health import stale_area_pcodes

    return pcode in stale_area_pcodes(session, now)


def alert_summary_text(alert: Alert) -> str:
    """One line about an alert from its stored explanation (no personal data there)."""
    explanation = alert.explanation or {}
    for key in ("summary", "text", "headline"):
        value = explanation.get(key) if isinstance(explanation, dict) else None
        if isinstance(value, str) and value:
            return value
    return f"{alert.rule} in {alert.area_pcode}"


def alert_summaries(session: Session, alerts: Sequence[Alert]) -> list[AlertSummary]:
    """Alerts with their area's name and country, in the given order."""
    pcodes = sorted({alert.area_pcode for alert in alerts})
    areas = {
        pcode: (name, country) for pcode, name, country in session.exec(
            select(Area.pcode, Area.name, Area.country_iso3).where(col(Area.pcode).in_(pcodes))
        ).all()
    } if pcodes else {}
    return [
        AlertSummary(
            id=int(alert.id or 0), rule=alert.rule, pcode=alert.area_pcode,
            area_name=areas.get(alert.area_pcode, (alert.area_pcode, ""))[0],
            country_iso3=areas.get(alert.area_pcode, ("", ""))[1], severity=alert.severity,
            state=alert.state, review_state=alert.review_state, first_seen=alert.first_seen,
            last_seen=alert.last_seen, acknowledged_at=alert.acknowledged_at,
            summary=alert_summary_text(alert),
        )
        for alert in alerts
    ]


def area_alerts(
    session: Session, pcode: str, countries: Sequence[str] | None = None
) -> list[AlertSummary]:
    """The firing alerts of one area, newest first."""
    if _visible_area(session, pcode, countries) is None:
        return []
    alerts = session.exec(
        select(Alert).where(Alert.area_pcode == pcode, Alert.state == "firing")
        .order_by(col(Alert.last_seen).desc(), col(Alert.id).desc())
    ).all()
    return alert_summaries(session, list(alerts))
