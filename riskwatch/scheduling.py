"""`riskwatch scheduler`: APScheduler 3.x with its job store in the riskwatch database.

Rules (DESIGN.md "The scheduler", the APScheduler FAQ):

- **One scheduler per database.** The process takes the lease (:mod:`riskwatch.lease`) before it
  touches the job store, renews it every ``scheduler.heartbeat_seconds`` and stops at once when
  it lost it. The web app never starts a scheduler.
- **Persistent store, exactly one catch-up.** Jobs live in ``apscheduler_jobs`` (a table the
  migrations leave alone). ``job_defaults``: ``coalesce=True``, ``max_instances=1``,
  ``misfire_grace_time=None`` (run late rather than skip), so after an outage each job runs
  once. A job already in the store whose trigger is unchanged is kept as it is (re-adding it
  would recompute its next run time and lose the catch-up).
- **UTC everywhere**, and an explicit ``timezone=`` on every trigger.
- **Thin job functions** with plain arguments (the store pickles references to them):
  :func:`ingest_source_job`, :func:`pipeline_job`, :func:`dispatch_job`,
  :func:`escalation_job`, :func:`digest_job`, :func:`retention_job`. Each records a JobRun;
  listeners record missed, failed and skipped (overlapping) runs too.
- **Executors**: one worker for ingest/pipeline/escalation/digest/retention (they write the
  same tables: one at a time keeps SQLite's writer free), one for dispatch (the outbox claims
  rows atomically, so it can send while the pipeline works).
- **Clean shutdown** on SIGTERM/SIGINT: no new job starts; the running step finishes within
  ``scheduler.shutdown_grace_seconds`` or the process exits and its open transaction is rolled
  back; the lease is released.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from riskwatch.config import ConfigError, Settings
from riskwatch.crontab import crontab_trigger
from riskwatch.jobs import (
    FAILED,
    INTERRUPTED,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    describe_error,
    finish_job_run,
    mark_interrupted_runs,
    record_job_run,
    recorded_job,
    start_job_run,
)
from riskwatch.lease import Holder, acquire, heartbeat, release
from riskwatch.source_registry import SourceSpec, configured_sources, find_source
from riskwatch.timeutil import iso_utc, to_utc, utcnow

log = logging.getLogger(__name__)

JOBSTORE_TABLE = "apscheduler_jobs"
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
#: The daily retention job's time (UTC): a quiet hour.
RETENTION_CRON = "30 3 * * *"
#: Jobs that run as soon as they are first added (not only after their first interval).
RUN_AT_ONCE = ("pipeline", "dispatch")

# The service running in this process; the job functions (plain, picklable references) find
# the engine, the settings and the stop flag here.
_SERVICE: SchedulerService | None = None
_scheduled = threading.local()


# --- jobs from the configuration ---------------------------------------------------------------


@dataclass(frozen=True)
class JobDef:
    """One configured job: id, function, arguments, trigger and a description."""

    id: str
    func: Callable[..., Any]
    args: tuple[Any, ...]
    trigger: BaseTrigger
    description: str
    executor: str = "default"

    @property
    def name(self) -> str:
        """Stored with the job: a changed name means a changed trigger (the job is re-added)."""
        return f"{self.id} | {self.description}"


def _interval(seconds: int) -> tuple[IntervalTrigger, str]:
    text_ = f"every {seconds} s" if seconds < 120 or seconds % 60 else f"every {seconds // 60} min"
    return IntervalTrigger(seconds=seconds, timezone=UTC), f"{text_} (UTC)"


def source_trigger(spec: SourceSpec) -> tuple[BaseTrigger, str] | None:
    """The trigger of a scheduled source (cron or interval, in its time zone), else None."""
    zone = ZoneInfo(spec.timezone)
    if spec.schedule is not None:
        return (crontab_trigger(spec.schedule, timezone=zone),
                f"cron {spec.schedule} ({spec.timezone})")
    if spec.interval_minutes is not None:
        return (IntervalTrigger(minutes=spec.interval_minutes, timezone=zone),
                f"every {spec.interval_minutes} min ({spec.timezone})")
    return None


def configured_jobs(settings: Settings, specs: list[SourceSpec]) -> list[JobDef]:
    """The jobs a scheduler runs with these settings and sources."""
    s = settings.scheduler
    jobs = [
        JobDef("pipeline", pipeline_job, (), *_interval(s.pipeline_interval_seconds)),
        JobDef("dispatch", dispatch_job, (), *_interval(s.dispatch_interval_seconds),
               executor="dispatch"),
        JobDef("escalation", escalation_job, (), *_interval(s.escalation_interval_seconds)),
        JobDef("digest", digest_job, (),
               crontab_trigger(s.digest_schedule, timezone=ZoneInfo(s.digest_timezone)),
               f"cron {s.digest_schedule} ({s.digest_timezone})"),
        JobDef("retention", retention_job, (),
               crontab_trigger(RETENTION_CRON, timezone=UTC),
               f"cron {RETENTION_CRON} (UTC), keeps {s.retention_days} days"),
    ]
    for spec in specs:
        trigger = source_trigger(spec)
        if trigger is not None:
            jobs.append(JobDef(f"ingest:{spec.id}", ingest_source_job, (spec.id,), *trigger))
    return jobs


@dataclass(frozen=True)
class ScheduledJob:
    """A job's next run time, from the job store or computed from the configuration."""

    id: str
    description: str
    next_run_time: datetime | None
    origin: str  # "job store" or "configuration"
    overdue: bool = False


