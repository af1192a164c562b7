"""The data model (see DESIGN.md): SQLModel tables shared by the CLI, the scheduler and the web app.

Conventions:
- Times are timezone-aware UTC (``riskwatch.timeutil.utcnow``) on both backends.
- Results are immutable and versioned: an ingest batch, a score run and an alert decision are
  rows that later stages read and never rewrite; corrections add rows.
- Observations are long format and versioned: one row per (area, variable, period, operation,
  assessment type, version); the current version has ``superseded_at`` empty.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import ConfigDict
from shapely.geometry.base import BaseGeometry
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from riskwatch.db.types import AreaGeometry
from riskwatch.timeutil import utcnow


def _json_column() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


class Meta(SQLModel, table=True):
    """Key/value facts about this database (e.g. ``database_kind = demo``)."""

    __tablename__ = "riskwatch_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=2000)


class Area(SQLModel, table=True):
    """An administrative area, identified by its pcode as published (countries: ISO3)."""

    __tablename__ = "area"
    model_config = ConfigDict(arbitrary_types_allowed=True)  # type: ignore[assignment]

    pcode: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    admin_level: int = Field(index=True)
    parent_pcode: str | None = Field(default=None, index=True, max_length=32)
    country_iso3: str = Field(index=True, max_length=3)
    geometry: BaseGeometry | None = Field(
        default=None, sa_column=Column(AreaGeometry(), nullable=True)
    )
    boundary_version: str | None = Field(default=None, max_length=64)
    batch_id: int | None = Field(default=None, foreign_key="ingest_batch.id")
    updated_at: datetime = Field(default_factory=utcnow)


class Source(SQLModel, table=True):
    """A configured or ad-hoc source of data, with its attribution and licence."""

    __tablename__ = "source"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=32)
    location: str = Field(max_length=2000)
    title: str | None = Field(default=None, max_length=300)
    attribution: str | None = Field(default=None, max_length=1000)
    licence: str | None = Field(default=None, max_length=300)
    expected_cadence_days: int | None = None
    settings: dict[str, Any] | None = _json_column()
    created_at: datetime = Field(default_factory=utcnow)
    # Health as the scheduler sees it: a failing source does not stop the others, and one whose
    # data is older than its expected cadence is stale (its areas are never shown as low risk).
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=2000)
    stale_since: datetime | None = None


class IngestBatch(SQLModel, table=True):
    """One ingest of one file or API query: its lineage and what became of its rows."""

    __tablename__ = "ingest_batch"

    id: int | None = Field(default=None, primary_key=True)
    source_id: str = Field(foreign_key="source.id", index=True, max_length=64)
    kind: str = Field(max_length=32)
    location: str = Field(max_length=2000)
    content_hash: str | None = Field(default=None, index=True, max_length=64)
    status: str = Field(default="running", max_length=16)  # running/succeeded/unchanged/failed
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    rows_read: int = 0
    rows_stored: int = 0
    rows_unchanged: int = 0
    rows_quarantined: int = 0
    rows_set_aside: int = 0
    reporting_dates: list[str] | None = _json_column()
    report: dict[str, Any] | None = _json_column()


class Observation(SQLModel, table=True):
    """One value of one variable for one area and period, as brought by one batch."""

    __tablename__ = "observation"
    __table_args__ = (
        UniqueConstraint(
            "area_pcode", "variable", "period", "operation", "assessment_type", "version",
            name="uq_observation_version",
        ),
        Index("ix_observation_current", "variable", "period", "superseded_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    area_pcode: str = Field(foreign_key="area.pcode", index=True, max_length=32)
    variable: str = Field(max_length=64)
    period: date
    value: float
    # Empty string rather than NULL so that the unique key works the same on both backends.
    operation: str = Field(default="", max_length=200)
    assessment_type: str = Field(default="", max_length=16)
    round: str | None = Field(default=None, max_length=32)
    version: int = 1
    batch_id: int = Field(foreign_key="ingest_batch.id", index=True)
    recorded_at: datetime = Field(default_factory=utcnow)
    superseded_at: datetime | None = None


class IndicatorProfile(SQLModel, table=True):
    """A published version of the indicator catalog and profile, identified by content hash."""

    __tablename__ = "indicator_profile"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_profile_version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    version: int
    content_hash: str = Field(index=True, max_length=64)
    content: dict[str, Any] | None = _json_column()
    author: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    published_at: datetime = Field(default_factory=utcnow)


class ScoreRun(SQLModel, table=True):
    """One immutable scoring of all areas, with what it was computed from."""

    __tablename__ = "score_run"

    id: int | None = Field(default=None, primary_key=True)
    profile_id: int | None = Field(default=None, foreign_key="indicator_profile.id")
    profile_hash: str = Field(max_length=64)
    data_as_of: datetime
    params_hash: str = Field(max_length=64)
    params: dict[str, Any] | None = _json_column()
    boundary_version: str | None = Field(default=None, max_length=64)
    status: str = Field(default="running", max_length=16)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class AreaScore(SQLModel, table=True):
    """An area's risk in one period of one score run, with its drivers and reliability."""

    __tablename__ = "area_score"
    __table_args__ = (UniqueConstraint("run_id", "area_pcode", "period", name="uq_area_score"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="score_run.id", index=True)
    area_pcode: str = Field(foreign_key="area.pcode", index=True, max_length=32)
    period: date
    risk: float | None = None
    risk_class: str = Field(max_length=32)
    reliability: float | None = None
    exposure: float | None = None
    vulnerability: float | None = None
    lack_of_capacity: float | None = None
    drivers: dict[str, Any] | None = _json_column()


class Hotspot(SQLModel, table=True):
    """Spatial statistics of one variable (or the risk) for one area and period of a run."""

    __tablename__ = "hotspot"
    __table_args__ = (
        UniqueConstraint("run_id", "area_pcode", "period", "variable", name="uq_hotspot"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="score_run.id", index=True)
    area_pcode: str = Field(foreign_key="area.pcode", index=True, max_length=32)
    period: date
    variable: str = Field(max_length=64)
    gi_z: float | None = None
    p_value: float | None = None
    p_fdr: float | None = None
    hotspot_class: str = Field(default="not_significant", max_length=32)
    temporal_class: str = Field(default="none", max_length=32)
    surge: bool = False
    surge_size: float | None = None


class Expert(SQLModel, table=True):
    """A deployed counter-trafficking expert who receives alerts."""

    __tablename__ = "expert"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    language: str = Field(default="en", max_length=8)
    focal_point_id: int | None = Field(default=None, foreign_key="expert.id")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class Channel(SQLModel, table=True):
    """One way to reach an expert; the target and secret are stored encrypted."""

    __tablename__ = "channel"

    id: int | None = Field(default=None, primary_key=True)
    expert_id: int = Field(foreign_key="expert.id", index=True)
    kind: str = Field(max_length=16)  # email / webhook / apprise / capture (demo)
    target_encrypted: str = Field(max_length=4000)
    target_redacted: str = Field(max_length=300)
    secret_encrypted: str | None = Field(default=None, max_length=4000)
    healthy: bool = True
    # Set when a permanent error (e.g. 410 Gone) disabled the channel; cleared by an operator.
    disabled_at: datetime | None = None
    consecutive_failures: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=2000)


class Deployment(SQLModel, table=True):
    """An expert's deployment to an area (covering its sub-areas) for a period."""

    __tablename__ = "deployment"

    id: int | None = Field(default=None, primary_key=True)
    expert_id: int = Field(foreign_key="expert.id", index=True)
    area_pcode: str = Field(foreign_key="area.pcode", index=True, max_length=32)
    starts_on: date | None = None
    ends_on: date | None = None


class Alert(SQLModel, table=True):
    """An alert identified by its fingerprint (rule + area); state changes are recorded."""

    __tablename__ = "alert"

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(unique=True, max_length=200)
    rule: str = Field(max_length=64)
    area_pcode: str = Field(foreign_key="area.pcode", index=True, max_length=32)
    severity: str = Field(max_length=16)
    state: str = Field(default="firing", max_length=16)
    review_state: str | None = Field(default=None, max_length=16)
    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
    run_id: int | None = Field(default=None, foreign_key="score_run.id")
    explanation: dict[str, Any] | None = _json_column()
    country_iso3: str | None = Field(default=None, index=True, max_length=3)
    # Grouping key (country/admin1): alerts of one group go out in one message per channel.
    group_key: str | None = Field(default=None, max_length=100)
    value: float | None = None
    # Cool-down, repeat interval and hysteresis work on what was *sent*, not on raw data.
    notified_at: datetime | None = None
    clear_streak: int = 0
    acknowledged_at: datetime | None = None
    escalated_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class AlertDecision(SQLModel, table=True):
    """One recorded decision about an alert (fired, sent, grouped, inhibited, silenced,
    cooldown, awaiting_review, approved, escalated, resolved...), so every outcome is explained."""

    __tablename__ = "alert_decision"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int | None = Field(default=None, foreign_key="alert.id", index=True)
    expert_id: int | None = Field(default=None, foreign_key="expert.id")
    notification_id: int | None = Field(default=None, foreign_key="notification.id")
    at: datetime = Field(default_factory=utcnow, index=True)
    decision: str = Field(max_length=32)
    detail: dict[str, Any] | None = _json_column()


class Notification(SQLModel, table=True):
    """The outbox: one message to one channel, delivered at least once, idempotently."""

    __tablename__ = "notification"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int | None = Field(default=None, foreign_key="alert.id", index=True)
    expert_id: int = Field(foreign_key="expert.id", index=True)
    channel_id: int = Field(foreign_key="channel.id", index=True)
    idempotency_key: str = Field(unique=True, max_length=128)
    kind: str = Field(default="alert", max_length=16)  # alert / escalation / digest / resolved
    group_key: str | None = Field(default=None, max_length=100)
    status: str = Field(default="pending", index=True, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_at: datetime | None = None
    delivered_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=2000)
    payload: dict[str, Any] | None = _json_column()
    created_at: datetime = Field(default_factory=utcnow)


class NotificationAlert(SQLModel, table=True):
    """Which alerts one (grouped) notification carries."""

    __tablename__ = "notification_alert"

    notification_id: int = Field(foreign_key="notification.id", primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", primary_key=True, index=True)


class Acknowledgement(SQLModel, table=True):
    """An expert's or user's acknowledgement of an alert, with feedback for analysts."""

    __tablename__ = "acknowledgement"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    expert_id: int | None = Field(default=None, foreign_key="expert.id")
    user_id: int | None = Field(default=None, foreign_key="app_user.id")
    at: datetime = Field(default_factory=utcnow)
    comment: str | None = Field(default=None, max_length=2000)
    feedback: str | None = Field(default=None, max_length=16)
    via: str | None = Field(default=None, max_length=16)  # link / cli / dashboard


class Silence(SQLModel, table=True):
    """A silence: no notifications for an area (and its sub-areas) until it expires."""

    __tablename__ = "silence"

    id: int | None = Field(default=None, primary_key=True)
    area_pcode: str = Field(foreign_key="area.pcode", index=True, max_length=32)
    rule: str | None = Field(default=None, max_length=64)
    starts_at: datetime = Field(default_factory=utcnow)
    ends_at: datetime
    author: str = Field(max_length=200)
    reason: str = Field(max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    """A dashboard login. ``user`` is reserved in PostgreSQL, hence the table name."""

    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=100)
    password_hash: str = Field(max_length=300)
    role: str = Field(max_length=16)  # coordinator / expert / analyst / admin
    expert_id: int | None = Field(default=None, foreign_key="expert.id")
    countries: list[str] | None = _json_column()  # None or empty: all countries
    active: bool = True
    is_demo: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """Who did what, when: people's actions and configuration changes."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    object_type: str | None = Field(default=None, max_length=64)
    object_id: str | None = Field(default=None, max_length=200)
    detail: dict[str, Any] | None = _json_column()


class JobRun(SQLModel, table=True):
    """One run of a job (scheduled or from the CLI): when, how it ended, what it did."""

    __tablename__ = "job_run"

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(index=True, max_length=100)
    started_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None
    status: str = Field(default="running", max_length=16)  # running/succeeded/failed
    counts: dict[str, Any] | None = _json_column()
    error: str | None = Field(default=None, max_length=4000)
    host: str | None = Field(default=None, max_length=200)
    pid: int | None = None


class SchedulerLease(SQLModel, table=True):
    """The single lease that makes one scheduler per database."""

    __tablename__ = "scheduler_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder_id: str = Field(max_length=100)
    host: str = Field(max_length=200)
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
