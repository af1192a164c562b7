"""`riskwatch ingest` (one batch from a declared source or a file/URL) and `riskwatch sources`.

Exit codes (CONTRACTS): 0 done, also when nothing changed; 1 refused or failed (the report is
printed first, and the refused batch is recorded); 2 bad usage or configuration.
"""

from __future__ import annotations

import re
import traceback
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from riskwatch.clikit import AppContext, app_context, console, error_console
from riskwatch.config import ConfigError
from riskwatch.errors import RiskwatchError
from riskwatch.fetch import FetchError, downloaded, is_url, redact_url
from riskwatch.ingest import (
    BatchSummary,
    default_source_id,
    dtm_subscription_key,
    ingest_file,
    ingest_source,
    load_mapping_file,
    record_failed_source,
)
from riskwatch.source_registry import (
    KINDS,
    MAPPING_ALLOWED,
    MAPPING_REQUIRED,
    SourceState,
    configured_sources,
    country_code,
    find_source,
    source_states,
)
from riskwatch.timeutil import iso_utc

#: Problems shown in the terminal; the batch's JSON report keeps up to 1000, the count is total.
SHOWN_PROBLEMS = 50
SHOWN_NOTES = 50
_SOURCE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")


@click.command("ingest")
@click.argument("source_id", required=False)
@click.option("--file", "file_", metavar="PATH_OR_URL",
              help="A file or an http(s) URL to ingest (with --kind) instead of a declared source.")
@click.option("--kind", type=click.Choice(KINDS),
              help="What the file is (CONTRACTS.md: Ingest kinds).")
@click.option("--level", type=click.IntRange(0, 5),
              help="Admin level of a boundaries file; for other kinds, keep only this level.")
@click.option("--country", metavar="ISO3",
              help="Country of the file's areas (boundaries); for other kinds, keep only it.")
@click.option("--source-id", "source_id_option", metavar="ID",
              help="Record the batch under this source id (default: file:<name>).")
@click.option("--mapping", type=click.Path(path_type=Path, dir_okay=False),
              help="Mapping file (TOML): columns to variables (hxl, events, sites, table).")
@click.pass_context
def ingest(
    ctx: click.Context,
    source_id: str | None,
    file_: str | None,
    kind: str | None,
    level: int | None,
    country: str | None,
    source_id_option: str | None,
    mapping: Path | None,
) -> None:
    """Ingest one batch: a SOURCE_ID declared in sources.toml, or --file PATH_OR_URL --kind KIND.

    The whole input is checked first: personal data, required columns, every row, every pcode.
    Bad rows are quarantined; too many bad rows (ingest.max_bad_row_share) or a fatal problem
    refuse the input whole, and nothing is written. Re-ingesting the same data changes nothing.

    \b
    Examples:
      riskwatch ingest afg-dtm-admin2
      riskwatch ingest --file adm1.geojson --kind boundaries --level 1 --country AFG
      riskwatch ingest --file global-pcodes.csv --kind gazetteer --country AFG
      riskwatch ingest --file https://example.org/dtm.csv --kind dtm
      riskwatch ingest --file services.csv --kind table --mapping services.toml
    """
    _check_usage(source_id, file_, kind, level, country, source_id_option, mapping)
    app = app_context(ctx)
    with _reporting():
        if source_id is not None:
            summary = _ingest_declared(app, source_id)
        else:
            assert file_ is not None and kind is not None  # _check_usage made sure
            summary = _ingest_file(app, file_, kind, level=level, country=country,
                                   source_id=source_id_option, mapping=mapping)
    print_batch(summary)


def _ingest_declared(app: AppContext, source_id: str) -> BatchSummary:
    """`riskwatch ingest SOURCE_ID`: the source as declared in the sources file."""
    settings = app.settings
    path, specs = configured_sources(settings)
    spec = find_source(specs, source_id)
    if spec is None:
        known = ", ".join(s.id for s in specs) or "none"
        raise RiskwatchError(
            f"unknown source id {source_id!r}: not declared in {path} (declared: {known})"
        )
    engine = app.migrated_engine()
    with _progress(f"Ingesting source {spec.id}") as progress:
        return ingest_source(engine, spec, settings, subscription_key=dtm_subscription_key(),
                             progress=progress)


