"""`riskwatch run [--dry-run]`, `riskwatch scheduler`, `riskwatch jobs`."""

from __future__ import annotations

import logging
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlmodel import Session

from riskwatch.clikit import app_context, console, error_console
from riskwatch.config import Settings
from riskwatch.errors import RiskwatchError
from riskwatch.timeutil import iso_utc, utcnow

STATUS_STYLE = {"succeeded": "green", "unchanged": "green", "failed": "red", "refused": "red",
                "warning": "yellow", "skipped": "dim", "would run": "cyan",
                "would ingest": "cyan", "interrupted": "red", "running": "blue",
                "missed": "yellow", "not due": "dim"}


def _styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def _short(counts: dict[str, Any]) -> str:
    """Counts on one line: scalars and short lists, nested details left out."""
    parts = []
    for key, value in counts.items():
        if isinstance(value, dict) or value in (None, [], ""):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value[:5]) + ("..." if len(value) > 5 else "")
        parts.append(f"{key} {value}")
    return "; ".join(parts)


def print_cycle(report: Any, out: Console) -> None:
    """What a cycle did, stage by stage (used by `run` and the demo)."""
    title = "Cycle (dry run: nothing written)" if report.dry_run else "Cycle"
    if report.sources:
        sources = Table(title=f"{title}: sources")
        for column in ("source", "due", "status", "batch", "stored", "quarantined", "why"):
            sources.add_column(column)
        for s in report.sources:
            sources.add_row(s.source_id, "yes" if s.due else "no", _styled(s.status),
                            str(s.batch_id or ""), f"{s.rows_stored:,}" if s.batch_id else "",
                            f"{s.rows_quarantined:,}" if s.batch_id else "",
                            f"{s.reason} -> {s.message}" if s.message else s.reason)
        out.print(sources)
    stages = Table(title=f"{title}: stages")
    for column in ("stage", "status", "what it did"):
        stages.add_column(column)
    for stage in report.stages:
        detail = "; ".join(part for part in (_short(stage.counts), *stage.notes,
                                             stage.error or "") if part)
        stages.add_row(stage.name, _styled(stage.status), detail)
    out.print(stages)
    if report.ping:
        out.print(f"Ping: {report.ping}", markup=False)
    if report.failed_sources:
        out.print(f"[yellow]{len(report.failed_sources)} source(s) failed[/] (recorded; the "
                  "other sources and stages went on): "
                  + ", ".join(s.source_id for s in report.failed_sources))


@click.command("run")
@click.option("--dry-run", is_flag=True,
              help="Report what the cycle would do (due sources, scoring, alerts); write nothing.")
@click.pass_context
def run(ctx: click.Context, dry_run: bool) -> None:
    """One full cycle now: due sources, score if anything changed, alerts, dispatch.

    Waits out the alerts' group wait so that the notifications it created were attempted.
    Exit 0 when the cycle completed (also when a source failed: reported); 1 when it could not.
    """
    from riskwatch.lease import current_lease, describe_lease
    from riskwatch.pipeline import run_cycle

    app = app_context(ctx)
    engine = app.migrated_engine()
    with Session(engine) as session:
        lease = describe_lease(current_lease(session))
    if lease is not None and lease.state == "running" and not dry_run:
        error_console.print(f"note: a scheduler is running (host {lease.host}, pid "
                            f"{lease.pid}); this cycle runs beside it.", markup=False)
    with console.status("Running the cycle...") as status:
        report = run_cycle(engine, app.settings, dry_run=dry_run,
                           progress=lambda message: status.update(message))
    print_cycle(report, console)
    if not report.completed:
        failed = [s for s in report.stages if s.status == "failed"]
        raise RiskwatchError("the cycle did not complete: " + "; ".join(
            f"{s.name} failed: {s.error}" for s in failed))
    console.print("Cycle completed." if not dry_run else "Dry run: nothing was written.")


