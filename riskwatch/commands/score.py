"""`riskwatch score [--profile P] [--as-of DATETIME]`: one score run, recorded as a job run."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlmodel import Session

from riskwatch.catalog import INSUFFICIENT_DATA, RISK_CLASSES
from riskwatch.clikit import app_context, console, error_console
from riskwatch.db.engine import session_scope
from riskwatch.db.models import JobRun
from riskwatch.hotspot_stage import HotspotSummary, summarise_hotspots
from riskwatch.hotspots import HOT_CLASSES, HOTSPOT_CLASSES
from riskwatch.score_runs import ScoreRunSummary, run_score
from riskwatch.timeutil import utcnow


class DateTimeParam(click.ParamType):
    """An ISO 8601 date or date-time; without a zone it is UTC (a date alone: 00:00 UTC)."""

    name = "DATETIME"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or date-time "
                      "(e.g. 2026-05-01 or 2026-05-01T12:00:00Z)", param, ctx)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@click.command("score")
@click.option("--profile", default=None,
              help="Profile name (indicators/profiles/); default: the scoring.profile setting.")
@click.option("--as-of", "as_of", type=DateTimeParam(), default=None,
              help="Reproduce the run as of this time: data, profile version and parameters "
                   "as they were then.")
@click.pass_context
def score(ctx: click.Context, profile: str | None, as_of: datetime | None) -> None:
    """Score every area for every period in the data (one immutable score run)."""
    app = app_context(ctx)
    engine = app.migrated_engine()
    job = _start_job(engine)
    try:
        with console.status("Scoring..."):
            summary = run_score(engine, app.settings, profile=profile, as_of=as_of)
    except Exception as exc:
        _finish_job(engine, job, "failed", {}, str(exc))
        raise
    hotspots = _hotspots(engine, summary)
    _finish_job(engine, job, "succeeded", _counts(summary, hotspots), None)
    _print(summary, reproduced=as_of is not None)
    if hotspots is not None:
        _print_hotspots(hotspots)


def _hotspots(engine: Engine, summary: ScoreRunSummary) -> HotspotSummary | None:
    if summary.run_id is None:
        return None
    with Session(engine) as session:
        return summarise_hotspots(session, summary.run_id)


def _start_job(engine: Engine) -> int:
    with session_scope(engine) as session:
        job = JobRun(job="score", host=socket.gethostname(), pid=os.getpid())
        session.add(job)
        session.flush()
        assert job.id is not None
        return job.id


def _finish_job(
    engine: Engine, job_id: int, status: str, counts: dict[str, Any], error: str | None
) -> None:
    with session_scope(engine) as session:
        job = session.get(JobRun, job_id)
        if job is None:
            return
        job.status, job.counts, job.finished_at = status, counts, utcnow()
        job.error = error[:4000] if error else None
        session.add(job)


def _counts(summary: ScoreRunSummary, hotspots: HotspotSummary | None) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "run_id": summary.run_id,
        "profile": summary.profile_name,
        "profile_version": summary.profile_version,
        "periods": len(summary.periods),
        "areas": summary.areas,
        "area_scores": summary.rows,
        "latest_period": summary.latest_period.isoformat() if summary.latest_period else None,
        "classes_latest_period": summary.class_counts,
        "unavailable_by_country": summary.unavailable_by_country,
        "missing_dimensions_by_country": summary.missing_dimensions_by_country,
    }
    if hotspots is not None:
        counts["hot_areas_latest_period"] = {
            country: classes for country, (_, classes) in hotspots.hot_by_country.items()}
        counts["surging_areas_latest_period"] = len(hotspots.surging)
        counts["conflict_surges_latest_month"] = {
            country: n for country, (_, n) in hotspots.conflict_surges.items()}
    return counts


def _exact_utc(value: datetime | None) -> str:
    """ISO 8601 UTC with microseconds: pasted into --as-of it reproduces the run exactly."""
    if value is None:
        return ""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def _print(summary: ScoreRunSummary, *, reproduced: bool) -> None:
    if summary.run_id is None:
        console.print(f"Nothing to score: {summary.message}.", markup=False)
        return
    what = "Reproduced score run" if reproduced else "Score run"
    console.print(
        f"{what} {summary.run_id}: profile {summary.profile_name} version "
        f"{summary.profile_version} (hash {(summary.profile_hash or '')[:12]}), data as of "
        f"{_exact_utc(summary.data_as_of)}, parameters from {summary.params_from} "
        f"(hash {(summary.params_hash or '')[:12]}).",
        markup=False,
    )
    if summary.boundary_changed:
        error_console.print(
            "warning: the areas (boundaries) changed since the run being reproduced; areas are "
            "not versioned, so scores of changed areas may differ.", markup=False,
        )
    periods = summary.periods
    console.print(
        f"Scored {summary.areas:,} areas at {len(periods)} period(s) ({summary.rows:,} scores), "
        f"{periods[0].isoformat()} to {periods[-1].isoformat()}.", markup=False,
    )
    order = [*reversed(RISK_CLASSES), INSUFFICIENT_DATA]
    counts = ", ".join(f"{name} {summary.class_counts.get(name, 0):,}" for name in order)
    console.print(f"Latest period of each country: {counts}.", markup=False)
    for country, missing in summary.unavailable_by_country.items():
        if missing:
            console.print(f"Unavailable in {country} (no data for their inputs, not counted as "
                          f"zero): {', '.join(missing)}.", markup=False)
        dimensions = summary.missing_dimensions_by_country.get(country)
        if dimensions:
            console.print(f"No data at all in {country} for: {', '.join(dimensions)} (risk "
                          "computed from the other dimensions, reliability lowered).",
                          markup=False)
    if summary.top_areas:
        table = Table(title="Highest risk in the latest period")
        for column in ("pcode", "level", "period", "risk", "class", "top drivers"):
            table.add_column(column, overflow="fold")
        for pcode, level, period, risk, risk_class, drivers in summary.top_areas:
            table.add_row(pcode, str(level), period.isoformat(), f"{risk:.2f}", risk_class,
                          drivers)
        console.print(table)


_HOT_ORDER = [name for name in HOTSPOT_CLASSES if name in HOT_CLASSES]  # hottest first
_SURGES_SHOWN = 20


def _print_hotspots(hotspots: HotspotSummary) -> None:
    """Hot areas by class, conflict-event surges and the IDP surges (areas and their rolled-up
    admin1 and country parents), in each country's latest period."""
    for country, (period, classes) in hotspots.hot_by_country.items():
        counts = ", ".join(f"{name} {classes.get(name, 0):,}" for name in _HOT_ORDER)
        console.print(f"Hotspots of the risk in {country} ({period.isoformat()}): {counts}.",
                      markup=False)
    for country, (month, areas) in hotspots.conflict_surges.items():
        console.print(f"Conflict-event surges in {country} ({month.isoformat()}): {areas:,} "
                      "area(s).", markup=False)
    if not hotspots.surging:
        console.print("No IDP surge in the latest period of any country.", markup=False)
        return
    shown = "; ".join(f"{pcode} (+{size:,.0f})"
                      for pcode, _level, _period, size in hotspots.surging[:_SURGES_SHOWN])
    more = len(hotspots.surging) - _SURGES_SHOWN
    console.print(f"IDP surges in the latest period: {len(hotspots.surging)} area(s): {shown}"
                  + (f" and {more} more." if more > 0 else "."), markup=False)


COMMANDS = [score]
