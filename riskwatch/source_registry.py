"""Declared sources (``config/sources.toml``): read, validate, and describe their state.

The file holds one ``[[source]]`` table per source::

    [[source]]
    id = "afg-dtm-admin2"                 # lower-case letters, digits, ".", "_", "-"
    kind = "dtm"                          # an ingest kind (CONTRACTS "Ingest kinds")
    query = { country = "AFG", admin_level = 2, from_date = "2022-01-01" }  # DTM API ...
    # location = "data/afg-idps.csv"      # ... or a file (relative: to this file's folder) or URL
    mapping = "mappings/sites.toml"       # relative to this file's folder (hxl/events/sites/table)
    country = "AFG"                       # --country: ISO3 for files that do not say it
    level = 2                             # --level: admin level of a boundaries file
    schedule = "0 6 * * 1"                # cron (used by the scheduler), in `timezone` ...
    # interval_minutes = 1440             # ... or every N minutes (not both)
    timezone = "UTC"                      # IANA time zone of the schedule (default UTC)
    expected_cadence_days = 90            # older data or last ingest than this: "stale"
    title = "IOM DTM Afghanistan, districts"
    attribution = "IOM Displacement Tracking Matrix"
    licence = "HDX: non-commercial, no redistribution"
    aggregate_columns = ["individuals"]   # columns the personal-data guard must accept

Every problem is reported at once, each line naming the file, the source and the key; the
caller gets a :class:`riskwatch.config.ConfigError` (exit code 2).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.config import ConfigError, Settings, read_toml
from riskwatch.db.models import IngestBatch, Source
from riskwatch.fetch import is_url
from riskwatch.sources.countries import to_iso3
from riskwatch.sources.mapping import iso_date
from riskwatch.timeutil import to_utc, utcnow

#: Every ingest kind (CONTRACTS "Ingest kinds and the variables they produce").
KINDS = ("dtm", "hapi", "hxl", "boundaries", "gazetteer", "acled", "events", "sites", "table")
#: Kinds whose reader needs a mapping file.
MAPPING_REQUIRED = ("events", "sites", "table")
#: Kinds that may take a mapping file.
MAPPING_ALLOWED = ("hxl", "events", "sites", "table")
MAX_LEVEL = 5

_ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KEYS = {
    "id", "kind", "location", "query", "mapping", "country", "level", "schedule",
    "interval_minutes", "timezone", "expected_cadence_days", "title", "attribution", "licence",
    "aggregate_columns",
}
_TEXT_LIMITS = {"title": 300, "attribution": 1000, "licence": 300}


@dataclass(frozen=True)
class SourceSpec:
    """One declared source, validated; paths are absolute, the country is ISO3."""

    id: str
    kind: str
    config_file: Path
    location: str | None = None  # absolute path or http(s) URL; None for a DTM API query
    query: dict[str, Any] | None = None
    mapping: Path | None = None
    country: str | None = None
    level: int | None = None
    schedule: str | None = None
    interval_minutes: int | None = None
    timezone: str = "UTC"
    expected_cadence_days: int | None = None
    title: str | None = None
    attribution: str | None = None
    licence: str | None = None
    aggregate_columns: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_query(self) -> bool:
        return self.query is not None

    def declaration(self) -> dict[str, Any]:
        """The declaration as JSON-ready data, kept on the Source row for the record."""
        data: dict[str, Any] = {"kind": self.kind, "config_file": str(self.config_file)}
        for key in ("location", "query", "country", "level", "schedule", "interval_minutes",
                    "expected_cadence_days"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.mapping is not None:
            data["mapping"] = str(self.mapping)
        if self.aggregate_columns:
            data["aggregate_columns"] = list(self.aggregate_columns)
        if self.schedule is not None or self.interval_minutes is not None:
            data["timezone"] = self.timezone
        return data

    @property
    def is_scheduled(self) -> bool:
        """Whether the source has its own schedule (a cron expression or an interval)."""
        return self.schedule is not None or self.interval_minutes is not None


def load_sources(path: Path) -> list[SourceSpec]:
    """Read and validate a sources file; ConfigError listing every problem when it is bad."""
    data = read_toml(path)
    problems: list[str] = []
    unknown = sorted(set(data) - {"source"})
    for key in unknown:
        problems.append(f"{path}: unknown top-level key '{key}' (sources are [[source]] tables)")
    entries = data.get("source", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        problems.append(f"{path}: 'source' must be a list of [[source]] tables")
        entries = []
    specs: list[SourceSpec] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, 1):
        spec, entry_problems = _parse_entry(path, number, entry)
        problems.extend(entry_problems)
        if spec is None:
            continue
        if spec.id in seen:
            problems.append(
                f"{path}: source '{spec.id}' (entry {number}): 'id' is already used by entry "
                f"{seen[spec.id]}; ids must be unique"
            )
            continue
        seen[spec.id] = number
        specs.append(spec)
    if problems:
        raise ConfigError("\n".join(f"configuration error: {p}" for p in problems))
    return specs


def find_source(specs: list[SourceSpec], source_id: str) -> SourceSpec | None:
    """The declared source with this id, or None."""
    return next((s for s in specs if s.id == source_id), None)


def _parse_entry(
    path: Path, number: int, entry: Mapping[str, Any]
) -> tuple[SourceSpec | None, list[str]]:
    """One [[source]] table: the spec when valid, and every problem found in it."""
    raw_id = entry.get("id")
    label = f"source '{raw_id}'" if isinstance(raw_id, str) and raw_id else "source"
    where = f"{path}: {label} (entry {number})"
    problems: list[str] = []

    def bad(key: str, message: str) -> None:
        problems.append(f"{where}: '{key}' {message}")

    for key in sorted(set(entry) - _KEYS):
        bad(key, f"is not a known key (known keys: {', '.join(sorted(_KEYS))})")
    if not isinstance(raw_id, str) or not _ID_RE.fullmatch(raw_id):
        bad("id", f"= {raw_id!r}: expected 1-64 lower-case letters, digits, '.', '_' or '-', "
                  "starting with a letter or digit")
    kind = entry.get("kind")
    if kind not in KINDS:
        bad("kind", f"= {kind!r}: expected one of {', '.join(KINDS)}")

    base = path.parent
    location = entry.get("location")
    query = entry.get("query")
    resolved_location: str | None = None
    if (location is None) == (query is None):
        problems.append(f"{where}: give exactly one of 'location' (a file or URL) and 'query' "
                        "(a DTM API query)")
    if location is not None:
        if not isinstance(location, str) or not location.strip():
            bad("location", "must be a file path or an http(s) URL")
        elif is_url(location):
            if not location.lower().startswith(("http://", "https://")):
                bad("location", f"= {location!r}: only http and https URLs are supported")
            resolved_location = location.strip()
        else:
            resolved_location = str(_resolve(base, location))
    checked_query = None
    if query is not None:
        if kind != "dtm":
            bad("query", "is only for kind = \"dtm\" (the DTM API)")
        elif not isinstance(query, dict):
            bad("query", "must be a table, e.g. { country = \"AFG\", admin_level = 2 }")
        else:
            checked_query = _check_query(query, lambda m: bad("query", m))

    mapping = entry.get("mapping")
    resolved_mapping: Path | None = None
    if mapping is not None:
        if not isinstance(mapping, str) or not mapping.strip():
            bad("mapping", "must be the path of a mapping file")
        elif kind in KINDS and kind not in MAPPING_ALLOWED:
            bad("mapping", f"is not used by kind = \"{kind}\" (only {', '.join(MAPPING_ALLOWED)})")
        else:
            resolved_mapping = _resolve(base, mapping)
    elif kind in MAPPING_REQUIRED:
        bad("mapping", f"is required for kind = \"{kind}\" (the path of a mapping file)")

    country = entry.get("country")
    iso3 = None
    if country is not None:
        iso3 = country_code(country)
        if iso3 is None:
            bad("country", f"= {country!r}: expected an ISO3 (or ISO2) country code")
    level = entry.get("level")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)
                              or not 0 <= level <= MAX_LEVEL):
        bad("level", f"= {level!r}: expected a whole number 0-{MAX_LEVEL}")
    timezone = entry.get("timezone", "UTC")
    if not isinstance(timezone, str) or not _valid_timezone(timezone):
        bad("timezone", f"= {timezone!r}: expected an IANA time zone name such as \"UTC\" or "
                        "\"Europe/Paris\"")
        timezone = "UTC"
    schedule = entry.get("schedule")
    if schedule is not None:
        message = _cron_problem(schedule)
        if message:
            bad("schedule", f"= {schedule!r}: {message}")
    interval = entry.get("interval_minutes")
    if interval is not None:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            bad("interval_minutes", f"= {interval!r}: expected a whole number of minutes, "
                                    "1 or more")
        elif schedule is not None:
            bad("interval_minutes", "and 'schedule' are both given; give one of them")
    cadence = entry.get("expected_cadence_days")
    if cadence is not None and (isinstance(cadence, bool) or not isinstance(cadence, int)
                                or cadence < 1):
        bad("expected_cadence_days", f"= {cadence!r}: expected a whole number of days, 1 or more")
    for key, limit in _TEXT_LIMITS.items():
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            bad(key, f"must be text of at most {limit} characters")
    columns = entry.get("aggregate_columns", [])
    if not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns):
        bad("aggregate_columns", "must be a list of column headers or HXL tags")
        columns = []

    if problems:
        return None, problems
    return SourceSpec(
        id=raw_id,  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        config_file=path.resolve(),
        location=resolved_location,
        query=checked_query,
        mapping=resolved_mapping,
        country=iso3,
        level=level,
        schedule=schedule,
        interval_minutes=interval,
        timezone=timezone,
        expected_cadence_days=cadence,
        title=entry.get("title"),
        attribution=entry.get("attribution"),
        licence=entry.get("licence"),
        aggregate_columns=tuple(columns),
    ), []


def country_code(value: object) -> str | None:
    """ISO3 for an ISO3 or ISO2 code; any other three letters as given (a user-assigned code such
    as the demo's ``XDM``, which riskwatch does not guess but accepts when stated)."""
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    return to_iso3(text) or (text if re.fullmatch(r"[A-Z]{3}", text) else None)


def _resolve(base: Path, text: str) -> Path:
    path = Path(text.strip()).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def _cron_problem(expression: object) -> str | None:
    """Why a cron expression is unusable (None: it is fine), as APScheduler will read it."""
    if not isinstance(expression, str) or not expression.strip():
        return "expected a cron expression such as \"0 6 * * 1\" (minute hour day month weekday)"
    from riskwatch.crontab import crontab_trigger

    try:
        crontab_trigger(expression, timezone="UTC")
    except ValueError as error:
        return f"not a valid cron expression ({error}); expected five fields such as \"0 6 * * 1\""
    return None


def _valid_timezone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _check_query(query: Mapping[str, Any], bad: Any) -> dict[str, Any] | None:
    """The DTM API query as JSON-ready data, or None after reporting why it is unusable.

    The DTM API reader's own check (``sources.dtm_api.normalise_query``) decides, so that the
    file and the reader never disagree on what a query may hold.
    """
    from riskwatch.errors import UsageError
    from riskwatch.sources.dtm_api import normalise_query

    try:
        normalise_query(query)
    except UsageError as error:
        bad(str(error).removeprefix("DTM API query: "))
        return None
    return {
        key: value.isoformat() if isinstance(value, dt.date) else value
        for key, value in query.items()
    }


def configured_sources(settings: Settings) -> tuple[Path, list[SourceSpec]]:
    """The sources file in use (setting ingest.sources_file, ./config, packaged) and its sources."""
    path = settings.ingest.resolved_sources_file
    return path, load_sources(path)


# --- the state of each source ------------------------------------------------------------------
#: Batch statuses that count as a successful ingest (an unchanged snapshot was still checked).
SUCCESSFUL = ("succeeded", "unchanged")


@dataclass(frozen=True)
class SourceState:
    """A declared or ever-ingested source: its last batch, its data's age, its freshness."""

    id: str
    kind: str
    declared: bool
    title: str | None = None
    expected_cadence_days: int | None = None
    last_batch_id: int | None = None
    last_status: str | None = None
    last_finished: dt.datetime | None = None
    rows_stored: int = 0
    rows_quarantined: int = 0
    latest_reporting_date: dt.date | None = None
    last_success: dt.datetime | None = None
    freshness: str = "unknown"  # fresh / stale / unknown
    freshness_reason: str = ""


def source_states(
    engine: Engine, specs: list[SourceSpec], now: dt.datetime | None = None
) -> list[SourceState]:
    """Every declared source and every source ever ingested, sorted by id, with freshness.

    Freshness needs ``expected_cadence_days`` (declared, or stored on the Source row): a source is
    *stale* when its latest reporting date or its last successful ingest is older than that,
    *fresh* when neither is, *unknown* without a cadence or a successful ingest.
    """
    now = now or utcnow()
    declared = {spec.id: spec for spec in specs}
    with Session(engine) as session:
        stored = {source.id: source for source in session.exec(select(Source))}
        batches = session.exec(
            select(IngestBatch).order_by(col(IngestBatch.id))
        ).all()
    by_source: dict[str, list[IngestBatch]] = {}
    for batch in batches:
        by_source.setdefault(batch.source_id, []).append(batch)
    states = []
    for source_id in sorted(set(declared) | set(stored)):
        spec, row = declared.get(source_id), stored.get(source_id)
        history = by_source.get(source_id, [])
        last = history[-1] if history else None
        successes = [b for b in history if b.status in SUCCESSFUL]
        cadence = (spec.expected_cadence_days if spec else None) or (
            row.expected_cadence_days if row else None
        )
        reported = _latest_date(d for b in successes for d in (b.reporting_dates or []))
        last_success = max((b.finished_at or b.started_at for b in successes), default=None)
        freshness, reason = _freshness(now, cadence, reported, last_success)
        states.append(SourceState(
            id=source_id,
            kind=spec.kind if spec else row.kind,  # type: ignore[union-attr]
            declared=spec is not None,
            title=(spec.title if spec else None) or (row.title if row else None),
            expected_cadence_days=cadence,
            last_batch_id=last.id if last else None,
            last_status=last.status if last else None,
            last_finished=last.finished_at if last else None,
            rows_stored=last.rows_stored if last else 0,
            rows_quarantined=last.rows_quarantined if last else 0,
            latest_reporting_date=reported,
            last_success=last_success,
            freshness=freshness,
            freshness_reason=reason,
        ))
    return states


def _latest_date(values: Iterable[str]) -> dt.date | None:
    dates = [d for d in (iso_date(v) for v in values) if d is not None]
    return max(dates, default=None)


def _freshness(
    now: dt.datetime, cadence: int | None, reported: dt.date | None,
    last_success: dt.datetime | None,
) -> tuple[str, str]:
    if last_success is None:
        return "unknown", "never ingested successfully"
    if cadence is None:
        return "unknown", "no expected cadence"
    ages = []
    if reported is not None:
        ages.append(("latest reporting date", (now.date() - reported).days))
    ages.append(("last successful ingest", (now - to_utc(last_success)).days))
    old = [(what, days) for what, days in ages if days > cadence]
    if old:
        what, days = old[0]
        return "stale", f"{what} {days} days ago; expected every {cadence}"
    return "fresh", f"within {cadence} days"