def _ingest_file(
    app: AppContext, file_: str, kind: str, *, level: int | None, country: str | None,
    source_id: str | None, mapping: Path | None,
) -> BatchSummary:
    """`riskwatch ingest --file PATH_OR_URL --kind KIND ...`: one ad-hoc file or URL."""
    settings = app.settings
    limits = settings.ingest
    options: dict[str, Any] = {
        "country_iso3": country_code(country) if country else None,
        "level": level,
        "mapping": load_mapping_file(mapping) if mapping is not None else None,
        "max_bad_row_share": limits.max_bad_row_share,
        "offshore_max_km": limits.offshore_max_km,
    }
    engine = app.migrated_engine()
    if not is_url(file_):
        path = Path(file_).expanduser()
        if not path.is_file():
            raise RiskwatchError(f"file not found: {path}")
        with _progress(f"Ingesting {path.name}") as progress:
            return ingest_file(engine, path, kind, source_id=source_id, progress=progress,
                               **options)
    try:
        with _progress(f"Downloading {redact_url(file_)}") as progress, downloaded(
            file_, timeout_seconds=limits.url_timeout_seconds, max_bytes=limits.url_max_bytes,
            allow_private_addresses=settings.allow_private_addresses,
        ) as download:
            return ingest_file(engine, download.path, kind,
                               source_id=source_id or _url_source_id(file_),
                               location=download.url, progress=progress, **options)
    except FetchError as error:
        if source_id:  # an explicitly named source keeps a record of the failed download
            record_failed_source(engine, source_id=source_id, kind=kind,
                                 location=redact_url(file_), message=str(error))
        raise


def _check_usage(
    source_id: str | None, file_: str | None, kind: str | None, level: int | None,
    country: str | None, source_id_option: str | None, mapping: Path | None,
) -> None:
    """Usage errors (exit code 2) before anything is read or written."""
    if source_id is not None and file_ is not None:
        raise click.UsageError("give either SOURCE_ID or --file, not both")
    if source_id is None and file_ is None:
        raise click.UsageError("give a SOURCE_ID declared in sources.toml, or --file with --kind")
    if source_id is not None:
        given = [name for name, value in (("--kind", kind), ("--level", level),
                                          ("--country", country),
                                          ("--source-id", source_id_option),
                                          ("--mapping", mapping)) if value is not None]
        if given:
            raise click.UsageError(
                f"{', '.join(given)} cannot be used with SOURCE_ID: a declared source takes them "
                "from sources.toml"
            )
        return
    if kind is None:
        raise click.UsageError("--file needs --kind (one of " + ", ".join(KINDS) + ")")
    if kind in MAPPING_REQUIRED and mapping is None:
        raise click.UsageError(f"--kind {kind} needs --mapping FILE (columns to variables)")
    if mapping is not None and kind not in MAPPING_ALLOWED:
        raise click.UsageError(f"--mapping is not used by --kind {kind} (only by "
                               f"{', '.join(MAPPING_ALLOWED)})")
    if country is not None and country_code(country) is None:
        raise click.BadParameter(f"{country!r} is not an ISO3 (or ISO2) country code",
                                 param_hint="--country")
    if source_id_option is not None and not _SOURCE_ID_RE.fullmatch(source_id_option):
        raise click.BadParameter(
            "1-64 letters, digits, '.', '_', ':', '/' or '-'", param_hint="--source-id"
        )


def _url_source_id(url: str) -> str:
    parts = urlsplit(url)
    name = PurePosixPath(parts.path).name or parts.hostname or "download"
    return default_source_id(name).replace("file:", "url:", 1)