def next_run_times(engine: Engine, settings: Settings,
                   now: datetime | None = None) -> list[ScheduledJob]:
    """Next run times of the configured jobs (unscheduled sources run with the pipeline)."""
    now = to_utc(now or utcnow())
    try:
        specs = configured_sources(settings)[1]
    except ConfigError:
        specs = []
    stored = stored_next_run_times(engine)
    result = []
    for job in configured_jobs(settings, specs):
        if job.id in stored:
            when = stored[job.id]
            result.append(ScheduledJob(job.id, job.description, when, "job store",
                                       overdue=when is not None and when < now))
        else:
            when = (now if job.id in RUN_AT_ONCE
                    else job.trigger.get_next_fire_time(None, now))
            result.append(ScheduledJob(job.id, job.description,
                                       to_utc(when) if when else None, "configuration"))
    return result


def stored_next_run_times(engine: Engine) -> dict[str, datetime | None]:
    """id -> next run time of the jobs in APScheduler's store (empty without the table)."""
    if not inspect(engine).has_table(JOBSTORE_TABLE):
        return {}
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT id, next_run_time FROM {JOBSTORE_TABLE}")).all()
    return {str(job_id): (datetime.fromtimestamp(float(when), UTC) if when is not None else None)
            for job_id, when in rows}


# --- the job functions (module level, plain arguments) -----------------------------------------


def _service() -> SchedulerService | None:
    service = _SERVICE
    if service is None:
        log.warning("a scheduler job ran outside `riskwatch scheduler`; ignored")
        return None
    if not service.lease_valid():
        record_job_run(service.engine, "scheduler", SKIPPED,
                       error="a job was due but the lease is not confirmed; skipped")
        return None
    return service


def _scheduled_counts() -> dict[str, Any]:
    """When the running job was scheduled for and how late it runs; for the one catch-up run
    after downtime, since when it was overdue and how many fire times it stands for."""
    when = getattr(_scheduled, "run_time", None)
    if when is None:
        return {}
    late = (utcnow() - to_utc(when)).total_seconds()
    counts: dict[str, Any] = {"scheduled_for": to_utc(when).isoformat(),
                              "late_seconds": round(late, 3)}
    service = _SERVICE
    job = getattr(_scheduled, "job", None)
    if service is not None and job is not None:
        overdue_since = service.take_catch_up(job.id)
        if overdue_since is not None:
            counts.update(catch_up=True, overdue_since=overdue_since.isoformat(),
                          missed_fire_times=_fire_times(job.trigger, overdue_since, when))
    return counts


def _fire_times(trigger: BaseTrigger, first: datetime, last: datetime, cap: int = 100_000) -> int:
    """How many fire times of ``trigger`` lie in [first, last] (coalesced into one run)."""
    count, moment = 0, first
    while moment is not None and moment <= last and count < cap:
        count += 1
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return count


def pipeline_job() -> None:
    """Due sources, then score if anything changed, alerts, escalation and due dispatch."""
    from riskwatch.pipeline import run_cycle

    service = _service()
    if service is None:
        return
    try:
        run_cycle(service.engine, service.settings, group_wait="leave", job_name="pipeline",
                  stop=service.stop, job_counts=_scheduled_counts())
    except Exception as error:  # noqa: BLE001 - e.g. a broken sources file: recorded
        record_job_run(service.engine, "pipeline", FAILED, counts=_scheduled_counts(),
                       error=describe_error(error))


