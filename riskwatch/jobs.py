"""The job history: every run of a job (scheduled or from the CLI) as one JobRun row.

A run is written twice, each time in its own short transaction: when it starts (status
``running``, with host and pid) and when it ends (``succeeded``, ``failed``, ``warning``,
``skipped`` or ``interrupted``, with counts and the error). Short transactions keep SQLite's
writer lock free for the real work, and a process killed mid-run leaves a ``running`` row that
the next scheduler marks ``interrupted`` (:func:`mark_interrupted_runs`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.db.engine import session_scope
from riskwatch.db.models import IngestBatch, JobRun, ScoreRun
from riskwatch.timeutil import utcnow

#: JobRun statuses.
RUNNING, SUCCEEDED, FAILED, WARNING, SKIPPED, INTERRUPTED = (
    "running", "succeeded", "failed", "warning", "skipped", "interrupted",
)
ERROR_LIMIT = 4000


def this_host() -> str:
    """The host name recorded with job runs and the lease."""
    return socket.gethostname()[:200]


def start_job_run(engine: Engine, job: str, *, counts: dict[str, Any] | None = None) -> int:
    """Record that ``job`` started in this process; returns the JobRun id."""
    with session_scope(engine) as session:
        run = JobRun(job=job[:100], host=this_host(), pid=os.getpid(), counts=counts)
        session.add(run)
        session.flush()
        assert run.id is not None
        return run.id


def finish_job_run(
    engine: Engine,
    run_id: int,
    status: str,
    counts: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Record how a run ended (its own transaction, so a rolled-back step is still recorded)."""
    with session_scope(engine) as session:
        run = session.get(JobRun, run_id)
        if run is None:  # deleted meanwhile (retention): nothing to record against
            return
        run.status = status
        run.finished_at = utcnow()
        if counts is not None:
            run.counts = _jsonable(counts)
        run.error = error[:ERROR_LIMIT] if error else None
        session.add(run)


def record_job_run(
    engine: Engine,
    job: str,
    status: str,
    *,
    counts: dict[str, Any] | None = None,
    error: str | None = None,
    started_at: datetime | None = None,
) -> int:
    """Record a run that already ended (a missed or skipped job, a warning) in one go."""
    now = utcnow()
    with session_scope(engine) as session:
        run = JobRun(job=job[:100], host=this_host(), pid=os.getpid(), status=status,
                     started_at=started_at or now, finished_at=now,
                     counts=_jsonable(counts) if counts is not None else None,
                     error=error[:ERROR_LIMIT] if error else None)
        session.add(run)
        session.flush()
        assert run.id is not None
        return run.id


@dataclass
class JobHandle:
    """A running job's record: fill ``counts``; set ``status``/``error`` to end otherwise."""

    id: int
    job: str
    counts: dict[str, Any] = field(default_factory=dict)
    status: str = SUCCEEDED
    error: str | None = None


@contextmanager
def recorded_job(
    engine: Engine, job: str, *, counts: dict[str, Any] | None = None
) -> Iterator[JobHandle]:
    """Run a block as one recorded job: ``failed`` with the error when it raises (re-raised)."""
    handle = JobHandle(id=start_job_run(engine, job, counts=counts), job=job,
                       counts=dict(counts or {}))
    try:
        yield handle
    except BaseException as error:
        status = INTERRUPTED if isinstance(error, (KeyboardInterrupt, SystemExit)) else FAILED
        finish_job_run(engine, handle.id, status, handle.counts,
                       describe_error(error) if status == FAILED else "interrupted")
        raise
    finish_job_run(engine, handle.id, handle.status, handle.counts, handle.error)


def describe_error(error: BaseException) -> str:
    """One line for the job history: the message, or the exception's type when it has none."""
    text = str(error).strip()
    return text if text else type(error).__name__


def recent_job_runs(session: Session, limit: int = 20, *, job: str | None = None) -> list[JobRun]:
    """The latest job runs, newest first (optionally of one job or job prefix ``ingest:``)."""
    statement = select(JobRun)
    if job is not None:
        statement = (statement.where(col(JobRun.job).startswith(job)) if job.endswith(":")
                     else statement.where(JobRun.job == job))
    return list(session.exec(
        statement.order_by(col(JobRun.started_at).desc(), col(JobRun.id).desc()).limit(limit)
    ))


def last_job_runs(session: Session) -> dict[str, JobRun]:
    """The latest run of every job name."""
    latest: dict[str, JobRun] = {}
    for run in session.exec(select(JobRun).order_by(col(JobRun.id))):
        latest[run.job] = run
    return latest


def mark_interrupted_runs(
    engine: Engine, *, dead_holders: tuple[tuple[str, int], ...] = ()
) -> dict[str, int]:
    """Close what a killed process left open; returns how many rows of each kind were closed.

    - JobRuns still ``running`` of a process that is gone: on this host when its pid is dead
      (:func:`riskwatch.lease.pid_alive`), elsewhere only for ``dead_holders`` (the host and pid
      of a scheduler whose lease expired), since another host's pids cannot be checked.
    - IngestBatches and ScoreRuns left ``running``: each is written in one transaction with its
      final status, so a committed ``running`` row can only come from an interrupted older
      writer; they are marked ``failed`` so nothing ever waits on them.
    """
    from riskwatch.lease import pid_alive

    host = this_host()
    closed = {"job_runs": 0, "ingest_batches": 0, "score_runs": 0}
    now = utcnow()
    with session_scope(engine) as session:
        for run in session.exec(select(JobRun).where(JobRun.status == RUNNING)):
            if run.pid == os.getpid() and run.host == host:
                continue
            gone = (run.host == host and run.pid is not None and not pid_alive(run.pid)) or (
                (run.host, run.pid) in dead_holders
            )
            if gone:
                run.status, run.finished_at = INTERRUPTED, now
                run.error = "interrupted: the process ended before the run finished"
                session.add(run)
                closed["job_runs"] += 1
        batches = session.execute(
            update(IngestBatch).where(col(IngestBatch.status) == RUNNING)
            .values(status=FAILED, finished_at=now)
        )
        closed["ingest_batches"] = int(batches.rowcount or 0)
        runs = session.execute(
            update(ScoreRun).where(col(ScoreRun.status) == RUNNING)
            .values(status=FAILED, finished_at=now)
        )
        closed["score_runs"] = int(runs.rowcount or 0)
    return closed


def _jsonable(value: Any) -> Any:
    """Counts as JSON: dates and datetimes as ISO text, tuples and sets as lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        from riskwatch.timeutil import iso_utc

        return iso_utc(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
