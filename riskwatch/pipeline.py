"""The cycle: ingest due sources → source health → score if due → alerts → escalation → dispatch.

:func:`run_cycle` is the one chain behind ``riskwatch run``, the scheduler's pipeline job and the
demo, so all three decide "due", "changed" and "sent" the same way. Each stage is recorded as a
JobRun (``ingest:<source>``, ``source-health``, ``score``, ``alerts``, ``escalation``,
``dispatch``) and the cycle itself as one more (``run``, ``pipeline`` or ``demo-cycle``).

Failure isolation: a source that cannot be fetched, read or stored is recorded on its Source row
(``last_error``, ``last_error_at``) and in its own failed JobRun; the cycle goes on with the
others and still counts as completed. A failing score, alert or dispatch stage makes the cycle
incomplete (``CycleReport.completed`` is False; ``riskwatch run`` exits 1), but the later stages
still run where they make sense: pending notifications are dispatched even when scoring failed.

When is a source due (:func:`due_sources`)?

- never attempted, or its last attempt failed (``failed``: it is retried every cycle; a
  ``refused`` file is retried when it changes);
- with a ``schedule`` (cron) or ``interval_minutes``: a fire time has passed since the last
  attempt;
- without a schedule: a local file when it changed since the last attempt; a URL or API query
  once a day.

``--dry-run`` (``dry_run=True``) decides all of this and reports it, and writes nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.config import Settings
from riskwatch.db.engine import session_scope
from riskwatch.db.models import IngestBatch, Source
from riskwatch.fetch import is_url
from riskwatch.jobs import (
    FAILED,
    INTERRUPTED,
    SKIPPED,
    SUCCEEDED,
    WARNING,
    describe_error,
    recorded_job,
)
from riskwatch.source_registry import SourceSpec, configured_sources
from riskwatch.timeutil import iso_utc, to_utc, utcnow

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
#: What to do about the alert engine's group wait before dispatching:
#: "wait" sleeps until it ends (``riskwatch run``), "leave" dispatches only what is due now and
#: leaves the rest to the dispatch job (the scheduler), "skip" dispatches as if it had passed
#: (the demo, which has no reason to make its visitor wait).
GroupWait = Literal["wait", "leave", "skip"]
#: An unscheduled URL or API source is checked this often.
UNSCHEDULED_REMOTE_EVERY = timedelta(days=1)
#: Longest the cycle waits for a group wait, whatever the alert engine says.
MAX_GROUP_WAIT = timedelta(hours=1)

# One ingest of a source at a time in this process: the scheduler's per-source job and its
# pipeline job may both find a source due; the second one re-checks under the lock.
_INGEST_LOCK = threading.Lock()


@dataclass
class SourceOutcome:
    """What the cycle did (or would do) with one declared source."""

    source_id: str
    due: bool
    reason: str
    status: str = "not due"  # succeeded / unchanged / refused / failed / would ingest / not due
    batch_id: int | None = None
    rows_stored: int = 0
    rows_quarantined: int = 0
    message: str | None = None


@dataclass
class StageReport:
    """One stage of the cycle: its status, counts and notes for the report."""

    name: str
    status: str  # succeeded / failed / skipped / warning / would run
    counts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    job_run_id: int | None = None


@dataclass
class CycleReport:
    """What one cycle did, stage by stage."""

    started_at: datetime
    dry_run: bool
    finished_at: datetime | None = None
    sources: list[SourceOutcome] = field(default_factory=list)
    stages: list[StageReport] = field(default_factory=list)
    completed: bool = True
    interrupted: bool = False  # a shutdown stopped the cycle between two stages
    ping: str | None = None
    notification_ids: list[int] = field(default_factory=list)

    def stage(self, name: str) -> StageReport | None:
        """The report of a stage by name, if it ran."""
        return next((s for s in self.stages if s.name == name), None)

    @property
    def failed_sources(self) -> list[SourceOutcome]:
        return [s for s in self.sources if s.status in ("failed", "refused")]

    def summary_counts(self) -> dict[str, Any]:
        """The cycle's counts as kept on its JobRun."""
        return {
            "dry_run": self.dry_run,
            "sources_due": sum(1 for s in self.sources if s.due),
            "sources_ingested": sum(1 for s in self.sources
                                    if s.status in ("succeeded", "unchanged")),
            "sources_failed": [s.source_id for s in self.failed_sources],
            "stages": {s.name: s.status for s in self.stages},
            "alerts": (self.stage("alerts").counts if self.stage("alerts") else {}),
            "dispatch": (self.stage("dispatch").counts if self.stage("dispatch") else {}),
        }


