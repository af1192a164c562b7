"""The scheduler lease: atomic acquire, refusal naming the holder, expiry, dead-pid take-over."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlmodel import Session

from riskwatch.db.engine import make_engine
from riskwatch.db.migrate import upgrade
from riskwatch.lease import (
    Holder,
    LeaseHeld,
    acquire,
    current_lease,
    describe_lease,
    heartbeat,
    pid_alive,
    process_start_ticks,
    release,
)
from riskwatch.timeutil import utcnow

pytestmark = pytest.mark.db


def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def other_host(holder: Holder) -> Holder:
    return replace(holder, id=f"elsewhere:{holder.pid}:1:abcd", host="elsewhere")


def test_pid_checks_see_live_dead_and_recycled_processes() -> None:
    import os

    assert pid_alive(os.getpid())
    assert pid_alive(os.getpid(), process_start_ticks(os.getpid()))
    assert not pid_alive(dead_pid())
    # The same pid with another start time is another process (a recycled pid).
    assert not pid_alive(os.getpid(), (process_start_ticks(os.getpid()) or 0) + 1)


def test_one_holder_at_a_time_with_expiry_and_dead_holder_take_over(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    now = utcnow()
    first = other_host(Holder.this_process())  # another host: its pid cannot be checked
    taken = acquire(engine, first, 30, now=now)
    assert taken.replaced is None and taken.lease.holder_id == first.id

    second = Holder.this_process()
    with pytest.raises(LeaseHeld) as refused:
        acquire(engine, second, 30, now=now + timedelta(seconds=5))
    message = str(refused.value)
    assert "host elsewhere" in message and f"pid {first.pid}" in message
    assert "since" in message and "last heartbeat" in message

    # Heartbeats extend the lease; while they come, the lease stays with the first holder.
    assert heartbeat(engine, first, 30, now=now + timedelta(seconds=20))
    with pytest.raises(LeaseHeld):
        acquire(engine, second, 30, now=now + timedelta(seconds=40))
    # No heartbeat for longer than the lease: it expired and the second takes it over.
    taken = acquire(engine, second, 30, now=now + timedelta(seconds=51))
    assert taken.reason == "expired" and taken.replaced is not None
    assert taken.replaced.holder_id == first.id
    # The first one's next heartbeat learns it lost the lease (it must stop).
    assert not heartbeat(engine, first, 30, now=now + timedelta(seconds=52))
    assert not release(engine, first)  # and it cannot release what is not its own

    # A holder on this host whose process is gone is replaced at once, before expiry.
    with Session(engine) as session:
        lease = current_lease(session)
        assert lease is not None
        lease.pid = dead_pid()
        lease.holder_id = f"{lease.host}:{lease.pid}:1:dead"
        session.add(lease)
        session.commit()
    with Session(engine) as session:
        view = describe_lease(current_lease(session), now + timedelta(seconds=53))
    assert view is not None and view.state.startswith("holder process gone")
    third = Holder.this_process()
    taken = acquire(engine, third, 30, now=now + timedelta(seconds=53))
    assert taken.reason == "holder process gone"

    assert release(engine, third)
    with Session(engine) as session:
        assert current_lease(session) is None
    engine.dispose()


def test_a_live_holder_on_this_host_is_not_replaced(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        ticks = process_start_ticks(alive.pid)
        from riskwatch.jobs import this_host

        holder = Holder(id=f"{this_host()}:{alive.pid}:{ticks}:live", host=this_host(),
                        pid=alive.pid)
        acquire(engine, holder, 30)
        with pytest.raises(LeaseHeld):
            acquire(engine, Holder.this_process(), 30)
        # Even with an expired lease: alive on this host, it may only be slow to renew it.
        with pytest.raises(LeaseHeld) as refused:
            acquire(engine, Holder.this_process(), 30, now=utcnow() + timedelta(minutes=5))
        assert "still alive on this host" in str(refused.value)
    finally:
        alive.kill()
        alive.wait()
    # Its process is gone now: taken over at once.
    assert acquire(engine, Holder.this_process(), 30).reason == "holder process gone"
    engine.dispose()
