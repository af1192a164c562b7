"""Alembic environment: riskwatch runs migrations programmatically (riskwatch.db.migrate)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import riskwatch.db.models  # noqa: F401 - registers the tables on SQLModel.metadata

target_metadata = SQLModel.metadata

# Tables that other libraries create and own in the same database (APScheduler's job store).
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch ALTERs
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("riskwatch migrations run online only (riskwatch db upgrade)")
run_migrations_online()