def ingest_source_job(source_id: str) -> None:
    """One scheduled source; when it brought new data the pipeline runs next, at once."""
    from riskwatch.pipeline import ingest_one

    service = _service()
    if service is None:
        return
    try:
        spec = find_source(configured_sources(service.settings)[1], source_id)
    except ConfigError as error:
        record_job_run(service.engine, f"ingest:{source_id}", FAILED, error=str(error))
        return
    if spec is None:
        record_job_run(service.engine, f"ingest:{source_id}", SKIPPED,
                       error="the source is no longer declared")
        return
    outcome = ingest_one(service.engine, service.settings, spec, recheck=True)
    if outcome.status == "succeeded":
        service.run_pipeline_soon()


def _simple_job(name: str, module: str, function: str, *, dispatch: bool = False) -> None:
    """Run one function of the alert engine or delivery as a recorded job."""
    from riskwatch.pipeline import _counts_of, _optional

    service = _service()
    if service is None:
        return
    func = _optional(module, function)
    counts = _scheduled_counts()
    if func is None:
        record_job_run(service.engine, name, SKIPPED, counts=counts,
                       error=f"{module} is not installed")
        return
    try:
        with recorded_job(service.engine, name, counts=counts) as job:
            result = func(service.engine, service.settings)
            job.counts = {**counts, **_counts_of(result)}
    except Exception:  # noqa: BLE001 - recorded as failed by recorded_job
        log.exception("job %s failed", name)


def dispatch_job() -> None:
    """Send due notifications and retry failed ones (riskwatch.dispatch.dispatch_due)."""
    _simple_job("dispatch", "riskwatch.dispatch", "dispatch_due")


def escalation_job() -> None:
    """Escalate unacknowledged alerts (riskwatch.alerts.escalation)."""
    _simple_job("escalation", "riskwatch.alerts.escalation", "escalate_unacknowledged")


def digest_job() -> None:
    """Queue the daily digest (riskwatch.alerts.digest)."""
    _simple_job("digest", "riskwatch.alerts.digest", "queue_daily_digest")


def retention_job() -> None:
    """Delete job runs and delivered messages' contents older than the retention."""
    from riskwatch.retention import apply_retention

    service = _service()
    if service is None:
        return
    counts = _scheduled_counts()
    try:
        with recorded_job(service.engine, "retention", counts=counts) as job:
            job.counts = {**counts, **apply_retention(service.engine, service.settings)}
    except Exception:  # noqa: BLE001 - recorded as failed
        log.exception("retention failed")


# --- the executor: remembers each run's scheduled time -----------------------------------------


def _run_with_time(job: Any, alias: str, run_times: list[datetime], logger_name: str) -> Any:
    _scheduled.run_time = run_times[-1] if run_times else None
    _scheduled.job = job
    service = _SERVICE
    if service is not None:
        service.job_started()
    try:
        return run_job(job, alias, run_times, logger_name)
    finally:
        _scheduled.run_time = _scheduled.job = None
        if service is not None:
            service.job_finished()


