"""The alert engine on the demo scenario (both backends): the planted surge in XD07 reaches the
expert deployed there in one grouped message per channel, and nobody else."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.alerts.evaluate import AlertEvaluation, evaluate_alerts
from riskwatch.config import Settings
from riskwatch.db.models import Alert, Area, Notification
from riskwatch.timeutil import utcnow
from tests.demo_store import build_demo_store
from tests.test_alerts_engine import add_capture_expert

pytestmark = pytest.mark.db


@dataclass
class Demo:
    engine: Engine
    settings: Settings
    surge_expert: int
    other_expert: int
    other_area: str
    first: AlertEvaluation


def _expert(session: Session, name: str, area: str) -> int:
    return add_capture_expert(session, name, [area], starts_on=date.today() - timedelta(days=1))


@pytest.fixture(scope="module")
def demo_alerts(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    data_dir = tmp_path_factory.mktemp("demo-alerts")
    settings, engine, _ = build_demo_store(module_database_url, data_dir, score=False)
    # The demo may bring its own experts (demo_experts); these two are this test's own.
    with Session(engine) as session:
        surge = _expert(session, "surge-expert", "XD07")
        firing_areas = {
            a.area_pcode for a in session.exec(select(Alert).where(Alert.state == "firing")).all()
        }
        session.commit()
    first = evaluate_alerts(engine, settings)
    with Session(engine) as session:
        firing = {
            a.area_pcode for a in session.exec(select(Alert).where(Alert.state == "firing")).all()
        } | firing_areas
        # An admin1 area with no firing alert in it or its districts (the far side of the map).
        quiet = next(
            area.pcode
            for area in session.exec(
                select(Area).where(Area.admin_level == 1).order_by(col(Area.pcode))
            ).all()
            if not any(p.startswith(area.pcode) for p in firing)
        )
        other = _expert(session, "other-expert", quiet)
        session.commit()
    yield Demo(engine, settings, surge, other, quiet, first)
    engine.dispose()


def _notifications(engine: Engine, expert_id: int) -> list[Notification]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Notification)
                .where(Notification.expert_id == expert_id)
                .order_by(col(Notification.id))
            ).all()
        )


def test_the_surge_expert_gets_one_grouped_notification_per_channel(demo_alerts: Demo) -> None:
    sent = _notifications(demo_alerts.engine, demo_alerts.surge_expert)
    assert len(sent) == 2
    assert len({n.channel_id for n in sent}) == 2
    assert {n.group_key for n in sent} == {"XDM/XD07"}
    payload: dict[str, Any] = sent[0].payload or {}
    assert payload == sent[1].payload
    rules = {(a["rule"], a["pcode"]) for a in payload["alerts"]}
    # The admin1 surge and the admin1 risk alert; their districts' alerts of the same rule
    # family are inhibited for this expert (who gets the admin1 ones).
    assert ("displacement_surge", "XD07") in rules
    assert ("risk_class_rising", "XD07") in rules
    assert not any(rule == "displacement_surge" and pcode != "XD07" for rule, pcode in rules)
    surge = next(a for a in payload["alerts"] if a["rule"] == "displacement_surge")
    assert surge["surge"] is True and surge["surge_size"] > 0
    assert surge["area_url"].endswith("/area/XD07")
    assert all(a["admin1_pcode"] == "XD07" for a in payload["alerts"])
    assert demo_alerts.first.counts["notifications"] == 2


def test_an_expert_deployed_elsewhere_gets_nothing(demo_alerts: Demo) -> None:
    evaluate_alerts(demo_alerts.engine, demo_alerts.settings, now=utcnow() + timedelta(minutes=1))
    assert _notifications(demo_alerts.engine, demo_alerts.other_expert) == []


def test_a_second_evaluation_with_no_new_data_creates_nothing(demo_alerts: Demo) -> None:
    with Session(demo_alerts.engine) as session:
        before = len(session.exec(select(Notification.id)).all())
    again = evaluate_alerts(
        demo_alerts.engine, demo_alerts.settings, now=utcnow() + timedelta(minutes=2)
    )
    assert again.notification_ids == [] and again.counts["fired"] == 0
    with Session(demo_alerts.engine) as session:
        assert len(session.exec(select(Notification.id)).all()) == before
