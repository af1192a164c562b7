"""A tiny, fixed store for the dashboard's tests (and for trying the dashboard by hand).

Not the demo (``riskwatch.demo`` builds the realistic synthetic scenario); just enough rows to
check every number the dashboard shows. The expected numbers are next to the data, as
``SAMPLE_EXPECTED``, so tests compare against one source.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon, box
from sqlmodel import Session

from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import Area, IngestBatch, Meta, Observation, Source
from riskwatch.timeutil import utcnow

JANUARY = date(2024, 1, 1)
FEBRUARY = date(2024, 2, 1)

SAMPLE_EXPECTED: dict[str, Any] = {
    "areas_by_level": {0: 1, 1: 2, 2: 4},
    # Current rows only: TST0102's first January version is superseded.
    "observations_by_variable": {"idps": 8, "population": 1},
    "map_level": 2,
    "map_period": FEBRUARY,
    # TST0101: BA 150 + BA 50 over two operations (its SA 999 counts the same people);
    # TST0102: only an SA value; TST0201: January only, so no data in February.
    "map_values": {"TST0101": 200.0, "TST0102": 80.0, "TST0201": None, "XYZ0101": 10.0},
    "series_TST0101": [(JANUARY, 100.0), (FEBRUARY, 200.0)],
    "series_TST0102": [(JANUARY, 75.0), (FEBRUARY, 80.0)],
}


def _square(x: float, y: float, size: float = 1.0) -> MultiPolygon:
    return MultiPolygon([box(x, y, x + size, y + size)])


def add_sample_data(session: Session, *, demo: bool = False, now: datetime | None = None) -> None:
    """Add two sources, two batches, seven areas and their observations (see SAMPLE_EXPECTED)."""
    finished = now or utcnow()
    session.add(Source(id="test-boundaries", kind="boundaries", location="test://boundaries",
                       title="Test boundaries"))
    session.add(Source(id="test-dtm", kind="dtm", location="test://dtm", title="Test DTM"))
    session.flush()
    boundaries = IngestBatch(source_id="test-boundaries", kind="boundaries",
                             location="test://boundaries", status="succeeded",
                             rows_read=7, rows_stored=7, finished_at=finished)
    session.add(boundaries)
    session.flush()
    dtm = IngestBatch(source_id="test-dtm", kind="dtm", location="test://dtm",
                      status="succeeded", rows_read=10, rows_stored=9, rows_quarantined=1,
                      finished_at=finished)
    session.add(dtm)
    session.flush()
    assert boundaries.id is not None and dtm.id is not None

    areas = [
        Area(pcode="TST", name="Testland", admin_level=0, country_iso3="TST"),
        Area(pcode="TST01", name="North", admin_level=1, parent_pcode="TST",
             country_iso3="TST", geometry=MultiPolygon([box(0, 1, 2, 2)])),
        Area(pcode="TST02", name="South", admin_level=1, parent_pcode="TST",
             country_iso3="TST", geometry=MultiPolygon([box(0, 0, 2, 1)])),
        Area(pcode="TST0101", name="North-West", admin_level=2, parent_pcode="TST01",
             country_iso3="TST", geometry=_square(0, 1)),
        Area(pcode="TST0102", name="North-East", admin_level=2, parent_pcode="TST01",
             country_iso3="TST", geometry=_square(1, 1)),
        Area(pcode="TST0201", name="South-West", admin_level=2, parent_pcode="TST02",
             country_iso3="TST", geometry=_square(0, 0)),
        Area(pcode="XYZ0101", name="Elsewhere", admin_level=2, country_iso3="XYZ",
             geometry=_square(5, 5)),
    ]
    for area in areas:
        area.batch_id = boundaries.id
        session.add(area)
    session.flush()

    def observation(pcode: str, variable: str, period: date, value: float, **extra: Any) -> None:
        extra.setdefault("assessment_type", "BA")
        session.add(Observation(area_pcode=pcode, variable=variable, period=period,
                                value=value, batch_id=dtm.id, **extra))

    observation("TST0101", "idps", JANUARY, 100)
    observation("TST0101", "idps", FEBRUARY, 150, operation="op A")
    observation("TST0101", "idps", FEBRUARY, 50, operation="op B")
    observation("TST0101", "idps", FEBRUARY, 999, assessment_type="SA")
    observation("TST0101", "population", FEBRUARY, 1000, assessment_type="")
    observation("TST0102", "idps", JANUARY, 70, version=1, superseded_at=finished)
    observation("TST0102", "idps", JANUARY, 75, version=2)
    observation("TST0102", "idps", FEBRUARY, 80, assessment_type="SA")
    observation("TST0201", "idps", JANUARY, 40)
    observation("XYZ0101", "idps", FEBRUARY, 10)
    if demo:
        session.add(Meta(key="database_kind", value="demo"))
    session.flush()


def build_sample_database(path: Path, *, demo: bool = False) -> str:
    """Create a migrated SQLite database at ``path`` holding the sample data; its URL."""
    return populate_sample_database(f"sqlite:///{path}", demo=demo)


def populate_sample_database(url: str, *, demo: bool = False) -> str:
    """Migrate the (empty) database at ``url`` and add the sample data; returns the URL."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        with session_scope(engine) as session:
            add_sample_data(session, demo=demo)
    finally:
        engine.dispose()
    return url


def run_in_background(server: Any, name: str = "riskwatch-test-server") -> threading.Thread:
    """Run a waitress server (``serve.make_server``) in a daemon thread, for tests.

    ``server.close()`` from the test closes the sockets while the loop may be inside
    ``select()``, which then fails with EBADF: that is the loop ending, not an error.
    """

    def run() -> None:
        with contextlib.suppress(OSError):
            server.run()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