# --- when is a source due ----------------------------------------------------------------------


@dataclass(frozen=True)
class _History:
    last_attempt: datetime | None
    last_status: str | None
    last_error_at: datetime | None


def _histories(session: Session) -> dict[str, _History]:
    latest: dict[str, IngestBatch] = {}
    for batch in session.exec(select(IngestBatch).order_by(col(IngestBatch.id))):
        latest[batch.source_id] = batch
    result: dict[str, _History] = {}
    for source in session.exec(select(Source)):
        batch = latest.get(source.id)
        attempts = [t for t in (source.last_attempt_at, batch.started_at if batch else None) if t]
        result[source.id] = _History(
            last_attempt=max((to_utc(t) for t in attempts), default=None),
            last_status=batch.status if batch else None,
            last_error_at=to_utc(source.last_error_at) if source.last_error_at else None,
        )
    return result


def next_fire_after(spec: SourceSpec, after: datetime) -> datetime | None:
    """The first scheduled time of a scheduled source strictly after ``after`` (UTC)."""
    if spec.interval_minutes is not None:
        return to_utc(after) + timedelta(minutes=spec.interval_minutes)
    if spec.schedule is None:
        return None
    from riskwatch.crontab import crontab_trigger

    trigger = crontab_trigger(spec.schedule, timezone=ZoneInfo(spec.timezone))
    fire = trigger.get_next_fire_time(None, to_utc(after) + timedelta(microseconds=1))
    return to_utc(fire) if fire is not None else None


def source_due(spec: SourceSpec, history: _History | None, now: datetime) -> tuple[bool, str]:
    """Whether one source is due now, and why (see the module docstring)."""
    if history is None or history.last_attempt is None:
        return True, "never ingested"
    last = history.last_attempt
    # A failure (download, reader crash, storage) is retried every cycle; a refused input
    # (bad rows, personal data) is not: the same input would be refused again.
    if history.last_status == "failed" or (
        history.last_status != "refused" and history.last_error_at is not None
        and history.last_error_at >= last
    ):
        return True, f"retrying: the last attempt ({iso_utc(last)}) failed"
    if spec.is_scheduled:
        fire = next_fire_after(spec, last)
        if fire is not None and fire <= now:
            return True, f"scheduled at {iso_utc(fire)}"
        return False, f"next scheduled at {iso_utc(fire)}" if fire else "schedule has no next time"
    if spec.location is not None and not is_url(spec.location):
        path = Path(spec.location)
        if not path.exists():
            return True, "file missing since the last attempt (it is reported as failed)"
        changed = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        if to_utc(changed) > last:
            return True, f"file changed at {iso_utc(changed)}"
        return False, f"file unchanged since {iso_utc(last)}"
    if now - last >= UNSCHEDULED_REMOTE_EVERY:
        return True, f"daily check (last {iso_utc(last)})"
    upcoming = iso_utc(last + UNSCHEDULED_REMOTE_EVERY)
    return False, f"checked at {iso_utc(last)}; next daily check {upcoming}"


def due_sources(
    engine: Engine, specs: list[SourceSpec], now: datetime | None = None
) -> list[tuple[SourceSpec, bool, str]]:
    """Every declared source with whether it is due now and why."""
    now = to_utc(now or utcnow())
    with Session(engine) as session:
        histories = _histories(session)
    return [(spec, *source_due(spec, histories.get(spec.id), now)) for spec in specs]


# --- ingest ------------------------------------------------------------------------------------


