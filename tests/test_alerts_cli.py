"""`riskwatch alerts ...` and `riskwatch export alerts` through click's runner (both backends)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func
from sqlmodel import Session, select

from riskwatch.cli import cli
from riskwatch.db.models import Alert, Notification, Silence

from .test_alerts_engine import Store, build_store, table_counts

pytestmark = pytest.mark.db


def invoke(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"RISKWATCH_DATABASE_URL": url, **(env or {})})


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Any:
    built = build_store(database_url, tmp_path)
    yield built
    built.engine.dispose()


def _alert_id(store: Store, fingerprint: str) -> int:
    with Session(store.engine) as session:
        alert_id = session.exec(select(Alert.id).where(Alert.fingerprint == fingerprint)).one()
        assert alert_id is not None
        return alert_id


def test_evaluate_list_show_ack_silence_and_export(store: Store, database_url: str) -> None:
    store.expert("north", "T1", channels=2)
    store.run({"T1": 7.0, "T101": 5.5}, {"T1": 4.0, "T101": 3.0})

    before = table_counts(store.engine)
    dry = invoke(database_url, "alerts", "evaluate", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Dry run (nothing written)" in dry.output and dry.output.count("would queue") == 2
    assert table_counts(store.engine) == before

    real = invoke(database_url, "alerts", "evaluate")
    assert real.exit_code == 0, real.output
    assert real.output.count("queued alert") == 2
    again = invoke(database_url, "alerts", "evaluate")
    assert "queued" not in again.output and "notifications 0" in again.output

    listed = invoke(database_url, "alerts", "list")
    assert listed.exit_code == 0 and "2 alert(s)" in listed.output
    assert "risk_class_rising" in listed.output and "T101" in listed.output
    assert (
        "No alerts in state resolved"
        in invoke(database_url, "alerts", "list", "--state", "resolved").output
    )
    assert invoke(database_url, "alerts", "list", "--state", "bogus").exit_code == 2

    t1 = _alert_id(store, "risk_class_rising:T1")
    t101 = _alert_id(store, "risk_class_rising:T101")
    shown = invoke(database_url, "alerts", "show", str(t101))
    assert shown.exit_code == 0, shown.output
    for text in (
        "What:",
        "Where:  North One (T101), North, Testland",
        "Risk:   5.5/10, high",
        "How sure: reliability 0.80",
        "Decisions:",
        "fired",
        "inhibited",
    ):
        assert text in shown.output, (text, shown.output)
    shown_t1 = invoke(database_url, "alerts", "show", str(t1))
    assert "sent expert" in shown_t1.output and "Notifications:" in shown_t1.output
    missing = invoke(database_url, "alerts", "show", "9999")
    assert missing.exit_code == 1 and "no alert 9999" in missing.output
    assert "Traceback" not in missing.output

    ack = invoke(database_url, "alerts", "ack", str(t1),
                 "--feedback", "useful", "--comment", "seen", "--by", "tester")
    assert ack.exit_code == 0, ack.output
    assert "acknowledged by tester" in ack.output
    twice = invoke(database_url, "alerts", "ack", str(t1), "--by", "tester")
    assert twice.exit_code == 1 and "already acknowledged by tester" in twice.output
    assert invoke(database_url, "alerts", "ack", str(t1), "--feedback", "great").exit_code == 2
    assert invoke(database_url, "alerts", "ack", "9999", "--by", "x").exit_code == 1
    assert invoke(database_url, "alerts", "ack").exit_code == 2

    def silence(area: str, until: str, *options: str) -> Result:
        return invoke(database_url, "alerts", "silence", "--area", area, "--until", until, *options)

    silenced = silence("T1", "2099-01-01", "--reason", "team on site", "--by", "coord")
    assert silenced.exit_code == 0, silenced.output
    assert "until 2099-01-01T00:00:00Z by coord" in silenced.output
    assert silence("XX", "2099-01-01", "--reason", "r").exit_code == 1
    assert silence("T1", "2099-01-01").exit_code == 2
    assert silence("T1", "2099-01-01", "--reason", "r", "--rule", "nope").exit_code == 2
    assert silence("T1", "yesterday", "--reason", "r").exit_code == 2
    with Session(store.engine) as session:
        assert session.exec(select(func.count()).select_from(Silence)).one() == 1

    not_in_review = invoke(database_url, "alerts", "approve", str(t1), "--by", "focal")
    assert not_in_review.exit_code == 1 and "not awaiting review" in not_in_review.output

    exported = invoke(database_url, "export", "alerts", "--format", "csv")
    assert exported.exit_code == 0, exported.output
    rows = list(csv.reader(io.StringIO(exported.output)))
    assert rows[0] == [
        "id",
        "rule",
        "pcode",
        "admin_level",
        "severity",
        "state",
        "first_seen",
        "last_seen",
        "acknowledged_by",
        "acknowledged_at",
    ]
    assert rows[1][2:4] == ["#adm+code", "#adm+level"]
    data = {row[2]: row for row in rows[2:]}
    assert set(data) == {"T1", "T101"}
    assert data["T1"][4:6] == ["critical", "firing"] and data["T1"][8] == "tester"
    assert data["T1"][9].endswith("Z") and data["T101"][8] == "" and data["T101"][9] == ""
    geojson = invoke(database_url, "export", "alerts", "--format", "geojson", "--country", "TST")
    assert geojson.exit_code == 0, geojson.output
    features = json.loads(geojson.output)["features"]
    assert sorted(f["properties"]["pcode"] for f in features) == ["T1", "T101"]
    assert (
        invoke(database_url, "export", "alerts", "--format", "csv", "--run", "999").exit_code == 1
    )
    level2 = invoke(database_url, "export", "alerts", "--format", "csv", "--level", "2")
    assert [r[2] for r in csv.reader(io.StringIO(level2.output))][2:] == ["T101"]


def test_review_mode_from_the_rules_file_and_approve(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    expert = store.expert("north", "T1", channels=2)
    rules_file = tmp_path / "alerts-review.toml"
    rules_file.write_text(
        '[review]\ncountries = ["TST"]\n\n[rules.risk_class_rising]\nseverity = "warning"\n',
        encoding="utf-8",
    )
    env = {"RISKWATCH_ALERTS__RULES_FILE": str(rules_file)}
    store.run({"T101": 5.5}, {"T101": 3.0})
    shown_rules = invoke(database_url, "alerts", "rules", env=env)
    assert "review countries: TST" in shown_rules.output
    assert invoke(database_url, "alerts", "evaluate", env=env).exit_code == 0
    alert_id = _alert_id(store, "risk_class_rising:T101")
    listed = invoke(database_url, "alerts", "list", env=env)
    assert "pending" in listed.output
    with Session(store.engine) as session:
        assert session.exec(select(func.count()).select_from(Notification)).one() == 0
    approved = invoke(database_url, "alerts", "approve", str(alert_id), "--by", "focal", env=env)
    assert approved.exit_code == 0, approved.output
    assert "2 notification(s) queued" in approved.output
    with Session(store.engine) as session:
        sent = session.exec(select(Notification).where(Notification.expert_id == expert)).all()
        assert len(sent) == 2
    shown = invoke(database_url, "alerts", "show", str(alert_id), env=env)
    assert "awaiting_review" in shown.output and "approved" in shown.output


def test_a_bad_rules_file_is_a_configuration_error(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[lifecycle]\ncooldown_hours = -3\n", encoding="utf-8")
    result = invoke(
        database_url, "alerts", "evaluate", env={"RISKWATCH_ALERTS__RULES_FILE": str(bad)}
    )
    assert result.exit_code == 2 and "cooldown_hours" in result.output
    assert "Traceback" not in result.output
