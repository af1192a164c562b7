"""SIGKILL a scheduler at random points of ingest and scoring; nothing partial is ever left.

Each trial changes the DTM file (new values: a new batch of ~6,400 observation versions and a
new score run are due), starts a scheduler process, kills it with SIGKILL after a random delay,
and checks the database: no batch or score run left ``running``, no observation of a batch that
did not succeed, no score of a run that did not succeed, no notification twice. A last scheduler
then completes the cycle.

The scheduler processes are forked from the test process and run the real command
(``riskwatch scheduler`` through the CLI) in a child process of their own: a fork avoids
re-importing riskwatch (~3 s per start on this machine), so 20+ trials fit in CI's budget. The
console-script start is covered by tests/test_scheduler.py.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from riskwatch.config import load_settings
from riskwatch.cycle import scoring_due
from riskwatch.db.engine import make_engine
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import IngestBatch, JobRun, ScoreRun
from tests.test_scheduler_support import (
    Db,
    assert_consistent,
    env_for,
    scale_dtm,
    scenario,
    wait_for,
)

pytestmark = [pytest.mark.db, pytest.mark.slow]

TRIALS = {"sqlite": 20, "postgresql": 10}


def _scheduler_child(env: dict[str, str], cwd: str, log: str) -> None:
    """The child: the environment of a fresh process, then `riskwatch scheduler`."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    # pytest's capture replaced sys.stdout/stderr in the parent: write to the log instead.
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    code = 0
    try:
        from riskwatch.cli import cli

        result = cli.main(args=["scheduler"], prog_name="riskwatch", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    except BaseException:  # noqa: BLE001 - reported in the log, exit 1
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _fork_scheduler(env: dict[str, str], cwd: Path, log: Path) -> multiprocessing.Process:
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_scheduler_child, args=(env, str(cwd), str(log)),
                              daemon=True)
    process.start()
    _children.append(process)
    return process


_children: list[multiprocessing.Process] = []


def _kill_children() -> None:
    """Never leave a scheduler behind when a test fails."""
    while _children:
        process = _children.pop()
        if process.is_alive():
            process.kill()
            process.join(10)


def _running_stage(db: Db, pid: int) -> str:
    """What the killed process was doing: the job of its open JobRun (not the service's)."""
    open_runs = [r.job for r in db.all(select(JobRun).where(JobRun.pid == pid,
                                                            JobRun.status == "running"))
                 if r.job not in ("scheduler", "pipeline")]
    return open_runs[-1].split(":")[0] if open_runs else "between steps"


def test_sigkill_at_random_points_never_leaves_partial_data(
    database_url: str, tmp_path: Path
) -> None:
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    sources = scenario(tmp_path / "sources")
    env = env_for(database_url, sources, tmp_path / "data", pipeline_interval_seconds=1,
                  heartbeat_seconds=1, lease_seconds=10, shutdown_grace_seconds=5)
    log = tmp_path / "scheduler.log"
    db = Db(database_url)
    rng = random.Random(20261128)
    killed_during: dict[str, int] = {}
    try:
        for trial in range(TRIALS[backend]):
            if trial:
                scale_dtm(sources.parent / "dtm_admin2.csv", 1 + rng.uniform(0.01, 0.2))
            child = _fork_scheduler(env, tmp_path, log)
            # A third of the kills aim at the DTM ingest, a third at the score run (a random
            # moment after it began), a third at any moment of the cycle.
            target = ("ingest:xdm-dtm", "score", None)[trial % 3]
            if target is None:
                time.sleep(rng.uniform(0.3, 4.0 if trial == 0 else 2.5))
            else:
                pid = child.pid
                wait_for(lambda: db.all(select(JobRun.id).where(  # noqa: B023
                    JobRun.job == target, JobRun.pid == pid, JobRun.status == "running")),  # noqa: B023
                    30, what=f"{target} to start", interval=0.02)
                time.sleep(rng.uniform(0.0, 0.5))
            stage = _running_stage(db, child.pid)  # type: ignore[arg-type]
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            child.join(10)
            assert child.exitcode == -signal.SIGKILL
            killed_during[stage] = killed_during.get(stage, 0) + 1
            assert_consistent(db)

        # A last scheduler closes what the killed ones left open and completes the cycle.
        started = time.time()
        final = _fork_scheduler(env, tmp_path, log)
        def completed() -> bool:
            runs = db.all(select(JobRun).where(JobRun.job == "pipeline",
                                               JobRun.pid == final.pid))
            return any(r.status in ("succeeded", "warning") for r in runs)
        wait_for(completed, 60, what="a completed cycle after the crashes")
        # Another scheduler takes the lease (as after a long pause of this one): this one
        # learns it at its next heartbeat and stops with exit code 1, leaving the lease alone.
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE scheduler_lease SET holder_id = 'thief:1:1:x'"))
        final.join(30)
        assert final.exitcode == 1, log.read_text()[-3000:]
        assert "took its lease" in log.read_text()
        lease = db.lease()
        assert lease is not None and lease.holder_id == "thief:1:1:x"
        assert db.runs("scheduler")[-1].status == "failed"
        assert_consistent(db)
        assert db.all(select(JobRun).where(JobRun.status == "running")) == []
        assert not scoring_due(db.engine, load_settings()).due  # the latest data is scored
        latest_batch = db.all(select(IngestBatch).where(IngestBatch.source_id == "xdm-dtm")
                              .order_by(col(IngestBatch.id).desc()))[0]
        assert latest_batch.status in ("succeeded", "unchanged")
        assert db.all(select(ScoreRun).where(ScoreRun.status == "succeeded"))
        print(f"\n{backend}: {TRIALS[backend]} SIGKILL trials, killed during {killed_during}; "
              f"recovery cycle in {time.time() - started:.1f} s")
        # The kills hit the ingest and the scoring, not only the gaps between steps.
        assert killed_during.get("ingest", 0) >= 2, killed_during
        assert killed_during.get("score", 0) >= 2, killed_during
        assert "Traceback" not in log.read_text()
    finally:
        _kill_children()
        db.dispose()