def _mark_source(engine: Engine, spec: SourceSpec, **values: Any) -> None:
    """Update a source's health columns (creating a bare row the first time)."""
    with session_scope(engine) as session:
        source = session.get(Source, spec.id)
        if source is None:
            source = Source(id=spec.id, kind=spec.kind,
                            location=(spec.location or f"dtm-api:{spec.query}")[:2000],
                            title=spec.title, attribution=spec.attribution,
                            licence=spec.licence,
                            expected_cadence_days=spec.expected_cadence_days,
                            settings=spec.declaration())
        for key, value in values.items():
            setattr(source, key, value)
        session.add(source)


def ingest_one(
    engine: Engine, settings: Settings, spec: SourceSpec, *, recheck: bool = False,
    progress: Progress | None = None,
) -> SourceOutcome:
    """Ingest one declared source as its own recorded job; a failure is recorded, not raised.

    With ``recheck`` the source is ingested only if it is (still) due: the scheduler's
    per-source job and its pipeline job may both have found it due.
    """
    from riskwatch.ingest import IngestFailed, IngestRefused, dtm_subscription_key

    say = progress or (lambda _message: None)
    with _INGEST_LOCK:
        reason = "requested"
        if recheck:
            [(_, due, reason)] = due_sources(engine, [spec])
            if not due:
                return SourceOutcome(spec.id, due=False, reason=reason)
        outcome = SourceOutcome(spec.id, due=True, reason=reason)
        started = utcnow()
        _mark_source(engine, spec, last_attempt_at=started)
        with recorded_job(engine, f"ingest:{spec.id}") as job:
            say(f"Ingesting {spec.id}")
            try:
                summary = ingest_source(engine, spec, settings,
                                        subscription_key=dtm_subscription_key())
            except (IngestRefused, IngestFailed) as error:
                summary = error.summary
                outcome.status = "refused" if isinstance(error, IngestRefused) else "failed"
                outcome.message = str(error)
            except Exception as error:  # noqa: BLE001 - one source never stops the others
                summary = None
                outcome.status = "failed"
                outcome.message = describe_error(error)
                log.exception("source %s failed", spec.id)
            else:
                outcome.status = summary.status
            if summary is not None:
                outcome.batch_id = summary.batch_id
                outcome.rows_stored = summary.rows_stored
                outcome.rows_quarantined = summary.rows_quarantined
            job.counts = {"source": spec.id, "status": outcome.status,
                          "batch_id": outcome.batch_id, "rows_stored": outcome.rows_stored,
                          "rows_quarantined": outcome.rows_quarantined}
            finished = utcnow()
            if outcome.status in ("succeeded", "unchanged"):
                _mark_source(engine, spec, last_success_at=finished)
            else:
                job.status, job.error = FAILED, outcome.message
                _mark_source(engine, spec, last_error_at=finished,
                             last_error=(outcome.message or outcome.status)[:2000])
    return outcome


def ingest_source(engine: Engine, spec: SourceSpec, settings: Settings, **kwargs: Any) -> Any:
    """``riskwatch.ingest.ingest_source`` (imported late: pandas and geopandas are heavy)."""
    from riskwatch.ingest import ingest_source as ingest

    return ingest(engine, spec, settings, **kwargs)


# --- the cycle ---------------------------------------------------------------------------------


def _optional(module: str, name: str) -> Callable[..., Any] | None:
    """A function of another part of riskwatch, or None while that part is not installed."""
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except ModuleNotFoundError:
        return None
    return getattr(importlib.import_module(module), name)


