"""Dispatchers killed with SIGKILL at random points, and dispatchers racing each other.

Each dispatcher is a real process (forked, so that it starts in milliseconds) sending to a real
webhook receiver on loopback. The invariants:

* after a final clean dispatch, every notification is delivered and was received: zero lost;
* a notification received more than once was received with the same webhook-id and the same
  body (at least once, idempotently); the number of such duplicates is reported;
* two dispatchers running at once never both send one row (claims are exclusive).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from riskwatch.channels.testing import WebhookReceiver
from riskwatch.config import Settings
from riskwatch.db.engine import make_engine
from riskwatch.db.models import Notification
from riskwatch.dispatch import dispatch_due
from riskwatch.timeutil import utcnow
from tests.test_dispatch import (
    SECRET,
    add_webhook_expert,
    delivery_settings,
    enqueue,
    make_alert,
    migrated,
    seed_areas,
)

pytestmark = pytest.mark.db

MIN_KILLS = 50  # trials where the dispatcher was really killed mid-run
MAX_TRIALS = 150
CLAIM_TIMEOUT = 0.3
_FORK = multiprocessing.get_context("fork")


def _dispatcher(settings: Settings, batch_size: int, worker: str) -> None:
    """A dispatcher process: its own engine, one full dispatch run, then exit.

    Forked, so it inherits the loaded settings and modules and starts in milliseconds.
    """
    engine = make_engine(settings.resolved_database_url)
    settings = settings.model_copy(
        update={"delivery": settings.delivery.model_copy(update={"batch_size": batch_size})}
    )
    dispatch_due(engine, settings, worker_id=worker)
    os._exit(0)


def _run(settings: Settings, batch_size: int, worker: str) -> multiprocessing.Process:
    process = _FORK.Process(target=_dispatcher, args=(settings, batch_size, worker))
    process.start()
    return process


def _received_by_id(receiver: WebhookReceiver) -> dict[str, set[bytes]]:
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for item in receiver.received:
        if not 200 <= item.answered < 300:
            continue  # cut off mid-request by the kill: not delivered
        assert item.valid_signature
        bodies[item.webhook_id].add(item.body)
    return bodies


def test_sigkill_at_random_points_loses_nothing(database_url: str, record_property) -> None:
    settings = delivery_settings(
        database_url,
        claim_timeout_seconds=CLAIM_TIMEOUT,
        max_attempts=100,
        backoff_base_seconds=0.05,
        backoff_max_seconds=0.2,
    )
    engine = migrated(settings)
    seed_areas(engine)
    rng = random.Random(20261128)
    kills = completed = 0
    started = time.monotonic()
    with WebhookReceiver(SECRET) as receiver:
        # A little latency per request widens the window between send and bookkeeping.
        receiver.responder = lambda _id: time.sleep(0.002) or None  # type: ignore[func-returns-value]
        expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
        alert_id = make_alert(engine)
        # Calibrate: how long does a dispatcher take for a few rows, start to exit?
        durations = []
        for calibration in range(3):
            for _ in range(3):
                enqueue(engine, expert_id, channel_id, [alert_id], created_at=utcnow())
            begin = time.monotonic()
            process = _run(settings, 2, f"calibration-{calibration}")
            process.join(timeout=30)
            durations.append(time.monotonic() - begin)
        # Kill points spread over a typical run (start-up, claim, send, bookkeeping, exit);
        # a run that finishes first counts as a trial without a kill.
        window = sorted(durations)[1] * 1.1
        trial = 0
        while kills < MIN_KILLS and trial < MAX_TRIALS:
            trial += 1
            for _ in range(rng.randint(1, 4)):
                enqueue(engine, expert_id, channel_id, [alert_id], created_at=utcnow())
            process = _run(settings, rng.choice([1, 2, 3, 5]), f"trial-{trial}")
            time.sleep(rng.uniform(0.0, window))
            if process.is_alive():
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
            else:
                completed += 1
            process.join(timeout=10)
            assert process.exitcode is not None
        # Final clean dispatch, after every claim of a killed dispatcher has timed out.
        time.sleep(CLAIM_TIMEOUT + 0.1)
        final = dispatch_due(engine, settings, now=utcnow() + timedelta(seconds=5))
        with Session(engine) as session:
            rows = session.exec(select(Notification)).all()
        bodies = _received_by_id(receiver)
        accepted = Counter(receiver.ids())
    elapsed = time.monotonic() - started

    statuses = Counter(row.status for row in rows)
    assert statuses == {"delivered": len(rows)}, statuses
    keys = {row.idempotency_key for row in rows}
    assert set(accepted) == keys, "a delivered notification never reached the receiver"
    assert all(len(variants) == 1 for variants in bodies.values()), (
        "a re-sent notification differed from the first send"
    )
    duplicates = sum(count - 1 for count in accepted.values())
    record_property("sigkill_trials", trial)
    record_property("sigkill_kills", kills)
    record_property("notifications", len(rows))
    record_property("duplicate_deliveries_same_webhook_id", duplicates)
    print(
        f"\n{trial} trials ({kills} killed, {completed} finished; kill window "
        f"{window * 1000:.0f} ms), {len(rows)} notifications, "
        f"{duplicates} re-sent with the same webhook-id, final run {final.counts}, "
        f"{elapsed:.1f} s"
    )
    assert kills >= MIN_KILLS, "too few trials were killed mid-run to mean anything"
    # A kill can leave at most two small batches (<= 5 rows each) sent but not recorded.
    assert duplicates <= kills * 10
    engine.dispose()


def test_two_concurrent_dispatchers_never_send_one_row_twice(database_url, record_property):
    settings = delivery_settings(database_url, claim_timeout_seconds=600.0, batch_size=10)
    engine = migrated(settings)
    seed_areas(engine)
    with WebhookReceiver(SECRET) as receiver:
        receiver.responder = lambda _id: time.sleep(0.001) or None  # type: ignore[func-returns-value]
        expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
        alert_id = make_alert(engine)
        now = utcnow()
        for _ in range(300):
            enqueue(engine, expert_id, channel_id, [alert_id], created_at=now)
        processes = [_run(settings, 10, f"racer-{n}") for n in range(2)]
        for process in processes:
            process.join(timeout=60)
            assert process.exitcode == 0
        accepted = Counter(receiver.ids())
        with Session(engine) as session:
            rows = session.exec(select(Notification)).all()
    assert len(accepted) == 300 and max(accepted.values()) == 1, "a row was sent twice"
    assert all(row.status == "delivered" and row.attempts == 1 for row in rows)
    record_property("concurrent_duplicates", sum(c - 1 for c in accepted.values()))
    engine.dispose()
