"""The dashboard's pages beyond the map: area page, alerts, data health, exports, users,
downloads and acknowledgement links - their pure functions, their callbacks over HTTP, and who
may reach what (roles and country scopes, checked on the server)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlmodel import Session, select

from dashboards import data
from dashboards.app import create_app
from dashboards.auth import CurrentUser
from dashboards.callbacks import acknowledge_from_form, export_link_for, render_page
from dashboards.downloads import DownloadRefused, check_download, download_href
from dashboards.layout import DEMO_BANNER_TEXT
from dashboards.pages import alerts as alerts_page
from dashboards.pages import exports as exports_page
from dashboards.pages import health as health_page
from dashboards.testing import FEBRUARY, SAMPLE_EXPECTED, populate_sample_database
from riskwatch import users
from riskwatch.ack_tokens import make_ack_token
from riskwatch.config import Settings
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.models import Acknowledgement, Alert, AuditEvent, Expert, Silence
from riskwatch.timeutil import utcnow
from riskwatch.users import create_user
from tests.test_dashboard_app import (
    PASSWORD,
    FakeClock,
    callback_body,
    callback_text,
    login,
    make_settings,
    post_callback,
)

pytestmark = pytest.mark.db

ACK_CALLBACK = "..ack-result.children...alerts-list.children.."
SILENCE_CALLBACK = "silence-result.children"
APPROVE_CALLBACK = "approve-result.children"
EXPORT_LINK_CALLBACK = "..export-link.href...export-link.children.."
PAGE_CALLBACK = "..page-header.children...demo-banner.children...page-content.children.."
#: Callbacks that change something only admins and focal points may change.
ADMIN_CALLBACKS = (SILENCE_CALLBACK, APPROVE_CALLBACK)


@pytest.fixture(scope="module", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        )
        patch.setattr(users, "_dummy_hash", None)
        yield


@pytest.fixture(scope="module")
def database_url(module_database_url: str) -> str:
    """The sample store with logins of every role; Ella's login is linked to her expert."""
    url = populate_sample_database(module_database_url, demo=True)
    engine = make_engine(url)
    with session_scope(engine) as session:
        ella = session.exec(select(Expert).where(Expert.name == "Ella")).one()
        create_user(session, "alice", PASSWORD, "coordinator")
        create_user(session, "tess", PASSWORD, "coordinator", countries=["TST"])
        create_user(session, "multi", PASSWORD, "coordinator", countries=["TST", "XYZ"])
        create_user(session, "adam", PASSWORD, "admin")
        create_user(session, "nina", PASSWORD, "analyst")
        create_user(session, "ella", PASSWORD, "expert", expert_id=ella.id)
        create_user(session, "xena", PASSWORD, "coordinator", countries=["XYZ"])
        create_user(session, "xadmin", PASSWORD, "admin", countries=["XYZ"])
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pages")


@pytest.fixture(scope="module")
def settings(database_url: str, module_dir: Path) -> Settings:
    return make_settings(database_url, module_dir)


@pytest.fixture(scope="module")
def app(settings: Settings) -> Flask:
    return create_app(settings, clock=FakeClock(now=utcnow()))