def run_cycle(
    engine: Engine,
    settings: Settings,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
    sources: list[SourceSpec] | None = None,
    group_wait: GroupWait = "wait",
    job_name: str = "run",
    stop: threading.Event | None = None,
    job_counts: dict[str, Any] | None = None,
) -> CycleReport:
    """One full cycle (see the module docstring); never raises for a failing source or stage.

    ``now`` simulates the time (tests): every stage sees it and nothing sleeps. ``sources``
    replaces the configured sources (the demo ingests its own files first). A ConfigError from
    a broken sources file is raised before anything is done.
    """
    say = progress or (lambda _message: None)
    specs = sources if sources is not None else configured_sources(settings)[1]
    clock = (lambda: to_utc(now)) if now is not None else utcnow
    report = CycleReport(started_at=clock(), dry_run=dry_run)
    if dry_run:
        _cycle(engine, settings, report, specs, now, say, group_wait, stop)
        report.finished_at = clock()
        return report
    with recorded_job(engine, job_name) as job:
        _cycle(engine, settings, report, specs, now, say, group_wait, stop)
        report.finished_at = clock()
        if report.completed and settings.scheduler.ping_url:
            report.ping = ping(settings)
        job.counts = {**(job_counts or {}), **report.summary_counts()}
        if report.interrupted:
            job.status = INTERRUPTED
            job.error = "stopped by a shutdown after the stage " + (
                report.stages[-1].name if report.stages else "start")
        elif not report.completed:
            failed = [s.name for s in report.stages if s.status == FAILED]
            job.status, job.error = FAILED, f"stages failed: {', '.join(failed)}"
        elif report.failed_sources:
            job.status = WARNING
            job.error = "sources failed: " + ", ".join(s.source_id for s in report.failed_sources)
    return report


def _cycle(
    engine: Engine, settings: Settings, report: CycleReport, specs: list[SourceSpec],
    now: datetime | None, say: Progress, group_wait: GroupWait, stop: threading.Event | None,
) -> None:
    dry_run = report.dry_run
    # 1. sources
    say("Checking which sources are due")
    for spec, due, reason in due_sources(engine, specs, now):
        if stop is not None and stop.is_set():
            break
        if not due:
            report.sources.append(SourceOutcome(spec.id, due=False, reason=reason))
        elif dry_run:
            report.sources.append(SourceOutcome(spec.id, due=True, reason=reason,
                                                status="would ingest"))
        else:
            outcome = ingest_one(engine, settings, spec, progress=say)
            outcome.reason = reason
            report.sources.append(outcome)
    ingest = StageReport("ingest", SUCCEEDED if not report.failed_sources else WARNING, counts={
        "declared": len(specs), "due": sum(1 for s in report.sources if s.due),
        "ingested": sum(1 for s in report.sources if s.status in ("succeeded", "unchanged")),
        "new data": sum(1 for s in report.sources if s.status == "succeeded"),
        "failed": len(report.failed_sources)})
    if dry_run:
        ingest.status = "would run"
    report.stages.append(ingest)

    def stopping() -> bool:
        """A shutdown was requested: the current stage is done, the next ones do not start."""
        if stop is not None and stop.is_set():
            report.completed, report.interrupted = False, True
        return report.interrupted

    if stopping():
        return
    # 2. source health (stale sources raise the "stale data" condition)
    report.stages.append(_health_stage(engine, now, dry_run))
    if stopping():
        return

    # 3. score when anything changed since the last score run
    say("Checking whether a score run is due")
    score_stage = _score_stage(engine, settings, dry_run)
    report.stages.append(score_stage)
    if score_stage.status == FAILED:
        report.completed = False
    if stopping():
        return

    # 4. alerts (skipped when scoring failed: they would judge the previous run again)
    evaluation = None
    if score_stage.status == FAILED:
        report.stages.append(StageReport("alerts", SKIPPED, notes=["scoring failed"]))
    else:
        say("Evaluating alerts")
        evaluation, stage = _alerts_stage(engine, settings, now, dry_run)
        report.stages.append(stage)
        if stage.status == FAILED:
            report.completed = False
        if evaluation is not None:
            report.notification_ids = list(getattr(evaluation, "notification_ids", []) or [])
    if stopping():
        return

    # 5. escalation of unacknowledged alerts
    report.stages.append(_escalation_stage(engine, settings, now, dry_run))
    if report.stages[-1].status == FAILED:
        report.completed = False
    if stopping():
        return

    # 6. wait out the group wait, then dispatch
    send_after = getattr(evaluation, "send_after", None) if evaluation is not None else None
    dispatch_now = now
    if send_after is not None and not dry_run:
        send_after = to_utc(send_after)
        current = to_utc(now) if now is not None else utcnow()
        if group_wait == "skip" or now is not None:
            dispatch_now = max(current, send_after)
        elif group_wait == "wait" and send_after > current:
            seconds = min((send_after - current), MAX_GROUP_WAIT).total_seconds()
            say(f"Waiting {seconds:.0f} s for the group wait to end ({iso_utc(send_after)})")
            if stop is not None:
                stop.wait(seconds)
            else:
                time.sleep(seconds)
    if stopping():
        return
    say("Dispatching due notifications")
    stage = _dispatch_stage(engine, settings, dispatch_now, dry_run)
    report.stages.append(stage)
    if stage.status == FAILED:
        report.completed = False

    # 7. after a score run (boundaries or data changed), prepare the map's geometry so that the
    # first visitor does not wait for the simplification; last, so that alerts never wait for it.
    if score_stage.status == SUCCEEDED and not stopping():
        say("Preparing the map's geometry")
        report.stages.append(_map_cache_stage(engine, settings))


