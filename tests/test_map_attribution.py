"""The map's attribution line: every source credited, publishers with several files named once."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import Source
from riskwatch.map_values import source_attributions

pytestmark = pytest.mark.db


def test_sources_with_the_same_credit_share_one_line(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    with session_scope(engine) as session:
        for source_id in ("dtm-r1", "dtm-r2"):
            session.add(Source(id=source_id, kind="dtm", location="x", title="DTM",
                               attribution="IOM DTM", licence="CC BY-IGO"))
        session.add(Source(id="acled", kind="acled", location="y"))
    with Session(engine) as session:
        lines = [item.text() for item in source_attributions(session)]
    engine.dispose()
    assert sorted(lines) == [
        "DTM (dtm-r1, dtm-r2): IOM DTM; licence: CC BY-IGO",
        "acled: attribution not recorded",
    ]
