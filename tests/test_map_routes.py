"""The map's values, routes and callback: classes per area, the gate, country scope, gzip.

Runs on SQLite and PostgreSQL (the sample store of dashboards.testing plus a small score run).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from dashboards.app import create_app
from dashboards.auth import CSRF_COOKIE_NAME, CSRF_HEADER_NAME, CurrentUser
from dashboards.map_page import (
    ALL_COUNTRIES,
    LATEST,
    ScopeError,
    allowed_countries,
    default_level,
    legend_entries,
    map_page_content,
    map_state,
    tile_source_origin,
)
from dashboards.testing import populate_sample_database
from riskwatch import map_geometry, map_values, users
from riskwatch.config import load_settings
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.models import AreaScore, Hotspot, IngestBatch, ScoreRun, Source
from riskwatch.users import create_user

pytestmark = pytest.mark.db
PASSWORD = "correct horse"
P1 = date(2024, 1, 31)
P2 = date(2024, 2, 29)
STATE_OUTPUT = "map-state.data"
TST_AREAS = ["TST0101", "TST0102", "TST0201"]


@pytest.fixture(scope="module", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    # Production Argon2 parameters cost ~0.2 s per hash; the rules under test are the same.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        )
        patch.setattr(users, "_dummy_hash", None)
        yield


def add_score_run(session: Session) -> None:
    """Two periods of scores at admin level 2, one hotspot and one indicator score."""
    run = ScoreRun(
        profile_hash="x",
        data_as_of=datetime(2024, 3, 1, tzinfo=UTC),
        params_hash="y",
        status="succeeded",
    )
    session.add(run)
    session.flush()
    assert run.id is not None

    def score(pcode: str, period: date, risk: float | None, risk_class: str, **extra: Any) -> None:
        session.add(
            AreaScore(
                run_id=run.id, area_pcode=pcode, period=period, risk=risk,
                risk_class=risk_class, exposure=None if risk is None else risk / 2, **extra,
            )
        )  # fmt: skip

    score("TST0101", P1, 1.0, "very_low")
    score("TST0101", P2, 7.0, "very_high", drivers={"indicators": {"conflict": {"score": 9.0}}})
    score("TST0102", P1, None, "insufficient_data")
    score("TST0102", P2, 4.0, "medium")
    score("TST0201", P1, 2.5, "low")  # nothing in P2: "no data" then, never the older value
    score("XYZ0101", P1, 3.0, "low")  # XYZ's latest period is P1
    session.add(
        Hotspot(
            run_id=run.id, area_pcode="TST0101", period=P2, variable="risk",
            hotspot_class="hot_99", temporal_class="new",
        )
    )  # fmt: skip
    session.add(
        Hotspot(
            run_id=run.id, area_pcode="TST0101", period=P2, variable="conflict",
            hotspot_class="hot_95", temporal_class="consecutive",
        )
    )  # fmt: skip


@pytest.fixture(scope="module")
def database_url(module_database_url: str) -> str:
    url = populate_sample_database(module_database_url, demo=True)
    engine = make_engine(url)
    with session_scope(engine) as session:
        add_score_run(session)
        create_user(session, "alice", PASSWORD, "coordinator")
        create_user(session, "tina", PASSWORD, "coordinator", countries=["TST"])
    engine.dispose()
    return url


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Flask:
    settings = load_settings(
        overrides={"database_url": database_url, "data_dir": str(tmp_path)}, cwd=tmp_path
    )
    return create_app(settings)


@pytest.fixture
def db(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    with Session(engine) as session:
        yield session
    engine.dispose()


def login(client: FlaskClient, username: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    response = client.post(
        "/login", data={"csrf_token": token.group(1), "username": username, "password": PASSWORD}
    )
    assert response.status_code == 302


def geometry_of(client: FlaskClient, query: str = "level=2") -> dict[str, Any]:
    response = client.get(f"/map/geometry?{query}", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Encoding"] == "gzip"
    return map_geometry.decode(gzip.decompress(response.get_data()))


def values_of(client: FlaskClient, query: str) -> dict[str, Any]:
    response = client.get(f"/map/values?{query}", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Encoding"] == "gzip"
    return json.loads(gzip.decompress(response.get_data()))


def post_state_callback(app: Flask, client: FlaskClient, country: str) -> Any:
    spec = app.extensions["dash_app"].callback_map[STATE_OUTPUT]
    values = {
        "map-country.value": country,
        "map-level.value": 2,
        "map-variable.value": "risk",
        "map-period.value": LATEST,
    }
    body = {
        "output": STATE_OUTPUT,
        "outputs": spec["output"].to_dict(),
        "inputs": [
            {**item, "value": values[f"{item['id']}.{item['property']}"]} for item in spec["inputs"]
        ],
        "state": [],
        "changedPropIds": ["map-country.value"],
    }
    cookie = client.get_cookie(CSRF_COOKIE_NAME)
    headers = {CSRF_HEADER_NAME: cookie.value} if cookie is not None else {}
    return client.post("/_dash-update-component", json=body, headers=headers)


# Values --------------------------------------------------------------------------------------
def test_latest_values_per_country_and_no_data_never_low(db: Session) -> None:
    pcodes = [*TST_AREAS, "XYZ0101"]
    values = map_values.area_values(db, pcodes, level=2)
    very_high, medium, low = 4, 2, 1
    assert values.classes == [very_high, medium, map_values.NO_DATA_CODE, low]
    assert values.values == [7.0, 4.0, None, 3.0]
    assert values.periods == [P2.isoformat(), P2.isoformat(), None, P1.isoformat()]
    hot_99 = map_values.HOTSPOT_CLASSES.index("hot_99")
    assert values.hotspots[0] == hot_99
    assert map_values.TEMPORAL_CLASSES[values.temporal[0]] == "new"
    assert values.hotspots[1:] == [map_values.NO_HOTSPOT_CODE] * 3


def test_an_earlier_period_and_insufficient_data(db: Session) -> None:
    values = map_values.area_values(db, TST_AREAS, level=2, period=P1)
    assert values.classes == [0, map_values.NO_DATA_CODE, 1]
    assert values.values[1] is None


def test_dimensions_and_indicators_use_the_profile_breaks(db: Session) -> None:
    exposure = map_values.area_values(db, TST_AREAS, level=2, variable="exposure")
    assert exposure.values[:2] == [3.5, 2.0] and exposure.classes[:2] == [2, 1]
    indicator = map_values.area_values(db, TST_AREAS, level=2, variable="indicator:conflict")
    assert indicator.values[0] == 9.0 and indicator.classes[0] == 4
    assert map_values.HOTSPOT_CLASSES[indicator.hotspots[0]] == "hot_95"
    with pytest.raises(ValueError):
        map_values.area_values(db, TST_AREAS, level=2, variable="population")


def test_stale_areas_are_flagged(db: Session) -> None:
    values = map_values.area_values(db, TST_AREAS, level=2, stale={"TST0102"})
    assert values.stale == [0, 1, 0]


def test_class_of_breaks() -> None:
    breaks = map_values.DEFAULT_THRESHOLDS
    assert [map_values.class_of(v, breaks) for v in (0, 1.99, 2.0, 5.0, 10)] == [0, 0, 1, 3, 4]
    assert map_values.class_of(None, breaks) == map_values.NO_DATA_CODE
    assert map_values.class_of(float("nan"), breaks) == map_values.NO_DATA_CODE


def test_choices_follow_the_scope(db: Session) -> None:
    everything = map_values.map_choices(db)
    assert everything.countries == ["TST", "XYZ"] and everything.levels == [1, 2]
    assert everything.periods == [P2, P1]
    assert ("indicator:conflict", "conflict") in everything.variables
    scoped = map_values.map_choices(db, ["XYZ"])
    assert scoped.countries == ["XYZ"] and scoped.levels == [2] and scoped.periods == [P1]


# Pure functions of the page and callback -----------------------------------------------------
def user(countries: tuple[str, ...] | None) -> CurrentUser:
    return CurrentUser(1, "u", "coordinator", countries, None, False)


def test_allowed_countries() -> None:
    assert allowed_countries(None, []) is None
    assert allowed_countries(None, ["xyz"]) == ["XYZ"]
    assert allowed_countries(["TST"], []) == ["TST"]
    assert allowed_countries(["TST", "XYZ"], ["tst"]) == ["TST"]
    with pytest.raises(ScopeError):
        allowed_countries(["TST"], ["XYZ"])


def test_map_state(db: Session) -> None:
    choices = map_values.map_choices(db)
    state = map_state(
        user(None), choices, country=ALL_COUNTRIES, level=2, variable="risk", period=LATEST
    )
    assert state["countries"] == ALL_COUNTRIES and state["period"] == LATEST
    assert state["geometry_url"] == "/map/geometry" and state["tile_url"] == ""
    earlier = map_state(
        user(("TST",)), choices, country="TST", level=2, variable="exposure", period="2024-01-31"
    )
    assert earlier["countries"] == "TST" and earlier["period"] == "2024-01-31"
    with pytest.raises(ScopeError):
        map_state(user(("TST",)), choices, country="XYZ", level=2, variable="risk", period=None)
    for bad in ({"level": 7}, {"variable": "population"}, {"period": "2020-01-01"}):
        arguments = {"country": ALL_COUNTRIES, "level": 2, "variable": "risk", "period": None}
        with pytest.raises(ValueError):
            map_state(user(None), choices, **{**arguments, **bad})


def test_legend_and_default_level() -> None:
    entries = legend_entries()
    assert [entry["class"] for entry in entries] == [
        "very_low", "low", "medium", "high", "very_high", "insufficient_data",
    ]  # fmt: skip
    assert [entry["hatched"] for entry in entries] == [False] * 5 + [True]
    assert len({entry["colour"] for entry in entries}) == 6
    assert default_level([1, 2]) == 2 and default_level([1, 2], 1) == 1
    assert default_level([]) is None


def test_page_offers_only_the_users_countries(db: Session) -> None:
    text = json.dumps([component.to_plotly_json() for component in map_page_content(
        db, user(("TST",)))], default=lambda o: o.to_plotly_json())  # fmt: skip
    assert '"value": "TST"' in text and "XYZ" not in text
    assert "SYNTHETIC DEMO DATA" in text and "Sources: " in text


# Routes --------------------------------------------------------------------------------------
def test_routes_refuse_requests_without_a_session(app: Flask) -> None:
    client = app.test_client()
    for url in (
        "/map/geometry?level=2",
        "/map/values?level=2",
        "/map/geometry?level=2&lod=4&tile=5/16/15",
        "/map/vendor/leaflet.js",
    ):
        assert client.get(url).status_code == 401, url


def test_geometry_and_values_for_an_unrestricted_user(app: Flask) -> None:
    client = app.test_client()
    login(client, "alice")
    geometry = geometry_of(client)
    assert geometry["pcodes"] == [*TST_AREAS, "XYZ0101"]
    assert geometry["names"][0] == "North-West"
    values = values_of(client, f"level=2&lod={geometry['lod']}&variable=risk&period=latest")
    assert values["key"] == geometry["key"] and values["areas"] == 4
    assert values["classes"] == [4, 2, map_values.NO_DATA_CODE, 1]
    earlier = values_of(client, f"level=2&lod={geometry['lod']}&period=2024-01-31")
    assert earlier["classes"][:3] == [0, map_values.NO_DATA_CODE, 1]
    assert client.get("/map/values?level=2&period=yesterday").status_code == 400
    assert client.get("/map/vendor/leaflet.js").status_code == 200


def test_a_scoped_user_never_receives_another_countrys_areas(app: Flask) -> None:
    client = app.test_client()
    login(client, "tina")
    geometry = geometry_of(client)
    assert geometry["pcodes"] == TST_AREAS
    assert geometry["countries"] == ["TST"]
    values = values_of(client, f"level=2&lod={geometry['lod']}")
    assert values["areas"] == 3 and len(values["classes"]) == 3
    assert client.get("/map/geometry?level=2&countries=XYZ").status_code == 403
    assert client.get("/map/geometry?level=2&countries=TST,XYZ").status_code == 403
    assert client.get("/map/values?level=2&countries=XYZ").status_code == 403
    # A tile over the other country's area holds nothing for this user.
    lod = len(map_geometry.LOD_ZOOMS) - 1
    z = map_geometry.tile_zoom(lod)
    tile = client.get(f"/map/geometry?level=2&lod={lod}&tile={z}/{_tile_of(5.5, 5.5, z)}")
    assert tile.status_code == 200
    assert map_geometry.decode(tile.get_data())["areas"] == 0


def _tile_of(lon: float, lat: float, zoom: int) -> str:
    import math

    n = 2**zoom
    x = int((lon + 180) / 360 * n)
    rad = math.radians(lat)
    y = int((1 - math.log(math.tan(rad) + 1 / math.cos(rad)) / math.pi) / 2 * n)
    return f"{x}/{y}"


def test_the_state_callback_checks_the_scope(app: Flask) -> None:
    client = app.test_client()
    assert post_state_callback(app, client, "TST").status_code in (401, 403)  # no session
    login(client, "tina")
    assert post_state_callback(app, client, "XYZ").status_code == 403
    answer = post_state_callback(app, client, "TST")
    assert answer.status_code == 200
    state = answer.get_json()["response"]["map-state"]["data"]
    assert state["countries"] == "TST" and state["level"] == 2


def test_tile_origin_for_the_content_security_policy() -> None:
    assert tile_source_origin("") is None
    assert tile_source_origin("https://tile.openstreetmap.org/{z}/{x}/{y}.png") == (
        "https://tile.openstreetmap.org"
    )
    assert tile_source_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png") == (
        "https://*.tile.example.org"
    )
    assert tile_source_origin("javascript:alert(1)") is None


def test_configured_tiles_are_allowed_by_the_page_policy(database_url: str, tmp_path: Path) -> None:
    settings = load_settings(
        overrides={
            "database_url": database_url,
            "data_dir": str(tmp_path),
            "map": {"tile_url": "https://tiles.example.org/{z}/{x}/{y}.png",
                    "tile_attribution": "Example tiles"},
        },
        cwd=tmp_path,
    )  # fmt: skip
    client = create_app(settings).test_client()
    policy = client.get("/login").headers["Content-Security-Policy"]
    assert "img-src https://tiles.example.org 'self'" in policy
    login(client, "alice")
    answer = post_state_callback(client.application, client, ALL_COUNTRIES)
    state = answer.get_json()["response"]["map-state"]["data"]
    assert state["tile_url"].startswith("https://tiles.example.org/")
    assert state["tile_attribution"] == "Example tiles"


def test_areas_resting_on_a_stale_source_are_flagged(app: Flask, database_url: str) -> None:
    # The sample DTM figures are from 2024: with a 30-day cadence that source is stale now.
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            source = session.get(Source, "test-dtm")
            assert source is not None
            source.expected_cadence_days = 30
            for batch in session.exec(
                select(IngestBatch).where(IngestBatch.source_id == "test-dtm")
            ):
                batch.reporting_dates = ["2024-02-01"]
                session.add(batch)
        client = app.test_client()
        login(client, "alice")
        values = values_of(client, "level=2")
        assert values["stale"] == [1, 1, 1, 1]  # every level-2 area has a current DTM value
    finally:
        with session_scope(engine) as session:
            source = session.get(Source, "test-dtm")
            assert source is not None
            source.expected_cadence_days = None
            for batch in session.exec(
                select(IngestBatch).where(IngestBatch.source_id == "test-dtm")
            ):
                batch.reporting_dates = None
                session.add(batch)
        engine.dispose()