@contextmanager
def _progress(message: str) -> Iterator[Any]:
    """A spinner whose text follows the stages of the ingest (reading, matching, writing)."""
    with console.status(message) as status:
        yield lambda text: status.update(text)


@contextmanager
def _reporting() -> Iterator[None]:
    """Print the report of a refused or failed ingest, then the error, and exit with its code.

    The error is printed as plain text: messages quote file content and mapping keys such as
    ``[variables]``, which console markup would swallow.
    """
    try:
        yield
    except ConfigError as error:
        _print_error(str(error), None)
        click.get_current_context().exit(2)
    except RiskwatchError as error:
        summary = getattr(error, "summary", None)
        if isinstance(summary, BatchSummary):
            print_batch(summary)
        _print_error(str(error), error)
        click.get_current_context().exit(error.exit_code)


def _print_error(message: str, error: BaseException | None) -> None:
    app = click.get_current_context().find_object(AppContext)
    if app is not None and app.debug and error is not None:
        traceback.print_exception(error)
    error_console.print(Text.assemble(("error: ", "bold red"), message))


# --- the report --------------------------------------------------------------------------------


def print_batch(summary: BatchSummary, *, out: Console | None = None) -> None:
    """The ingest report: counts, problems, notes, reporting dates and rounds."""
    out = out or console
    style = {"succeeded": "green", "unchanged": "cyan", "refused": "red", "failed": "red"}
    out.print(
        f"Batch {summary.batch_id} of source [bold]{summary.source_id}[/] ({summary.kind}): "
        f"[{style.get(summary.status, 'white')}]{summary.status}[/]"
    )
    out.print(Text(f"Input: {summary.location}"))
    if summary.content_hash:
        out.print(f"Content hash (sha256): {summary.content_hash}")
    if summary.rows_read or summary.status not in ("refused", "failed"):
        out.print(_counts_table(summary))  # a refusal before reading has nothing to count
    _print_dates(summary, out)
    if summary.problem_count:
        out.print(_problems_table(summary))
    if summary.notes:
        out.print("[bold]Notes[/] (repairs, pcode normalisations, rows set aside):")
        for note in summary.notes[:SHOWN_NOTES]:
            out.print(Text(f"  - {note}"))
        if len(summary.notes) > SHOWN_NOTES:
            out.print(f"  ... and {len(summary.notes) - SHOWN_NOTES} more in the batch report")
    if summary.status == "unchanged":
        out.print("Nothing changed: every value was already stored.")


