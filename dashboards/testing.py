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
from riskwatch.db.models import (
    Alert,
    AlertDecision,
    Area,
    AreaScore,
    Channel,
    Deployment,
    Expert,
    Hotspot,
    IngestBatch,
    JobRun,
    Meta,
    Observation,
    ScoreRun,
    Source,
)
from riskwatch.timeutil import utcnow

JANUARY = date(2024, 1, 1)
FEBRUARY = date(2024, 2, 1)

SAMPLE_EXPECTED: dict[str, Any] = {
    # TST0101 in February: BA 150 + BA 50 over two operations (its SA 999 counts the same
    # people); TST0102 in February: only an SA value; TST0201: January only.
    "series_TST0101": [(JANUARY, 100.0), (FEBRUARY, 200.0)],
    "series_TST0102": [(JANUARY, 75.0), (FEBRUARY, 80.0)],
    # Score run 1 (February; TST0101 also January): risk classes by area.
    "risk_classes": {"TST0101": "very_high", "TST0102": "medium",
                     "TST0201": "insufficient_data", "XYZ0101": "low"},
    "risk_series_TST0101": [(JANUARY, 6.1), (FEBRUARY, 8.2)],
    "drivers_TST0101": [("conflict_events_rate", 3.1), ("idps_share_of_population", 2.4),
                        ("food_insecurity_ipc3plus", 1.2)],
    # The expert "Ella" is deployed to TST01 (covers TST0101, TST0102); alerts: one on
    # TST0101 (firing), one on TST0201 (firing, outside Ella's deployment), one on XYZ0101
    # (another country; TST0201's waits for review approval), one resolved on TST0102.
    "alert_pcodes": ["TST0101", "TST0201", "XYZ0101", "TST0102"],
    "expert_alert_pcodes": ["TST0101", "TST0102"],
}


def _square(x: float, y: float, size: float = 1.0) -> MultiPolygon:
    return MultiPolygon([box(x, y, x + size, y + size)])


def add_sample_data(session: Session, *, demo: bool = False, now: datetime | None = None) -> None:
    """Add two sources, two batches, seven areas and their observations (see SAMPLE_EXPECTED)."""
    finished = now or utcnow()
    session.add(Source(id="test-boundaries", kind="boundaries", location="test://boundaries",
                       title="Test boundaries", attribution="Test boundary office",
                       licence="CC BY-IGO"))
    session.add(Source(id="test-dtm", kind="dtm", location="test://dtm", title="Test DTM",
                       attribution="Test displacement tracking", licence="Test terms",
                       expected_cadence_days=30, last_success_at=finished))
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
    add_sample_scores(session, now=finished)
    add_sample_alerts(session, now=finished)


def add_sample_scores(session: Session, *, now: datetime) -> int:
    """Score run 1 with risk classes and hotspots of the sample areas (see SAMPLE_EXPECTED)."""
    # The run saw every batch stored so far (batches start after ``now`` is read).
    run = ScoreRun(profile_hash="sample", data_as_of=max(now, utcnow()), params_hash="sample",
                   status="succeeded", started_at=now, finished_at=now)
    session.add(run)
    session.flush()
    assert run.id is not None
    contributions = dict(SAMPLE_EXPECTED["drivers_TST0101"])
    top = ";".join(f"{name}:{value:.2f}" for name, value in contributions.items())
    rows = [
        ("TST0101", JANUARY, 6.1, "high", 0.8),
        ("TST0101", FEBRUARY, 8.2, "very_high", 0.9),
        ("TST0102", FEBRUARY, 4.9, "medium", 0.7),
        ("TST0201", FEBRUARY, None, "insufficient_data", 0.1),
        ("XYZ0101", FEBRUARY, 2.5, "low", 0.6),
    ]
    for pcode, period, risk, risk_class, reliability in rows:
        drivers = ({"top_drivers": top, "contributions": contributions}
                   if pcode == "TST0101" else {"top_drivers": "", "contributions": {}})
        session.add(AreaScore(run_id=run.id, area_pcode=pcode, period=period, risk=risk,
                              risk_class=risk_class, reliability=reliability, drivers=drivers))
    for pcode, period, hotspot_class, temporal in [
        ("TST0101", JANUARY, "hot_95", "new"), ("TST0101", FEBRUARY, "hot_99", "consecutive"),
        ("TST0102", FEBRUARY, "not_significant", "none"),
    ]:
        session.add(Hotspot(run_id=run.id, area_pcode=pcode, period=period, variable="risk",
                            gi_z=2.5, p_value=0.01, p_fdr=0.02, hotspot_class=hotspot_class,
                            temporal_class=temporal))
    session.flush()
    return run.id


def add_sample_alerts(session: Session, *, now: datetime) -> int:
    """The expert Ella (deployed to TST01, one capture channel) and four alerts; Ella's id."""
    expert = Expert(name="Ella")
    session.add(expert)
    session.flush()
    assert expert.id is not None
    session.add(Channel(expert_id=expert.id, kind="capture", target_encrypted="x",
                        target_redacted="capture:/tmp/…", healthy=True, last_success_at=now))
    session.add(Deployment(expert_id=expert.id, area_pcode="TST01"))
    states = {"TST0101": "firing", "TST0201": "firing", "XYZ0101": "firing",
              "TST0102": "resolved"}
    for pcode in SAMPLE_EXPECTED["alert_pcodes"]:
        alert = Alert(fingerprint=f"high_risk:{pcode}", rule="high_risk", area_pcode=pcode,
                      severity="warning", state=states[pcode], first_seen=now, last_seen=now,
                      country_iso3=pcode[:3], group_key=f"{pcode[:3]}/{pcode[:5]}",
                      # TST0201's country is in review mode: its alert waits for approval.
                      review_state="pending" if pcode == "TST0201" else None,
                      explanation={"summary": f"Risk is high in {pcode}"})
        session.add(alert)
        session.flush()
        session.add(AlertDecision(alert_id=alert.id, at=now, decision="fired",
                                  detail={"rule": "high_risk"}))
    session.add(JobRun(job="cycle", started_at=now, finished_at=now, status="succeeded",
                       counts={"ingested": 1}))
    session.flush()
    return expert.id


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
