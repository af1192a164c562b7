"""Schema migrations (Alembic), run programmatically by `riskwatch db upgrade` and the demo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class SchemaError(Exception):
    """The database schema cannot be used by this version of riskwatch."""


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # revision recorded in the database (None: never migrated)
    head: str  # newest revision this code knows

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "riskwatch ships at least one migration"
    return head


def known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions()}


def schema_state(engine: Engine) -> SchemaState:
    """The schema revision in the database; SchemaError when it is newer than this code."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and current not in known_revisions():
        raise SchemaError(
            f"the database schema (revision {current}) is newer than this riskwatch "
            f"(newest known revision {head_revision()}): upgrade riskwatch before using it"
        )
    return SchemaState(current=current, head=head_revision())


def upgrade(engine: Engine) -> SchemaState:
    """Apply every pending migration; returns the state before the upgrade."""
    before = schema_state(engine)
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before


def require_current_schema(engine: Engine) -> SchemaState:
    """Refuse to work on a database that is not migrated to this code's schema."""
    state = schema_state(engine)
    if state.current is None:
        raise SchemaError("the database has no riskwatch schema yet: run `riskwatch db upgrade`")
    if not state.up_to_date:
        raise SchemaError(
            f"the database schema is at revision {state.current}, this riskwatch needs "
            f"{state.head}: run `riskwatch db upgrade`"
        )
    return state
