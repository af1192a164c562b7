"""The outbox dispatcher against a real webhook receiver on loopback, on SQLite and PostgreSQL.

Notifications are written here the way the alerts engine writes them (Notification rows with
the payload contract, linked to their alerts); the helpers are shared by the other delivery
tests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from riskwatch.channels.testing import WebhookReceiver
from riskwatch.cli import cli
from riskwatch.config import Settings, load_settings
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import (
    Alert,
    AlertDecision,
    Area,
    AuditEvent,
    Channel,
    Notification,
    NotificationAlert,
)
from riskwatch.dispatch import dispatch_due
from riskwatch.experts import ChannelSpec, add_expert
from riskwatch.timeutil import utcnow

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
T0 = datetime.fromisoformat("2026-05-01T08:00:00+00:00")


# Shared helpers ---------------------------------------------------------------------------
def delivery_settings(database_url: str, **delivery: Any) -> Settings:
    """Settings for delivery tests: loopback allowed, fast retries unless overridden."""
    options = {
        "max_attempts": 5,
        "backoff_base_seconds": 10.0,
        "backoff_max_seconds": 600.0,
        "claim_timeout_seconds": 60.0,
        "batch_size": 50,
        "http_timeout_seconds": 5.0,
    }
    options.update(delivery)
    return load_settings(
        overrides={
            "database_url": database_url,
            "allow_private_addresses": True,
            "delivery": options,
        }
    )


def migrated(settings: Settings) -> Engine:
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    return engine


def seed_areas(engine: Engine) -> None:
    """A country, two regions and three districts (no geometry)."""
    with session_scope(engine) as session:
        if session.get(Area, "XD07") is not None:
            return
        session.add_all(
            [
                Area(pcode="XDM", name="Demoland", admin_level=0, country_iso3="XDM"),
                Area(
                    pcode="XD07",
                    name="Terubo",
                    admin_level=1,
                    parent_pcode="XDM",
                    country_iso3="XDM",
                ),
                Area(
                    pcode="XD02",
                    name="Sabana",
                    admin_level=1,
                    parent_pcode="XDM",
                    country_iso3="XDM",
                ),
                Area(
                    pcode="XD0709",
                    name="Kalomira",
                    admin_level=2,
                    parent_pcode="XD07",
                    country_iso3="XDM",
                ),
                Area(
                    pcode="XD0710",
                    name="Rivoné",
                    admin_level=2,
                    parent_pcode="XD07",
                    country_iso3="XDM",
                ),
                Area(
                    pcode="XD0201",
                    name="Palu",
                    admin_level=2,
                    parent_pcode="XD02",
                    country_iso3="XDM",
                ),
            ]
        )


def make_alert(
    engine: Engine,
    pcode: str = "XD0709",
    severity: str = "critical",
    rule: str = "hotspot_new_or_intensifying",
) -> int:
    with session_scope(engine) as session:
        alert = Alert(
            fingerprint=f"{rule}:{pcode}:{uuid.uuid4().hex[:6]}",
            rule=rule,
            area_pcode=pcode,
            severity=severity,
            country_iso3="XDM",
            group_key="XDM/XD07",
        )
        session.add(alert)
        session.flush()
        assert alert.id is not None
        return alert.id


def alert_item(
    alert_id: int, pcode: str = "XD0709", name: str = "Kalomira", severity: str = "critical"
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "rule": "hotspot_new_or_intensifying",
        "severity": severity,
        "state": "firing",
        "pcode": pcode,
        "name": name,
        "admin_level": 2,
        "admin1_pcode": "XD07",
        "admin1_name": "Terubo",
        "country_iso3": "XDM",
        "country_name": "Demoland",
        "since": "2026-04-30T00:00:00Z",
        "period": "2026-04-30",
        "risk": 7.9,
        "risk_class": "very_high",
        "previous_risk_class": "high",
        "risk_change": 1.3,
        "reliability": 0.84,
        "hotspot_class": "hot_99",
        "temporal_class": "new",
        "surge": True,
        "surge_size": 6400,
        "top_drivers": [
            {"indicator": "idp_share", "label": "IDPs per resident", "contribution": 3.2},
            {"indicator": "abductions", "label": "Abductions", "contribution": 2.1},
        ],
        "data_as_of": "2026-04-30",
        "freshness_days": 1,
        "stale_sources": [],
        "area_url": f"/area/{pcode}",
    }


def payload_for(
    expert_id: int, alert_ids: list[int], language: str = "en", kind: str = "alert"
) -> dict[str, Any]:
    return {
        "kind": kind,
        "language": language,
        "expert_id": expert_id,
        "group": {
            "key": "XDM/XD07",
            "country_iso3": "XDM",
            "country_name": "Demoland",
            "admin1_pcode": "XD07",
            "admin1_name": "Terubo",
        },
        "alerts": [alert_item(a) for a in alert_ids],
    }


def add_webhook_expert(
    engine: Engine,
    settings: Settings,
    url: str,
    *,
    name: str = "Webhook expert",
    secret: str = SECRET,
) -> tuple[int, int]:
    added = add_expert(
        engine, settings, name, channels=[ChannelSpec("webhook", url, secret)], areas=["XD07"]
    )
    return added.expert_id, added.channel_ids[0]


def enqueue(
    engine: Engine,
    expert_id: int,
    channel_id: int,
    alert_ids: list[int],
    *,
    created_at: datetime = T0,
    next_attempt_at: datetime | None = None,
    language: str = "en",
    key: str | None = None,
    kind: str = "alert",
) -> int:
    """One outbox row, as the alerts engine writes it."""
    with session_scope(engine) as session:
        notification = Notification(
            alert_id=alert_ids[0],
            expert_id=expert_id,
            channel_id=channel_id,
            idempotency_key=key or f"alert-{uuid.uuid4().hex}",
            kind=kind,
            group_key="XDM/XD07",
            status="pending",
            attempts=0,
            next_attempt_at=next_attempt_at or created_at,
            created_at=created_at,
            payload=payload_for(expert_id, alert_ids, language, kind),
        )
        session.add(notification)
        session.flush()
        for alert_id in alert_ids:
            session.add(NotificationAlert(notification_id=notification.id, alert_id=alert_id))
        assert notification.id is not None
        return notification.id


def notification(engine: Engine, notification_id: int) -> Notification:
    with Session(engine) as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        return row


def channel(engine: Engine, channel_id: int) -> Channel:
    with Session(engine) as session:
        row = session.get(Channel, channel_id)
        assert row is not None
        return row


# Fixtures -----------------------------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as running:
        yield running


@pytest.fixture
def setup(database_url: str) -> Iterator[tuple[Settings, Engine]]:
    settings = delivery_settings(database_url)
    engine = migrated(settings)
    seed_areas(engine)
    yield settings, engine
    engine.dispose()


# Tests --------------------------------------------------------------------------------------
def test_delivered_with_a_valid_signature_and_bookkeeping(setup, receiver) -> None:
    settings, engine = setup
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    alert_ids = [make_alert(engine), make_alert(engine, "XD0710", "warning")]
    nid = enqueue(engine, expert_id, channel_id, alert_ids)

    result = dispatch_due(engine, settings, now=T0 + timedelta(seconds=1))

    assert result.counts["delivered"] == 1 and result.counts.get("failed", 0) == 0
    assert len(receiver.received) == 1
    received = receiver.received[0]
    assert received.valid_signature, "the receiver could not verify the signature"
    row = notification(engine, nid)
    assert received.webhook_id == row.idempotency_key
    assert row.status == "delivered" and row.delivered_at is not None and row.attempts == 1
    assert row.claimed_by is None
    body = received.json()
    assert body["type"] == "riskwatch.alert"
    assert body["data"]["payload"]["alerts"][0]["pcode"] in ("XD0709", "XD0710")
    assert "/ack/" in body["data"]["ack_url"]
    assert "Kalomira (XD0709)" in body["data"]["text"]
    health = channel(engine, channel_id)
    assert health.healthy and health.last_success_at is not None
    assert health.consecutive_failures == 0
    with Session(engine) as session:
        decisions = session.exec(
            select(AlertDecision).where(AlertDecision.notification_id == nid)
        ).all()
    assert sorted((d.alert_id, d.decision) for d in decisions) == sorted(
        (a, "delivered") for a in alert_ids
    )
    # Nothing is due any more: a second run sends nothing.
    again = dispatch_due(engine, settings, now=T0 + timedelta(minutes=5))
    assert again.counts.get("claimed", 0) == 0 and len(receiver.received) == 1


def test_not_due_before_next_attempt_at(setup, receiver) -> None:
    settings, engine = setup
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    nid = enqueue(
        engine,
        expert_id,
        channel_id,
        [make_alert(engine)],
        next_attempt_at=T0 + timedelta(minutes=2),
    )  # group wait not over
    assert dispatch_due(engine, settings, now=T0).counts.get("claimed", 0) == 0
    assert receiver.received == [] and notification(engine, nid).status == "pending"
    assert dispatch_due(engine, settings, now=T0 + timedelta(minutes=2)).counts["delivered"] == 1


def test_503_for_a_while_then_delivered_with_the_same_webhook_id_and_body(setup, receiver):
    settings, engine = setup
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    nid = enqueue(engine, expert_id, channel_id, [make_alert(engine)])
    receiver.fail_next(3, 503)

    now = T0
    delays = []
    for _ in range(3):
        result = dispatch_due(engine, settings, now=now)
        assert result.counts == {"claimed": 1, "retrying": 1}
        row = notification(engine, nid)
        assert row.status == "retrying" and "503" in (row.last_error or "")
        delays.append((row.next_attempt_at - now).total_seconds())
        # Not due before its backoff ends.
        assert dispatch_due(engine, settings, now=now).counts.get("claimed", 0) == 0
        now = row.next_attempt_at
    result = dispatch_due(engine, settings, now=now)
    assert result.counts["delivered"] == 1

    row = notification(engine, nid)
    assert row.status == "delivered" and row.attempts == 4
    assert [r.answered for r in receiver.received] == [503, 503, 503, 200]
    assert {r.webhook_id for r in receiver.received} == {row.idempotency_key}
    assert len({r.body for r in receiver.received}) == 1, "bodies differ between retries"
    assert all(r.valid_signature for r in receiver.received)
    # Exponential backoff with jitter in [0.5, 1] x base * 2^(n-1), base 10 s.
    for attempt, delay in enumerate(delays, start=1):
        assert 10 * 2 ** (attempt - 1) * 0.5 <= delay <= 10 * 2 ** (attempt - 1)
    health = channel(engine, channel_id)
    assert health.healthy and health.consecutive_failures == 0
    assert health.last_error_at is not None and health.last_success_at is not None


def test_retry_after_is_respected(setup) -> None:
    settings, engine = setup
    with WebhookReceiver(SECRET, retry_after=120) as slow:
        expert_id, channel_id = add_webhook_expert(engine, settings, slow.url)
        nid = enqueue(engine, expert_id, channel_id, [make_alert(engine)])
        slow.fail_next(1, 429)
        dispatch_due(engine, settings, now=T0)
    row = notification(engine, nid)
    assert row.status == "retrying"
    assert (row.next_attempt_at - T0).total_seconds() >= 120


def test_410_gone_disables_the_channel_and_later_notifications_are_not_sent(
    setup, receiver
) -> None:
    settings, engine = setup
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    first = enqueue(engine, expert_id, channel_id, [make_alert(engine)])
    receiver.always(410)
    result = dispatch_due(engine, settings, now=T0)
    assert result.counts["failed"] == 1 and result.counts["channel_disabled"] == 1
    row = notification(engine, first)
    assert row.status == "failed" and row.attempts == 1 and "410" in (row.last_error or "")
    health = channel(engine, channel_id)
    assert not health.healthy and health.disabled_at is not None
    assert "410" in (health.last_error or "") and health.last_error_at is not None
    with Session(engine) as session:  # the health problem is raised for people to act on
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "channel_disabled")
        ).one()
    assert event.object_id == str(channel_id) and "410" in event.detail["error"]
    assert SECRET not in str(event.detail)
    listing = CliRunner().invoke(
        cli, ["experts", "list"], env={"RISKWATCH_DATABASE_URL": settings.database_url}
    )
    assert listing.exit_code == 0, listing.output
    assert "DISABLED since" in listing.output and "410" in listing.output

    receiver.always(None)
    second = enqueue(engine, expert_id, channel_id, [make_alert(engine)])
    result = dispatch_due(engine, settings, now=T0 + timedelta(minutes=1))
    assert result.counts["failed"] == 1
    assert len(receiver.received) == 1, "a disabled channel must not be sent to"
    assert "disabled" in (notification(engine, second).last_error or "")
    with Session(engine) as session:
        failed = session.exec(
            select(AlertDecision).where(AlertDecision.decision == "delivery_failed")
        ).all()
    assert len(failed) == 2


def test_400_fails_the_notification_without_disabling_the_channel(setup, receiver) -> None:
    settings, engine = setup
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    nid = enqueue(engine, expert_id, channel_id, [make_alert(engine)])
    receiver.fail_next(1, 400)
    dispatch_due(engine, settings, now=T0)
    assert notification(engine, nid).status == "failed"
    health = channel(engine, channel_id)
    assert health.disabled_at is None and not health.healthy


def test_gives_up_after_max_attempts(database_url: str, receiver: WebhookReceiver) -> None:
    settings = delivery_settings(database_url, max_attempts=3, backoff_base_seconds=0.0)
    engine = migrated(settings)
    seed_areas(engine)
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    nid = enqueue(engine, expert_id, channel_id, [make_alert(engine)])
    receiver.always(500)
    result = dispatch_due(engine, settings, now=T0)  # zero backoff: retried in the same run
    assert result.counts == {"claimed": 3, "retrying": 2, "failed": 1}
    row = notification(engine, nid)
    assert row.status == "failed" and row.attempts == 3 and "gave up" in (row.last_error or "")
    assert len(receiver.received) == 3
    assert not channel(engine, channel_id).healthy
    assert channel(engine, channel_id).disabled_at is None  # transient: not disabled
    engine.dispose()


def test_connection_refused_and_timeouts_are_transient(setup) -> None:
    settings, engine = setup
    closed = WebhookReceiver(SECRET)
    url = closed.url  # bound but never started: connections are not answered
    closed._server.server_close()
    expert_id, channel_id = add_webhook_expert(engine, settings, url)
    nid = enqueue(engine, expert_id, channel_id, [make_alert(engine)])
    result = dispatch_due(engine, settings, now=T0)
    assert result.counts == {"claimed": 1, "retrying": 1}
    assert "cannot reach" in (notification(engine, nid).last_error or "")
    assert channel(engine, channel_id).disabled_at is None


def test_dry_run_sends_nothing_and_shows_what_would_be_sent(setup, receiver) -> None:
    settings, engine = setup
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    nid = enqueue(engine, expert_id, channel_id, [make_alert(engine)], language="fr")
    result = dispatch_due(engine, settings, now=T0, dry_run=True)
    assert receiver.received == []
    row = notification(engine, nid)
    assert row.status == "pending" and row.attempts == 0 and row.claimed_by is None
    assert result.counts == {"would_send": 1}
    planned = result.planned[0]
    assert planned.notification_id == nid and planned.channel_kind == "webhook"
    assert "nouveau foyer" in planned.subject and planned.language == "fr"
    assert SECRET not in json.dumps(planned.__dict__, default=str)
    assert planned.target.startswith("http://127.0.0.1:") and "/hook" not in planned.target


def test_a_dead_dispatchers_claim_is_taken_over_after_the_claim_timeout(setup, receiver):
    settings, engine = setup
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    nid = enqueue(engine, expert_id, channel_id, [make_alert(engine)])
    with session_scope(engine) as session:  # a dispatcher claimed it at T0 and died
        row = session.get(Notification, nid)
        row.status, row.claimed_by, row.claimed_at, row.attempts = "claimed", "dead", T0, 1
        session.add(row)
    assert dispatch_due(engine, settings, now=T0 + timedelta(seconds=30)).counts == {}
    result = dispatch_due(engine, settings, now=T0 + timedelta(seconds=61))
    assert result.counts["delivered"] == 1
    assert notification(engine, nid).attempts == 2


def test_limit_caps_the_rows_claimed(setup, receiver) -> None:
    settings, engine = setup
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    ids = [enqueue(engine, expert_id, channel_id, [make_alert(engine)]) for _ in range(5)]
    assert dispatch_due(engine, settings, now=T0, limit=2).counts["delivered"] == 2
    assert dispatch_due(engine, settings, now=T0).counts["delivered"] == 3
    assert sorted(receiver.ids()) == sorted(notification(engine, i).idempotency_key for i in ids)


def test_a_removed_expert_gets_nothing(setup, receiver) -> None:
    from riskwatch.experts import remove_expert

    settings, engine = setup
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    nid = enqueue(engine, expert_id, channel_id, [make_alert(engine)])
    remove_expert(engine, settings, expert_id)
    dispatch_due(engine, settings, now=T0)
    assert receiver.received == []
    assert notification(engine, nid).status == "failed"


def test_delivered_at_uses_the_clock_when_now_is_not_given(setup, receiver) -> None:
    settings, engine = setup
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    nid = enqueue(engine, expert_id, channel_id, [make_alert(engine)], created_at=utcnow())
    before = utcnow()
    dispatch_due(engine, settings)
    row = notification(engine, nid)
    assert row.delivered_at is not None and row.delivered_at >= before - timedelta(seconds=1)


def test_a_renewed_claim_keeps_only_the_rows_still_held(setup, receiver) -> None:
    from riskwatch.dispatch import _claim, _renew_claim

    settings, engine = setup
    expert_id, channel_id = add_webhook_expert(engine, settings, receiver.url)
    ids = [enqueue(engine, expert_id, channel_id, [make_alert(engine)]) for _ in range(3)]
    claimed = _claim(engine, "worker-a#1", T0, 10, timedelta(seconds=60))
    assert sorted(r.id for r in claimed) == ids
    # Another dispatcher took one over after worker A's claim timed out.
    taken = _claim(engine, "worker-b#1", T0 + timedelta(seconds=61), 1, timedelta(seconds=60))
    assert [r.id for r in taken] == [ids[0]]
    held = _renew_claim(engine, "worker-a#1", T0 + timedelta(seconds=62))
    assert held == set(ids[1:])
    assert notification(engine, ids[1]).claimed_at == T0 + timedelta(seconds=62)