def test_sigterm_finishes_or_rolls_back_the_step_and_releases_the_lease(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    sources = scenario(tmp_path / "sources")
    log = tmp_path / "scheduler.log"
    db = Db(database_url)

    def wait_running(pid: int, jobs: tuple[str, ...]) -> None:
        wait_for(lambda: db.all(select(JobRun.id).where(
            col(JobRun.job).in_(jobs), JobRun.pid == pid, JobRun.status == "running")),
            30, what=f"{jobs} to start", interval=0.02)

    try:
        # With time to finish: the running ingest completes, no later stage starts, the
        # cycle is recorded as interrupted, the lease is released, exit code 0.
        env = env_for(database_url, sources, tmp_path / "data", pipeline_interval_seconds=3600,
                      heartbeat_seconds=1, lease_seconds=10, shutdown_grace_seconds=60)
        child = _fork_scheduler(env, tmp_path, log)
        wait_running(child.pid, ("ingest:xdm-dtm",))  # type: ignore[arg-type]
        os.kill(child.pid, signal.SIGTERM)  # type: ignore[arg-type]
        child.join(60)
        assert child.exitcode == 0, log.read_text()[-3000:]
        runs = {r.job: r.status for r in db.runs() if r.pid == child.pid}
        assert runs["ingest:xdm-dtm"] == "succeeded"
        assert runs["pipeline"] == "interrupted" and "score" not in runs
        assert runs["scheduler"] == "succeeded"
        assert db.lease() is None and "Lease released" in log.read_text()
        assert_consistent(db)

        # Without time to finish (grace 0): the process leaves at once, the open transaction
        # is rolled back, its run is marked interrupted, the lease is still released.
        scale_dtm(sources.parent / "dtm_admin2.csv", 1.5)
        env["RISKWATCH_SCHEDULER__SHUTDOWN_GRACE_SECONDS"] = "0"
        # A changed interval is a changed job: it runs at once instead of in an hour.
        env["RISKWATCH_SCHEDULER__PIPELINE_INTERVAL_SECONDS"] = "3599"
        child = _fork_scheduler(env, tmp_path, log)
        wait_running(child.pid, ("ingest:xdm-dtm", "score"))  # type: ignore[arg-type]
        time.sleep(0.1)
        os.kill(child.pid, signal.SIGTERM)  # type: ignore[arg-type]
        child.join(60)
        assert child.exitcode in (0, 1), log.read_text()[-3000:]
        assert db.lease() is None
        assert [r for r in db.runs() if r.status == "running"] == []
        assert_consistent(db)
        assert "Traceback" not in log.read_text()
    finally:
        _kill_children()
        db.dispose()
