"""Demo experts: capture channels only, deployed to the surge region and elsewhere, idempotent."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from riskwatch.channels.capture import capture_dir
from riskwatch.db.models import Channel, Deployment, Expert
from riskwatch.demo_experts import SURGE_ADMIN1, create_demo_experts
from riskwatch.dispatch import dispatch_due
from riskwatch.errors import RiskwatchError
from tests.test_dispatch import (
    T0,
    delivery_settings,
    enqueue,
    make_alert,
    migrated,
    notification,
    seed_areas,
)

pytestmark = pytest.mark.db


def test_demo_experts_are_created_once_with_capture_channels(database_url: str) -> None:
    settings = delivery_settings(database_url)
    engine = migrated(settings)
    with pytest.raises(RiskwatchError):  # no demo boundaries yet
        create_demo_experts(engine, settings)
    seed_areas(engine)
    surge, other, focal = create_demo_experts(engine, settings)
    assert create_demo_experts(engine, settings) == [surge, other, focal]
    with Session(engine) as session:
        experts = {e.id: e for e in session.exec(select(Expert)).all()}
        channels = session.exec(select(Channel)).all()
        deployments = {d.expert_id: d.area_pcode for d in session.exec(select(Deployment)).all()}
    assert len(experts) == 3 and {c.kind for c in channels} == {"capture"}
    assert experts[surge].language == "fr" and deployments[surge] == SURGE_ADMIN1
    assert experts[other].language == "en" and deployments[other] not in ("XD07", "XD08")
    assert focal not in deployments
    assert experts[surge].focal_point_id == focal == experts[other].focal_point_id

    # A message to the surge expert lands in the demo outbox, in French, and nowhere else.
    channel_id = next(c.id for c in channels if c.expert_id == surge)
    nid = enqueue(engine, surge, channel_id, [make_alert(engine)], language="fr")
    assert dispatch_due(engine, settings, now=T0).counts["delivered"] == 1
    key = notification(engine, nid).idempotency_key
    captured = json.loads((capture_dir(settings) / f"{key}.json").read_text())
    assert captured["language"] == "fr" and "nouveau foyer" in captured["subject"]
    assert (capture_dir(settings) / f"{key}.html").read_text().startswith("<!DOCTYPE html>")
    engine.dispose()
