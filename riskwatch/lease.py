"""One scheduler per database: the SchedulerLease row named ``scheduler``.

APScheduler's job store must never be shared by two schedulers (duplicate runs), so
``riskwatch scheduler`` holds this lease before it touches the store:

- **Acquire** atomically: an INSERT (the primary key makes a second one fail), or, when a row
  exists, a conditional UPDATE that only succeeds if the row still names the holder we saw and
  that holder is gone: its lease expired, or it ran on this host and its process no longer
  exists (then the take-over is immediate instead of waiting for the expiry).
- **Heartbeat**: ``heartbeat_at = now``, ``expires_at = now + lease_seconds`` (at most 60 s), only
  where the row still names us; zero rows updated means another scheduler took the lease, and
  this one must stop.
- **Release** on a clean shutdown: delete the row if it is still ours.

A holder is identified by host, pid and the process start time (``holder_id``), so a recycled
pid is not mistaken for the old scheduler.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from riskwatch.db.models import SchedulerLease
from riskwatch.errors import RiskwatchError
from riskwatch.jobs import this_host
from riskwatch.timeutil import iso_utc, to_utc, utcnow

LEASE_NAME = "scheduler"


class LeaseHeld(RiskwatchError):
    """Another live scheduler holds the lease (exit code 1); the message names it."""

    def __init__(self, lease: SchedulerLease, now: datetime) -> None:
        self.lease = lease
        age = (now - to_utc(lease.heartbeat_at)).total_seconds()
        stalled = (" Its lease expired but its process is still alive on this host: it is not "
                   "replaced while it lives." if to_utc(lease.expires_at) <= now else "")
        super().__init__(
            f"another scheduler is already running on this database: host {lease.host}, "
            f"pid {lease.pid}, since {iso_utc(lease.acquired_at)}, last heartbeat "
            f"{iso_utc(lease.heartbeat_at)} ({age:.0f} s ago), lease expires "
            f"{iso_utc(lease.expires_at)}. Only one scheduler may run per database; stop that "
            "one first (its lease is released on SIGTERM, or expires within a minute of its "
            "last heartbeat)." + stalled
        )


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) the lease: this process."""

    id: str
    host: str
    pid: int

    @classmethod
    def this_process(cls) -> Holder:
        """This process as a lease holder (host, pid, process start time, a random tag)."""
        host, pid = this_host(), os.getpid()
        start = process_start_ticks(pid)
        tag = uuid.uuid4().hex[:8]
        return cls(id=f"{host[:60]}:{pid}:{start if start is not None else '-'}:{tag}",
                   host=host, pid=pid)


@dataclass(frozen=True)
class Acquired:
    """The lease was taken; ``replaced`` names the holder it was taken from, if any."""

    lease: SchedulerLease
    replaced: SchedulerLease | None = None
    reason: str = "free"


