"""What `riskwatch status` reports: database, schema, counts, last runs, the scheduler lease."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.db.engine import mask_url, sqlite_path
from riskwatch.db.kind import database_kind
from riskwatch.db.migrate import SchemaState, schema_state
from riskwatch.db.models import (
    Alert,
    Area,
    Expert,
    IngestBatch,
    JobRun,
    Observation,
    SchedulerLease,
    ScoreRun,
    Source,
    User,
)
from riskwatch.timeutil import iso_utc


@dataclass
class StatusReport:
    database: str  # masked URL
    sqlite_file: Path | None
    schema: SchemaState | None
    kind: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    areas_by_level: dict[int, int] = field(default_factory=dict)
    last_batches: list[IngestBatch] = field(default_factory=list)
    last_job_runs: list[JobRun] = field(default_factory=list)
    lease: SchedulerLease | None = None


def _count(session: Session, statement) -> int:  # type: ignore[no-untyped-def]
    return int(session.exec(statement).one())


def collect_status(engine: Engine, url: str, *, recent: int = 5) -> StatusReport:
    """Gather the status; a database without schema reports only where it is."""
    state = schema_state(engine)
    report = StatusReport(database=mask_url(url), sqlite_file=sqlite_path(url), schema=state)
    if state.current is None:
        return report
    with Session(engine) as session:
        report.kind = database_kind(session)
        report.counts = {
            "areas": _count(session, select(func.count()).select_from(Area)),
            "sources": _count(session, select(func.count()).select_from(Source)),
            "ingest batches": _count(session, select(func.count()).select_from(IngestBatch)),
            "observations (current)": _count(
                session,
                select(func.count()).select_from(Observation)
                .where(col(Observation.superseded_at).is_(None)),
            ),
            "observations (all versions)": _count(
                session, select(func.count()).select_from(Observation)
            ),
            "score runs": _count(session, select(func.count()).select_from(ScoreRun)),
            "alerts firing": _count(
                session, select(func.count()).select_from(Alert).where(Alert.state == "firing")
            ),
            "experts": _count(session, select(func.count()).select_from(Expert)),
            "users": _count(session, select(func.count()).select_from(User)),
        }
        report.areas_by_level = {
            int(level): int(n)
            for level, n in session.exec(
                select(Area.admin_level, func.count()).group_by(Area.admin_level)
                .order_by(Area.admin_level)
            )
        }
        report.last_batches = list(
            session.exec(
                select(IngestBatch).order_by(col(IngestBatch.id).desc()).limit(recent)
            )
        )
        report.last_job_runs = list(
            session.exec(select(JobRun).order_by(col(JobRun.id).desc()).limit(recent))
        )
        report.lease = session.get(SchedulerLease, "scheduler")
    return report


def format_time(value: datetime | None) -> str:
    return iso_utc(value) or "-"
