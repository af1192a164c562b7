"""`riskwatch run` and run_cycle: dry run, failure isolation, staleness, exit codes, group wait,
ping URL, due rules and retention (real database, real files, a real HTTP server)."""

from __future__ import annotations

import http.server
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import Session, select

from riskwatch.cli import cli
from riskwatch.config import load_settings, packaged_path
from riskwatch.db.engine import make_engine
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import (
    AuditEvent,
    Channel,
    Expert,
    JobRun,
    Notification,
    Source,
)
from riskwatch.map_geometry import CACHE_FOLDER, GeometryCache, warm_cache
from riskwatch.pipeline import _History, run_cycle, source_due
from riskwatch.retention import apply_retention
from riskwatch.source_health import source_health, stale_area_pcodes
from riskwatch.source_registry import SourceSpec, load_sources
from riskwatch.timeutil import iso_utc, utcnow
from tests.test_scheduler_support import Db, assert_consistent, scenario

pytestmark = pytest.mark.db

TABLES = ("source", "ingest_batch", "observation", "area", "score_run", "area_score", "alert",
          "notification", "job_run", "audit_event")


def table_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as connection:
        counts = {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in TABLES}
    engine.dispose()
    return counts


def invoke(url: str, sources: Path, *args: str, **env: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), env={
        "RISKWATCH_DATABASE_URL": url, "RISKWATCH_INGEST__SOURCES_FILE": str(sources), **env})


