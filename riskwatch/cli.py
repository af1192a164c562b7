"""The command line: thin wrappers around the engine (see CONTRACTS.md for commands and exit codes).

Exit codes: 0 done; 1 refused or failed (bad input, unreachable database, ...); 2 usage or
configuration error. Expected failures print one message, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from riskwatch import __version__
from riskwatch.clikit import AppContext, app_context, console, error_console
from riskwatch.config import ConfigError
from riskwatch.db.engine import DatabaseUnavailable, check_connection, make_engine, sqlite_path
from riskwatch.db.migrate import SchemaError
from riskwatch.errors import RiskwatchError


class RiskwatchGroup(click.Group):
    """Turns expected failures into one message and the contract's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            _fail(ctx, str(exc), 2, exc)
        except (DatabaseUnavailable, SchemaError, RiskwatchError) as exc:
            _fail(ctx, str(exc), getattr(exc, "exit_code", 1), exc)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted", 130, None)


def _fail(ctx: click.Context, message: str, code: int, exc: BaseException | None) -> None:
    obj = ctx.find_object(AppContext)
    if obj is not None and obj.debug and exc is not None:
        traceback.print_exception(exc)
    # The message is plain text: it may contain brackets ("[variables]") that are not markup.
    error_console.print("[bold red]error:[/]", end=" ")
    error_console.print(message, markup=False)
    ctx.exit(code)


@click.group(cls=RiskwatchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Configuration file (TOML); overrides ./config/riskwatch.toml and the defaults.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of expected failures.")
@click.version_option(__version__, prog_name="riskwatch")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, debug: bool) -> None:
    """riskwatch: trafficking-risk early warning for crises.

    Merges displacement tracking (IOM DTM) with risk indicators, scores every admin area,
    finds hotspots and surges, and alerts deployed counter-trafficking experts.
    """
    ctx.obj = AppContext(config_file=config_file, debug=debug)
    if ctx.resilient_parsing or any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        return
    # A bad configuration stops the program before it does anything.
    _ = ctx.obj.settings


# --- db ------------------------------------------------------------------------------------------
@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply pending schema migrations (creates the SQLite file on first use)."""
    from riskwatch.db.migrate import upgrade

    app = app_context(ctx)
    engine = app.engine()
    with console.status("Applying migrations..."):
        before = upgrade(engine)
    from riskwatch.db.migrate import schema_state

    after = schema_state(engine)
    if before.current == after.current:
        console.print(f"Database schema already at revision {after.current}; nothing to do.")
    else:
        console.print(
            f"Database schema upgraded from {before.current or 'empty'} to {after.current}."
        )


# --- status --------------------------------------------------------------------------------------
@cli.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Database, schema version, counts, last runs and the scheduler lease."""
    from riskwatch.status import collect_status, format_time, print_scheduler_status

    app = app_context(ctx)
    url = app.settings.resolved_database_url
    path = sqlite_path(url)
    console.print(f"[bold]riskwatch[/] {__version__}")
    if path is not None and not path.exists():
        console.print(f"Database: SQLite file {path} (not created yet)")
        console.print("Run `riskwatch db upgrade` to create it, or `riskwatch demo` for a demo.")
        return
    report = collect_status(app.engine(url), url)
    console.print(f"Database: {report.database}")
    if report.sqlite_file:
        console.print(f"SQLite file: {report.sqlite_file}")
    assert report.schema is not None
    if report.schema.current is None:
        console.print(f"Schema: none (this riskwatch needs {report.schema.head}); "
                      "run `riskwatch db upgrade`.")
        return
    note = "up to date" if report.schema.up_to_date else f"needs upgrade to {report.schema.head}"
    console.print(f"Schema version: {report.schema.current} ({note})")
    if report.kind == "demo":
        console.print("[bold yellow]This is a demo database: SYNTHETIC DATA[/]")

    counts = Table(title="Contents", show_header=True)
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for name, value in report.counts.items():
        counts.add_row(name, f"{value:,}")
    for level, value in report.areas_by_level.items():
        counts.add_row(f"  areas at admin level {level}", f"{value:,}")
    console.print(counts)

    batches = Table(title="Last ingest batches")
    for column in ("batch", "source", "kind", "status", "stored", "unchanged", "quarantined",
                   "finished"):
        batches.add_column(column)
    for batch in report.last_batches:
        batches.add_row(str(batch.id), batch.source_id, batch.kind, batch.status,
                        f"{batch.rows_stored:,}", f"{batch.rows_unchanged:,}",
                        f"{batch.rows_quarantined:,}", format_time(batch.finished_at))
    console.print(batches if report.last_batches else "Last ingest batches: none yet")

    runs = Table(title="Last job runs")
    for column in ("job", "status", "started", "finished", "error"):
        runs.add_column(column)
    for run in report.last_job_runs:
        runs.add_row(run.job, run.status, format_time(run.started_at),
                     format_time(run.finished_at), (run.error or "")[:80])
    console.print(runs if report.last_job_runs else "Last job runs: none yet")

    print_scheduler_status(report, console)


# --- demo ----------------------------------------------------------------------------------------
@cli.command()
@click.option("--no-serve", is_flag=True, help="Stop after the cycle; do not start the dashboard.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Dashboard port (default: web.port, 8050).")
@click.pass_context
def demo(ctx: click.Context, no_serve: bool, port: int | None) -> None:
    """Build a demo: synthetic crisis data, one full cycle, then the dashboard.

    Uses the configured database if database_url is set, else its own SQLite file in the data
    directory. It refuses a database that holds anything but demo data.
    """
    from riskwatch.demo_setup import demo_database_url, print_summary, run_demo

    app = app_context(ctx)
    settings = app.settings
    url = demo_database_url(settings)
    engine = make_engine(url)
    check_connection(engine)
    summary = run_demo(settings, engine, url, console=console)
    print_summary(summary, console=console)
    if no_serve:
        return
    from dashboards.serve import serve

    demo_settings = settings.model_copy(update={"database_url": url})
    serve(demo_settings, host=settings.web.host, port=port or settings.web.port)


def _register_command_modules() -> None:
    """Add the commands of every module in riskwatch.commands (each lists them in COMMANDS)."""
    import importlib
    import pkgutil

    import riskwatch.commands as package

    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_register_command_modules()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="riskwatch")


if __name__ == "__main__":
    main()