def process_start_ticks(pid: int) -> int | None:
    """The start time of a process in clock ticks since boot (Linux), or None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ")".
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])  # field 22 of stat, counted after the name
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as dead).

    With ``start_ticks`` a process that started at another time is a different process that
    reused the pid, so it counts as dead too.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[-1].split()
    except OSError:
        return True  # no /proc (not Linux): the signal check above is all we know
    if fields and fields[0] in ("Z", "X"):
        return False
    if start_ticks is not None and len(fields) > 19 and fields[19].isdigit():
        return int(fields[19]) == start_ticks
    return True


def holder_alive(lease: SchedulerLease) -> bool | None:
    """True/False when the holder ran on this host (checked), None when it ran elsewhere."""
    if lease.host != this_host():
        return None
    parts = lease.holder_id.split(":")
    start = int(parts[2]) if len(parts) >= 4 and parts[2].isdigit() else None
    return pid_alive(lease.pid, start)


def current_lease(session: Session) -> SchedulerLease | None:
    """The lease row, expired or not (None when no scheduler holds or held it)."""
    return session.get(SchedulerLease, LEASE_NAME)


def acquire(engine: Engine, holder: Holder, lease_seconds: int,
            now: datetime | None = None) -> Acquired:
    """Take the lease for ``holder`` or raise LeaseHeld naming the live holder."""
    now = now or utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    with Session(engine) as session:
        try:
            row = SchedulerLease(name=LEASE_NAME, holder_id=holder.id, host=holder.host,
                                 pid=holder.pid, acquired_at=now, heartbeat_at=now,
                                 expires_at=expires)
            session.add(row)
            session.commit()
            return Acquired(lease=_copy(row))
        except IntegrityError:
            session.rollback()
    with Session(engine) as session:
        existing = current_lease(session)
        if existing is None:  # released between our insert and this read: try again
            return acquire(engine, holder, lease_seconds, now)
        seen = _copy(existing)
    alive = holder_alive(seen)
    if seen.holder_id == holder.id:
        reason = "ours"
    elif alive is False:
        reason = "holder process gone"
    elif alive is True:
        # On this host a live holder is never replaced, even with an expired lease: it may
        # only be slow to renew it (e.g. waiting for a database lock); two must never run.
        raise LeaseHeld(seen, now)
    elif to_utc(seen.expires_at) <= now:
        reason = "expired"
    else:
        raise LeaseHeld(seen, now)
    # Compare-and-swap on the holder we saw: if two schedulers race for a dead holder's lease,
    # only one UPDATE matches.
    with Session(engine) as session:
        result = session.execute(
            update(SchedulerLease)
            .where(col(SchedulerLease.name) == LEASE_NAME,
                   col(SchedulerLease.holder_id) == seen.holder_id,
                   col(SchedulerLease.heartbeat_at) == seen.heartbeat_at)
            .values(holder_id=holder.id, host=holder.host, pid=holder.pid, acquired_at=now,
                    heartbeat_at=now, expires_at=expires)
        )
        session.commit()
        if result.rowcount != 1:
            fresh = current_lease(session)
            if fresh is None:
                return acquire(engine, holder, lease_seconds, now)
            raise LeaseHeld(_copy(fresh), now)
        taken = current_lease(session)
        assert taken is not None
        return Acquired(lease=_copy(taken), replaced=None if reason == "ours" else seen,
                        reason=reason)


def heartbeat(engine: Engine, holder: Holder, lease_seconds: int,
              now: datetime | None = None) -> bool:
    """Extend our lease; False when it is no longer ours (another scheduler took it)."""
    now = now or utcnow()
    with Session(engine) as session:
        result = session.execute(
            update(SchedulerLease)
            .where(col(SchedulerLease.name) == LEASE_NAME,
                   col(SchedulerLease.holder_id) == holder.id)
            .values(heartbeat_at=now, expires_at=now + timedelta(seconds=lease_seconds))
        )
        session.commit()
        return result.rowcount == 1


def release(engine: Engine, holder: Holder) -> bool:
    """Give the lease up if it is still ours; True when a row was deleted."""
    with Session(engine) as session:
        result = session.execute(
            delete(SchedulerLease).where(col(SchedulerLease.name) == LEASE_NAME,
                                         col(SchedulerLease.holder_id) == holder.id)
        )
        session.commit()
        return result.rowcount == 1


@dataclass(frozen=True)
class LeaseView:
    """The lease as `riskwatch status` shows it."""

    host: str
    pid: int
    since: datetime
    heartbeat_at: datetime
    expires_at: datetime
    heartbeat_age_seconds: float
    state: str  # "running", "expired (scheduler presumed dead)", "holder process gone"


def describe_lease(lease: SchedulerLease | None, now: datetime | None = None) -> LeaseView | None:
    """The lease with its heartbeat age and whether its holder is presumed alive."""
    if lease is None:
        return None
    now = now or utcnow()
    alive = holder_alive(lease)
    if alive is False:
        state = "holder process gone (a new scheduler takes over at once)"
    elif to_utc(lease.expires_at) <= now:
        state = ("expired, but its process is alive on this host (stalled?)" if alive
                 else "expired (scheduler presumed dead)")
    else:
        state = "running"
    return LeaseView(
        host=lease.host, pid=lease.pid, since=to_utc(lease.acquired_at),
        heartbeat_at=to_utc(lease.heartbeat_at), expires_at=to_utc(lease.expires_at),
        heartbeat_age_seconds=(now - to_utc(lease.heartbeat_at)).total_seconds(), state=state,
    )


def _copy(row: SchedulerLease) -> SchedulerLease:
    """A detached copy, usable after its session closed."""
    return SchedulerLease(name=row.name, holder_id=row.holder_id, host=row.host, pid=row.pid,
                          acquired_at=row.acquired_at, heartbeat_at=row.heartbeat_at,
                          expires_at=row.expires_at)