def test_dry_run_writes_nothing_and_a_failing_source_leaves_the_others_running(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    sources = scenario(tmp_path / "src", failing=True, cadence=30)
    before = table_counts(database_url)

    dry = invoke(database_url, sources, "run", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("would ingest") == 7 and "never ingested" in dry.output
    assert "Dry run: nothing was written" in dry.output
    assert table_counts(database_url) == before

    result = invoke(database_url, sources, "run")
    # A failed source is reported and recorded; the cycle still completed: exit 0.
    assert result.exit_code == 0, result.output
    assert "xdm-missing" in result.output and "file not found" in result.output
    assert "Cycle completed" in result.output and "Traceback" not in result.output
    db = Db(database_url)
    try:
        with Session(db.engine) as session:
            rows = {s.id: s for s in session.exec(select(Source))}
            health = {h.id: h for h in source_health(session)}
            stale_areas = stale_area_pcodes(session)
        missing = rows["xdm-missing"]
        assert missing.last_error and "file not found" in missing.last_error
        assert missing.last_error_at is not None and missing.last_success_at is None
        for ok in ("xdm-adm1", "xdm-adm2", "xdm-dtm", "xdm-ipc", "xdm-population"):
            assert rows[ok].last_success_at is not None and rows[ok].last_error is None
            assert rows[ok].last_attempt_at is not None
        assert health["xdm-missing"].status == "failing"
        assert health["xdm-url"].status == "failing"
        assert "private" in (rows["xdm-url"].last_error or "")
        # The DTM data ends in April 2026 and declares a 30-day cadence: stale.
        assert health["xdm-dtm"].stale and rows["xdm-dtm"].stale_since is not None
        assert "expected every 30 days" in health["xdm-dtm"].stale_reason
        assert health["xdm-ipc"].status == "ok"
        # The DTM figures cover the country, its regions and its districts.
        assert {"XDM", "XD08", "XD0806"} <= stale_areas and len(stale_areas) > 200
        statuses = {r.job: r.status for r in db.runs()}
        assert statuses["ingest:xdm-missing"] == "failed"
        assert statuses["ingest:xdm-url"] == "failed"
        assert statuses["ingest:xdm-dtm"] == "succeeded"
        assert statuses["score"] == "succeeded"
        assert statuses["source-health"] == "warning"  # the administrators' stale-data condition
        assert statuses["run"] == "warning"
        # After the score run the map's first-render geometry is on disk: the dashboard reads
        # it back without simplifying again.
        assert statuses["map-cache"] == "succeeded"
        cache = GeometryCache(Path(os.environ["RISKWATCH_DATA_DIR"]) / CACHE_FOLDER)
        assert warm_cache(db.engine, cache)["built"] == 0 and cache.disk_hits >= 2
        stale_events = db.all(select(AuditEvent).where(AuditEvent.action == "source_stale"))
        assert [e.object_id for e in stale_events] == ["xdm-dtm"]
        assert_consistent(db)

        status = invoke(database_url, sources, "status")
        assert "Stale data: source xdm-dtm" in status.output
        assert "Failing source: xdm-missing" in status.output
        jobs = invoke(database_url, sources, "jobs")
        assert jobs.exit_code == 0, jobs.output
        assert "Sources needing attention" in jobs.output and "ingest:xdm-missing" in jobs.output
        assert "pipeline" in jobs.output and "configuration" in jobs.output

        # Next cycle: only the failing source is retried; nothing changed, so no score run; the
        # stale condition is not raised twice.
        runs_before = len(db.runs("score"))
        again = invoke(database_url, sources, "run")
        assert again.exit_code == 0, again.output
        assert "retrying" in again.output and "file unchanged" in again.output
        assert len(db.runs("score")) == runs_before
        assert len(db.all(select(AuditEvent).where(AuditEvent.action == "source_stale"))) == 1
    finally:
        db.dispose()


def test_run_exits_1_when_the_cycle_cannot_complete(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    sources = tmp_path / "sources.toml"
    sources.write_text("")
    catalog = tmp_path / "no-catalog"
    catalog.mkdir()  # no indicators, no profile: scoring cannot even decide
    result = invoke(database_url, sources, "run", RISKWATCH_INDICATORS_DIR=str(catalog))
    assert result.exit_code == 1
    assert "the cycle did not complete" in result.output and "score failed" in result.output
    assert "Traceback" not in result.output
    db = Db(database_url)
    try:
        assert {r.job: r.status for r in db.runs()}["run"] == "failed"
    finally:
        db.dispose()


def test_run_waits_out_the_group_wait_and_delivers_to_the_experts(tmp_path: Path) -> None:
    """The real alert engine and delivery: `run` returns after its notifications were sent."""
    from riskwatch.demo_experts import create_demo_experts

    url = f"sqlite:///{tmp_path / 'rw.db'}"
    engine = make_engine(url)
    upgrade(engine)
    rules = tmp_path / "alerts.toml"
    rules.write_text(packaged_path("config", "alerts.toml").read_text()
                     .replace("group_wait_seconds = 30", "group_wait_seconds = 2"))
    assert "group_wait_seconds = 2" in rules.read_text()
    sources = scenario(tmp_path / "src")
    settings = load_settings(overrides={"database_url": url, "ingest": {"sources_file": sources},
                                        "alerts": {"rules_file": str(rules)}})
    boundaries = [s for s in load_sources(sources) if s.kind == "boundaries"]
    run_cycle(engine, settings, sources=boundaries)  # the areas the experts are deployed to
    create_demo_experts(engine, settings)

    began = time.monotonic()
    report = run_cycle(engine, settings)
    took = time.monotonic() - began
    assert report.completed
    assert report.notification_ids, [s.counts for s in report.stages]
    alerts = report.stage("alerts")
    assert alerts is not None and alerts.counts.get("fired", 0) > 0
    dispatch = report.stage("dispatch")
    assert dispatch is not None and dispatch.counts.get("delivered", 0) >= 1, dispatch
    with Session(engine) as session:
        created = session.exec(select(Notification).where(
            Notification.id.in_(report.notification_ids))).all()  # type: ignore[union-attr]
    assert created and all(n.status == "delivered" for n in created)
    # It waited for the group wait instead of leaving the messages to a later dispatch.
    assert took >= 1.5
    outbox = settings.resolved_data_dir / "demo" / "outbox"
    assert outbox.is_dir() and any(outbox.rglob("*"))
    engine.dispose()


def test_ping_url_after_a_successful_cycle_obeys_the_private_address_rule(
    tmp_path: Path,
) -> None:
    pings: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            pings.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"sqlite:///{tmp_path / 'rw.db'}"
        engine = make_engine(url)
        upgrade(engine)
        ping_url = f"http://127.0.0.1:{server.server_port}/ping/abc"
        refused = load_settings(overrides={"scheduler": {"ping_url": ping_url}})
        report = run_cycle(engine, refused, sources=[])
        assert report.completed and report.ping is not None
        assert report.ping.startswith(("refused", "failed")) and "private" in report.ping
        assert pings == []  # loopback is refused without allow_private_addresses

        allowed = load_settings(overrides={"scheduler": {"ping_url": ping_url},
                                           "allow_private_addresses": True})
        report = run_cycle(engine, allowed, sources=[])
        assert report.ping == "ok (HTTP 200)" and pings == ["/ping/abc"]
        # A dry run is not a cycle that happened: no ping.
        run_cycle(engine, allowed, sources=[], dry_run=True)
        assert pings == ["/ping/abc"]

        # A dead ping target is logged, never fatal.
        server.shutdown()
        server.server_close()
        report = run_cycle(engine, allowed, sources=[])
        assert report.completed and report.ping is not None and report.ping.startswith("failed")
        engine.dispose()
    finally:
        server.server_close()


def _spec(tmp_path: Path, **fields: object) -> SourceSpec:
    base: dict[str, object] = {"id": "s", "kind": "dtm", "config_file": tmp_path / "s.toml",
                               "location": str(tmp_path / "file.csv")}
    base.update(fields)
    return SourceSpec(**base)  # type: ignore[arg-type]


def test_when_a_source_is_due(tmp_path: Path) -> None:
    now = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)  # a Monday
    data = tmp_path / "file.csv"
    data.write_text("x")
    old = now - timedelta(days=3)
    recent = _History(last_attempt=old, last_status="succeeded", last_error_at=None)

    assert source_due(_spec(tmp_path), None, now) == (True, "never ingested")
    # Cron in a time zone: Mondays 08:00 in Paris is 07:00 UTC, not yet at 06:30 UTC.
    paris = _spec(tmp_path, schedule="0 8 * * 1", timezone="Europe/Paris")
    due, reason = source_due(paris, recent, now)
    assert not due and "2026-03-02T07:00:00Z" in reason
    assert source_due(paris, recent, now + timedelta(hours=1))[0]
    utc = _spec(tmp_path, schedule="0 6 * * 1")
    assert source_due(utc, recent, now) == (True, "scheduled at 2026-03-02T06:00:00Z")
    hourly = _spec(tmp_path, interval_minutes=60)
    assert source_due(hourly, recent, now)[0]
    assert not source_due(hourly, _History(now - timedelta(minutes=10), "succeeded", None),
                          now)[0]
    # A failed attempt is retried at the next cycle whatever the schedule.
    failed = _History(last_attempt=now - timedelta(minutes=1), last_status="failed",
                      last_error_at=now - timedelta(minutes=1))
    assert source_due(utc, failed, now)[1].startswith("retrying")
    # A refused input is not retried as such: the same file would be refused again.
    refused = _History(last_attempt=utcnow() + timedelta(minutes=1), last_status="refused",
                       last_error_at=utcnow() + timedelta(minutes=1))
    assert source_due(_spec(tmp_path), refused, now) == (
        False, f"file unchanged since {iso_utc(refused.last_attempt)}")
    # Unscheduled file: due when it changed since the last attempt.
    unscheduled = _spec(tmp_path)
    assert source_due(unscheduled, _History(utcnow() + timedelta(minutes=1), "succeeded", None),
                      now)[0] is False
    assert source_due(unscheduled, recent, now)[1].startswith("file changed")
    # Unscheduled URL: once a day.
    remote = _spec(tmp_path, location="https://example.org/data.csv")
    assert source_due(remote, recent, now)[0]
    assert not source_due(remote, _History(now - timedelta(hours=2), "succeeded", None), now)[0]


def test_retention_deletes_old_runs_and_old_message_contents_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rw.db'}"
    engine = make_engine(url)
    upgrade(engine)
    now = utcnow()
    long_ago = now - timedelta(days=200)
    with Session(engine) as session:
        session.add(JobRun(job="old", started_at=long_ago, finished_at=long_ago,
                           status="succeeded"))
        session.add(JobRun(job="old-but-running", started_at=long_ago, status="running"))
        session.add(JobRun(job="recent", started_at=now, finished_at=now, status="succeeded"))
        expert = Expert(name="E")
        session.add(expert)
        session.flush()
        channel = Channel(expert_id=expert.id, kind="capture", target_encrypted="x",  # type: ignore[arg-type]
                          target_redacted="x")
        session.add(channel)
        session.flush()
        payload = {"kind": "alert", "language": "en", "expert_id": expert.id,
                   "alerts": [{"pcode": "XD0101"}]}
        for key, delivered, status in (("old", long_ago, "delivered"),
                                       ("new", now, "delivered"),
                                       ("old-pending", None, "pending")):
            session.add(Notification(expert_id=expert.id, channel_id=channel.id,  # type: ignore[arg-type]
                                     idempotency_key=key, status=status, delivered_at=delivered,
                                     created_at=long_ago, payload=payload))
        session.commit()
    settings = load_settings()
    counts = apply_retention(engine, settings, now=now)
    assert counts["job_runs_deleted"] == 1 and counts["notification_payloads_purged"] == 1
    with Session(engine) as session:
        assert sorted(r.job for r in session.exec(select(JobRun))) == ["old-but-running",
                                                                       "recent"]
        by_key = {n.idempotency_key: n for n in session.exec(select(Notification))}
    assert set(by_key) == {"old", "new", "old-pending"}  # rows (and their keys) stay
    assert "alerts" not in by_key["old"].payload and by_key["old"].payload["kind"] == "alert"
    assert by_key["new"].payload["alerts"] and by_key["old-pending"].payload["alerts"]
    assert apply_retention(engine, settings, now=now)["notification_payloads_purged"] == 0
    engine.dispose()


def test_cron_weekdays_are_read_the_crontab_way() -> None:
    """APScheduler 3 counts weekdays from Monday = 0; riskwatch's files use crontab's Sunday = 0."""
    from riskwatch.crontab import crontab_trigger, crontab_weekdays

    assert crontab_weekdays("1") == "mon" and crontab_weekdays("0") == "sun"
    assert crontab_weekdays("7") == "sun" and crontab_weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert crontab_weekdays("*/2") == "sun,tue,thu,sat" and crontab_weekdays("sat,0") == "sun,sat"
    assert crontab_weekdays("5-7") == "sun,fri,sat" and crontab_weekdays("*") == "*"
    saturday = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    monday = crontab_trigger("0 6 * * 1", timezone="UTC").get_next_fire_time(None, saturday)
    assert monday == datetime(2026, 3, 2, 6, 0, tzinfo=UTC) and monday.strftime("%A") == "Monday"
    with pytest.raises(ValueError):
        crontab_trigger("0 6 * * 8", timezone="UTC")


def test_configured_jobs_and_the_per_source_job(tmp_path: Path) -> None:
    """Jobs from the configuration (explicit time zones) and `ingest_source_job` end to end."""
    from riskwatch import scheduling
    from riskwatch.scheduling import SchedulerService, configured_jobs, next_run_times

    sources = scenario(tmp_path / "src", extra="""
[[source]]
id = "xdm-ipc-weekly"
kind = "hapi"
location = "ipc_food_security.csv"
schedule = "0 8 * * 1"
timezone = "Europe/Paris"
""")
    url = f"sqlite:///{tmp_path / 'rw.db'}"
    settings = load_settings(overrides={"database_url": url,
                                        "ingest": {"sources_file": str(sources)},
                                        "scheduler": {"digest_timezone": "America/Bogota"}})
    jobs = {job.id: job for job in configured_jobs(settings, load_sources(sources))}
    # Unscheduled sources run with the pipeline; a scheduled one has its own job.
    assert set(jobs) == {"pipeline", "dispatch", "escalation", "digest", "retention",
                         "ingest:xdm-ipc-weekly"}
    assert all(job.trigger.timezone is not None for job in jobs.values())
    assert str(jobs["ingest:xdm-ipc-weekly"].trigger.timezone) == "Europe/Paris"
    assert str(jobs["digest"].trigger.timezone) == "America/Bogota"
    assert jobs["dispatch"].executor == "dispatch"

    engine = make_engine(url)
    upgrade(engine)
    saturday = datetime(2026, 2, 28, 12, 30, tzinfo=UTC)
    planned = {job.id: job for job in next_run_times(engine, settings, saturday)}
    assert planned["ingest:xdm-ipc-weekly"].next_run_time == datetime(2026, 3, 2, 7, 0,
                                                                      tzinfo=UTC)
    assert planned["digest"].next_run_time == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert {job.origin for job in planned.values()} == {"configuration"}

    # The job function, as the scheduler calls it (the service in this process).
    service = SchedulerService(engine, settings)
    service._confirmed_until = utcnow() + timedelta(seconds=30)
    scheduling._SERVICE = service
    try:
        scheduling.ingest_source_job("xdm-ipc-weekly")
        scheduling.ingest_source_job("xdm-ipc-weekly")  # not due again: nothing happens
        scheduling.ingest_source_job("no-longer-declared")
    finally:
        scheduling._SERVICE = None
    db = Db(url)
    try:
        runs = db.runs()
        assert [(r.job, r.status) for r in runs] == [
            ("ingest:xdm-ipc-weekly", "succeeded"),
            ("ingest:no-longer-declared", "skipped")]
        assert runs[0].counts["batch_id"] is not None
    finally:
        db.dispose()
    engine.dispose()