def _map_cache_stage(engine: Engine, settings: Settings) -> StageReport:
    """Warm the map's geometry cache; a failure is a warning, never an incomplete cycle."""
    from riskwatch.jobs import record_job_run
    from riskwatch.map_geometry import CACHE_FOLDER, GeometryCache, warm_cache

    try:
        counts = warm_cache(engine, GeometryCache(settings.resolved_data_dir / CACHE_FOLDER))
    except Exception as error:  # noqa: BLE001 - the dashboard builds it on demand instead
        stage = StageReport("map-cache", WARNING, error=describe_error(error))
    else:
        stage = StageReport("map-cache", SUCCEEDED, counts=counts)
    stage.job_run_id = record_job_run(engine, "map-cache", stage.status, counts=stage.counts,
                                      error=stage.error)
    return stage


def _health_stage(engine: Engine, now: datetime | None, dry_run: bool) -> StageReport:
    from riskwatch.jobs import record_job_run
    from riskwatch.source_health import source_health, update_source_health

    if dry_run:
        with Session(engine) as session:
            health = source_health(session, now)
        stale = [h.id for h in health if h.stale]
        return StageReport("source-health", "would run", counts={"stale": stale},
                           notes=[f"stale: {h.id} ({h.stale_reason})" for h in health if h.stale])
    update = update_source_health(engine, now)
    stage = StageReport("source-health", SUCCEEDED, counts={
        "stale": update.stale, "failing": update.failing, "newly_stale": update.newly_stale,
        "recovered": update.recovered})
    for item in update.health:
        if item.stale:
            stage.notes.append(f"stale: {item.id} ({item.stale_reason})")
    if update.stale:
        # The administrators' "stale data" condition: a warning in the job history for as long
        # as a source is stale (and an audit event when it turns stale or recovers).
        stage.status = WARNING
        stage.error = "stale data: " + ", ".join(update.stale)
    stage.job_run_id = record_job_run(engine, "source-health", stage.status,
                                      counts=stage.counts, error=stage.error)
    return stage


def _score_stage(engine: Engine, settings: Settings, dry_run: bool) -> StageReport:
    from riskwatch.cycle import scoring_due
    from riskwatch.score_runs import run_score

    try:
        due = scoring_due(engine, settings)
    except Exception as error:  # noqa: BLE001 - e.g. a broken catalog: the stage fails
        return StageReport("score", FAILED, error=describe_error(error))
    if not due.due:
        return StageReport("score", SKIPPED, notes=[due.reason], counts={"due": False})
    if dry_run:
        return StageReport("score", "would run", notes=[due.reason], counts={"due": True})
    stage = StageReport("score", SUCCEEDED, notes=[due.reason])
    try:
        with recorded_job(engine, "score") as job:
            stage.job_run_id = job.id
            summary = run_score(engine, settings)
            job.counts = stage.counts = {
                "run_id": summary.run_id, "areas": summary.areas,
                "area_scores": summary.rows, "periods": len(summary.periods),
                "latest_period": summary.latest_period.isoformat()
                if summary.latest_period else None,
                "classes_latest_period": summary.class_counts,
            }
            if summary.run_id is None:
                job.status = stage.status = SKIPPED
                stage.notes.append(summary.message or "nothing to score")
    except Exception as error:  # noqa: BLE001 - recorded by recorded_job; the cycle reports it
        stage.status, stage.error = FAILED, describe_error(error)
    return stage


