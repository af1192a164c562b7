"""What every command shares: the console, the settings and the database engine.

Command modules (``riskwatch.commands.*``) import from here, and ``riskwatch.cli`` registers them
on the ``riskwatch`` group, so no command module imports the group itself.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from sqlalchemy.engine import Engine

from riskwatch.config import Settings, load_settings
from riskwatch.db.engine import check_connection, make_engine
from riskwatch.db.migrate import require_current_schema

# Wide output when piped (logs, CI) so tables are not truncated at 80 columns.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(highlight=False, soft_wrap=True, width=_WIDTH)
error_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


@dataclass
class AppContext:
    """What every command shares: the settings (validated once) and a lazily made engine."""

    config_file: Path | None
    debug: bool
    overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_file, self.overrides)

    def engine(self, url: str | None = None) -> Engine:
        """An engine on the configured database, checked to be reachable."""
        engine = make_engine(url or self.settings.resolved_database_url)
        check_connection(engine)
        return engine

    def migrated_engine(self) -> Engine:
        """An engine on a reachable database whose schema is this riskwatch's."""
        engine = self.engine()
        require_current_schema(engine)
        return engine


def app_context(ctx: click.Context) -> AppContext:
    """The shared context of the running command."""
    return ctx.ensure_object(AppContext)
