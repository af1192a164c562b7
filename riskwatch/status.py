"""What `riskwatch status` reports: database, schema, counts, last runs, the scheduler lease."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
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
from riskwatch.lease import LeaseView, describe_lease
from riskwatch.source_health import SourceHealth, source_health
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
    lease_view: LeaseView | None = None  # the lease with its heartbeat age and state
    source_problems: list[SourceHealth] = field(default_factory=list)  # stale or failing


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
        report.lease_view = describe_lease(report.lease)
        report.source_problems = [h for h in source_health(session) if h.stale or h.failing]
    return report


def print_scheduler_status(report: StatusReport, console: Console) -> None:
    """The scheduler lease (holder, since, last heartbeat and its age) and sources in trouble."""
    view = report.lease_view
    if view is None:
        console.print("Scheduler: not running (no lease held)")
    else:
        console.print(
            f"Scheduler lease: host {view.host}, pid {view.pid}, since {format_time(view.since)}"
            f", last heartbeat {format_time(view.heartbeat_at)} "
            f"({view.heartbeat_age_seconds:.0f} s ago), expires {format_time(view.expires_at)}: "
            f"{view.state}", markup=False)
    stale = [h for h in report.source_problems if h.stale]
    failing = [h for h in report.source_problems if h.failing and not h.stale]
    if not report.source_problems:
        console.print("Sources: none stale or failing")
    for h in stale:
        console.print(f"[yellow]Stale data:[/] source {h.id}: {h.stale_reason}; its areas are "
                      "never shown as low risk")
    for h in failing:
        console.print(f"[red]Failing source:[/] {h.id}: last error {format_time(h.last_error_at)}"
                      f": {escape((h.last_error or '')[:200])}")


def format_time(value: datetime | None) -> str:
    return iso_utc(value) or "-"
