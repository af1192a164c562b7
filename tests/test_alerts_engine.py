"""The alert engine on small synthetic stores (both backends): lifecycle, routing, outbox.

Areas: country TST; admin1 T1 (districts T101, T102) and T2 (district T201). Score runs are
written directly with the models (two periods each: previous and latest), so each test says
exactly which scores, hotspots and surges the engine sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from riskwatch.alerts import AlertNotFound, AlertRefused
from riskwatch.alerts.ack import acknowledge
from riskwatch.alerts.digest import queue_daily_digest
from riskwatch.alerts.escalation import escalate_unacknowledged
from riskwatch.alerts.evaluate import evaluate_alerts
from riskwatch.alerts.explain import PAYLOAD_ALERT_KEYS
from riskwatch.alerts.queries import alert_detail, list_alerts
from riskwatch.alerts.review import approve
from riskwatch.alerts.rules import AlertRules, parse_rules
from riskwatch.alerts.silences import create_silence
from riskwatch.config import ConfigError, Settings, load_settings
from riskwatch.db.engine import make_engine
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import (
    Acknowledgement,
    Alert,
    AlertDecision,
    Area,
    AreaScore,
    AuditEvent,
    Channel,
    Deployment,
    Expert,
    Hotspot,
    IngestBatch,
    Meta,
    Notification,
    NotificationAlert,
    Observation,
    ScoreRun,
    Silence,
    Source,
)
from riskwatch.errors import UsageError

pytestmark = pytest.mark.db

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AREAS = [
    ("TST", "Testland", 0, None),
    ("T1", "North", 1, "TST"),
    ("T2", "South", 1, "TST"),
    ("T101", "North One", 2, "T1"),
    ("T102", "North Two", 2, "T1"),
    ("T201", "South One", 2, "T2"),
]
CLASS_OF = [(6.5, "very_high"), (5.0, "high"), (3.5, "medium"), (2.0, "low"), (0.0, "very_low")]


def risk_class(risk: float) -> str:
    return next(name for bound, name in CLASS_OF if risk >= bound)


def rules(**overrides: Any) -> AlertRules:
    """The packaged rules with some lifecycle/review/digest/rule keys replaced."""
    data: dict[str, Any] = {
        "lifecycle": {
            "group_wait_seconds": 30,
            "repeat_interval_hours": 24,
            "cooldown_hours": 72,
            "resolve_after_evaluations": 2,
            "escalate_after_minutes": 240,
        },
        "digest": {"enabled": False},
        "review": {"countries": []},
        "rules": {
            "hotspot_new_or_intensifying": {"severity": "warning"},
            "risk_class_rising": {
                "severity_by_class": {"high": "warning", "very_high": "critical"},
                "refire_margin": 0.5,
            },
            "displacement_surge": {"min_vulnerability": 5.0},
            "stale_data": {"severity": "info"},
        },
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value}
    return parse_rules(data, "test")


def add_capture_expert(
    session: Session,
    name: str,
    areas: Iterable[str],
    *,
    channels: int = 2,
    focal: int | None = None,
    language: str = "en",
    starts_on: date = date(2026, 1, 1),
) -> int:
    """An expert with `channels` capture channels, deployed to `areas` from `starts_on`
    (flushed, not committed)."""
    expert = Expert(name=name, language=language, focal_point_id=focal)
    session.add(expert)
    session.flush()
    assert expert.id is not None
    for number in range(channels):
        session.add(
            Channel(
                expert_id=expert.id,
                kind="capture",
                target_encrypted=f"{name}-{number}",
                target_redacted=f"{name}-{number}",
            )
        )
    for pcode in areas:
        session.add(Deployment(expert_id=expert.id, area_pcode=pcode, starts_on=starts_on))
    session.flush()
    return expert.id


@dataclass
class Store:
    engine: Engine
    settings: Settings
    runs: int = 0

    def run(
        self,
        latest: dict[str, float],
        previous: dict[str, float] | None = None,
        *,
        hotspots: dict[str, tuple[str, str]] | None = None,
        surges: dict[str, float] | None = None,
        vulnerability: float = 6.0,
    ) -> int:
        """One succeeded score run with a previous and a latest period."""
        self.runs += 1
        period = date(2026, 1, 31) + timedelta(days=30 * self.runs)
        with Session(self.engine) as session:
            run = ScoreRun(
                profile_hash="p",
                params_hash="q",
                data_as_of=T0,
                status="succeeded",
                started_at=T0,
                finished_at=T0,
            )
            session.add(run)
            session.flush()
            assert run.id is not None
            for when, values in ((period - timedelta(days=30), previous or {}), (period, latest)):
                for pcode, risk in values.items():
                    session.add(
                        AreaScore(
                            run_id=run.id,
                            area_pcode=pcode,
                            period=when,
                            risk=risk,
                            risk_class=risk_class(risk),
                            reliability=0.8,
                            exposure=risk,
                            vulnerability=vulnerability,
                            lack_of_capacity=risk,
                            drivers={"top_drivers": "conflict_events_rate:2.50;idps_share:1.00"},
                        )
                    )
            for pcode in latest:
                hot, temporal = (hotspots or {}).get(pcode, ("not_significant", "none"))
                size = (surges or {}).get(pcode)
                session.add(
                    Hotspot(
                        run_id=run.id,
                        area_pcode=pcode,
                        period=period,
                        variable="risk",
                        gi_z=3.0,
                        p_value=0.01,
                        p_fdr=0.02,
                        hotspot_class=hot,
                        temporal_class=temporal,
                        surge=size is not None,
                        surge_size=size,
                    )
                )
            session.commit()
            return run.id

    def expert(
        self,
        name: str,
        *areas: str,
        channels: int = 2,
        focal: int | None = None,
        language: str = "en",
    ) -> int:
        with Session(self.engine) as session:
            expert_id = add_capture_expert(
                session, name, areas, channels=channels, focal=focal, language=language
            )
            session.commit()
            return expert_id

    def silence(
        self, area: str, ends_in: timedelta, *, author: str = "a", reason: str = "r", **kwargs: Any
    ) -> Any:
        """A silence on `area` created at T0, ending `ends_in` later."""
        return create_silence(
            self.engine, area_pcode=area, ends_at=T0 + ends_in, author=author, reason=reason,
            now=T0, **kwargs,
        )

    def evaluate(
        self, now: datetime = T0, alert_rules: AlertRules | None = None, **kwargs: Any
    ) -> Any:
        return evaluate_alerts(
            self.engine, self.settings, now=now, rules=alert_rules or rules(), **kwargs
        )

    def notifications(self, expert_id: int | None = None) -> list[Notification]:
        with Session(self.engine) as session:
            statement = select(Notification).order_by(col(Notification.id))
            if expert_id is not None:
                statement = statement.where(Notification.expert_id == expert_id)
            return list(session.exec(statement).all())

    def alert(self, fingerprint: str) -> Alert:
        with Session(self.engine) as session:
            alert = session.exec(select(Alert).where(Alert.fingerprint == fingerprint)).one()
            session.expunge(alert)
            return alert

    def decisions(self, alert_id: int) -> list[str]:
        with Session(self.engine) as session:
            return [
                d.decision
                for d in session.exec(
                    select(AlertDecision)
                    .where(AlertDecision.alert_id == alert_id)
                    .order_by(col(AlertDecision.id))
                ).all()
            ]

    def linked(self, notification_id: int) -> list[int]:
        with Session(self.engine) as session:
            return sorted(
                session.exec(
                    select(NotificationAlert.alert_id).where(
                        NotificationAlert.notification_id == notification_id
                    )
                ).all()
            )


def build_store(url: str, tmp_path: Any) -> Store:
    settings = load_settings(
        overrides={
            "database_url": url,
            "data_dir": str(tmp_path / "d"),
            "base_url": "https://rw.example.org",
        },
        cwd=tmp_path,
    )
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        for pcode, name, level, parent in AREAS:
            session.add(
                Area(
                    pcode=pcode,
                    name=name,
                    admin_level=level,
                    parent_pcode=parent,
                    country_iso3="TST",
                )
            )
        session.commit()
    return Store(engine, settings)


@pytest.fixture
def store(database_url: str, tmp_path: Any) -> Iterator[Store]:
    built = build_store(database_url, tmp_path)
    yield built
    built.engine.dispose()


def table_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


# --- rules file ----------------------------------------------------------------------------------
def test_rules_file_repository_and_packaged_copies_are_identical_and_valid() -> None:
    from pathlib import Path

    from riskwatch.config import packaged_path, read_toml

    repo = Path(__file__).resolve().parents[1] / "config" / "alerts.toml"
    packaged = packaged_path("config", "alerts.toml")
    assert repo.read_bytes() == packaged.read_bytes()
    parsed = parse_rules(read_toml(repo), str(repo))
    assert set(parsed.rules) == {
        "hotspot_new_or_intensifying",
        "risk_class_rising",
        "displacement_surge",
        "stale_data",
    }
    assert parsed.rules["risk_class_rising"].severity_by_class["very_high"] == "critical"
    assert parsed.lifecycle.resolve_after_evaluations >= 2


def test_bad_rules_are_named() -> None:
    with pytest.raises(ConfigError, match="rules.nope.kind"):
        parse_rules({"rules": {"nope": {"severity": "warning"}}})
    with pytest.raises(ConfigError, match="severity"):
        parse_rules({"rules": {"stale_data": {"severity": "loud"}}})
    with pytest.raises(ConfigError, match="cooldown_hours"):
        parse_rules({"lifecycle": {"cooldown_hours": -1}})
    with pytest.raises(ConfigError, match="into_classes"):
        parse_rules({"rules": {"risk_class_rising": {"into_classes": ["huge"]}}})
    # A second risk rule under its own id, by kind.
    parsed = parse_rules(
        {"rules": {"very_high_only": {"kind": "risk_class_rising", "into_classes": ["very_high"]}}}
    )
    assert parsed.rules["very_high_only"].kind == "risk_class_rising"


# --- routing, grouping, de-duplication -----------------------------------------------------------
def test_deployed_expert_gets_one_grouped_notification_per_channel_and_nothing_twice(
    store: Store,
) -> None:
    north = store.expert("Amina Expert", "T1", language="fr")
    south = store.expert("south", "T2")
    store.run(
        {"T1": 4.0, "T101": 5.5, "T102": 5.2, "T2": 3.0, "T201": 3.0},
        {"T1": 4.0, "T101": 4.0, "T102": 4.2, "T2": 3.0, "T201": 3.0},
        hotspots={"T101": ("hot_99", "new")},
    )
    result = store.evaluate()
    assert result.counts["fired"] == 3  # two rising districts, one new hotspot
    mine = store.notifications(north)
    assert len(mine) == 2 and store.notifications(south) == []
    assert sorted(result.notification_ids) == sorted(n.id for n in mine)
    assert result.send_after == T0 + timedelta(seconds=30)
    assert {n.channel_id for n in mine} == {c for c in _channels(store, north)}
    assert len({n.idempotency_key for n in mine}) == 2
    for notification in mine:
        assert notification.status == "pending" and notification.group_key == "TST/T1"
        assert notification.next_attempt_at == T0 + timedelta(seconds=30)
        payload = notification.payload or {}
        assert payload["kind"] == "alert" and payload["language"] == "fr"
        assert payload["expert_id"] == north
        # Nothing about people or places finer than an area: no names, no coordinates.
        text = json.dumps(payload).lower()
        for word in ("amina", "latitude", "longitude", "geometry", "coordinates", '"lat'):
            assert word not in text, word
        assert payload["group"] == {
            "key": "TST/T1",
            "country_iso3": "TST",
            "country_name": "Testland",
            "admin1_pcode": "T1",
            "admin1_name": "North",
        }
        assert len(payload["alerts"]) == 3
        assert store.linked(notification.id) == sorted(a["alert_id"] for a in payload["alerts"])
        for item in payload["alerts"]:
            assert tuple(item) == PAYLOAD_ALERT_KEYS
            assert item["area_url"] == f"https://rw.example.org/area/{item['pcode']}"
            assert item["admin1_pcode"] == "T1" and item["country_iso3"] == "TST"
        rising = next(
            a
            for a in payload["alerts"]
            if a["rule"] == "risk_class_rising" and a["pcode"] == "T101"
        )
        assert rising["risk_class"] == "high" and rising["previous_risk_class"] == "medium"
        assert rising["risk_change"] == 1.5 and rising["reliability"] == 0.8
        assert rising["top_drivers"][0] == {
            "indicator": "conflict_events_rate",
            "label": "conflict_events_rate",
            "contribution": 2.5,
        }
        assert rising["period"] == rising["data_as_of"]
    alert = store.alert("risk_class_rising:T101")
    assert alert.state == "firing" and alert.group_key == "TST/T1" and alert.country_iso3 == "TST"
    assert store.decisions(alert.id)[:3] == ["fired", "sent", "grouped"]

    # No new data: nothing new, also hours later (within the repeat interval).
    before = table_counts(store.engine)
    again = store.evaluate(now=T0 + timedelta(hours=1))
    assert again.notification_ids == [] and again.counts["fired"] == 0
    after = table_counts(store.engine)
    assert after["notification"] == before["notification"]
    assert after["alert_decision"] == before["alert_decision"]
    assert after["alert"] == before["alert"]


def _channels(store: Store, expert_id: int) -> list[int]:
    with Session(store.engine) as session:
        return [
            c
            for c in session.exec(select(Channel.id).where(Channel.expert_id == expert_id)).all()
            if c is not None
        ]


def test_no_recipient_unhealthy_channels_and_inactive_deployments(store: Store) -> None:
    past = store.expert("past", "T2")
    with Session(store.engine) as session:
        deployment = session.exec(select(Deployment).where(Deployment.expert_id == past)).one()
        deployment.ends_on = date(2026, 3, 1)  # ended before T0
        for channel in session.exec(select(Channel)).all():
            channel.healthy = False
        session.commit()
    broken = store.expert("broken", "T1", channels=1)
    with Session(store.engine) as session:
        channel = session.exec(select(Channel).where(Channel.expert_id == broken)).one()
        channel.disabled_at = T0
        session.commit()
    store.run({"T101": 5.5, "T201": 5.5}, {"T101": 3.0, "T201": 3.0})
    result = store.evaluate()
    assert result.notification_ids == []
    t201 = store.alert("risk_class_rising:T201")
    assert store.decisions(t201.id) == ["fired", "no_recipient"]
    with Session(store.engine) as session:
        detail = session.exec(
            select(AlertDecision).where(
                AlertDecision.alert_id == store.alert("risk_class_rising:T101").id,
                AlertDecision.decision == "no_recipient",
            )
        ).one()
        assert detail.expert_id == broken and "channel" in (detail.detail or {})["reason"]


# --- hysteresis and cool-down --------------------------------------------------------------------
def test_flapping_scores_give_one_alert_and_one_notification(store: Store) -> None:
    expert = store.expert("north", "T1", channels=1)
    now = T0
    for number in range(12):
        high = number % 2 == 0
        store.run({"T101": 5.1 if high else 4.9}, {"T101": 4.9 if high else 5.1})
        store.evaluate(now=now)
        now += timedelta(hours=1)  # within the repeat interval: only flapping could re-send
    assert len(store.notifications(expert)) == 1
    alert = store.alert("risk_class_rising:T101")
    assert alert.state == "firing"  # never two clear rounds in a row
    assert store.decisions(alert.id).count("fired") == 1


def test_resolve_after_clear_rounds_refire_needs_margin_and_cooldown_holds(store: Store) -> None:
    expert = store.expert("north", "T1", channels=1)
    strict = rules(lifecycle={"resolve_after_evaluations": 2, "cooldown_hours": 72})
    store.run({"T101": 5.6}, {"T101": 4.0})
    store.evaluate(now=T0, alert_rules=strict)
    assert len(store.notifications(expert)) == 1
    store.run({"T101": 4.0}, {"T101": 5.6})
    store.evaluate(now=T0 + timedelta(hours=1), alert_rules=strict)
    # Re-evaluating the same run is not a second clear round.
    store.evaluate(now=T0 + timedelta(hours=2), alert_rules=strict)
    assert store.alert("risk_class_rising:T101").state == "firing"
    store.run({"T101": 4.1}, {"T101": 4.0})
    store.evaluate(now=T0 + timedelta(hours=3), alert_rules=strict)
    alert = store.alert("risk_class_rising:T101")
    assert alert.state == "resolved" and alert.resolved_at is not None
    # Rising again, but only just above the class threshold (5.0 + margin 0.5 not reached).
    store.run({"T101": 5.2}, {"T101": 4.1})
    store.evaluate(now=T0 + timedelta(hours=4), alert_rules=strict)
    assert store.alert("risk_class_rising:T101").state == "resolved"
    # Clearly above: fires again (episode 2), but within the cool-down of the last send.
    store.run({"T101": 5.8}, {"T101": 4.1})
    store.evaluate(now=T0 + timedelta(hours=5), alert_rules=strict)
    alert = store.alert("risk_class_rising:T101")
    assert alert.state == "firing" and (alert.explanation or {})["episode"] == 2
    assert len(store.notifications(expert)) == 1
    assert store.decisions(alert.id)[-1] == "cooldown"
    # The cool-down is recorded once, not at every evaluation.
    store.evaluate(now=T0 + timedelta(hours=6), alert_rules=strict)
    assert store.decisions(alert.id).count("cooldown") == 1
    # After the cool-down it is sent (a new episode: a new idempotency key).
    store.evaluate(now=T0 + timedelta(hours=80), alert_rules=strict)
    sent = store.notifications(expert)
    assert len(sent) == 2 and sent[0].idempotency_key != sent[1].idempotency_key


# --- inhibition, silences ------------------------------------------------------------------------
def test_admin1_alert_inhibits_its_districts_for_experts_who_get_it(store: Store) -> None:
    region = store.expert("region", "T1", channels=1)
    district = store.expert("district", "T102", channels=1)
    store.run({"T1": 7.0, "T101": 5.5, "T102": 7.2}, {"T1": 4.0, "T101": 4.0, "T102": 4.0})
    store.evaluate()
    (to_region,) = store.notifications(region)
    pcodes = [a["pcode"] for a in (to_region.payload or {})["alerts"]]
    assert pcodes == ["T1"]  # T101 (warning) and T102 (critical) held back by T1 (critical)
    (to_district,) = store.notifications(district)
    assert [a["pcode"] for a in (to_district.payload or {})["alerts"]] == ["T102"]
    t101 = store.alert("risk_class_rising:T101")
    assert "inhibited" in store.decisions(t101.id)
    with Session(store.engine) as session:
        row = session.exec(
            select(AlertDecision).where(
                AlertDecision.alert_id == t101.id, AlertDecision.decision == "inhibited"
            )
        ).one()
        assert row.expert_id == region and (row.detail or {})["by_pcode"] == "T1"


def test_lower_severity_admin1_alert_does_not_inhibit(store: Store) -> None:
    region = store.expert("region", "T1", channels=1)
    store.run({"T1": 5.5, "T101": 7.0}, {"T1": 4.0, "T101": 4.0})
    store.evaluate()
    (notification,) = store.notifications(region)
    assert sorted(a["pcode"] for a in (notification.payload or {})["alerts"]) == ["T1", "T101"]


def test_silence_covers_sub_areas_until_it_ends(store: Store) -> None:
    expert = store.expert("north", "T1", channels=1)
    silence = store.silence(
        "T1", timedelta(hours=12), author="coordinator", reason="field team informed"
    )
    store.run({"T101": 5.5, "T102": 5.6}, {"T101": 3.0, "T102": 3.0})
    store.evaluate(now=T0 + timedelta(minutes=5))
    assert store.notifications(expert) == []
    alert = store.alert("risk_class_rising:T101")
    assert store.decisions(alert.id) == ["fired", "silenced"]
    store.evaluate(now=T0 + timedelta(hours=1))
    assert store.decisions(alert.id) == ["fired", "silenced"]  # recorded once
    store.evaluate(now=T0 + timedelta(hours=13))  # expired
    (notification,) = store.notifications(expert)
    assert len((notification.payload or {})["alerts"]) == 2
    with Session(store.engine) as session:
        audit = session.exec(select(AuditEvent).where(AuditEvent.action == "silence.create")).one()
        assert audit.object_id == str(silence.id) and audit.actor == "coordinator"
    # A silence for another rule does not apply; an unknown area or a past end is refused.
    with pytest.raises(AlertRefused, match="no area"):
        store.silence("XX", timedelta(days=1))
    with pytest.raises(UsageError, match="not in the future"):
        store.silence("T1", -timedelta(days=1))


def test_rule_specific_silence_leaves_other_rules(store: Store) -> None:
    expert = store.expert("north", "T1", channels=1)
    store.silence("T101", timedelta(days=2), reason="known", rule="hotspot_new_or_intensifying")
    store.run({"T101": 5.5}, {"T101": 3.0}, hotspots={"T101": ("hot_95", "intensifying")})
    store.evaluate()
    (notification,) = store.notifications(expert)
    assert [a["rule"] for a in (notification.payload or {})["alerts"]] == ["risk_class_rising"]


# --- review mode ---------------------------------------------------------------------------------
def test_review_mode_holds_alerts_until_approved(store: Store) -> None:
    expert = store.expert("north", "T1", channels=2)
    review = rules(review={"countries": ["TST"]})
    store.run({"T101": 5.5}, {"T101": 3.0})
    store.evaluate(alert_rules=review)
    assert store.notifications(expert) == []
    alert = store.alert("risk_class_rising:T101")
    assert alert.review_state == "pending"
    assert store.decisions(alert.id) == ["fired", "awaiting_review"]
    store.evaluate(now=T0 + timedelta(hours=1), alert_rules=review)
    assert store.decisions(alert.id) == ["fired", "awaiting_review"]
    assert [r.id for r in _list(store, state="firing")] == [alert.id]
    assert [r.id for r in _list(store, expert_id=expert)] == [alert.id]
    assert _list(store, countries=["ABC"]) == [] and _list(store, state="resolved") == []
    other = store.expert("south", "T2", channels=1)
    assert _list(store, expert_id=other) == []

    result = approve(
        store.engine,
        alert.id,
        actor="focal",
        settings=store.settings,
        rules=review,
        now=T0 + timedelta(hours=2),
    )
    assert len(result.notification_ids) == 2 and len(store.notifications(expert)) == 2
    assert store.alert("risk_class_rising:T101").review_state == "approved"
    assert store.decisions(alert.id)[2:4] == ["approved", "sent"]
    with pytest.raises(AlertRefused, match="not awaiting review"):
        approve(store.engine, alert.id, actor="focal", settings=store.settings, rules=review)
    with pytest.raises(AlertNotFound):
        approve(store.engine, 9999, actor="focal", settings=store.settings, rules=review)
    # Approved: later evaluations send nothing more.
    store.evaluate(now=T0 + timedelta(hours=3), alert_rules=review)
    assert len(store.notifications(expert)) == 2


def _list(store: Store, **kwargs: Any) -> list[Any]:
    with Session(store.engine) as session:
        return list_alerts(session, **kwargs)


# --- escalation, repeat, acknowledgement ---------------------------------------------------------
def _critical_alert_with_a_focal_point(store: Store) -> tuple[int, int, Any]:
    """A focal point, an expert in T1 reporting to it, and the critical alert fired in T1."""
    focal = store.expert("focal", channels=1)
    expert = store.expert("north", "T1", channels=1, focal=focal)
    store.run({"T1": 7.0}, {"T1": 4.0})
    store.evaluate()
    return focal, expert, store.alert("risk_class_rising:T1")


def test_unacknowledged_critical_alert_escalates_once_to_the_focal_point(store: Store) -> None:
    focal, expert, alert = _critical_alert_with_a_focal_point(store)
    assert alert.severity == "critical"
    early = escalate_unacknowledged(
        store.engine, store.settings, now=T0 + timedelta(minutes=60), rules=rules()
    )
    assert early["escalated"] == 0 and store.notifications(focal) == []
    late = escalate_unacknowledged(
        store.engine, store.settings, now=T0 + timedelta(minutes=241), rules=rules()
    )
    assert late["escalated"] == 1
    (escalation,) = store.notifications(focal)
    assert escalation.kind == "escalation" and (escalation.payload or {})["kind"] == "escalation"
    assert [a["alert_id"] for a in (escalation.payload or {})["alerts"]] == [alert.id]
    assert store.alert("risk_class_rising:T1").escalated_at is not None
    again = escalate_unacknowledged(
        store.engine, store.settings, now=T0 + timedelta(minutes=600), rules=rules()
    )
    assert again["escalated"] == 0 and len(store.notifications(focal)) == 1
    assert "escalated" in store.decisions(alert.id)
    assert len(store.notifications(expert)) == 1


def test_acknowledged_critical_alert_does_not_escalate_or_repeat(store: Store) -> None:
    focal, expert, alert = _critical_alert_with_a_focal_point(store)
    ack = acknowledge(
        store.engine,
        alert.id,
        expert_id=expert,
        feedback="useful",
        comment="team on site",
        via="link",
        now=T0 + timedelta(minutes=30),
    )
    assert ack.feedback == "useful" and ack.via == "link"
    counts = escalate_unacknowledged(
        store.engine, store.settings, now=T0 + timedelta(hours=5), rules=rules()
    )
    assert counts["escalated"] == 0 and store.notifications(focal) == []
    store.evaluate(now=T0 + timedelta(hours=30))
    assert len(store.notifications(expert)) == 1  # acknowledged: no repeat


def test_unacknowledged_alert_repeats_after_the_repeat_interval(store: Store) -> None:
    expert = store.expert("north", "T1", channels=1)
    store.run({"T101": 5.5}, {"T101": 3.0})
    store.evaluate()
    store.evaluate(now=T0 + timedelta(hours=23))
    assert len(store.notifications(expert)) == 1
    store.evaluate(now=T0 + timedelta(hours=24, minutes=1))
    first, second = store.notifications(expert)
    assert first.idempotency_key != second.idempotency_key
    alert = store.alert("risk_class_rising:T101")
    assert "repeated" in store.decisions(alert.id)
    store.evaluate(now=T0 + timedelta(hours=25))
    assert len(store.notifications(expert)) == 2


def test_acknowledge_records_once_per_person(store: Store) -> None:
    expert = store.expert("north", "T1", channels=1)
    store.run({"T101": 5.5}, {"T101": 3.0})
    store.evaluate()
    alert = store.alert("risk_class_rising:T101")
    acknowledge(
        store.engine,
        alert.id,
        expert_id=expert,
        feedback="false_alarm",
        now=T0 + timedelta(hours=1),
    )
    with pytest.raises(AlertRefused, match="already acknowledged by north"):
        acknowledge(store.engine, alert.id, expert_id=expert)
    acknowledge(store.engine, alert.id, actor="analyst", via="cli", now=T0 + timedelta(hours=2))
    with pytest.raises(AlertRefused, match="already acknowledged by analyst"):
        acknowledge(store.engine, alert.id, actor="analyst")
    with pytest.raises(UsageError, match="feedback"):
        acknowledge(store.engine, alert.id, actor="x", feedback="great")
    with pytest.raises(AlertNotFound):
        acknowledge(store.engine, 424242, actor="x")
    acked = store.alert("risk_class_rising:T101")
    assert acked.acknowledged_at == T0 + timedelta(hours=1)  # the first one
    with Session(store.engine) as session:
        assert session.exec(select(func.count()).select_from(Acknowledgement)).one() == 2
        actions = session.exec(
            select(AuditEvent.actor)
            .where(AuditEvent.action == "alert.acknowledge")
            .order_by(col(AuditEvent.id))
        ).all()
        assert actions == ["north", "analyst"]
        detail = alert_detail(session, alert.id)
    assert detail.alert.acknowledged_by == "north"
    assert [a["by"] for a in detail.acknowledgements] == ["north", "analyst"]
    assert [d["decision"] for d in detail.decisions].count("acknowledged") == 2


# --- digest, stale data, dry run -----------------------------------------------------------------
def test_daily_digest_once_per_expert_and_day(store: Store) -> None:
    north = store.expert("north", "T1", channels=2)
    south = store.expert("south", "T2", channels=1)
    store.run({"T101": 5.5, "T102": 7.0}, {"T101": 3.0, "T102": 3.0})
    store.evaluate()
    off = queue_daily_digest(store.engine, store.settings, now=T0, rules=rules())
    assert off["notifications"] == 0
    on = rules(digest={"enabled": True})
    counts = queue_daily_digest(store.engine, store.settings, now=T0 + timedelta(hours=1), rules=on)
    assert counts["notifications"] == 2 and counts["nothing_firing"] == 1
    digests = [n for n in store.notifications(north) if n.kind == "digest"]
    assert len(digests) == 2
    alerts = (digests[0].payload or {})["alerts"]
    assert [a["severity"] for a in alerts] == ["critical", "warning"]  # most severe first
    again = queue_daily_digest(store.engine, store.settings, now=T0 + timedelta(hours=5), rules=on)
    assert again["notifications"] == 0 and again["already_queued"] == 2
    next_day = queue_daily_digest(
        store.engine, store.settings, now=T0 + timedelta(days=1), rules=on
    )
    assert next_day["notifications"] == 2
    assert [n for n in store.notifications(south) if n.kind == "digest"] == []


def test_stale_source_raises_a_stale_data_alert_for_the_deployed_area(store: Store) -> None:
    expert = store.expert("north", "T1", channels=1)
    with Session(store.engine) as session:
        session.add(Source(id="dtm", kind="dtm", location="x", expected_cadence_days=30))
        session.flush()
        batch = IngestBatch(
            source_id="dtm",
            kind="dtm",
            location="x",
            status="succeeded",
            started_at=T0 - timedelta(days=60),
            finished_at=T0 - timedelta(days=60),
            reporting_dates=["2026-04-01"],
        )
        session.add(batch)
        session.flush()
        assert batch.id is not None
        session.add(
            Observation(
                area_pcode="T101",
                variable="idps",
                period=date(2026, 4, 1),
                value=1000.0,
                batch_id=batch.id,
            )
        )
        session.commit()
    store.run({"T101": 3.0}, {"T101": 3.0})
    result = store.evaluate()
    assert result.counts["fired"] == 1
    alert = store.alert("stale_data:T1")
    assert alert.severity == "info"
    (notification,) = store.notifications(expert)
    (item,) = (notification.payload or {})["alerts"]
    assert item["rule"] == "stale_data" and item["stale_sources"] == ["dtm"]
    # The fallback used without the scheduler's source health agrees.
    from riskwatch.alerts.staleness import own_stale_area_pcodes, own_stale_sources

    with Session(store.engine) as session:
        assert set(own_stale_sources(session, T0)) == {"dtm"}
        assert own_stale_area_pcodes(session, ["dtm"]) == {"T101"}
        assert own_stale_sources(session, T0 - timedelta(days=45)) == {}


def test_dry_run_computes_everything_and_writes_nothing(store: Store) -> None:
    expert = store.expert("north", "T1", channels=2)
    store.run({"T101": 5.5, "T1": 7.0}, {"T101": 3.0, "T1": 3.0})
    before = table_counts(store.engine)
    result = store.evaluate(dry_run=True)
    assert result.dry_run and result.counts["fired"] == 2 and result.counts["notifications"] == 2
    assert len(result.planned) == 2 and {p.expert_id for p in result.planned} == {expert}
    assert result.notification_ids == []
    assert table_counts(store.engine) == before
    with Session(store.engine) as session:
        assert session.get(Meta, "alerts.last_evaluated_run") is None
    real = store.evaluate()
    assert real.counts["notifications"] == 2
    # The same messages (ids differ on PostgreSQL: a rolled-back sequence is not reused).
    assert [
        (p.channel_id, p.group_key, [a["pcode"] for a in p.payload["alerts"]])
        for p in result.planned
    ] == [
        (n.channel_id, n.group_key, [a["pcode"] for a in (n.payload or {})["alerts"]])
        for n in store.notifications(expert)
    ]


def test_first_evaluation_counts_high_as_rising_and_later_ones_do_not(store: Store) -> None:
    expert = store.expert("north", "T1", channels=1)
    store.run(
        {"T101": 5.5, "T102": 3.0},
        {"T101": 5.6, "T102": 3.0},
        hotspots={"T102": ("hot_95", "consecutive")},
    )
    store.evaluate()
    (notification,) = store.notifications(expert)
    rules_sent = sorted(a["rule"] for a in (notification.payload or {})["alerts"])
    assert rules_sent == ["hotspot_new_or_intensifying", "risk_class_rising"]
    # Not a first evaluation any more: T201 high but not rising, no alert.
    store.run({"T201": 5.5}, {"T201": 5.6})
    result = store.evaluate(now=T0 + timedelta(hours=1))
    assert result.counts["fired"] == 0


def test_surge_needs_vulnerability(store: Store) -> None:
    expert = store.expert("north", "T1", channels=1)
    store.run({"T101": 3.0}, {"T101": 3.0}, surges={"T101": 12000.0}, vulnerability=4.0)
    store.evaluate()
    assert store.notifications(expert) == []
    store.run({"T101": 3.0}, {"T101": 3.0}, surges={"T101": 12000.0}, vulnerability=7.0)
    store.evaluate(now=T0 + timedelta(hours=1))
    (notification,) = store.notifications(expert)
    (item,) = (notification.payload or {})["alerts"]
    assert item["rule"] == "displacement_surge" and item["surge"] is True
    assert item["surge_size"] == 12000.0


def test_idempotency_key_is_a_stable_hash() -> None:
    from riskwatch.alerts.outbox import idempotency_key

    key = idempotency_key("alert", 1, 2, "TST/T1", ["5.1.0", "3.1.0"])
    assert key == idempotency_key("alert", 1, 2, "TST/T1", ["3.1.0", "5.1.0"])
    assert key != idempotency_key("alert", 1, 2, "TST/T1", ["3.1.1", "5.1.0"])
    assert key.startswith("alert-") and len(key) <= 128


def test_silence_rows_are_not_touched_by_evaluation(store: Store) -> None:
    store.silence("TST", timedelta(days=1), reason="country-wide pause")
    store.expert("north", "T1", channels=1)
    store.run({"T101": 5.5}, {"T101": 3.0})
    store.evaluate()
    with Session(store.engine) as session:
        assert session.exec(select(func.count()).select_from(Silence)).one() == 1
        assert session.exec(select(func.count()).select_from(Notification)).one() == 0


def test_concurrent_evaluations_create_each_notification_once(store: Store) -> None:
    import threading

    expert = store.expert("north", "T1", channels=2)
    store.run({"T101": 5.5, "T102": 7.0, "T1": 4.0}, {"T101": 3.0, "T102": 3.0, "T1": 4.0})
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            barrier.wait()
            store.evaluate()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=evaluate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.notifications(expert)) == 2
    with Session(store.engine) as session:
        assert session.exec(select(func.count()).select_from(Alert)).one() == 2
        sent = session.exec(
            select(func.count()).select_from(AlertDecision).where(AlertDecision.decision == "sent")
        ).one()
        assert sent == 2  # one per alert and expert


def test_severity_raised_while_firing_is_sent_again_and_escalates_from_then(
    store: Store,
) -> None:
    lonely = store.expert("lonely", "T2", channels=1)  # no focal point
    expert = store.expert("north", "T1", channels=1)
    store.run({"T1": 5.5, "T2": 7.0}, {"T1": 4.0, "T2": 4.0})
    store.evaluate()
    assert store.alert("risk_class_rising:T1").severity == "warning"
    store.run({"T1": 7.0, "T2": 7.0}, {"T1": 5.5, "T2": 7.0})
    store.evaluate(now=T0 + timedelta(hours=2))
    first, second = store.notifications(expert)
    (item,) = (second.payload or {})["alerts"]
    assert item["severity"] == "critical" and item["risk_class"] == "very_high"
    with Session(store.engine) as session:
        raised = session.exec(
            select(AlertDecision)
            .where(AlertDecision.decision == "sent", AlertDecision.expert_id == expert)
            .order_by(col(AlertDecision.id).desc())
        ).first()
        assert raised is not None and (raised.detail or {})["reason"] == "severity_raised"
    # 4 h after the first (warning) message but 2 h after the critical one: not yet.
    counts = escalate_unacknowledged(
        store.engine, store.settings, now=T0 + timedelta(hours=4, minutes=1), rules=rules()
    )
    assert counts["escalated"] == 0
    # T2 has no focal point: recorded once as no_recipient, nothing sent.
    assert counts["no_recipient"] == 1
    escalate_unacknowledged(
        store.engine, store.settings, now=T0 + timedelta(hours=5), rules=rules()
    )
    t2 = store.alert("risk_class_rising:T2")
    assert store.decisions(t2.id).count("no_recipient") == 1
    assert len(store.notifications(lonely)) == 1