def _counts_table(summary: BatchSummary) -> Table:
    counts = summary.counts
    areas = summary.kind in ("boundaries", "gazetteer")
    unit = "areas" if areas else "figures"
    table = Table(title="Counts", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("file rows read", f"{summary.rows_read:,}")
    rejected = counts.get("source_rejected_rows", 0)
    table.add_row("  rejected by validation (quarantined)",
                  f"{counts.get('invalid_rows', 0) - rejected:,}")
    if rejected:
        table.add_row("  marked as errors by the publisher (quarantined, not counted as bad)",
                      f"{rejected:,}")
    table.add_row(f"{unit} from the valid rows", f"{counts.get('figures', 0):,}")
    if counts.get("figures_skipped"):
        table.add_row("  outside --country/--level (skipped)", f"{counts['figures_skipped']:,}")
    if not areas:
        approx = "" if counts.get("row_count_method") == "exact" else "~"
        table.add_row(
            "  unknown pcode (quarantined)",
            f"{counts.get('figures_unknown_pcode', 0):,} ({approx}"
            f"{counts.get('unknown_pcode_rows', 0):,} file rows)",
        )
        table.add_row(
            "  no areas for that country/level (set aside)",
            f"{counts.get('figures_set_aside', 0):,} ({approx}"
            f"{counts.get('set_aside_rows', 0):,} file rows)",
        )
    table.add_row(f"{unit} stored (new or revised)", f"{summary.rows_stored:,}")
    table.add_row(f"{unit} unchanged", f"{summary.rows_unchanged:,}")
    table.add_row("file rows quarantined in all", f"{summary.rows_quarantined:,}")
    table.add_row("bad file rows (refused above ingest.max_bad_row_share)",
                  f"{counts.get('bad_rows', 0):,} ({counts.get('bad_share', 0.0):.1%})")
    return table


def _print_dates(summary: BatchSummary, out: Console) -> None:
    dates = summary.reporting_dates
    if dates:
        shown = ", ".join(dates) if len(dates) <= 6 else (
            f"{', '.join(dates[:3])}, ..., {', '.join(dates[-3:])}"
        )
        out.print(f"Reporting dates ({len(dates)}): {shown}")
    rounds: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for entry in summary.rounds:
        key = (str(entry.get("country_iso3") or ""), str(entry.get("operation") or ""),
               str(entry.get("assessment_type") or ""))
        if entry.get("round"):
            rounds[key].append(str(entry["round"]))
    for (country, operation, assessment), codes in sorted(rounds.items()):
        listed = ", ".join(codes) if len(codes) <= 8 else (
            f"{', '.join(codes[:4])}, ..., {', '.join(codes[-2:])}"
        )
        out.print(Text(f"Rounds {country} {operation} {assessment}: {len(codes)} ({listed})"))


def _problems_table(summary: BatchSummary) -> Table:
    shown = summary.problems[:SHOWN_PROBLEMS]
    title = (f"Problems: {summary.problem_count:,}" if summary.problem_count <= len(shown)
             else f"Problems: first {len(shown)} of {summary.problem_count:,} "
                  "(the batch report keeps up to 1000)")
    table = Table(title=title, show_header=True)
    for column in ("row", "column", "value", "rule", "problem"):
        table.add_column(column, overflow="fold")
    for problem in shown:
        table.add_row(
            "" if problem.get("row") is None else str(problem["row"]),
            Text(problem.get("column") or ""),
            Text("" if problem.get("value") is None else str(problem["value"])[:60]),
            problem.get("rule") or "",
            Text(problem.get("message") or ""),
        )
    return table


# --- riskwatch sources -------------------------------------------------------------------------


@click.command("sources")
@click.pass_context
def sources(ctx: click.Context) -> None:
    """Declared and ingested sources: last batch, rows, latest reporting date, freshness.

    A source is stale when its latest reporting date or its last successful ingest is older
    than its expected_cadence_days; unknown without a cadence or a successful ingest.
    """
    app = app_context(ctx)
    with _reporting():
        path, specs = configured_sources(app.settings)
    states = source_states(app.migrated_engine(), specs)
    console.print(Text(f"Sources file: {path}"))
    if not states:
        console.print("No sources: none declared in the sources file and none ingested yet.")
        return
    console.print(_sources_table(states))


def _sources_table(states: list[SourceState]) -> Table:
    table = Table(title="Sources", show_header=True)
    for column in ("id", "kind", "declared", "last batch", "status", "finished", "stored",
                   "quarantined", "latest reporting date", "freshness"):
        table.add_column(column, overflow="fold")
    colour = {"fresh": "green", "stale": "yellow", "unknown": "white"}
    status_colour = {"refused": "red", "failed": "red", "succeeded": "green"}
    for state in states:
        status = state.last_status or "never ingested"
        table.add_row(
            Text(state.id),
            state.kind,
            "yes" if state.declared else "no",
            "" if state.last_batch_id is None else str(state.last_batch_id),
            f"[{status_colour.get(status, 'white')}]{status}[/]",
            iso_utc(state.last_finished),
            f"{state.rows_stored:,}",
            f"{state.rows_quarantined:,}",
            "" if state.latest_reporting_date is None else state.latest_reporting_date.isoformat(),
            f"[{colour[state.freshness]}]{state.freshness}[/] ({state.freshness_reason})",
        )
    return table


COMMANDS = [ingest, sources]