def _alerts_stage(
    engine: Engine, settings: Settings, now: datetime | None, dry_run: bool
) -> tuple[Any, StageReport]:
    evaluate = _optional("riskwatch.alerts.evaluate", "evaluate_alerts")
    if evaluate is None:
        return None, StageReport("alerts", SKIPPED, notes=["the alert engine is not installed"])
    return _call_stage(engine, "alerts", dry_run,
                       lambda: evaluate(engine, settings, now=now, dry_run=dry_run))


def _escalation_stage(
    engine: Engine, settings: Settings, now: datetime | None, dry_run: bool
) -> StageReport:
    escalate = _optional("riskwatch.alerts.escalation", "escalate_unacknowledged")
    if escalate is None:
        return StageReport("escalation", SKIPPED, notes=["the alert engine is not installed"])
    if dry_run:
        return StageReport("escalation", "would run",
                           notes=["unacknowledged alerts are checked (not in a dry run)"])
    return _call_stage(engine, "escalation", False,
                       lambda: escalate(engine, settings, now=now))[1]


def _dispatch_stage(
    engine: Engine, settings: Settings, now: datetime | None, dry_run: bool
) -> StageReport:
    dispatch = _optional("riskwatch.dispatch", "dispatch_due")
    if dispatch is None:
        return StageReport("dispatch", SKIPPED, notes=["delivery is not installed"])
    return _call_stage(engine, "dispatch", dry_run,
                       lambda: dispatch(engine, settings, now=now, dry_run=dry_run))[1]


def _call_stage(
    engine: Engine, name: str, dry_run: bool, call: Callable[[], Any]
) -> tuple[Any, StageReport]:
    """Run one stage; recorded as a JobRun unless dry-run; a failure is reported, not raised."""
    stage = StageReport(name, "would run" if dry_run else SUCCEEDED)
    if dry_run:
        try:
            result = call()
        except Exception as error:  # noqa: BLE001
            stage.status, stage.error = FAILED, describe_error(error)
            return None, stage
        stage.counts = _counts_of(result)
        return result, stage
    result = None
    try:
        with recorded_job(engine, name) as job:
            stage.job_run_id = job.id
            result = call()
            job.counts = stage.counts = _counts_of(result)
    except Exception as error:  # noqa: BLE001 - recorded by recorded_job
        log.exception("stage %s failed", name)
        stage.status, stage.error = FAILED, describe_error(error)
    return result, stage


def _counts_of(result: Any) -> dict[str, Any]:
    counts = result if isinstance(result, dict) else getattr(result, "counts", None)
    return dict(counts or {})


# --- liveness ----------------------------------------------------------------------------------


def ping(settings: Settings, *, timeout_seconds: float = 10.0) -> str:
    """GET the configured ping URL; returns "ok (HTTP n)" or why it failed (never raises).

    The URL obeys the outbound rule (no loopback or private address unless
    ``allow_private_addresses``).
    """
    from riskwatch.fetch import FetchError, check_url, guarded_opener, redact_url

    url = settings.scheduler.ping_url
    try:
        check_url(url)
        opener = guarded_opener(settings.allow_private_addresses)
        with opener.open(url, timeout=timeout_seconds) as r:
            return f"ok (HTTP {r.status})"
    except FetchError as error:
        log.warning("ping %s refused: %s", redact_url(url), error)
        return f"refused: {error}"
    except Exception as error:  # noqa: BLE001 - a failed ping is logged, never fatal
        reason = getattr(error, "reason", None) or describe_error(error)
        log.warning("ping %s failed: %s", redact_url(url), reason)
        return f"failed: {reason}"