class RecordingThreadPool(ThreadPoolExecutor):
    """APScheduler's thread pool, telling each job when it was scheduled for."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def callback(future: Any) -> None:
            error = future.exception()
            if error is not None:
                self._run_job_error(job.id, error, error.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        future = self._pool.submit(_run_with_time, job, job._jobstore_alias, run_times,
                                   self._logger.name)
        future.add_done_callback(callback)


# --- the service -------------------------------------------------------------------------------


class SchedulerService:
    """The long-running process: lease, APScheduler, heartbeat, shutdown."""

    def __init__(self, engine: Engine, settings: Settings,
                 say: Callable[[str], None] = print) -> None:
        self.engine = engine
        self.settings = settings
        self.say = say
        self.holder = Holder.this_process()
        self.stop = threading.Event()
        self.lost = False
        self._confirmed_until = utcnow()
        self._running = 0
        self._running_lock = threading.Lock()
        self._scheduler: Any = None
        self._signal: str | None = None
        # Jobs kept from the store whose next run time passed while no scheduler ran: their
        # first run here is the (one, coalesced) catch-up.
        self._catch_up: dict[str, datetime] = {}

    # lease ---------------------------------------------------------------------------------
    def lease_valid(self) -> bool:
        """Whether our last heartbeat still covers now (jobs do not start otherwise)."""
        return not self.lost and utcnow() < self._confirmed_until

    def _beat(self) -> bool:
        seconds = self.settings.scheduler.lease_seconds
        before = utcnow()
        try:
            ours = heartbeat(self.engine, self.holder, seconds, now=before)
        except Exception as error:  # noqa: BLE001 - a database hiccup: retried next beat
            log.warning("heartbeat failed: %s", describe_error(error))
            return True
        if not ours:
            self.lost = True
            return False
        self._confirmed_until = before + timedelta(seconds=seconds)
        return True

    # running jobs ----------------------------------------------------------------------------
    def job_started(self) -> None:
        with self._running_lock:
            self._running += 1

    def job_finished(self) -> None:
        with self._running_lock:
            self._running -= 1

    @property
    def running_jobs(self) -> int:
        with self._running_lock:
            return self._running

    def take_catch_up(self, job_id: str) -> datetime | None:
        """Since when ``job_id`` was overdue, the first time it runs here (else None)."""
        with self._running_lock:
            return self._catch_up.pop(job_id, None)

    def run_pipeline_soon(self) -> None:
        """Bring the pipeline job forward (new data arrived from a scheduled source)."""
        if self._scheduler is not None and not self.stop.is_set():
            try:
                self._scheduler.modify_job("pipeline", next_run_time=utcnow())
            except Exception as error:  # noqa: BLE001 - the regular run will do it
                log.warning("could not bring the pipeline forward: %s", error)

    # events ----------------------------------------------------------------------------------
    def _on_event(self, event: JobEvent) -> None:
        try:
            if event.code == EVENT_JOB_MISSED:
                assert isinstance(event, JobExecutionEvent)
                record_job_run(self.engine, event.job_id, "missed",
                               error=f"run time {iso_utc(event.scheduled_run_time)} missed")
            elif event.code == EVENT_JOB_MAX_INSTANCES:
                record_job_run(self.engine, event.job_id, SKIPPED,
                               error="the previous run was still running")
            elif event.code == EVENT_JOB_ERROR:
                assert isinstance(event, JobExecutionEvent)
                record_job_run(self.engine, event.job_id, FAILED,
                               error=describe_error(event.exception))
        except Exception as error:  # noqa: BLE001 - never let a listener kill the scheduler
            log.warning("could not record a job event: %s", describe_error(error))

    # life cycle ------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signal = signal.Signals(signum).name
        self.stop.set()

    def run(self, *, install_signals: bool = True) -> int:
        """Take the lease, run until SIGTERM/SIGINT or a lost lease; the exit code.

        Raises LeaseHeld (exit 1) when another scheduler holds the lease, ConfigError (exit 2)
        when the sources file is broken.
        """
        global _SERVICE
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        specs = configured_sources(self.settings)[1]  # a broken file stops us before the lease
        s = self.settings.scheduler
        acquired = acquire(self.engine, self.holder, s.lease_seconds)
        self._confirmed_until = utcnow() + timedelta(seconds=s.lease_seconds)
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        replaced = acquired.replaced
        dead = ((replaced.host, replaced.pid),) if replaced is not None else ()
        closed = mark_interrupted_runs(self.engine, dead_holders=dead)
        if replaced is not None:
            self.say(f"Took over the lease from host {replaced.host}, pid {replaced.pid} "
                     f"({acquired.reason}).")
        if any(closed.values()):
            self.say("Closed what an interrupted process left open: " + ", ".join(
                f"{n} {what.replace('_', ' ')}" for what, n in closed.items() if n))
        own_run = start_job_run(self.engine, "scheduler", counts={
            "lease_seconds": s.lease_seconds, "heartbeat_seconds": s.heartbeat_seconds,
            "took_over_from": f"{replaced.host}:{replaced.pid}" if replaced else None,
            "closed": closed})
        _SERVICE = self
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.engine,
                                                     tablename=JOBSTORE_TABLE)},
            executors={"default": RecordingThreadPool(1), "dispatch": RecordingThreadPool(1)},
            job_defaults=dict(JOB_DEFAULTS),
            timezone=UTC,
        )
        self._scheduler = scheduler
        scheduler.add_listener(self._on_event,
                               EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
        status, error = SUCCEEDED, None
        try:
            scheduler.start(paused=True)
            kept, added, removed = sync_jobs(scheduler, configured_jobs(self.settings, specs))
            now = datetime.now(UTC)
            self._catch_up = {job.id: to_utc(job.next_run_time) for job in scheduler.get_jobs()
                              if job.id in kept and job.next_run_time is not None
                              and job.next_run_time <= now}
            if self._catch_up:
                self.say("Catching up once (coalesced) on jobs missed while no scheduler ran: "
                         + ", ".join(sorted(self._catch_up)))
            scheduler.resume()
            self.say(f"Scheduler running on host {self.holder.host}, pid {self.holder.pid}: "
                     f"{len(kept) + len(added)} jobs ({len(kept)} kept from the job store, "
                     f"{len(added)} new or changed, {len(removed)} removed). "
                     "Stop with SIGTERM or Ctrl-C.")
            while not self.stop.wait(s.heartbeat_seconds):
                if not self._beat():
                    break
        finally:
            code = self._shutdown(scheduler)
            if self.lost:
                status, error = FAILED, "lost the lease to another scheduler"
            elif code:
                status, error = INTERRUPTED, "a step did not finish within the shutdown grace"
            finish_job_run(self.engine, own_run, status,
                           {"signal": self._signal, "lost_lease": self.lost}, error)
            _SERVICE = None
        if code:
            # A job thread still runs: leave without waiting for it. Its open transaction is
            # rolled back by the database when the connection closes; the next scheduler
            # marks its JobRun interrupted.
            os._exit(code)
        return 1 if self.lost else 0

    def _shutdown(self, scheduler: Any) -> int:
        """Stop scheduling, let the running step finish (or give up after the grace)."""
        self.stop.set()
        if self.lost:
            self.say("The lease was taken by another scheduler: stopping at once.")
        else:
            self.say(f"Stopping ({self._signal or 'requested'}): waiting for the running "
                     "step to finish.")
        try:
            # Pause (no job starts any more) and wait for a job-processing pass in progress to
            # end (it holds the job stores' lock). The scheduler is not shut down: its
            # shutdown wakes its thread in a state where it may still submit a due job to the
            # executors it is closing (APScheduler 3). Its thread is a daemon; the process
            # ends with it once the running step is done.
            scheduler.pause()
            with getattr(scheduler, "_jobstores_lock", threading.RLock()):
                pass
        except Exception as error:  # noqa: BLE001
            log.warning("scheduler pause: %s", error)
        grace = self.settings.scheduler.shutdown_grace_seconds
        deadline = utcnow() + timedelta(seconds=grace)
        next_beat = utcnow()
        while self.running_jobs > 0 and utcnow() < deadline:
            if not self.lost and utcnow() >= next_beat:
                self._beat()  # keep the lease while the step finishes
                next_beat = utcnow() + timedelta(seconds=self.settings.scheduler.heartbeat_seconds)
            threading.Event().wait(0.1)
        unfinished = self.running_jobs > 0
        if unfinished:
            self._interrupt_own_runs()
        if not self.lost:
            try:
                release(self.engine, self.holder)
                self.say("Lease released.")
            except Exception as error:  # noqa: BLE001 - it expires within a minute anyway
                log.warning("could not release the lease: %s", error)
        return 1 if unfinished else 0

    def _interrupt_own_runs(self) -> None:
        """Mark this process's running JobRuns interrupted before leaving without them."""
        from sqlmodel import select

        from riskwatch.db.engine import session_scope
        from riskwatch.db.models import JobRun
        from riskwatch.jobs import this_host

        with session_scope(self.engine) as session:
            for run in session.exec(select(JobRun).where(
                    JobRun.status == RUNNING, JobRun.pid == os.getpid(),
                    JobRun.host == this_host(), JobRun.job != "scheduler")):
                run.status, run.finished_at = INTERRUPTED, utcnow()
                run.error = "interrupted by shutdown; its transaction was rolled back"
                session.add(run)


def sync_jobs(scheduler: Any, jobs: list[JobDef]) -> tuple[list[str], list[str], list[str]]:
    """Make the job store hold exactly ``jobs``; unchanged stored jobs keep their next run time.

    Returns the ids kept, added (new or changed) and removed.
    """
    existing = {job.id: job for job in scheduler.get_jobs()}
    kept, added = [], []
    for job in jobs:
        stored = existing.get(job.id)
        if stored is not None and stored.name == job.name:
            kept.append(job.id)
            continue
        options: dict[str, Any] = {}
        if job.id in RUN_AT_ONCE:
            options["next_run_time"] = datetime.now(UTC)
        scheduler.add_job(job.func, trigger=job.trigger, args=job.args, id=job.id,
                          name=job.name, executor=job.executor, replace_existing=True,
                          **options)
        added.append(job.id)
    wanted = {job.id for job in jobs}
    removed = [job_id for job_id in existing if job_id not in wanted]
    for job_id in removed:
        scheduler.remove_job(job_id)
    return kept, added, removed
