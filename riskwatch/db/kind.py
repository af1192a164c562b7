"""What kind of database this is: demo databases are kept apart from real data (CONTRACTS.md)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from riskwatch.db.models import (
    Area,
    Expert,
    IngestBatch,
    Meta,
    Observation,
    ScoreRun,
    Source,
    User,
)

DATABASE_KIND_KEY = "database_kind"
DEMO_KIND = "demo"
# Tables whose rows mean "this database holds somebody's data".
_DATA_TABLES = (Area, Source, IngestBatch, Observation, ScoreRun, Expert, User)


def database_kind(session: Session) -> str | None:
    """``"demo"`` for a demo database, else None."""
    meta = session.get(Meta, DATABASE_KIND_KEY)
    return meta.value if meta else None


def is_demo_database(session: Session) -> bool:
    return database_kind(session) == DEMO_KIND


def holds_data(session: Session) -> bool:
    """True when any data table has a row."""
    return any(
        session.exec(select(func.count()).select_from(table)).one() > 0  # type: ignore[arg-type]
        for table in _DATA_TABLES
    )


def mark_demo(session: Session) -> None:
    session.merge(Meta(key=DATABASE_KIND_KEY, value=DEMO_KIND))
