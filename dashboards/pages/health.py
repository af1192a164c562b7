"""The data health page (admins and coordinators): is the pipeline working, are data fresh?

Sources with their last batch, quarantined rows, freshness and stale flag
(:mod:`riskwatch.source_health`), recent job runs (:mod:`riskwatch.jobs`), the scheduler's
heartbeat (:mod:`riskwatch.lease`) and the health of the experts' channels. Channels are shown
by their redacted target only, and error texts are redacted again here (an SMTP or HTTP error
may quote an address); a coordinator with a country scope sees the channels of the experts
deployed in those countries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dash import html
from sqlmodel import Session, col, select

from dashboards.auth import CurrentUser
from dashboards.layout import table
from riskwatch.db.models import Channel, Expert, JobRun
from riskwatch.experts import expert_ids_deployed_in
from riskwatch.jobs import recent_job_runs
from riskwatch.lease import LeaseView, current_lease, describe_lease
from riskwatch.privacy import redact
from riskwatch.source_health import SourceHealth, last_batches, source_health
from riskwatch.timeutil import iso_utc, to_utc, utcnow


@dataclass(frozen=True)
class SourceRow:
    """A source with its health and its last batch."""

    health: SourceHealth
    last_batch_id: int | None
    last_batch_status: str | None
    last_batch_finished: datetime | None
    rows_stored: int
    rows_quarantined: int


@dataclass(frozen=True)
class ChannelRow:
    """A channel's health, with its redacted target only."""

    id: int
    expert: str
    kind: str
    target: str
    healthy: bool
    disabled: bool
    consecutive_failures: int
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str


@dataclass(frozen=True)
class HealthPageData:
    """Everything the data health page shows."""

    sources: list[SourceRow]
    job_runs: list[JobRun]
    lease: LeaseView | None
    channels: list[ChannelRow]
    now: datetime


def _source_rows(session: Session, now: datetime) -> list[SourceRow]:
    last = last_batches(session)
    rows = []
    for health in source_health(session, now):
        batch = last.get(health.id)
        rows.append(
            SourceRow(
                health=health,
                last_batch_id=batch.id if batch else None,
                last_batch_status=batch.status if batch else None,
                last_batch_finished=batch.finished_at if batch else None,
                rows_stored=batch.rows_stored if batch else 0,
                rows_quarantined=batch.rows_quarantined if batch else 0,
            )
        )
    return rows


def _channel_rows(session: Session, user: CurrentUser) -> list[ChannelRow]:
    statement = (
        select(Channel, Expert.name)
        .join(Expert, col(Expert.id) == col(Channel.expert_id))
        .order_by(col(Channel.id))
    )
    pairs = list(session.exec(statement).all())
    if user.countries:
        # Experts deployed in the user's countries only.
        allowed = expert_ids_deployed_in(session, user.countries)
        pairs = [(c, n) for c, n in pairs if c.expert_id in allowed]
    return [
        ChannelRow(
            id=int(c.id or 0),
            expert=name,
            kind=c.kind,
            target=c.target_redacted,
            healthy=c.healthy,
            disabled=c.disabled_at is not None,
            consecutive_failures=c.consecutive_failures,
            last_success_at=c.last_success_at,
            last_error_at=c.last_error_at,
            last_error=redact(c.last_error),
        )
        for c, name in pairs
    ]


def health_page_data(
    session: Session, user: CurrentUser, *, now: datetime | None = None
) -> HealthPageData:
    """Sources, job runs, the scheduler lease and channels, as of ``now``."""
    moment = to_utc(now) if now is not None else utcnow()
    return HealthPageData(
        sources=_source_rows(session, moment),
        job_runs=recent_job_runs(session, 20),
        lease=describe_lease(current_lease(session), moment),
        channels=_channel_rows(session, user),
        now=moment,
    )


def health_page(data: HealthPageData) -> list[Any]:
    """The data health page."""
    children: list[Any] = [
        html.H1("Data health"),
        html.P(f"As of {iso_utc(data.now)}", className="muted"),
    ]
    stale = sum(1 for s in data.sources if s.health.stale)
    failing = sum(1 for s in data.sources if s.health.failing)
    children.append(
        html.P(
            f"{len(data.sources)} sources: {stale} stale, {failing} failing.",
            className="health-summary" + (" warning" if stale or failing else ""),
        )
    )
    children.append(
        table(
            "Sources",
            [
                "source",
                "kind",
                "status",
                "newest data",
                "last success",
                "last batch",
                "rows stored",
                "quarantined",
                "freshness",
                "last error",
            ],
            [
                [
                    s.health.title or s.health.id,
                    s.health.kind,
                    html.Strong(
                        s.health.status, className=f"status-{s.health.status.replace(' ', '-')}"
                    ),
                    s.health.latest_data_date.isoformat() if s.health.latest_data_date else "",
                    iso_utc(s.health.last_success_at) or "never",
                    (
                        f"#{s.last_batch_id} {s.last_batch_status} {iso_utc(s.last_batch_finished)}"
                        if s.last_batch_id
                        else "none"
                    ),
                    f"{s.rows_stored:,}",
                    f"{s.rows_quarantined:,}",
                    s.health.stale_reason,
                    redact(s.health.last_error),
                ]
                for s in data.sources
            ],
            id="health-sources",
        )
    )
    lease = data.lease
    children.append(html.H2("Scheduler"))
    if lease is None:
        children.append(
            html.P(
                "Not running: no scheduler holds the lease.",
                id="health-scheduler",
                className="warning",
            )
        )
    else:
        children.append(
            html.P(
                f"{lease.state}: host {lease.host}, pid {lease.pid}, since {iso_utc(lease.since)}, "
                f"last heartbeat {iso_utc(lease.heartbeat_at)} "
                f"({lease.heartbeat_age_seconds:.0f} s ago), lease expires "
                f"{iso_utc(lease.expires_at)}",
                id="health-scheduler",
            )
        )
    children.append(
        table(
            "Recent job runs",
            ["job", "status", "started", "finished", "counts", "error"],
            [
                [
                    run.job,
                    run.status,
                    iso_utc(run.started_at),
                    iso_utc(run.finished_at),
                    ", ".join(f"{k}: {v}" for k, v in (run.counts or {}).items())[:120],
                    redact(run.error),
                ]
                for run in data.job_runs
            ],
            id="health-jobs",
        )
    )
    children.append(
        table(
            "Channels",
            [
                "channel",
                "expert",
                "kind",
                "target (redacted)",
                "health",
                "failures",
                "last success",
                "last error",
            ],
            [
                [
                    c.id,
                    c.expert,
                    c.kind,
                    c.target,
                    "disabled" if c.disabled else ("healthy" if c.healthy else "unhealthy"),
                    c.consecutive_failures,
                    iso_utc(c.last_success_at) or "never",
                    (f"{iso_utc(c.last_error_at)} {c.last_error}" if c.last_error else ""),
                ]
                for c in data.channels
            ],
            id="health-channels",
        )
    )
    return children
