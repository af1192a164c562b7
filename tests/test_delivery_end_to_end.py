"""End to end: the demo scenario -> alerts -> outbox -> real SMTP and webhook servers on loopback.

The demo (module-scoped, both backends) ingests the synthetic country, scores it and runs its
own cycle for the demo experts (capture channels). This module then adds experts with real
channels: one deployed to the surge region XD07 with e-mail (aiosmtpd) and a webhook, one
deployed elsewhere, and their focal point. It checks that the surge expert gets exactly one
grouped notification per channel with a valid signature, that a second evaluation sends
nothing, that the other expert gets nothing, that an unacknowledged critical alert escalates to
the focal point once, and that the message's signed link acknowledges.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from riskwatch.ack_tokens import AckTokenInvalid, verify_ack_token
from riskwatch.alerts.ack import acknowledge
from riskwatch.alerts.escalation import escalate_unacknowledged
from riskwatch.alerts.evaluate import evaluate_alerts
from riskwatch.channels.testing import SmtpSink, WebhookReceiver
from riskwatch.config import Settings, load_settings
from riskwatch.db.engine import make_engine
from riskwatch.db.models import Acknowledgement, Notification
from riskwatch.demo_setup import run_demo
from riskwatch.dispatch import dispatch_due
from riskwatch.experts import ChannelSpec, add_expert
from riskwatch.timeutil import utcnow

pytestmark = pytest.mark.db

REPO_CATALOG = Path(__file__).resolve().parents[1] / "indicators"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GROUP_WAIT = timedelta(seconds=31)  # config/alerts.toml: group_wait_seconds = 30


@dataclass
class World:
    settings: Settings
    engine: Engine
    sink: SmtpSink
    hooks: WebhookReceiver
    surge_expert: int
    other_expert: int
    focal_point: int
    evaluated_at: datetime
    evaluation: object
    dispatch: object

    def notifications(self, expert_id: int) -> list[Notification]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(Notification)
                    .where(Notification.expert_id == expert_id)
                    .order_by(Notification.id)
                ).all()
            )

    def by_path(self, path: str) -> list:  # noqa: ANN201
        return [r for r in self.hooks.received if r.path == path]


@pytest.fixture(scope="module")
def world(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("delivery-e2e")
    with SmtpSink() as sink, WebhookReceiver(SECRET) as hooks:
        settings = load_settings(
            overrides={
                "database_url": module_database_url,
                "data_dir": str(data_dir),
                "indicators_dir": str(REPO_CATALOG),
                "allow_private_addresses": True,
                "smtp": {
                    "host": "127.0.0.1",
                    "port": sink.port,
                    "security": "none",
                    "from_address": "alerts@riskwatch.example",
                },
            },
            cwd=data_dir,
        )
        engine = make_engine(module_database_url)
        run_demo(settings, engine, module_database_url, console=Console(quiet=True))
        base = hooks.url.rsplit("/", 1)[0]
        focal = add_expert(
            engine,
            settings,
            "E2E focal point",
            channels=[ChannelSpec("webhook", f"{base}/focal", SECRET)],
        )
        surge = add_expert(
            engine,
            settings,
            "E2E surge expert",
            channels=[
                ChannelSpec("email", "surge.expert@agency.example"),
                ChannelSpec("webhook", f"{base}/surge", SECRET),
            ],
            areas=["XD07"],
            focal_point_id=focal.expert_id,
        )
        other = add_expert(
            engine,
            settings,
            "E2E expert elsewhere",
            channels=[ChannelSpec("webhook", f"{base}/elsewhere", SECRET)],
            areas=["XD02"],
            focal_point_id=focal.expert_id,
        )
        now = utcnow()
        evaluation = evaluate_alerts(engine, settings, now=now)
        dispatch = dispatch_due(engine, settings, now=now + GROUP_WAIT)
        yield World(
            settings,
            engine,
            sink,
            hooks,
            surge.expert_id,
            other.expert_id,
            focal.expert_id,
            now,
            evaluation,
            dispatch,
        )
        engine.dispose()


def test_surge_expert_gets_one_grouped_notification_per_channel(world: World) -> None:
    rows = world.notifications(world.surge_expert)
    assert len(rows) == 2, [(r.channel_id, r.group_key) for r in rows]
    assert {r.status for r in rows} == {"delivered"}
    assert {r.group_key for r in rows} == {"XDM/XD07"}
    hooks = world.by_path("/surge")
    assert len(hooks) == 1 and hooks[0].valid_signature
    webhook_row = next(r for r in rows if r.idempotency_key == hooks[0].webhook_id)
    body = hooks[0].json()
    alerts = body["data"]["payload"]["alerts"]
    assert alerts and {a["admin1_pcode"] for a in alerts} == {"XD07"}
    assert webhook_row.payload["alerts"] == alerts
    mails = [m for m in world.sink.messages if m.recipients == ("surge.expert@agency.example",)]
    assert len(mails) == 1
    message = mails[0].message()
    assert "XD07" in message.get_body(preferencelist=("plain",)).get_content()
    assert any(p.get_content_type() == "image/png" for p in message.walk()), "no static map"
    # Never site coordinates or personal data in what left the system.
    for text in (hooks[0].body.decode(), mails[0].content.decode("utf-8", "replace")):
        assert "latitude" not in text and "longitude" not in text


def test_expert_deployed_elsewhere_gets_nothing(world: World) -> None:
    assert world.notifications(world.other_expert) == []
    assert world.by_path("/elsewhere") == []


def test_evaluating_and_dispatching_again_sends_nothing(world: World) -> None:
    before_hooks, before_mails = len(world.hooks.received), len(world.sink.messages)
    later = world.evaluated_at + timedelta(minutes=5)
    again = evaluate_alerts(world.engine, world.settings, now=later)
    assert again.notification_ids == []
    result = dispatch_due(world.engine, world.settings, now=later + GROUP_WAIT)
    assert result.counts.get("claimed", 0) == 0
    assert len(world.hooks.received) == before_hooks and len(world.sink.messages) == before_mails


def test_unacknowledged_critical_alert_escalates_to_the_focal_point_once(world: World) -> None:
    surge_alerts = world.notifications(world.surge_expert)[0].payload["alerts"]
    critical = {a["alert_id"] for a in surge_alerts if a["severity"] == "critical"}
    assert critical, "the demo's surge region should raise a critical alert"
    late = world.evaluated_at + timedelta(hours=5)  # escalate_after_minutes = 240
    counts = escalate_unacknowledged(world.engine, world.settings, now=late)
    assert counts["escalated"] >= 1
    dispatch_due(world.engine, world.settings, now=late + GROUP_WAIT)
    escalations = world.by_path("/focal")
    assert len(escalations) == 1 and escalations[0].valid_signature
    payload = escalations[0].json()["data"]["payload"]
    assert payload["kind"] == "escalation" and payload["expert_id"] == world.focal_point
    assert {a["alert_id"] for a in payload["alerts"]} <= critical
    assert (
        escalations[0]
        .json()["data"]["subject"]
        .startswith("[riskwatch] Escalation: not acknowledged")
    )
    # Once per episode.
    escalate_unacknowledged(world.engine, world.settings, now=late + timedelta(hours=5))
    dispatch_due(world.engine, world.settings, now=late + timedelta(hours=6))
    assert len(world.by_path("/focal")) == 1


def test_the_signed_link_in_the_message_acknowledges(world: World) -> None:
    hook = world.by_path("/surge")[0]
    link = hook.json()["data"]["ack_url"]
    assert link.startswith("http://127.0.0.1:8050/ack/")
    token = link.rsplit("/", 1)[1]
    claim = verify_ack_token(world.settings, token, now=world.evaluated_at)
    assert claim.expert_id == world.surge_expert
    assert set(claim.alert_ids) == {a["alert_id"] for a in hook.json()["data"]["payload"]["alerts"]}
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(AckTokenInvalid):
        verify_ack_token(world.settings, forged, now=world.evaluated_at)
    for alert_id in claim.alert_ids:
        acknowledge(
            world.engine, alert_id, expert_id=claim.expert_id, feedback="useful", via="link"
        )
    with Session(world.engine) as session:
        acks = session.exec(
            select(Acknowledgement).where(Acknowledgement.expert_id == world.surge_expert)
        ).all()
    assert {a.alert_id for a in acks} == set(claim.alert_ids)
    assert {a.feedback for a in acks} == {"useful"}
