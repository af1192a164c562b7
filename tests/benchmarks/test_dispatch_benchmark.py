"""Benchmark: 10,000 notifications through the dispatcher vs a bare loop of signed POSTs.

Run explicitly (benchmarks are not collected by default):

    .venv/bin/pytest tests/benchmarks/test_dispatch_benchmark.py -q -s

Both sides POST to the same webhook receiver on loopback, running in its own process as a real
endpoint would (HTTP/1.1 keep-alive; it verifies every Standard Webhooks signature).
The bare loop serialises each payload to JSON, signs it
and POSTs it on one kept-alive connection: the least any webhook sender must do. The
dispatcher does everything it does in production: claims rows with conditional UPDATEs,
decrypts the channel, renders the message (text, HTML, short form) and the signed ack link,
signs, POSTs, and records the outcome, the channel health and the alert decisions in one
transaction per batch. Three rounds alternate the bare loop and the dispatcher (10,000
fresh notifications each), with one more bare loop at the end; the medians are compared.
Target: the dispatcher within 2x of the baseline.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import multiprocessing
import statistics
import time
import uuid
from urllib.parse import urlsplit

from sqlmodel import Session, select

from riskwatch.channels.testing import WebhookReceiver
from riskwatch.channels.webhook import sign
from riskwatch.db.models import Notification, NotificationAlert
from riskwatch.dispatch import dispatch_due
from tests.test_dispatch import (
    SECRET,
    T0,
    add_webhook_expert,
    delivery_settings,
    make_alert,
    migrated,
    payload_for,
    seed_areas,
)

NOTIFICATIONS = 10_000
ALERTS = 50
BATCH_SIZE = 500
MAX_RATIO = 2.0
ROUNDS = 3


def bare_signed_posts(url: str, payloads: list[dict]) -> float:
    """Seconds to JSON-encode, sign and POST every payload on one keep-alive connection."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    start = time.perf_counter()
    for index, payload in enumerate(payloads):
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
        message_id = f"bare-{index}"
        timestamp = int(time.time())
        connection.request(
            "POST",
            parts.path,
            body=body,
            headers={
                "Content-Type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(SECRET, message_id, timestamp, body),
            },
        )
        response = connection.getresponse()
        response.read()
        assert response.status == 200
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


def _serve(queue: multiprocessing.Queue) -> None:
    """The receiver's process: serve until terminated."""
    receiver = WebhookReceiver(SECRET).start()
    queue.put(receiver.url)
    while True:
        time.sleep(3600)


def _get(url: str, path: str) -> dict:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("GET", path)
    document = json.loads(connection.getresponse().read())
    connection.close()
    return document


def _enqueue(
    engine,
    expert_id: int,
    channel_id: int,
    alert_ids: list[int],  # noqa: ANN001
    payloads: list[dict],
) -> None:
    rows = [
        {
            "alert_id": alert_ids[i % ALERTS],
            "expert_id": expert_id,
            "channel_id": channel_id,
            "idempotency_key": "alert-"
            + hashlib.sha256(f"{i}{uuid.uuid4()}".encode()).hexdigest()[:48],
            "kind": "alert",
            "group_key": "XDM/XD07",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": T0,
            "created_at": T0,
            "payload": payloads[i],
        }
        for i in range(NOTIFICATIONS)
    ]
    with engine.begin() as connection:
        connection.execute(Notification.__table__.insert(), rows)
        ids = connection.execute(
            select(Notification.id, Notification.alert_id).where(Notification.status == "pending")
        ).all()
        connection.execute(
            NotificationAlert.__table__.insert(),
            [{"notification_id": n, "alert_id": a} for n, a in ids],
        )


def test_dispatch_within_2x_of_bare_signed_posts(database_url: str) -> None:
    settings = delivery_settings(database_url, batch_size=BATCH_SIZE)
    engine = migrated(settings)
    seed_areas(engine)
    queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(queue,))
    server.start()
    bare: list[float] = []
    dispatched: list[float] = []
    try:
        url = queue.get(timeout=30)
        expert_id, channel_id = add_webhook_expert(engine, settings, url)
        alert_ids = [make_alert(engine) for _ in range(ALERTS)]
        payloads = [payload_for(expert_id, [alert_ids[i % ALERTS]]) for i in range(NOTIFICATIONS)]
        # Rounds alternate the bare loop and the dispatcher (10,000 fresh notifications each
        # round); medians, because other processes share the machine.
        for _ in range(ROUNDS):
            _enqueue(engine, expert_id, channel_id, alert_ids, payloads)
            time.sleep(1.0)  # let the database settle after the bulk insert
            bare.append(bare_signed_posts(url, payloads))
            _get(url, "/_clear")
            start = time.perf_counter()
            result = dispatch_due(engine, settings, now=T0)
            dispatched.append(time.perf_counter() - start)
            stats = _get(url, "/_stats")
            _get(url, "/_clear")
            assert result.counts["delivered"] == NOTIFICATIONS, result.counts
            assert len(set(stats["accepted_ids"])) == NOTIFICATIONS
            assert stats["valid_signatures"] == NOTIFICATIONS
        bare.append(bare_signed_posts(url, payloads))
    finally:
        server.terminate()
        server.join(timeout=10)

    with Session(engine) as session:
        delivered = len(
            session.exec(select(Notification.id).where(Notification.status == "delivered")).all()
        )
    engine.dispose()
    assert delivered == NOTIFICATIONS * ROUNDS
    baseline = statistics.median(bare)
    dispatch = statistics.median(dispatched)
    ratio = dispatch / baseline
    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    print(
        f"\n[{backend}] dispatch of {NOTIFICATIONS:,} notifications: median {dispatch:.2f} s "
        f"({NOTIFICATIONS / dispatch:,.0f}/s; rounds {', '.join(f'{d:.2f}' for d in dispatched)});"
        f" bare signed POSTs median {baseline:.2f} s ({NOTIFICATIONS / baseline:,.0f}/s; "
        f"{', '.join(f'{b:.2f}' for b in bare)}); ratio {ratio:.2f}x"
    )
    assert ratio <= MAX_RATIO, f"dispatch is {ratio:.2f}x the bare loop (target {MAX_RATIO}x)"