@pytest.fixture
def db(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    with Session(engine) as session:
        yield session
    engine.dispose()


def user(db: Session, name: str) -> CurrentUser:
    row = users.find_user(db, name)
    assert row is not None
    return CurrentUser(
        id=int(row.id or 0),
        username=row.username,
        role=row.role,
        countries=tuple(row.countries) if row.countries else None,
        expert_id=row.expert_id,
        is_demo=row.is_demo,
    )


def client_for(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


def alert_id(db: Session, pcode: str) -> int:
    return int(db.exec(select(Alert.id).where(Alert.area_pcode == pcode)).one())


def text_of(component: Any) -> str:
    return json.dumps(component, default=lambda c: c.to_plotly_json(), ensure_ascii=False)


# --- the area page --------------------------------------------------------------------------------
def test_area_scores_drivers_and_series(db: Session) -> None:
    scores = data.area_scores(db, "TST0101")
    assert scores is not None
    assert scores.latest.risk_class == "very_high" and scores.latest.risk == 8.2
    assert scores.latest.period == FEBRUARY and scores.latest.reliability == 0.9
    assert scores.drivers == SAMPLE_EXPECTED["drivers_TST0101"]
    assert [(p.period, p.risk) for p in scores.series] == SAMPLE_EXPECTED["risk_series_TST0101"]
    assert data.area_scores(db, "TST0101", ["XYZ"]) is None  # outside the scope: unseen
    assert data.area_scores(db, "TST") is None  # not scored


def test_parse_drivers_falls_back_to_the_top_drivers_text() -> None:
    assert data.parse_drivers({"top_drivers": "b:1.5;a:2.25;bad"}) == [("a", 2.25), ("b", 1.5)]
    assert data.parse_drivers(None) == []


def test_hotspot_history_lineage_alerts_of_an_area(db: Session) -> None:
    history = data.hotspot_history(db, "TST0101")
    assert [(h.period, h.hotspot_class, h.temporal_class) for h in history] == [
        (SAMPLE_EXPECTED["series_TST0101"][0][0], "hot_95", "new"),
        (FEBRUARY, "hot_99", "consecutive"),
    ]
    lineage = {row.variable: row for row in data.area_lineage(db, "TST0101")}
    assert set(lineage) == {"idps", "population"}
    assert lineage["idps"].period == FEBRUARY and lineage["idps"].source_id == "test-dtm"
    assert lineage["idps"].source_title == "Test DTM"
    assert lineage["idps"].ingested_at is not None
    alerts = data.area_alerts(db, "TST0101")
    assert [(a.pcode, a.state, a.summary) for a in alerts] == [
        ("TST0101", "firing", "Risk is high in TST0101")
    ]
    assert data.area_alerts(db, "TST0102") == []  # resolved alerts are not active
    assert data.area_lineage(db, "TST0101", ["XYZ"]) == []


def test_area_page_content(db: Session) -> None:
    header, banner, content = render_page(db, user(db, "alice"), "/area/TST0101")
    text = text_of(content)
    for expected in (
        "area-drivers",
        "area-series",
        "area-hotspots",
        "area-lineage",
        "area-alerts",
        "Very high",
        "90%",
        "hot 99",
        "Test DTM",
        "#1 ",
    ):
        assert expected in text, expected
    assert DEMO_BANNER_TEXT in text_of(banner)
    # An area without data says so instead of drawing a low score.
    _, _, empty = render_page(db, user(db, "alice"), "/area/TST0201")
    assert "Insufficient data" in text_of(empty)
    assert "No driver recorded" in text_of(empty)


# --- alerts ---------------------------------------------------------------------------------------
def test_who_sees_which_alerts(db: Session) -> None:
    def pcodes(name: str) -> set[str]:
        return {row.pcode for row in alerts_page.visible_alerts(db, user(db, name))}

    everything = set(SAMPLE_EXPECTED["alert_pcodes"])
    assert pcodes("alice") == everything and pcodes("adam") == everything
    assert pcodes("tess") == everything - {"XYZ0101"}
    assert pcodes("ella") == set(SAMPLE_EXPECTED["expert_alert_pcodes"])
    assert alerts_page.may_manage(db, user(db, "adam"))
    assert not alerts_page.may_manage(db, user(db, "alice"))
    assert not alerts_page.may_manage(db, user(db, "ella"))  # not a focal point


def test_alert_visibility_is_decided_by_the_engine_from_plain_arguments(db: Session) -> None:
    from riskwatch.alerts import queries

    ella = user(db, "ella")
    expert = {"role": "expert", "countries": ella.countries, "expert_id": ella.expert_id}
    rows = queries.visible_alerts(db, **expert)
    assert {r.pcode for r in rows} == set(SAMPLE_EXPECTED["expert_alert_pcodes"])
    assert queries.covered_areas(db, "coordinator", None) is None
    assert queries.in_countries(None, "XYZ") and not queries.in_countries(("TST",), "XYZ")
    first = db.get(Alert, rows[0].id)
    assert first is not None and queries.can_see_alert(db, first, **expert)
    assert queries.visible_alert(db, 999999, **expert) is None
    assert not queries.may_manage_alerts(db, "expert", ella.expert_id)
    assert queries.may_manage_alerts(db, "admin", None)


def test_alerts_page_for_each_role(db: Session) -> None:
    _, _, expert = render_page(db, user(db, "ella"), "/alerts")
    text = text_of(expert)
    assert "ack-submit" in text and "silence-submit" not in text
    assert "TST0201" not in text and "XYZ0101" not in text  # outside her deployment
    _, _, admin = render_page(db, user(db, "adam"), "/alerts")
    text = text_of(admin)
    assert "silence-submit" in text and "approve-submit" in text
    assert "fired" in text  # the decision history
    _, _, analyst = render_page(db, user(db, "nina"), "/alerts")
    assert "ack-submit" not in text_of(analyst)


def test_acknowledge_from_the_form_pure_function(db: Session, database_url: str) -> None:
    engine = make_engine(database_url)
    ella = user(db, "ella")
    target = alert_id(db, "TST0101")
    message, table = acknowledge_from_form(engine, ella, 1, target, "useful", " seen it ")
    assert message.startswith(f"Alert {target} acknowledged (Useful)")
    assert "Ella" in text_of(table)
    again, _ = acknowledge_from_form(engine, ella, 2, target, "useful", None)
    assert again.startswith("Not recorded") and "already acknowledged" in again
    with Session(engine) as session:
        ack = session.exec(select(Acknowledgement).where(Acknowledgement.alert_id == target)).one()
        assert (ack.via, ack.feedback, ack.comment, ack.expert_id) == (
            "dashboard",
            "useful",
            "seen it",
            ella.expert_id,
        )
    with pytest.raises(alerts_page.Forbidden):  # another country's alert: not hers
        acknowledge_from_form(engine, ella, 1, alert_id(db, "XYZ0101"), "useful", None)
    with pytest.raises(alerts_page.Forbidden):  # analysts do not acknowledge
        acknowledge_from_form(engine, user(db, "nina"), 1, target, "useful", None)
    engine.dispose()


def test_parse_until() -> None:
    assert alerts_page.parse_until("2030-01-31").isoformat() == "2030-01-31T23:59:59+00:00"
    with pytest.raises(ValueError):
        alerts_page.parse_until("next week")


# --- callbacks over HTTP: roles and scope -----------------------------------------------------
def test_admin_callbacks_refuse_coordinators_analysts_and_experts(app: Flask) -> None:
    callbacks = app.extensions["dash_app"].callback_map
    for name in ("alice", "nina", "ella"):
        client = client_for(app, name)
        for output in ADMIN_CALLBACKS:
            assert output in callbacks
            values = {"silence-submit.n_clicks": 1, "approve-submit.n_clicks": 1}
            response = post_callback(client, callback_body(app, output, values))
            assert response.status_code == 403, (name, output)


def test_an_expert_acknowledges_over_http(app: Flask, db: Session) -> None:
    client = client_for(app, "ella")
    body = callback_body(app, ACK_CALLBACK, {"ack-submit.n_clicks": 1})
    body["state"] = [
        {"id": "ack-alert", "property": "value", "value": alert_id(db, "TST0102")},
        {"id": "ack-feedback", "property": "value", "value": "false_alarm"},
        {"id": "ack-comment", "property": "value", "value": "checked on site"},
    ]
    response = post_callback(client, body)
    assert response.status_code == 200
    assert "acknowledged (False alarm)" in callback_text(response)
    # Someone else's alert is refused outright.
    body["state"][0]["value"] = alert_id(db, "XYZ0101")
    assert post_callback(client, body).status_code == 403
    # The history now shows it.
    shown = post_callback(client, callback_body(app, PAGE_CALLBACK, {"url.pathname": "/alerts"}))
    assert "checked on site" in callback_text(shown)


def test_an_admin_creates_a_silence_and_approves(
    app: Flask, db: Session, database_url: str
) -> None:
    client = client_for(app, "adam")
    body = callback_body(app, SILENCE_CALLBACK, {"silence-submit.n_clicks": 1})
    until = (utcnow() + timedelta(days=7)).date().isoformat()
    body["state"] = [
        {"id": "silence-area", "property": "value", "value": "TST02"},
        {"id": "silence-rule", "property": "value", "value": ""},
        {"id": "silence-until", "property": "value", "value": until},
        {"id": "silence-reason", "property": "value", "value": "team on site already"},
    ]
    response = post_callback(client, body)
    assert response.status_code == 200 and "created for TST02" in callback_text(response)
    body["state"][2]["value"] = "2000-01-01"
    assert "not in the future" in callback_text(post_callback(client, body))
    engine = make_engine(database_url)
    with Session(engine) as session:
        silence = session.exec(select(Silence).where(Silence.area_pcode == "TST02")).one()
        assert silence.author == "adam" and silence.reason == "team on site already"
    approve = callback_body(app, APPROVE_CALLBACK, {"approve-submit.n_clicks": 1})
    approve["state"] = [
        {"id": "approve-alert", "property": "value", "value": alert_id(db, "TST0201")}
    ]
    response = post_callback(client, approve)
    assert response.status_code == 200 and "approved" in callback_text(response)
    with Session(engine) as session:
        assert session.get(Alert, alert_id(db, "TST0201")).review_state == "approved"
    engine.dispose()


def test_a_scoped_admin_cannot_silence_another_country(database_url: str, db: Session) -> None:
    engine = make_engine(database_url)
    message = alerts_page.silence_as(engine, user(db, "xadmin"), "TST01", None, "2099-01-01", "no")
    engine.dispose()
    assert message.startswith("Not created: no area 'TST01' among yours")


# --- pages over HTTP ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "allowed", "refused"),
    [
        ("alice", ["/", "/alerts", "/health", "/exports", "/area/TST0101"],
         ["/users", "/experts"]),
        ("adam", ["/", "/alerts", "/health", "/exports", "/users", "/experts"], []),
        ("nina", ["/", "/alerts", "/exports"], ["/health", "/users", "/experts"]),
        ("ella", ["/", "/alerts"], ["/health", "/exports", "/users", "/experts"]),
    ],
)
def test_page_routes_by_role(app: Flask, name: str, allowed: list[str], refused: list[str]) -> None:
    client = client_for(app, name)
    for path in allowed:
        response = client.get(path)
        assert response.status_code == 200 and "_dash-config" in response.get_data(as_text=True), (
            name,
            path,
        )
    for path in refused:
        response = client.get(path)
        assert response.status_code == 403, (name, path)
        assert "Your role cannot open" in response.get_data(as_text=True)
        # And the page callback, asked directly, answers with the refusal too.
        shown = post_callback(client, callback_body(app, PAGE_CALLBACK, {"url.pathname": path}))
        assert "Not allowed" in callback_text(shown)


def test_health_page(db: Session) -> None:
    health = health_page.health_page_data(db, user(db, "alice"))
    assert [s.health.id for s in health.sources] == ["test-boundaries", "test-dtm"]
    dtm = health.sources[1]
    assert dtm.last_batch_status == "succeeded" and dtm.rows_quarantined == 1
    assert [run.job for run in health.job_runs] == ["cycle"]
    assert health.lease is None
    assert [(c.expert, c.kind, c.target) for c in health.channels] == [
        ("Ella", "capture", "capture:/tmp/…")
    ]
    # A coordinator of another country sees no channel of Ella's (deployed in TST).
    assert health_page.health_page_data(db, user(db, "xena")).channels == []
    text = text_of(health_page.health_page(health))
    assert "health-sources" in text and "Not running" in text and "health-channels" in text


# --- exports page and downloads -------------------------------------------------------------------
def test_export_links_respect_the_scope(db: Session) -> None:
    tess, multi, ella = user(db, "tess"), user(db, "multi"), user(db, "ella")
    href, _ = exports_page.export_link(tess, "scores", "html", None, None)
    assert href == download_href("scores", "html")
    href, why = exports_page.export_link(tess, "scores", "csv", "XYZ", None)
    assert href is None and "outside your scope" in why
    href, why = exports_page.export_link(multi, "scores", "csv", None, None)
    assert href is None and "choose one of your countries" in why
    href, why = exports_page.export_link(tess, "areas", "png", None, None)
    assert href is None and "scores only" in why
    assert exports_page.formats_for("areas") == ["csv", "geojson", "gpkg"]
    with pytest.raises(alerts_page.Forbidden):
        export_link_for(ella, "scores", "csv", None, None)
    assert check_download(tess, "scores", {"format": "csv"}).export.country == "TST"
    with pytest.raises(DownloadRefused) as refused:
        check_download(ella, "scores", {"format": "csv"})
    assert refused.value.status == 403


def test_downloads_are_the_cli_exports(app: Flask) -> None:
    client = client_for(app, "alice")
    csv = client.get("/download/scores?format=csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0].startswith("pcode,admin_level,period,risk,risk_class")
    assert lines[1].startswith("#adm+code,#adm+level,#date")
    assert {line.split(",")[0] for line in lines[2:]} == set(SAMPLE_EXPECTED["risk_classes"])
    assert 'filename="riskwatch-scores-all.csv"' in csv.headers["Content-Disposition"]
    about = client.get("/download/scores?format=csv&part=about")
    assert "Sensitivity: restricted humanitarian data" in about.get_data(as_text=True)
    page = client.get("/download/scores?format=html").get_data(as_text=True)
    assert "window.riskwatchAreas" in page and "<script src" not in page
    png = client.get("/download/scores?format=png")
    image = Image.open(io.BytesIO(png.get_data()))
    assert image.text["Sensitivity"].startswith("Sensitivity:")
    gpkg = client.get("/download/areas?format=gpkg")
    assert gpkg.status_code == 200 and gpkg.get_data()[:15] == b"SQLite format 3"
    geojson = client.get("/download/areas?format=geojson&level=1")
    assert geojson.get_json()["type"] == "FeatureCollection"
    assert client.get("/download/areas?format=png").status_code == 400
    assert client.get("/download/nothing?format=csv").status_code == 404


def test_downloads_check_role_and_country(app: Flask, database_url: str) -> None:
    tess = client_for(app, "tess")
    scoped = tess.get("/download/scores?format=csv").get_data(as_text=True)
    assert "TST0101" in scoped and "XYZ0101" not in scoped
    refused = tess.get("/download/scores?format=csv&country=XYZ")
    assert refused.status_code == 403 and "outside your scope" in refused.get_json()["error"]
    assert client_for(app, "ella").get("/download/scores?format=csv").status_code == 403
    assert client_for(app, "multi").get("/download/scores?format=csv").status_code == 403
    assert app.test_client().get("/download/scores?format=csv").status_code == 401
    engine = make_engine(database_url)
    with Session(engine) as session:
        audited = session.exec(
            select(AuditEvent).where(
                AuditEvent.action == "export.download", AuditEvent.actor == "tess"
            )
        ).all()
    engine.dispose()
    assert audited and audited[0].detail["country"] == "TST"


# --- acknowledgement links ------------------------------------------------------------------------
def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def test_ack_link_acknowledges_once(
    app: Flask, settings: Settings, db: Session, database_url: str
) -> None:
    ella = user(db, "ella")
    target = alert_id(db, "TST0101")
    extra = Alert(
        fingerprint="risk_class_rising:TST0102",
        rule="risk_class_rising",
        area_pcode="TST0102",
        severity="critical",
        country_iso3="TST",
        explanation={"summary": "Risk rose to very high"},
    )
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        session.add(extra)
        session.flush()
        fresh = int(extra.id or 0)
    token = make_ack_token(settings, [fresh], ella.expert_id, utcnow() + timedelta(days=1))
    client = app.test_client()  # no login: the token is the credential
    page = client.get(f"/ack/{token}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Risk rose to very high" in text
    assert 'value="false_alarm"' in text
    assert client.post(f"/ack/{token}", data={"feedback": "useful"}).status_code == 400
    done = client.post(
        f"/ack/{token}", data={"feedback": "useful", "comment": "on it", "csrf_token": _csrf(text)}
    )
    assert done.status_code == 200 and "Recorded: 1 alert(s) acknowledged" in done.get_data(
        as_text=True
    )
    again = client.post(f"/ack/{token}", data={"feedback": "useful", "csrf_token": _csrf(text)})
    assert "already acknowledged" in again.get_data(as_text=True)
    assert "already acknowledged" in client.get(f"/ack/{token}").get_data(as_text=True)
    with Session(engine) as session:
        acks = session.exec(select(Acknowledgement).where(Acknowledgement.alert_id == fresh)).all()
        assert [(a.via, a.feedback, a.comment) for a in acks] == [("link", "useful", "on it")]
    engine.dispose()
    # Tampered and expired tokens are refused; so is a token of another installation.
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/ack/{tampered}").status_code == 403
    expired = make_ack_token(settings, [target], ella.expert_id, utcnow() - timedelta(hours=1))
    response = client.get(f"/ack/{expired}")
    assert response.status_code == 403 and "expired" in response.get_data(as_text=True)
    assert client.post(f"/ack/{expired}", data={"feedback": "useful"}).status_code == 403
    assert client.put(f"/ack/{token}").status_code == 403


def test_drivers_figure_uses_indicator_names() -> None:
    from dashboards.figures import drivers_figure

    figure = drivers_figure([("a_rate", 2.0), ("b_share", 1.0)], {"a_rate": "Abductions"})
    assert list(figure.data[0].y) == ["b share", "Abductions"]  # largest on top
    assert list(figure.data[0].x) == [1.0, 2.0]


def test_admin_actions_refuse_other_roles_without_http(
    db: Session, database_url: str, settings: Settings
) -> None:
    engine = make_engine(database_url)
    for name in ("alice", "nina", "ella", "tess"):
        with pytest.raises(alerts_page.Forbidden):
            alerts_page.silence_as(engine, user(db, name), "TST01", None, "2099-01-01", "x")
        with pytest.raises(alerts_page.Forbidden):
            alerts_page.approve_as(engine, settings, user(db, name), alert_id(db, "TST0201"))
    # A focal point (an expert another expert reports to) may manage their team's alerts.
    with session_scope(engine) as session:
        ella = session.exec(select(Expert).where(Expert.name == "Ella")).one()
        session.add(Expert(name="Fred", focal_point_id=ella.id))
    assert alerts_page.may_manage(db, user(db, "ella"))
    message = alerts_page.silence_as(
        engine, user(db, "ella"), "TST0102", None, "2099-01-01", "focal point test"
    )
    assert message.startswith("Silence") and "TST0102" in message
    outside = alerts_page.silence_as(
        engine, user(db, "ella"), "TST0201", None, "2099-01-01", "outside her deployment"
    )
    assert outside.startswith("Not created: no area 'TST0201' among yours")
    with session_scope(engine) as session:
        fred = session.exec(select(Expert).where(Expert.name == "Fred")).one()
        session.delete(fred)
    engine.dispose()


def test_a_scoped_coordinator_cannot_reach_another_country(app: Flask, db: Session) -> None:
    client = client_for(app, "tess")  # coordinator limited to TST
    shown = post_callback(
        client, callback_body(app, PAGE_CALLBACK, {"url.pathname": "/area/XYZ0101"})
    )
    assert shown.status_code == 200 and "Unknown area" in callback_text(shown)
    alerts = post_callback(client, callback_body(app, PAGE_CALLBACK, {"url.pathname": "/alerts"}))
    assert "XYZ0101" not in callback_text(alerts) and "TST0101" in callback_text(alerts)
    body = callback_body(app, ACK_CALLBACK, {"ack-submit.n_clicks": 1})
    body["state"] = [
        {"id": "ack-alert", "property": "value", "value": alert_id(db, "XYZ0101")},
        {"id": "ack-feedback", "property": "value", "value": "useful"},
        {"id": "ack-comment", "property": "value", "value": None},
    ]
    assert post_callback(client, body).status_code == 403
    link = callback_body(
        app,
        EXPORT_LINK_CALLBACK,
        {
            "export-what.value": "scores",
            "export-format.value": "csv",
            "export-country.value": "XYZ",
            "export-level.value": None,
        },
    )
    answer = post_callback(client, link)
    assert answer.status_code == 200
    assert answer.get_json()["response"]["export-link"]["href"] == ""
    assert "outside your scope" in callback_text(answer)
    assert client.get("/download/areas?format=geojson&country=XYZ").status_code == 403


def test_alert_history_lists_decisions_acks_and_messages() -> None:
    moment = utcnow()
    history = {
        "decisions": [{"at": moment, "decision": "sent", "detail": {"by": "engine"}}],
        "acknowledgements": [
            {"at": moment, "by": "Ella", "via": "link", "feedback": "useful", "comment": "ok"}
        ],
        "notifications": [
            {
                "id": 7,
                "kind": "alert",
                "channel": "email",
                "status": "delivered",
                "attempts": 2,
                "created_at": moment,
                "delivered_at": moment,
            }
        ],
    }
    text = text_of(alerts_page._history(history))
    assert "3 event(s)" in text and "sent (by: engine)" in text
    assert "acknowledged by Ella via link, feedback: useful" in text
    assert "alert message #7 via email: delivered after 2 attempt(s)" in text


def test_stale_sources_flag_the_area_and_the_health_page(db: Session) -> None:
    from dashboards.layout import score_section

    later = utcnow() + timedelta(days=45)  # past test-dtm's 30-day cadence
    assert not data.area_is_stale(db, "TST0101")
    assert data.area_is_stale(db, "TST0101", later)
    assert not data.area_is_stale(db, "XYZ0101", utcnow())
    assert "area-stale" in text_of(score_section(data.area_scores(db, "TST0101"), True))
    assert "area-stale" not in text_of(score_section(data.area_scores(db, "TST0101"), False))
    health = health_page.health_page_data(db, user(db, "adam"), now=later)
    statuses = {row.health.id: row.health.status for row in health.sources}
    assert statuses == {"test-boundaries": "ok", "test-dtm": "stale"}
    assert "1 stale" in text_of(health_page.health_page(health))
