"""`riskwatch export WHAT --format FMT`: data out, to standard output or a file (CONTRACTS.md).

Exit codes: 0 done (also for an export with no matching rows); 1 refused (nothing of that kind
to export, unknown country); 2 bad usage (unknown WHAT or format, malformed date, an option that
does not apply, gpkg or png without --out, html or png of anything but scores).

Standard output carries the data and nothing else; messages go to standard error.
"""

from __future__ import annotations

import re
import sys
from datetime import date, datetime
from pathlib import Path

import click
from sqlmodel import Session

from riskwatch.clikit import app_context, error_console
from riskwatch.errors import UsageError
from riskwatch.export_writers import write_export
from riskwatch.exports import (
    EXPORT_NAMES,
    FORMATS,
    ExportRequest,
    build_export,
    check_destination,
    check_request,
)
from riskwatch.timeutil import to_utc

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO3_RE = re.compile(r"[A-Za-z]{3}")


def parse_period(text: str | None) -> date | None:
    """``YYYY-MM-DD`` as a date; UsageError (exit 2) for anything else."""
    if text is None:
        return None
    try:
        if _DATE_RE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise UsageError(f"--period takes a date as YYYY-MM-DD (e.g. 2024-03-01), not {text!r}")


def parse_as_of(text: str | None) -> datetime | None:
    """An ISO 8601 date or date-time in UTC (a naive one is taken as UTC)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--as-of takes an ISO 8601 date-time such as 2024-03-01T12:00:00Z, "
                         f"not {text!r}") from None
    return to_utc(moment)


def parse_country(text: str | None) -> str | None:
    """An ISO3 country code, upper case."""
    if text is None:
        return None
    if not _ISO3_RE.fullmatch(text.strip()):
        raise UsageError(f"--country takes an ISO3 code such as HTI, not {text!r}")
    return text.strip().upper()


@click.command("export")
@click.argument("what", type=click.Choice(EXPORT_NAMES), metavar="WHAT")
@click.option("--format", "export_format", required=True, type=click.Choice(FORMATS),
              help="csv (with an HXL row), geojson or gpkg; for scores also html (a map "
                   "that opens offline) or png (a map image).")
@click.option("--level", type=click.IntRange(min=0),
              help="Admin level (default: the finest loaded; for observations, with data).")
@click.option("--variable", metavar="V",
              help="Only this variable (observations); hotspots of this indicator (default: "
                   "the risk score, the only one computed now).")
@click.option("--period", metavar="YYYY-MM-DD",
              help="Only this period (observations; scores and hotspots: default each "
                   "country's latest).")
@click.option("--country", metavar="ISO3", help="Only this country's areas.")
@click.option("--run", "run_id", type=click.IntRange(min=1), metavar="ID",
              help="Score run (scores, hotspots; default: the latest succeeded).")
@click.option("--as-of", "as_of", metavar="DATETIME",
              help="Values as known then (ISO 8601; naive = UTC). Default: current versions.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), metavar="PATH",
              help="Write to this file (csv: plus PATH.about.txt). Default: standard output.")
@click.pass_context
def export(
    ctx: click.Context,
    what: str,
    export_format: str,
    level: int | None,
    variable: str | None,
    period: str | None,
    country: str | None,
    run_id: int | None,
    as_of: str | None,
    out: Path | None,
) -> None:
    """Export WHAT (areas, observations, scores, hotspots, alerts) as FMT.

    Every export carries its sources' attribution and licence and a sensitivity label: inside
    the file for geojson, gpkg, html and png, in PATH.about.txt beside a csv --out PATH.
    Small counts of sensitive variables are blank. Observations are the current versions;
    --as-of gives them as known at that time.
    """
    request = ExportRequest(
        what=what, format=export_format, level=level, variable=variable,
        period=parse_period(period), country=parse_country(country),
        as_of=parse_as_of(as_of), run=run_id,
    )
    # Everything that needs no database is refused before connecting to it.
    check_request(request)
    check_destination(export_format, out)
    app = app_context(ctx)
    engine = app.migrated_engine()
    try:
        with Session(engine) as session:
            table = build_export(session, request,
                                 threshold=app.settings.privacy.small_count_threshold)
    finally:
        engine.dispose()  # the rows are loaded; writing a large file needs no connection
    sys.stdout.flush()
    written = write_export(table, export_format, out=out, stdout=sys.stdout.buffer)
    rows = table.about.rows
    if written:
        error_console.print(f"Wrote {rows} {what} rows to " + " and ".join(map(str, written)),
                            markup=False)
    elif rows == 0:
        error_console.print(f"note: no {what} match these filters (only the header was written)",
                            markup=False)


COMMANDS = [export]
