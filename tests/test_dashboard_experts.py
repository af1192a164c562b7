"""The experts page (admins only): the listing, adding and ending deployments, re-enabling a
channel, deactivating an expert - the pure functions on both backends, the audit trail, the
refusals for other roles, and the callback over HTTP (role checked on the server, CSRF)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from dash.exceptions import PreventUpdate
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from dashboards.app import create_app
from dashboards.auth import CurrentUser
from dashboards.callbacks import experts_from_form, render_page
from dashboards.layout import navigation
from dashboards.pages import experts as experts_page
from dashboards.pages.alerts import Forbidden
from dashboards.testing import populate_sample_database
from riskwatch import users
from riskwatch.config import Settings
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.models import AuditEvent, Channel, Deployment, Expert
from riskwatch.experts import ChannelSpec, add_expert, deployed_expert_ids
from riskwatch.timeutil import utcnow
from riskwatch.users import create_user
from tests.test_dashboard_app import (
    PASSWORD,
    callback_body,
    callback_text,
    login,
    make_settings,
    post_callback,
)

pytestmark = pytest.mark.db

EXPERTS_CALLBACK = (
    "..deploy-result.children...end-result.children...reenable-result.children"
    "...deactivate-result.children...experts-list.children...deploy-expert.options"
    "...end-deployment.options...reenable-channel.options...deactivate-expert.options.."
)
LEAKY_ERROR = "410 Gone from https://hooks.example/abc?token=s3cret for omar@example.org"


def _user(name: str, role: str, countries: tuple[str, ...] | None = None) -> CurrentUser:
    return CurrentUser(id=1, username=name, role=role, countries=countries, expert_id=None,
                       is_demo=False)


ADMIN = _user("adam", "admin")
XYZ_ADMIN = _user("xadmin", "admin", ("XYZ",))
OTHER_ROLES = [_user("alice", "coordinator"), _user("ella", "expert"), _user("nina", "analyst")]


@dataclass
class Store:
    engine: Engine
    settings: Settings
    url: str
    ella: int
    omar: int
    omar_channel: int


@pytest.fixture(scope="module", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        )
        patch.setattr(users, "_dummy_hash", None)
        yield


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    """The sample store (Ella, deployed to TST01) plus Omar: French, deployed to XYZ0101, Ella
    his focal point, his one channel disabled with an error text quoting a URL and an address."""
    populate_sample_database(database_url, demo=True)
    settings = make_settings(database_url, tmp_path)
    engine = make_engine(database_url)
    with Session(engine) as session:
        ella = int(session.exec(select(Expert.id).where(Expert.name == "Ella")).one())
    added = add_expert(engine, settings, "Omar", channels=[ChannelSpec("capture", "capture")],
                       language="fr", areas=["XYZ0101"], focal_point_id=ella)
    with session_scope(engine) as session:
        channel = session.get(Channel, added.channel_ids[0])
        assert channel is not None
        channel.healthy = False
        channel.disabled_at = utcnow()
        channel.consecutive_failures = 3
        channel.last_error = LEAKY_ERROR
        channel.last_error_at = utcnow()
        session.add(channel)
    try:
        yield Store(engine, settings, database_url, ella, added.expert_id, added.channel_ids[0])
    finally:
        engine.dispose()


def _page(store: Store, user: CurrentUser = ADMIN) -> experts_page.ExpertsPageData:
    with Session(store.engine) as session:
        return experts_page.experts_page_data(session, user)


def _audit(store: Store, action: str) -> list[AuditEvent]:
    with Session(store.engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def _text(component: Any) -> str:
    return json.dumps(component, default=lambda c: c.to_plotly_json(), ensure_ascii=False)


# --- listing ------------------------------------------------------------------------------------
def test_listing_shows_experts_channels_and_deployments_redacted(store: Store) -> None:
    data = _page(store)
    by_name = {e.name: e for e in data.experts}
    assert list(by_name) == ["Ella", "Omar"]
    ella, omar = by_name["Ella"], by_name["Omar"]
    assert (ella.language, ella.active, ella.focal_point_name) == ("en", True, None)
    assert (omar.language, omar.focal_point_id, omar.focal_point_name) == ("fr", ella.id, "Ella")
    assert [(c.kind, c.target, c.healthy) for c in ella.channels] == [
        ("capture", "capture:/tmp/…", True)
    ]
    assert [(d.area_pcode, d.area_name, d.starts_on, d.ends_on) for d in ella.deployments] == [
        ("TST01", "North", None, None)
    ]
    (channel,) = omar.channels
    assert channel.disabled_at is not None and channel.consecutive_failures == 3
    assert channel.last_error == "410 Gone from [url] for [address]"
    text = _text(experts_page.experts_page(data))
    for expected in ("experts-table", "Ella", "Omar", "North", "TST01", "Elsewhere", "disabled",
                     "[url]", "deploy-submit", "end-submit", "reenable-submit",
                     "deactivate-confirm"):
        assert expected in text, expected
    assert "s3cret" not in text and "omar@example.org" not in text and "hooks.example" not in text
    options = experts_page.form_options(data)
    assert [o["value"] for o in options["reenable-channel"]] == [store.omar_channel]
    assert len(options["end-deployment"]) == 2 and len(options["deploy-expert"]) == 2
    # The page through the dispatcher, and the navigation link, for admins only.
    with Session(store.engine) as session:
        _, _, content = render_page(session, ADMIN, "/experts")
    assert "experts-table" in _text(content)
    assert "nav-experts" in _text(navigation(ADMIN))
    assert "nav-experts" not in _text(navigation(OTHER_ROLES[0]))


def test_a_scoped_admin_sees_only_the_experts_deployed_in_their_countries(store: Store) -> None:
    assert [e.name for e in _page(store, XYZ_ADMIN).experts] == ["Omar"]
    message = experts_page.end_deployment_as(store.engine, XYZ_ADMIN, _deployment(store, "TST01"))
    assert message.startswith("Not ended: no deployment")
    message = experts_page.add_deployment_as(store.engine, XYZ_ADMIN, store.omar, "TST02", "", "")
    assert message == "Not added: no area 'TST02' among yours."
    message = experts_page.deactivate_expert_as(store.engine, store.settings, XYZ_ADMIN,
                                                store.ella)
    assert message.startswith("Not deactivated: no expert")
    assert _audit(store, "deployment_added") == _audit(store, "expert_removed") == []


# --- add a deployment ---------------------------------------------------------------------------
def test_add_a_deployment(store: Store) -> None:
    message = experts_page.add_deployment_as(
        store.engine, ADMIN, store.ella, " tst02 ", "2026-01-01", "2026-12-31"
    )
    assert message.startswith("Deployment ")
    assert "South (TST02), 2026-01-01 to 2026-12-31" in message
    with Session(store.engine) as session:
        row = session.exec(select(Deployment).where(Deployment.area_pcode == "TST02")).one()
        assert (row.expert_id, row.starts_on, row.ends_on) == (
            store.ella, date(2026, 1, 1), date(2026, 12, 31)
        )
        assert store.ella in deployed_expert_ids(session, "TST0201", on=date(2026, 6, 1))
        assert store.ella not in deployed_expert_ids(session, "TST0201", on=date(2027, 1, 1))
    (event,) = _audit(store, "deployment_added")
    assert (event.actor, event.object_id) == ("adam", str(row.id))
    assert event.detail == {"expert_id": store.ella, "area": "TST02", "from": "2026-01-01",
                            "to": "2026-12-31"}
    # The same area again in an overlapping period, reversed dates, a bad date: refused.
    again = experts_page.add_deployment_as(store.engine, ADMIN, store.ella, "TST02", "2026-06-01",
                                           "")
    assert again.startswith("Not added: Ella is already deployed to TST02")
    reversed_dates = experts_page.add_deployment_as(store.engine, ADMIN, store.ella, "TST0201",
                                                    "2026-02-01", "2026-01-01")
    assert reversed_dates.startswith("Not added:") and "before the start" in reversed_dates
    bad = experts_page.add_deployment_as(store.engine, ADMIN, store.ella, "TST0201", "soon", "")
    assert bad == "Not added: from: 'soon' is not a date (YYYY-MM-DD)"
    assert experts_page.add_deployment_as(store.engine, ADMIN, None, "TST0201", "", "") == (
        "Not added: choose an expert first"
    )
    assert len(_audit(store, "deployment_added")) == 1


def test_an_unknown_pcode_is_refused(store: Store) -> None:
    message = experts_page.add_deployment_as(store.engine, ADMIN, store.ella, "NOPE99", "", "")
    assert message.startswith("Not added: unknown area pcode(s): NOPE99")
    assert experts_page.add_deployment_as(store.engine, ADMIN, store.ella, " ", "", "") == (
        "Not added: give the area's pcode"
    )
    with Session(store.engine) as session:
        assert len(session.exec(select(Deployment)).all()) == 2
    assert _audit(store, "deployment_added") == []


# --- end a deployment ---------------------------------------------------------------------------
def _deployment(store: Store, pcode: str) -> int:
    with Session(store.engine) as session:
        return int(session.exec(select(Deployment.id).where(Deployment.area_pcode == pcode)).one())


def test_end_a_deployment(store: Store) -> None:
    today = utcnow().date()
    target = _deployment(store, "TST01")
    message = experts_page.end_deployment_as(store.engine, ADMIN, target)
    yesterday = today - timedelta(days=1)
    assert message == f"Deployment {target} ended; its last day was {yesterday.isoformat()}."
    with Session(store.engine) as session:
        assert session.get(Deployment, target).ends_on == yesterday
        assert store.ella not in deployed_expert_ids(session, "TST0101", on=today)
        assert store.ella in deployed_expert_ids(session, "TST0101", on=yesterday)
    (event,) = _audit(store, "deployment_ended")
    assert (event.actor, event.object_id, event.detail["area"], event.detail["last_day"]) == (
        "adam", str(target), "TST01", yesterday.isoformat()
    )
    again = experts_page.end_deployment_as(store.engine, ADMIN, target)
    assert again.startswith(f"Not ended: deployment {target} already ended")
    assert target not in [o["value"] for o in experts_page.form_options(_page(store))[
        "end-deployment"]]
    # A deployment that has not started yet is removed (its period never comes).
    future = (today + timedelta(days=30)).isoformat()
    experts_page.add_deployment_as(store.engine, ADMIN, store.ella, "TST02", future, "")
    planned = _deployment(store, "TST02")
    assert experts_page.end_deployment_as(store.engine, ADMIN, planned) == (
        f"Deployment {planned} had not started; it was removed."
    )
    with Session(store.engine) as session:
        assert session.get(Deployment, planned) is None
    assert [e.object_id for e in _audit(store, "deployment_removed")] == [str(planned)]
    assert experts_page.end_deployment_as(store.engine, ADMIN, 99999).startswith(
        "Not ended: no deployment 99999"
    )


# --- re-enable a channel ------------------------------------------------------------------------
def test_reenable_a_disabled_channel(store: Store) -> None:
    message = experts_page.reenable_channel_as(store.engine, ADMIN, store.omar_channel)
    assert message.startswith(f"Channel {store.omar_channel} re-enabled")
    with Session(store.engine) as session:
        channel = session.get(Channel, store.omar_channel)
        assert channel.disabled_at is None and channel.healthy
        assert channel.consecutive_failures == 0
    (event,) = _audit(store, "channel_enabled")
    assert (event.actor, event.object_id) == ("adam", str(store.omar_channel))
    assert experts_page.form_options(_page(store))["reenable-channel"] == []
    assert experts_page.reenable_channel_as(store.engine, ADMIN, 4242).startswith(
        "Not re-enabled: no channel 4242"
    )
    assert experts_page.reenable_channel_as(store.engine, ADMIN, "") == (
        "Not re-enabled: choose a channel first"
    )


# --- deactivate an expert -----------------------------------------------------------------------
def test_deactivate_an_expert(store: Store) -> None:
    message = experts_page.deactivate_expert_as(store.engine, store.settings, ADMIN, store.omar)
    assert message.startswith(f"Expert {store.omar} (Omar) deactivated")
    (event,) = _audit(store, "expert_removed")
    assert (event.actor, event.object_id) == ("adam", str(store.omar))
    data = _page(store)
    omar = next(e for e in data.experts if e.id == store.omar)
    assert not omar.active and omar.channels[0].target == "(removed)"
    options = experts_page.form_options(data)
    assert [o["value"] for o in options["deactivate-expert"]] == [store.ella]
    assert options["reenable-channel"] == []  # a removed expert's channel is not re-enabled
    refused = experts_page.reenable_channel_as(store.engine, ADMIN, store.omar_channel)
    assert refused == f"Not re-enabled: channel {store.omar_channel} belongs to a removed expert."
    again = experts_page.deactivate_expert_as(store.engine, store.settings, ADMIN, store.omar)
    assert again == f"Not deactivated: unknown expert id {store.omar}"
    assert "(deactivated)" in _text(experts_page.experts_page(data))


# --- the callback's pure function and the refusals ----------------------------------------------
def _clicks(action: str) -> list[int | None]:
    return [1 if name == action else None for name in experts_page.ACTIONS]


def test_the_callback_dispatches_the_pressed_button(store: Store) -> None:
    fields = [store.ella, "TST02", "", "", None, None, None]
    values = [*_clicks(experts_page.ADD_DEPLOYMENT), *fields]
    outputs = experts_from_form(store.engine, store.settings, ADMIN,
                                experts_page.ADD_DEPLOYMENT, values)
    assert len(outputs) == 9
    assert outputs[0].startswith("Deployment ") and outputs[1:4] == ("", "", "")
    assert "South" in _text(outputs[4])
    assert len(outputs[6]) == 3  # end-deployment choices now include the new one
    with pytest.raises(PreventUpdate):  # no button pressed (the page just appeared)
        experts_from_form(store.engine, store.settings, ADMIN, experts_page.ADD_DEPLOYMENT,
                          [None, None, None, None, *fields])
    with pytest.raises(PreventUpdate):
        experts_from_form(store.engine, store.settings, ADMIN, "url", values)


@pytest.mark.parametrize("who", OTHER_ROLES, ids=lambda u: u.role)
def test_other_roles_are_refused_everything(store: Store, who: CurrentUser) -> None:
    engine, settings = store.engine, store.settings
    calls = [
        lambda: _page(store, who),
        lambda: experts_page.add_deployment_as(engine, who, store.ella, "TST02", "", ""),
        lambda: experts_page.end_deployment_as(engine, who, _deployment(store, "TST01")),
        lambda: experts_page.reenable_channel_as(engine, who, store.omar_channel),
        lambda: experts_page.deactivate_expert_as(engine, settings, who, store.omar),
        lambda: experts_page.experts_action(engine, settings, who, experts_page.ADD_DEPLOYMENT,
                                            experts_page.ExpertsForm(store.ella, "TST02")),
        # The role is checked before anything else, even before "was a button pressed".
        lambda: experts_from_form(engine, settings, who, None, [None] * 11),
    ]
    for call in calls:
        with pytest.raises(Forbidden):
            call()
    with Session(engine) as session:
        assert session.exec(select(AuditEvent).where(
            col(AuditEvent.action).in_(["deployment_added", "deployment_ended", "expert_removed",
                                        "channel_enabled"]))).all() == []
        _, _, content = render_page(session, who, "/experts")
    assert "Not allowed" in _text(content)


# --- over HTTP ----------------------------------------------------------------------------------
def test_the_page_and_its_callback_over_http(store: Store, tmp_path: Path) -> None:
    with session_scope(store.engine) as session:
        create_user(session, "adam", PASSWORD, "admin")
        create_user(session, "alice", PASSWORD, "coordinator")
        create_user(session, "nina", PASSWORD, "analyst")
        create_user(session, "ella", PASSWORD, "expert", expert_id=store.ella)
    app = create_app(store.settings)
    body = callback_body(app, EXPERTS_CALLBACK, {"end-submit.n_clicks": 1})
    body["changedPropIds"] = ["end-submit.n_clicks"]
    body["state"] = [{**item, "value": None} for item in body["state"]]
    for item in body["state"]:
        if item["id"] == "end-deployment":
            item["value"] = _deployment(store, "TST01")
    for name in ("alice", "nina", "ella"):
        client = app.test_client()
        assert login(client, name).status_code == 302
        assert client.get("/experts").status_code == 403, name
        assert post_callback(client, body).status_code == 403, name
    client = app.test_client()
    assert login(client, "adam").status_code == 302
    page = client.get("/experts")
    assert page.status_code == 200 and "_dash-config" in page.get_data(as_text=True)
    assert post_callback(client, body, csrf=False).status_code == 403  # no CSRF header
    assert _audit(store, "deployment_ended") == []
    response = post_callback(client, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "ended; its last day was" in callback_text(response)
    (event,) = _audit(store, "deployment_ended")
    assert event.actor == "adam"
