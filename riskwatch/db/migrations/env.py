"""Alembic environment: riskwatch runs migrations programmatically (riskwatch.db.migrate)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import riskwatch.db.models  # noqa: F401 - registers the tables on SQLModel.metadata

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch ALTERs
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("riskwatch migrations run online only (riskwatch db upgrade)")
run_migrations_online()
