"""`riskwatch scheduler` as real processes: schedule, one per database, take-over, catch-up.

Every process here is the installed console script started with its own environment; the
intervals are seconds so that the whole story fits in a few dozen seconds per backend.
"""

from __future__ import annotations

import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from riskwatch.cli import cli
from riskwatch.db.engine import make_engine
from riskwatch.db.migrate import upgrade
from riskwatch.jobs import this_host
from riskwatch.timeutil import to_utc, utcnow
from tests.test_scheduler_support import Db, env_for, start, stop, wait_for

pytestmark = [pytest.mark.db, pytest.mark.slow]

INTERVAL = 1  # seconds between pipeline runs


def _parse(value: str) -> datetime:
    return to_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def test_schedule_single_scheduler_take_over_and_exactly_one_catch_up(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    sources = tmp_path / "sources.toml"
    sources.write_text("", encoding="utf-8")  # no sources: the pipeline's own steps only
    env = env_for(database_url, sources, tmp_path / "data", pipeline_interval_seconds=INTERVAL,
                  heartbeat_seconds=1, lease_seconds=10, shutdown_grace_seconds=10)
    log = tmp_path / "scheduler.log"
    db = Db(database_url)
    try:
        # 1. The first scheduler takes the lease and runs the pipeline every INTERVAL seconds.
        first = start(["scheduler"], env, tmp_path, log)
        wait_for(lambda: (lease := db.lease()) is not None and lease.pid == first.pid, 30,
                 what="the first scheduler's lease")
        runs = wait_for(lambda: [r for r in db.runs("pipeline") if r.pid == first.pid
                                 and r.finished_at][:3] if len([
                                     r for r in db.runs("pipeline")
                                     if r.pid == first.pid and r.finished_at]) >= 3 else None,
                        30, what="three pipeline runs")
        gaps = [(b.started_at - a.started_at).total_seconds()
                for a, b in zip(runs, runs[1:], strict=False)]
        assert all(INTERVAL - 0.6 <= gap <= INTERVAL + 1.5 for gap in gaps), gaps
        assert all(r.status in ("succeeded", "warning") for r in runs), [r.error for r in runs]
        lease = db.lease()
        assert lease is not None and lease.host == this_host()
        assert (utcnow() - to_utc(lease.heartbeat_at)).total_seconds() < 5  # heartbeat is live

        # 2. A second scheduler on the same database is refused within seconds, naming it.
        began = time.monotonic()
        second = start(["scheduler"], env, tmp_path, tmp_path / "second.log")
        assert second.wait(timeout=30) == 1
        assert time.monotonic() - began < 15
        refusal = (tmp_path / "second.log").read_text()
        assert f"pid {first.pid}" in refusal and f"host {this_host()}" in refusal
        assert "since" in refusal and "last heartbeat" in refusal
        assert "Traceback" not in refusal

        # `riskwatch status` and `riskwatch jobs` show the holder and the schedule.
        result = CliRunner().invoke(cli, ["status"], env={"RISKWATCH_DATABASE_URL": database_url})
        assert f"pid {first.pid}" in result.output and "last heartbeat" in result.output
        result = CliRunner().invoke(cli, ["jobs"], env={
            "RISKWATCH_DATABASE_URL": database_url,
            "RISKWATCH_INGEST__SOURCES_FILE": str(sources),
            "RISKWATCH_SCHEDULER__PIPELINE_INTERVAL_SECONDS": str(INTERVAL)})
        assert result.exit_code == 0, result.output
        assert "job store" in result.output and "pipeline" in result.output

        # 3. SIGTERM: a clean stop that releases the lease.
        assert stop(first, signal.SIGTERM) == 0
        assert db.lease() is None
        assert db.runs("scheduler")[-1].status == "succeeded"
        stopped = utcnow()

        # 4. Downtime of several intervals, then a restart: exactly one catch-up run.
        time.sleep(3.5 * INTERVAL)
        third = start(["scheduler"], env, tmp_path, log)
        wait_for(lambda: (lease := db.lease()) is not None and lease.pid == third.pid, 30,
                 what="the third scheduler's lease")
        restarted = to_utc(db.lease().acquired_at)  # type: ignore[union-attr]
        # Wait until the regular runs after the catch-up have started.
        wait_for(lambda: len([r for r in db.runs("pipeline") if r.pid == third.pid
                              and r.status in ("succeeded", "warning")]) >= 3, 30,
                 what="runs after the restart")
        # (A run the pool skipped because the previous one still ran is recorded "skipped".)
        after = [r for r in db.runs("pipeline") if r.pid == third.pid
                 and r.status in ("succeeded", "warning")]
        assert not [r for r in db.runs("pipeline")
                    if stopped < to_utc(r.started_at) < restarted]  # nothing ran while down
        catch_ups = [r for r in after if r.counts.get("catch_up")]
        assert len(catch_ups) == 1, [r.counts for r in after]  # exactly one catch-up
        assert catch_ups[0].id == after[0].id  # and it came first
        catch_up = catch_ups[0].counts
        # Coalesced: one run for the several fire times missed while no scheduler ran.
        assert catch_up["missed_fire_times"] >= 3, catch_up
        assert stopped - timedelta(seconds=INTERVAL + 1) < _parse(catch_up["overdue_since"])
        assert _parse(catch_up["overdue_since"]) < restarted
        for run in after[1:]:  # then the regular schedule, on time
            assert run.counts["late_seconds"] < INTERVAL

        # 5. SIGKILL: no release, but the pid is dead on this host, so the next one takes over
        # at once (long before the 10 s lease expires) and closes the dead one's open runs.
        killed_at = time.monotonic()
        assert stop(third, signal.SIGKILL) == -signal.SIGKILL
        assert db.lease() is not None  # still there: nobody released it
        fourth = start(["scheduler"], env, tmp_path, log)
        wait_for(lambda: (lease := db.lease()) is not None and lease.pid == fourth.pid, 30,
                 what="the take-over")
        lease = db.lease()
        assert lease is not None
        # The take-over happened before the killed one's lease expired.
        assert time.monotonic() - killed_at < 10 + 5
        wait_for(lambda: "Took over the lease" in log.read_text(), 15, what="the take-over notice")
        killed_runs = [r for r in db.runs() if r.pid == third.pid]
        assert killed_runs and all(r.status != "running" for r in killed_runs)
        assert [r.status for r in killed_runs if r.job == "scheduler"] == ["interrupted"]
        assert stop(fourth, signal.SIGTERM) == 0
        assert db.lease() is None
        output = log.read_text()
        assert "Traceback" not in output, output[output.find("Traceback") - 500:][:4000]
    finally:
        for name in ("first", "second", "third", "fourth"):
            process = locals().get(name)
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        db.dispose()
