"""The dashboard's data functions, figures and page rendering, without a web server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboards import data
from dashboards.auth import CurrentUser
from dashboards.callbacks import render_page
from dashboards.figures import series_figure
from dashboards.layout import DEMO_BANNER_TEXT, UNKNOWN_AREA_TEXT
from dashboards.testing import SAMPLE_EXPECTED, add_sample_data, build_sample_database
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.migrate import upgrade

pytestmark = pytest.mark.db

USER = CurrentUser(id=1, username="alice", role="coordinator", countries=None, expert_id=None,
                   is_demo=False)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = build_sample_database(tmp_path_factory.mktemp("data") / "t.db", demo=True)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def _text(component: object) -> str:
    """Everything a rendered component tree says, as one JSON string (for searching)."""
    return json.dumps(component, default=lambda value: value.to_plotly_json(), ensure_ascii=False)


def test_assessment_types_are_not_added_together() -> None:
    assert data.combine_assessments([("SA", "", 5.0), ("BA", "a", 1.0), ("BA", "b", 2.0)]) == 3.0
    assert data.combine_assessments([("ETT", "", 4.0), ("SA", "", 6.0)]) == 6.0
    assert data.combine_assessments([("", "", 7.0)]) == 7.0
    assert data.combine_assessments([]) is None


def test_area_detail(db: Session) -> None:
    detail = data.area_detail(db, "TST01")
    assert detail is not None
    assert (detail.name, detail.admin_level, detail.country_iso3) == ("North", 1, "TST")
    assert detail.parent is not None and detail.parent.pcode == "TST"
    assert [child.pcode for child in detail.children] == ["TST0101", "TST0102"]
    assert data.area_detail(db, "NOPE") is None
    assert data.area_detail(db, "TST01", countries=["XYZ"]) is None


def test_area_series(db: Session) -> None:
    assert data.area_series(db, "TST0101") == SAMPLE_EXPECTED["series_TST0101"]
    # The superseded first version of January is not shown, its revision is.
    assert data.area_series(db, "TST0102") == SAMPLE_EXPECTED["series_TST0102"]
    assert data.area_series(db, "TST01") == []
    assert data.area_series(db, "TST0101", countries=["XYZ"]) == []


def test_series_figure() -> None:
    figure = series_figure(SAMPLE_EXPECTED["series_TST0101"])
    assert list(figure.data[0].x) == ["2024-01-01", "2024-02-01"]
    assert list(figure.data[0].y) == [100.0, 200.0]


def test_render_overview(db: Session) -> None:
    header, banner, content = render_page(db, USER, "/")
    assert "alice" in _text(header) and "coordinator" in _text(header)
    assert "/logout" in _text(header)
    assert DEMO_BANNER_TEXT in _text(banner)
    text = _text(content)
    assert "riskmap" in text  # the map page itself is dashboards.map_page's (own tests)


def test_render_area_pages(db: Session) -> None:
    _, _, content = render_page(db, USER, "/area/TST0101")
    text = _text(content)
    assert "North-West" in text and "TST0101" in text and "/area/TST01" in text
    assert "area-series" in text
    _, _, unknown = render_page(db, USER, "/area/NOPE")
    assert UNKNOWN_AREA_TEXT in _text(unknown)
    _, _, other = render_page(db, USER, "/somewhere/else")
    assert "Page not found" in _text(other)


def test_users_limited_to_a_country_do_not_see_other_areas(db: Session) -> None:
    limited = CurrentUser(id=2, username="xavier", role="expert", countries=("XYZ",),
                          expert_id=None, is_demo=False)
    _, _, content = render_page(db, limited, "/area/TST0101")
    assert UNKNOWN_AREA_TEXT in _text(content)


def test_no_banner_on_a_real_database(tmp_path: Path) -> None:
    engine = make_engine(build_sample_database(tmp_path / "real.db", demo=False))
    try:
        with Session(engine) as session:
            _, banner, _ = render_page(session, USER, "/")
            assert banner is None
            assert not data.is_demo_database(session)
    finally:
        engine.dispose()


def test_every_number_on_each_backend(database_url: str) -> None:
    """The same numbers on SQLite and on PostgreSQL + PostGIS (conftest's ``database_url``)."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with session_scope(engine) as session:
            add_sample_data(session, demo=True)
        with Session(engine) as session:
            assert data.is_demo_database(session)
            assert data.area_series(session, "TST0101") == SAMPLE_EXPECTED["series_TST0101"]
            assert data.area_series(session, "TST0102") == SAMPLE_EXPECTED["series_TST0102"]
            detail = data.area_detail(session, "TST01")
            assert detail is not None and [c.pcode for c in detail.children] == [
                "TST0101", "TST0102"
            ]
    finally:
        engine.dispose()
