"""The observation query layer: versions, as-of, filters and the assessment-type preference.

One hand-built database per backend (rows written directly, with chosen recording times), read
by every test of the module; the preference rules also have pure unit tests on small frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from riskwatch import observations
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import Area, IngestBatch, Observation, Source
from riskwatch.observations import (
    OBSERVATION_FRAME_COLUMNS,
    assessment_rank,
    combine_assessments,
    finest_observed_level,
    known_variables,
    observations_frame,
    preferred_values,
)

pytestmark = pytest.mark.db

JANUARY = date(2024, 1, 1)
FEBRUARY = date(2024, 2, 1)
FIRST_INGEST = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
REVISION = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
BETWEEN = datetime(2024, 3, 15, tzinfo=UTC)


def _build(engine: Engine) -> None:
    """Areas in two countries; a DTM batch, a revision batch and a non-DTM batch."""
    with session_scope(engine) as session:
        session.add(Source(id="dtm", kind="dtm", location="test://dtm"))
        session.add(Source(id="table", kind="table", location="test://table"))
        session.flush()
        first = IngestBatch(source_id="dtm", kind="dtm", location="test://dtm",
                            started_at=FIRST_INGEST)
        revision = IngestBatch(source_id="dtm", kind="dtm", location="test://dtm",
                               started_at=REVISION)
        table = IngestBatch(source_id="table", kind="table", location="test://table",
                            started_at=FIRST_INGEST)
        session.add_all([first, revision, table])
        session.flush()
        session.add_all([
            Area(pcode="AAA", name="A-land", admin_level=0, country_iso3="AAA"),
            Area(pcode="AAA01", name="One", admin_level=1, parent_pcode="AAA",
                 country_iso3="AAA"),
            Area(pcode="AAA0101", name="One-one", admin_level=2, parent_pcode="AAA01",
                 country_iso3="AAA"),
            Area(pcode="AAA0102", name="One-two", admin_level=2, parent_pcode="AAA01",
                 country_iso3="AAA"),
            Area(pcode="BBB01", name="B-one", admin_level=1, country_iso3="BBB"),
        ])
        session.flush()

        def add(pcode: str, variable: str, period: date, value: float, batch: IngestBatch,
                recorded_at: datetime = FIRST_INGEST, **extra: object) -> None:
            assert batch.id is not None
            session.add(Observation(area_pcode=pcode, variable=variable, period=period,
                                    value=value, batch_id=batch.id, recorded_at=recorded_at,
                                    **extra))

        # AAA0101 January: BA over two operations (one revised), an SA of the same people.
        add("AAA0101", "idps", JANUARY, 100, first, operation="op A", assessment_type="BA",
            round="3", version=1, superseded_at=REVISION)
        add("AAA0101", "idps", JANUARY, 120, revision, recorded_at=REVISION, operation="op A",
            assessment_type="BA", round="3", version=2)
        add("AAA0101", "idps", JANUARY, 50, first, operation="op B", assessment_type="BA",
            round="3")
        add("AAA0101", "idps", JANUARY, 999, first, assessment_type="SA")
        # AAA0102: only SA and ETT in January (SA wins), only ETT in February.
        add("AAA0102", "idps", JANUARY, 80, first, assessment_type="SA")
        add("AAA0102", "idps", JANUARY, 85, first, assessment_type="ETT")
        add("AAA0102", "idps", FEBRUARY, 90, first, assessment_type="ETT")
        # Non-DTM values: no assessment type, no operation.
        add("AAA0101", "population", JANUARY, 1000, table)
        add("BBB01", "idps", JANUARY, 7, first, assessment_type="BA")
        # Recorded only at the revision: unknown before it.
        add("AAA01", "idps", FEBRUARY, 300, revision, recorded_at=REVISION, assessment_type="BA")


@pytest.fixture(scope="module")
def engine(module_database_url: str) -> Iterator[Engine]:
    engine = make_engine(module_database_url)
    upgrade(engine)
    _build(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def _values(frame: pd.DataFrame) -> dict[tuple[str, str, date, str, str], float]:
    return {
        (r.pcode, r.variable, r.period, r.assessment_type, r.operation): r.value
        for r in frame.itertuples()
    }


def test_current_versions_with_area_and_source(session: Session) -> None:
    frame = observations_frame(session)
    assert list(frame.columns) == OBSERVATION_FRAME_COLUMNS
    assert len(frame) == 9
    values = _values(frame)
    assert values[("AAA0101", "idps", JANUARY, "BA", "op A")] == 120.0  # the revision
    revised = frame[(frame.pcode == "AAA0101") & (frame.operation == "op A")].iloc[0]
    assert (revised["version"], revised["source_id"], revised["round"]) == (2, "dtm", "3")
    assert (revised.admin_level, revised.country_iso3) == (2, "AAA")
    assert revised.recorded_at == pd.Timestamp(REVISION)
    population = frame[frame.variable == "population"].iloc[0]
    assert (population.operation, population.assessment_type) == ("", "")
    assert population.source_id == "table" and pd.isna(population["round"])


def test_dtypes_are_the_same_on_both_backends_and_when_empty(session: Session) -> None:
    full = observations_frame(session)
    empty = observations_frame(session, variables=["nothing"])
    assert empty.empty and list(empty.columns) == OBSERVATION_FRAME_COLUMNS
    for frame in (full, empty):
        assert str(frame["value"].dtype) == "float64"
        assert str(frame["admin_level"].dtype) == "int64"
        assert str(frame["version"].dtype) == "int64"
        assert str(frame["recorded_at"].dtype) == "datetime64[us, UTC]"
    assert all(type(period) is date for period in full["period"])


def test_rows_are_sorted_by_code_point(session: Session) -> None:
    frame = observations_frame(session, current_only=False)
    keys = list(zip(frame.pcode, frame.variable, frame.period, frame.assessment_type,
                    frame.operation, frame.version, strict=True))
    assert keys == sorted(keys)


def test_every_version_when_not_current_only(session: Session) -> None:
    frame = observations_frame(session, current_only=False)
    op_a = frame[(frame.pcode == "AAA0101") & (frame.operation == "op A")]
    assert list(op_a.version) == [1, 2] and list(op_a.value) == [100.0, 120.0]


def test_as_of_before_the_revision_gives_the_old_value(session: Session) -> None:
    frame = observations_frame(session, as_of=BETWEEN)
    values = _values(frame)
    assert values[("AAA0101", "idps", JANUARY, "BA", "op A")] == 100.0
    # What was recorded only at the revision was not known yet.
    assert "AAA01" not in set(frame.pcode)
    assert len(frame) == 8


def test_as_of_at_and_after_the_revision_gives_the_new_value(session: Session) -> None:
    for moment in (REVISION, datetime(2030, 1, 1, tzinfo=UTC)):
        frame = observations_frame(session, as_of=moment)
        assert _values(frame)[("AAA0101", "idps", JANUARY, "BA", "op A")] == 120.0
        assert len(frame) == 9


def test_as_of_before_anything_is_empty_and_naive_means_utc(session: Session) -> None:
    assert observations_frame(session, as_of=datetime(2024, 1, 1, tzinfo=UTC)).empty
    # 12:00 naive is 12:00 UTC: exactly the first ingest, so it is known.
    naive = observations_frame(session, as_of=datetime(2024, 3, 1, 12, 0))
    assert len(naive) == 8
    just_before = observations_frame(session, as_of=datetime(2024, 3, 1, 11, 59, 59))
    assert just_before.empty


def test_filters(session: Session) -> None:
    assert set(observations_frame(session, variables=["population"]).pcode) == {"AAA0101"}
    assert set(observations_frame(session, countries=["bbb"]).pcode) == {"BBB01"}
    assert set(observations_frame(session, levels=[1]).pcode) == {"AAA01", "BBB01"}
    february = observations_frame(session, period=FEBRUARY)
    assert set(february.pcode) == {"AAA0102", "AAA01"}
    assert set(observations_frame(session, pcodes=["AAA0102"]).pcode) == {"AAA0102"}
    assert observations_frame(session, pcodes=[]).empty


def test_long_pcode_lists_are_filtered_after_the_query(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observations, "_MAX_PCODES_IN_SQL", 1)
    frame = observations_frame(session, pcodes=["AAA0102", "BBB01"])
    assert set(frame.pcode) == {"AAA0102", "BBB01"}
    assert frame.index.tolist() == list(range(len(frame)))


def test_preferred_values_from_the_database(session: Session) -> None:
    preferred = preferred_values(observations_frame(session))
    by_key = {(r.pcode, r.variable, r.period): (r.assessment_type, r.value, r.operations)
              for r in preferred.itertuples()}
    assert by_key[("AAA0101", "idps", JANUARY)] == ("BA", 170.0, 2)  # 120 + 50; SA left out
    assert by_key[("AAA0102", "idps", JANUARY)] == ("SA", 80.0, 1)  # SA before ETT
    assert by_key[("AAA0102", "idps", FEBRUARY)] == ("ETT", 90.0, 1)
    assert by_key[("AAA0101", "population", JANUARY)] == ("", 1000.0, 1)  # passes through
    assert len(preferred) == 6
    assert list(preferred.columns) == observations.PREFERRED_COLUMNS
    as_of = preferred_values(observations_frame(session, as_of=BETWEEN))
    before = as_of[(as_of.pcode == "AAA0101") & (as_of.variable == "idps")]
    assert before.value.tolist() == [150.0]  # 100 + 50, as known before the revision


def test_finest_observed_level_and_known_variables(session: Session) -> None:
    assert finest_observed_level(session) == 2
    assert finest_observed_level(session, countries=["BBB"]) == 1
    assert finest_observed_level(session, period=FEBRUARY, as_of=BETWEEN) == 2
    assert finest_observed_level(session, variables=["nothing"]) is None
    assert known_variables(session) == ["idps", "population"]


# --- pure rules ----------------------------------------------------------------------------------
def _frame(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """(pcode, assessment_type, operation, value) rows of idps in January."""
    return pd.DataFrame(
        [("idps", JANUARY, p, a, o, v) for p, a, o, v in rows],
        columns=["variable", "period", "pcode", "assessment_type", "operation", "value"],
    ).astype({"value": "float64"})


def test_preference_ba_over_sa_and_operations_summed() -> None:
    result = preferred_values(_frame([
        ("X1", "SA", "", 500.0), ("X1", "BA", "north", 100.0), ("X1", "BA", "south", 20.0),
        ("X2", "ETT", "", 7.0), ("X2", "SA", "", 9.0),
    ]))
    assert result[["pcode", "assessment_type", "value", "operations"]].values.tolist() == [
        ["X1", "BA", 120.0, 2], ["X2", "SA", 9.0, 1],
    ]


def test_a_custom_preference_and_unknown_types() -> None:
    frame = _frame([("X1", "BA", "", 1.0), ("X1", "SA", "", 2.0), ("X2", "MSLA", "", 3.0),
                    ("X2", "", "", 4.0)])
    assert preferred_values(frame, preference=("SA", "BA")).value.tolist() == [2.0, 3.0]
    # An unlisted assessment type still beats none at all.
    assert assessment_rank("MSLA") < assessment_rank("")
    assert assessment_rank("BA") < assessment_rank("SA") < assessment_rank("ETT")


def test_preferred_values_of_an_empty_frame() -> None:
    empty = preferred_values(_frame([]))
    assert empty.empty
    assert list(empty.columns) == ["pcode", "variable", "period", "assessment_type", "value",
                                   "operations"]


def test_combine_assessments_follows_the_same_rule() -> None:
    assert combine_assessments([("SA", "", 5.0), ("BA", "a", 1.0), ("BA", "b", 2.0)]) == 3.0
    assert combine_assessments([("ETT", "", 4.0), ("SA", "", 6.0)]) == 6.0
    assert combine_assessments([("", "", 7.0)]) == 7.0
    assert combine_assessments([("", "", 7.0), ("ETT", "", 1.0)]) == 1.0
    assert combine_assessments([]) is None