@click.command("scheduler")
@click.pass_context
def scheduler(ctx: click.Context) -> None:
    """Run the scheduler service (one per database) until SIGTERM or Ctrl-C."""
    from riskwatch.scheduling import SchedulerService

    app = app_context(ctx)
    engine = app.migrated_engine()
    logging.basicConfig(level=app.settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler logs every run at INFO; the job history has them.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING,
                                                  logging.getLevelName(app.settings.log_level)))
    service = SchedulerService(engine, app.settings,
                               say=lambda message: console.print(message, markup=False))
    code = service.run()
    if code:
        raise RiskwatchError("the scheduler stopped: another scheduler took its lease")


@click.command("jobs")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="How many recent job runs to show.")
@click.option("--job", "job_name", default=None,
              help="Only runs of this job (e.g. pipeline, score, or ingest: for every source).")
@click.pass_context
def jobs(ctx: click.Context, limit: int, job_name: str | None) -> None:
    """Recent job runs, the next run times of the scheduled jobs, and stale sources."""
    app = app_context(ctx)
    engine = app.migrated_engine()
    print_schedule(engine, app.settings, console)
    print_job_history(engine, console, limit=limit, job=job_name)
    print_source_problems(engine, console)


def print_schedule(engine: Engine, settings: Settings, out: Console) -> None:
    """The scheduler lease and the next run time of every configured job."""
    from riskwatch.lease import current_lease, describe_lease
    from riskwatch.scheduling import next_run_times

    now = utcnow()
    with Session(engine) as session:
        lease = describe_lease(current_lease(session), now)
    if lease is None:
        out.print("Scheduler: not running (no lease held)")
    else:
        out.print(f"Scheduler: host {lease.host}, pid {lease.pid}, since {iso_utc(lease.since)}, "
                  f"last heartbeat {iso_utc(lease.heartbeat_at)} "
                  f"({lease.heartbeat_age_seconds:.0f} s ago): {lease.state}", markup=False)
    table = Table(title="Schedule (next run times)")
    for column in ("job", "when", "next run (UTC)", "from"):
        table.add_column(column)
    for job in next_run_times(engine, settings, now):
        when = iso_utc(job.next_run_time) or "-"
        if job.overdue:
            when += " (overdue: runs once when the scheduler starts)" if (
                lease is None or lease.state != "running") else " (due now)"
        table.add_row(job.id, job.description, when, job.origin)
    out.print(table)
    out.print("Sources without their own schedule are ingested by the pipeline job when due.")


def print_job_history(engine: Engine, out: Console, *, limit: int = 20,
                      job: str | None = None) -> None:
    """The latest job runs, newest first."""
    from riskwatch.jobs import recent_job_runs

    with Session(engine) as session:
        runs = recent_job_runs(session, limit, job=job)
    if not runs:
        out.print("Job history: no runs yet")
        return
    table = Table(title="Job history (latest first)")
    for column in ("id", "job", "status", "started (UTC)", "took", "host:pid", "counts / error"):
        table.add_column(column)
    for r in runs:
        took = (f"{(r.finished_at - r.started_at).total_seconds():.1f} s"
                if r.finished_at and r.started_at else "")
        detail = r.error or _short(r.counts or {})
        table.add_row(str(r.id), r.job, _styled(r.status), iso_utc(r.started_at), took,
                      f"{r.host or '-'}:{r.pid or '-'}", detail[:120])
    out.print(table)


def print_source_problems(engine: Engine, out: Console) -> None:
    """Stale and failing sources: the administrators' "stale data" condition."""
    from riskwatch.source_health import source_health

    with Session(engine) as session:
        health = [h for h in source_health(session) if h.stale or h.failing]
    if not health:
        out.print("Sources: none stale or failing")
        return
    table = Table(title="Sources needing attention")
    for column in ("source", "status", "last success", "last error", "why"):
        table.add_column(column)
    for h in health:
        why = h.stale_reason if h.stale else "its last attempt failed (retried every cycle)"
        status = f"[yellow]{h.status}[/]" if h.stale else f"[red]{h.status}[/]"
        error = f"{iso_utc(h.last_error_at)} {h.last_error or ''}"[:100] if h.failing else ""
        table.add_row(h.id, status, iso_utc(h.last_success_at) or "never", error, why[:120])
    out.print(table)


COMMANDS = [run, scheduler, jobs]
