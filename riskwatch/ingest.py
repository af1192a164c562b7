"""One ingest: check a whole input, then store it as one batch in one transaction, with lineage.

The readers in ``riskwatch.sources`` parse and validate (pure functions returning a
``ReadResult``); this module runs them and decides:

1. **Personal data first.** A table with a column that looks like personal data
   (``riskwatch.privacy.find_personal_data_columns``) is refused whole, before it is read,
   unless the source declares the column aggregate (``aggregate_columns`` in sources.toml or
   the mapping).
2. **The whole input is validated before anything is written.** Bad rows are quarantined (kept
   out, each with a problem naming row, column, value and rule); pcodes are matched against the
   known areas (``sources.pcodes.match_pcodes``). The input is refused whole - nothing written -
   on a fatal problem (e.g. a required column missing) or when more than
   ``ingest.max_bad_row_share`` of the *file's rows* are bad.
3. **One transaction** writes the source, the batch, the implicit country areas, and the areas
   or observations. Areas are upserted by pcode; observations are versioned: an identical value
   changes nothing, a different one supersedes the current version (``superseded_at``) and adds
   ``version + 1`` carrying the new batch. Re-ingesting an identical snapshot adds only a batch
   row with status ``unchanged`` (lineage: the snapshot was seen again).
4. **A refusal is recorded**: a batch with status ``refused`` and its report (no data rows) is
   committed in its own transaction, so that ``riskwatch sources`` shows the failure.

Counting bad rows, like with like. A reader quarantines *file rows*; pcode matching happens on
the reader's *figures* (observations), and some readers sum several file rows into one figure
(DTM and HAPI split a figure by displacement reason and origin). The figures with an unknown
pcode are counted back to file rows in proportion: ``rows behind them = figures with unknown
pcodes / all figures x file rows that passed validation``. This is exact for a table that gives
every row the same number of figures (an area table, one area per row) and a fair estimate for
summing readers; the batch report says which (``counts.row_count_method``) and keeps the exact
figure counts. The refusal compares ``(rows rejected by validation + rows behind unknown
pcodes) / file rows`` with ``ingest.max_bad_row_share``. Not bad: rows set aside (a country or
admin level with no areas at all, CONTRACTS "Areas and pcodes"), and rows the publisher itself
marked as errors (HDX HAPI's ``error`` column): those are quarantined and reported, but the
publisher already excluded them, and the IPC tables on HDX carry ~20% of them. The batch's
``rows_read``, ``rows_quarantined`` and ``rows_set_aside`` are file rows on that basis;
``rows_stored`` and ``rows_unchanged`` count what the store holds (observations, or areas).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from riskwatch.config import ConfigError, Settings
from riskwatch.db.engine import session_scope
from riskwatch.db.models import Area, IngestBatch, Observation, Source
from riskwatch.errors import RiskwatchError, UsageError
from riskwatch.fetch import FetchError, downloaded, is_url, redact_url
from riskwatch.privacy import PersonalDataColumn, find_personal_data_columns
from riskwatch.source_registry import KINDS, SourceSpec
from riskwatch.sources.report import Problem, ReadResult
from riskwatch.timeutil import utcnow

OBSERVATION_KEY = ["area_pcode", "variable", "period", "operation", "assessment_type"]
# Relative tolerance under which a re-ingested value counts as identical (float round-trips).
VALUE_TOLERANCE = 1e-9
AREA_KINDS = ("boundaries", "gazetteer")
OBSERVATION_KINDS = tuple(k for k in KINDS if k not in AREA_KINDS)
#: Problem rules for rows the publisher itself rejected (HDX HAPI's ``error`` column, e.g. IPC's
#: "urban pattern" areas without a pcode): quarantined and reported like any bad row, but not
#: counted against the file, since the publisher already excluded them.
SOURCE_REJECTED_RULES = frozenset({"source_error"})
#: Problems and notes kept in a batch's JSON report (the counts are always complete).
REPORT_LIMIT = 1000
# Kinds whose input is a table of text cells, checked for personal data before reading. A
# boundaries file keeps only pcode, name, parent and polygon of each area, so nothing else of
# it is stored; a DTM API answer has the API's fixed columns.
_TABLE_KINDS = ("dtm", "hapi", "hxl", "gazetteer", "acled", "events", "sites", "table")
# How many distinct values per column the personal-data guard looks at.
_PII_SAMPLE = 2000

Progress = Callable[[str], None]


class IngestRefused(RiskwatchError):
    """The input was refused whole; nothing was written but the refused batch (exit code 1)."""

    def __init__(self, message: str, summary: BatchSummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


class IngestFailed(RiskwatchError):
    """The input could not be fetched or stored (exit code 1); a failed batch records it."""

    def __init__(self, message: str, summary: BatchSummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass(frozen=True)
class SourceInfo:
    """What a declared source says about itself, kept on its Source row."""

    title: str | None = None
    attribution: str | None = None
    licence: str | None = None
    expected_cadence_days: int | None = None
    settings: dict[str, Any] | None = None


@dataclass(frozen=True)
class RowAccounting:
    """What became of an input's rows, in file rows and in figures (see the module docstring)."""

    file_rows: int
    invalid_rows: int  # file rows the reader rejected (including those below)
    source_rejected_rows: int = 0  # of which the publisher itself marked as errors
    figures: int = 0  # observations (or areas) the reader produced from the valid rows
    figures_unknown: int = 0  # figures whose pcode is not a known area
    figures_set_aside: int = 0  # figures of a country/level without areas
    figures_skipped: int = 0  # figures outside --country / --level
    exact: bool = True

    def _rows_behind(self, figures: int) -> int:
        if not figures or not self.figures:
            return 0
        # max(1, ...): a figure with a bad pcode stands for at least one bad row.
        return max(1, round(figures / self.figures * (self.file_rows - self.invalid_rows)))

    @property
    def unknown_rows(self) -> int:
        return self._rows_behind(self.figures_unknown)

    @property
    def set_aside_rows(self) -> int:
        return self._rows_behind(self.figures_set_aside)

    @property
    def quarantined_rows(self) -> int:
        """Every file row kept out: failed validation, rejected by the publisher, bad pcode."""
        return min(self.file_rows, self.invalid_rows + self.unknown_rows)

    @property
    def bad_rows(self) -> int:
        """The rows that count against the file: quarantined, less those the publisher rejected."""
        return max(0, self.quarantined_rows - self.source_rejected_rows)

    @property
    def bad_share(self) -> float:
        return self.bad_rows / self.file_rows if self.file_rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "file_rows": self.file_rows,
            "invalid_rows": self.invalid_rows,
            "source_rejected_rows": self.source_rejected_rows,
            "figures": self.figures,
            "figures_unknown_pcode": self.figures_unknown,
            "figures_set_aside": self.figures_set_aside,
            "figures_skipped": self.figures_skipped,
            "unknown_pcode_rows": self.unknown_rows,
            "set_aside_rows": self.set_aside_rows,
            "quarantined_rows": self.quarantined_rows,
            "bad_rows": self.bad_rows,
            "bad_share": round(self.bad_share, 6),
            "row_count_method": "exact" if self.exact else "proportional",
        }


@dataclass
class BatchSummary:
    """What one ingest did, for the CLI, the job history and the tests."""

    batch_id: int | None
    source_id: str
    status: str  # succeeded / unchanged / refused / failed
    kind: str = ""
    location: str = ""
    content_hash: str | None = None
    rows_read: int = 0
    rows_stored: int = 0
    rows_unchanged: int = 0
    rows_quarantined: int = 0
    rows_set_aside: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0
    notes: list[str] = field(default_factory=list)
    reporting_dates: list[str] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    message: str | None = None  # why it was refused or failed


@dataclass
class _Input:
    """Everything known about one input before it is written."""

    source_id: str
    kind: str
    location: str
    content_hash: str | None
    started_at: dt.datetime
    source: SourceInfo | None = None
    query: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    personal_data: list[PersonalDataColumn] = field(default_factory=list)
    accounting: RowAccounting = field(default_factory=lambda: RowAccounting(0, 0))


# --- entry points ----------------------------------------------------------------------------


def ingest_file(
    engine: Engine,
    path: Path,
    kind: str,
    *,
    source_id: str | None = None,
    country_iso3: str | None = None,
    level: int | None = None,
    mapping: dict[str, Any] | None = None,
    period: dt.date | None = None,
    max_bad_row_share: float = 0.05,
    offshore_max_km: float = 10.0,
    aggregate_columns: Sequence[str] = (),
    location: str | None = None,
    source: SourceInfo | None = None,
    progress: Progress | None = None,
) -> BatchSummary:
    """Check one file of one kind and store it as one batch; IngestRefused when refused.

    ``mapping`` is a mapping dict (``sources.mapping.load_mapping``; for ``table`` a plain
    ``{column: variable}`` dict is accepted too); ``location`` is what the batch records as the
    input (a URL for a downloaded file; default the file's path).
    """
    if kind not in KINDS:
        raise IngestRefused(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    say = progress or (lambda _message: None)
    path = Path(path)
    source_id = source_id or default_source_id(path.name)
    item = _Input(
        source_id=source_id,
        kind=kind,
        location=location or str(path.resolve()),
        content_hash=file_sha256(path),
        started_at=utcnow(),
        source=source,
    )
    mapping = dict(mapping or {})
    country_iso3 = country_iso3 or mapping.get("country")
    if kind in _TABLE_KINDS:
        say("Checking the columns for personal data")
        declared = [*aggregate_columns, *mapping.get("aggregate_columns", [])]
        item.personal_data = _personal_data(path, mapping.get("sheet"), declared)
        if item.personal_data:
            _refuse_personal_data(engine, item)
    say(f"Reading the {kind} file {path.name}")
    result = _read(engine, path, kind, country_iso3=country_iso3, level=level, mapping=mapping,
                   period=period, offshore_max_km=offshore_max_km)
    return _check_and_store(engine, item, result, country_iso3=country_iso3, level=level,
                            max_bad_row_share=max_bad_row_share, say=say)


def ingest_read_result(
    engine: Engine,
    result: ReadResult,
    kind: str,
    *,
    source_id: str,
    location: str,
    content_hash: str | None = None,
    country_iso3: str | None = None,
    level: int | None = None,
    max_bad_row_share: float = 0.05,
    source: SourceInfo | None = None,
    progress: Progress | None = None,
) -> BatchSummary:
    """Check and store what a reader returned, as one batch: ``ingest_file`` after reading.

    For callers that read an input themselves (and for the ingest benchmark). Without a
    ``content_hash`` the batch's identity is the hash of the reader's figures.
    """
    if kind not in KINDS:
        raise IngestRefused(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    item = _Input(
        source_id=source_id,
        kind=kind,
        location=location,
        content_hash=content_hash or frame_sha256(result.frame),
        started_at=utcnow(),
        source=source,
    )
    return _check_and_store(engine, item, result, country_iso3=country_iso3, level=level,
                            max_bad_row_share=max_bad_row_share,
                            say=progress or (lambda _message: None))


def ingest_dtm_query(
    engine: Engine,
    query: dict[str, Any],
    *,
    source_id: str,
    subscription_key: str | None,
    max_bad_row_share: float = 0.05,
    source: SourceInfo | None = None,
    progress: Progress | None = None,
) -> BatchSummary:
    """Fetch one DTM API query and store it as one batch (the query JSON is its lineage).

    A missing or rejected key (``DTMAPI_SUBSCRIPTION_KEY``) or an API failure records a failed
    batch and raises IngestFailed.
    """
    say = progress or (lambda _message: None)
    canonical = json.dumps(query, sort_keys=True, default=str)
    item = _Input(source_id=source_id, kind="dtm", location=f"dtm-api:{canonical}",
                  content_hash=None, started_at=utcnow(), source=source, query=dict(query))
    say("Querying the DTM API")
    from riskwatch.sources.dtm_api import read_dtm_api

    try:
        result = read_dtm_api(dict(query), subscription_key=subscription_key)
    except UsageError:
        raise  # a bad query is a configuration error (exit code 2), not a failed source
    except RiskwatchError as error:
        summary = record_failure(engine, item, str(error))
        raise IngestFailed(str(error), summary) from None
    # The API answer has no file: its identity is the hash of the figures it gave.
    item.content_hash = frame_sha256(result.frame)
    # No country filter: the API answered for the query's country (which may be given by name).
    return _check_and_store(engine, item, result, country_iso3=None, level=None,
                            max_bad_row_share=max_bad_row_share, say=say)


def ingest_source(
    engine: Engine,
    spec: SourceSpec,
    settings: Settings,
    *,
    subscription_key: str | None = None,
    progress: Progress | None = None,
) -> BatchSummary:
    """Ingest one declared source (sources.toml): a file, a URL or a DTM API query.

    A source that cannot be fetched or opened records a failed batch and raises IngestFailed;
    a bad mapping file raises ConfigError (exit code 2) after recording the failure.
    """
    info = SourceInfo(
        title=spec.title,
        attribution=spec.attribution,
        licence=spec.licence,
        expected_cadence_days=spec.expected_cadence_days,
        settings=spec.declaration(),
    )
    limits = settings.ingest
    if spec.query is not None:
        return ingest_dtm_query(
            engine, spec.query, source_id=spec.id, subscription_key=subscription_key,
            max_bad_row_share=limits.max_bad_row_share, source=info, progress=progress,
        )
    assert spec.location is not None  # the registry requires a location or a query
    fail = partial(record_failed_source, engine, source_id=spec.id, kind=spec.kind,
                   location=redact_url(spec.location) if is_url(spec.location)
                   else spec.location, source=info)
    mapping = None
    if spec.mapping is not None:
        try:
            mapping = load_mapping_file(spec.mapping)
        except ConfigError as error:
            fail(message=str(error))
            raise
    options: dict[str, Any] = {
        "source_id": spec.id, "country_iso3": spec.country, "level": spec.level,
        "mapping": mapping, "max_bad_row_share": limits.max_bad_row_share,
        "offshore_max_km": limits.offshore_max_km, "aggregate_columns": spec.aggregate_columns,
        "source": info, "progress": progress,
    }
    if is_url(spec.location):
        if progress:
            progress(f"Downloading {redact_url(spec.location)}")
        try:
            with downloaded(
                spec.location, timeout_seconds=limits.url_timeout_seconds,
                max_bytes=limits.url_max_bytes,
                allow_private_addresses=settings.allow_private_addresses,
            ) as download:
                return ingest_file(engine, download.path, spec.kind, location=download.url,
                                   **options)
        except FetchError as error:
            raise IngestFailed(str(error), fail(message=str(error))) from None
    path = Path(spec.location)
    if not path.is_file():
        message = f"source {spec.id!r}: file not found: {path} (declared in {spec.config_file})"
        raise IngestFailed(message, fail(message=message))
    return ingest_file(engine, path, spec.kind, **options)


def load_mapping_file(path: Path) -> dict[str, Any]:
    """A mapping file, validated by ``sources.mapping``; ConfigError naming file and key."""
    from riskwatch.sources.mapping import MappingError, load_mapping

    try:
        return load_mapping(path)
    except MappingError as error:
        raise ConfigError(f"configuration error: {error}") from None


def dtm_subscription_key() -> str | None:
    """The DTM API key, from the environment only (DTMAPI_SUBSCRIPTION_KEY): never argv."""
    return os.environ.get("DTMAPI_SUBSCRIPTION_KEY") or None


def default_source_id(name: str) -> str:
    """The source id of an ad-hoc file: ``file:<name>`` (at most 64 characters)."""
    return f"file:{name}"[:64]


# --- reading -----------------------------------------------------------------------------------


def _read(
    engine: Engine,
    path: Path,
    kind: str,
    *,
    country_iso3: str | None,
    level: int | None,
    mapping: dict[str, Any],
    period: dt.date | None,
    offshore_max_km: float,
) -> ReadResult:
    """Run the reader of ``kind``. Readers of newer kinds are imported only when used."""
    from riskwatch.sources import area_table, boundaries, dtm, events, gazetteer, hapi

    if kind == "boundaries":
        return boundaries.read_boundaries(path, level=level, country_iso3=country_iso3)
    if kind == "gazetteer":
        return gazetteer.read_gazetteer(path, country_iso3=country_iso3)
    if kind == "dtm":
        return dtm.read_dtm_table(path)
    if kind == "hapi":
        return hapi.read_hapi_table(path)
    if kind == "acled":
        return events.read_acled_events(
            path, finest_area_polygons(engine, country_iso3), max_offshore_km=offshore_max_km
        )
    if kind == "table":
        options = _table_options(mapping, period)
        if "name_column" in options:
            # A table by area name: names are matched against the known areas (aliases first).
            options.update(areas=known_areas(engine, names=True), country_iso3=country_iso3,
                           level=level)
        return area_table.read_area_table(path, **options)
    if kind == "hxl":
        from riskwatch.sources.hxl_table import read_hxl_table

        return read_hxl_table(path, mapping=mapping or None)
    if kind == "sites":
        from riskwatch.sources.sites import read_site_assessments

        return read_site_assessments(
            path, mapping=mapping, areas=finest_area_polygons(engine, country_iso3)
        )
    if kind == "events":
        from riskwatch.sources.point_events import read_point_events

        return read_point_events(
            path, mapping=mapping, areas=finest_area_polygons(engine, country_iso3),
            max_offshore_km=offshore_max_km,
        )
    raise IngestRefused(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")


def _table_options(mapping: dict[str, Any], period: dt.date | None) -> dict[str, Any]:
    """``read_area_table`` keyword arguments from a table mapping.

    A mapping file gives ``variables`` (column -> variable) and optional ``pcode_column``,
    ``period``, ``period_column`` and ``sheet``; a plain ``{column: variable}`` dict (as the demo
    passes) is the variables alone.
    """
    if "variables" in mapping:
        options: dict[str, Any] = {"mapping": dict(mapping["variables"])}
        for key in ("pcode_column", "name_column", "aliases", "period", "period_column",
                    "sheet"):
            if mapping.get(key) is not None:
                options[key] = mapping[key]
    else:
        options = {"mapping": dict(mapping)}
    if period is not None:
        options["period"] = period
    if not options["mapping"]:
        raise IngestRefused("an area table needs a mapping of columns to variables (--mapping)")
    return options


def _personal_data(
    path: Path, sheet: str | int | None, aggregate_columns: Sequence[str]
) -> list[PersonalDataColumn]:
    """The columns of a table file that look like personal data (see riskwatch.privacy)."""
    from riskwatch.sources.tabular import read_table

    table = read_table(path, sheet=sheet)
    if table.fatal:
        return []  # an unreadable file is refused by its reader, with the reader's reason
    samples = []
    for column in table.columns:
        values = table.data[column]
        distinct = pd.unique(values[values != ""])
        samples.append(list(distinct[:_PII_SAMPLE]))
    return find_personal_data_columns(
        table.headers, table.tags, samples, aggregate_columns=aggregate_columns
    )


# --- checking ----------------------------------------------------------------------------------


def _check_and_store(
    engine: Engine,
    item: _Input,
    result: ReadResult,
    *,
    country_iso3: str | None,
    level: int | None,
    max_bad_row_share: float,
    say: Progress,
) -> BatchSummary:
    """Refuse on fatal problems or too many bad rows; else store in one transaction."""
    item.problems = list(result.problems)
    item.notes = list(result.notes)
    item.meta = dict(result.meta)
    rejected = _source_rejected_rows(result)
    item.accounting = RowAccounting(result.rows_read, result.rows_quarantined, rejected,
                                    figures=len(result.frame))
    if result.fatal:
        fatal = "; ".join(str(p) for p in result.problems if p.fatal)
        _refuse(engine, item, f"the input was refused: {fatal}")
    if item.kind in AREA_KINDS:
        frame = result.frame
        if level is not None and item.kind == "gazetteer":
            frame = _only(frame, item, country_iso3=None, level=level)
            item.accounting = RowAccounting(result.rows_read, result.rows_quarantined, rejected,
                                            figures=len(frame))
        _refuse_if_too_many_bad(engine, item, max_bad_row_share)
        countries = set(frame["country_iso3"].dropna().astype(str))
        say(f"Writing {len(frame):,} areas")
        return _store(engine, item, lambda session, batch: _store_areas(session, frame, batch),
                      countries)

    say("Matching pcodes against the known areas")
    frame = _only(result.frame, item, country_iso3=country_iso3, level=level)
    skipped = len(result.frame) - len(frame)
    from riskwatch.sources.pcodes import match_pcodes

    matched = match_pcodes(frame, known_areas(engine))
    item.problems += matched.problems
    item.notes += matched.notes
    item.meta["pcode_changes"] = matched.meta.get("pcode_changes", {})
    item.meta["set_aside"] = matched.meta.get("set_aside", [])
    kept = _only(matched.frame, item, country_iso3=country_iso3, level=level)
    skipped += len(matched.frame) - len(kept)
    item.accounting = RowAccounting(
        result.rows_read,
        result.rows_quarantined,
        rejected,
        figures=len(result.frame),
        figures_unknown=matched.rows_quarantined,
        figures_set_aside=matched.rows_set_aside,
        figures_skipped=skipped,
        exact=len(result.frame) == result.rows_read - result.rows_quarantined,
    )
    _refuse_if_too_many_bad(engine, item, max_bad_row_share)
    incoming = _normalise_observations(kept, item)
    countries = set(incoming["country_iso3"].dropna().astype(str))
    say(f"Writing {len(incoming):,} figures")
    return _store(
        engine, item, lambda session, batch: _store_observations(session, incoming, batch),
        countries,
    )


def _source_rejected_rows(result: ReadResult) -> int:
    """File rows the publisher itself marked as errors (e.g. HAPI's ``error`` column)."""
    return len({p.row for p in result.problems if p.rule in SOURCE_REJECTED_RULES})


def _only(
    frame: pd.DataFrame, item: _Input, *, country_iso3: str | None, level: int | None
) -> pd.DataFrame:
    """The rows of ``--country`` and ``--level`` (where the frame says them); the rest noted."""
    keep = np.ones(len(frame), dtype=bool)
    if country_iso3 and "country_iso3" in frame and item.kind != "boundaries":
        countries = frame["country_iso3"].astype(object)
        keep &= ~(countries.notna() & (countries.astype(str) != country_iso3)).to_numpy()
    if level is not None and "admin_level" in frame and item.kind != "boundaries":
        levels = pd.to_numeric(frame["admin_level"], errors="coerce")
        keep &= ~(levels.notna() & (levels != level)).to_numpy()
    dropped = int((~keep).sum())
    if dropped:
        wanted = " and ".join(
            part for part in (country_iso3 and f"country {country_iso3}",
                              level is not None and f"admin level {level}") if part
        )
        item.notes.append(f"{dropped:,} figure(s) outside {wanted} skipped, as asked")
    return frame[keep].reset_index(drop=True)


def _refuse_if_too_many_bad(engine: Engine, item: _Input, max_bad_row_share: float) -> None:
    counts = item.accounting
    if counts.bad_share <= max_bad_row_share:
        return
    parts = [f"{counts.invalid_rows - counts.source_rejected_rows:,} rejected by validation"]
    if counts.figures_unknown:
        how = "" if counts.exact else ", counted back in proportion"
        parts.append(f"{counts.unknown_rows:,} behind {counts.figures_unknown:,} figure(s) with "
                     f"unknown pcodes{how}")
    _refuse(
        engine, item,
        f"{counts.bad_rows:,} of {counts.file_rows:,} file rows are bad ({counts.bad_share:.1%}, "
        f"more than the allowed {max_bad_row_share:.1%}, setting ingest.max_bad_row_share): "
        + "; ".join(parts) + ". Nothing was written.",
    )


def _refuse_personal_data(engine: Engine, item: _Input) -> None:
    item.problems = [
        Problem(rule="personal_data", message=f"looks like personal data ({c.category}): "
                f"{c.reason}", column=c.column, fatal=True)
        for c in item.personal_data
    ]
    columns = "; ".join(str(c) for c in item.personal_data)
    _refuse(
        engine, item,
        f"the file holds columns that look like personal data, and riskwatch accepts area "
        f"aggregates only: {columns}. Nothing was written. Remove these columns, or, if a column "
        "holds aggregates, declare it in the source's aggregate_columns (sources.toml or the "
        "mapping).",
    )


def _refuse(engine: Engine, item: _Input, message: str) -> None:
    """Record the refused batch (its own transaction, no data rows) and raise IngestRefused."""
    summary = _record_batch(engine, item, status="refused", message=message)
    raise IngestRefused(message, summary)


def record_failure(engine: Engine, item: _Input, message: str) -> BatchSummary:
    """Record a failed batch (e.g. a download or API failure) in its own transaction."""
    return _record_batch(engine, item, status="failed", message=message)


def record_failed_source(
    engine: Engine, *, source_id: str, kind: str, location: str, message: str,
    source: SourceInfo | None = None,
) -> BatchSummary:
    """Record that a declared source could not even be fetched or opened."""
    item = _Input(source_id=source_id, kind=kind, location=location, content_hash=None,
                  started_at=utcnow(), source=source)
    return record_failure(engine, item, message)


def _record_batch(engine: Engine, item: _Input, *, status: str, message: str) -> BatchSummary:
    with session_scope(engine) as session:
        ensure_source(session, item.source_id, item.kind, item.location, item.source)
        batch = _new_batch(item)
        batch.status = status
        batch.finished_at = utcnow()
        batch.report = _report(item, message=message)
        session.add(batch)
        session.flush()
        return _summary(batch)


# --- writing -----------------------------------------------------------------------------------


def _store(
    engine: Engine,
    item: _Input,
    write: Callable[[Session, IngestBatch], tuple[int, int]],
    countries: Iterable[str],
) -> BatchSummary:
    """One transaction: source, batch, implicit country areas, then the data."""
    try:
        with session_scope(engine) as session:
            ensure_source(session, item.source_id, item.kind, item.location, item.source)
            batch = _new_batch(item)
            batch.report = _report(item)
            session.add(batch)
            session.flush()
            ensure_country_areas(session, countries, batch.id)
            stored, unchanged = write(session, batch)
            batch.rows_stored, batch.rows_unchanged = stored, unchanged
            batch.status = "succeeded" if stored else "unchanged"
            batch.finished_at = utcnow()
            session.add(batch)
            session.flush()
            return _summary(batch)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        message = f"storing the batch failed and was rolled back: {reason}"
        summary = record_failure(engine, item, message)
        raise IngestFailed(message, summary) from error


def ensure_source(
    session: Session,
    source_id: str,
    kind: str,
    location: str,
    info: SourceInfo | None = None,
) -> Source:
    """The source row, created on first use and kept up to date with its declaration."""
    source = session.get(Source, source_id)
    if source is None:
        source = Source(id=source_id, kind=kind, location=location[:2000])
    source.kind, source.location = kind, location[:2000]
    if info is not None:
        for key in ("title", "attribution", "licence", "expected_cadence_days", "settings"):
            value = getattr(info, key)
            if value is not None:
                setattr(source, key, value)
    session.add(source)
    session.flush()
    return source


def ensure_country_areas(session: Session, countries: Iterable[str], batch_id: int | None) -> None:
    """Countries (admin0) exist implicitly from their ISO3 codes (CONTRACTS.md)."""
    for iso3 in sorted(set(countries)):
        if session.get(Area, iso3) is None:
            session.add(Area(pcode=iso3, name=iso3, admin_level=0, country_iso3=iso3,
                             batch_id=batch_id))
    session.flush()


def _new_batch(item: _Input) -> IngestBatch:
    counts = item.accounting
    return IngestBatch(
        source_id=item.source_id,
        kind=item.kind,
        location=item.location[:2000],
        content_hash=item.content_hash,
        started_at=item.started_at,
        rows_read=counts.file_rows,
        rows_quarantined=counts.quarantined_rows,
        rows_set_aside=counts.set_aside_rows,
        reporting_dates=[str(d) for d in item.meta.get("reporting_dates", [])] or None,
    )


def _report(item: _Input, *, message: str | None = None) -> dict[str, Any]:
    """The batch's JSON report: counts, problems and notes (first REPORT_LIMIT), rounds..."""
    report: dict[str, Any] = {
        "counts": item.accounting.as_dict(),
        "problems": [_problem_dict(p) for p in item.problems[:REPORT_LIMIT]],
        "problem_count": len(item.problems),
        "notes": item.notes[:REPORT_LIMIT],
        "note_count": len(item.notes),
    }
    for key in ("rounds", "countries", "assessment_types", "encoding", "hapi_table",
                "coverage", "set_aside"):
        if item.meta.get(key):
            report[key] = _jsonable(item.meta[key])
    changes = item.meta.get("pcode_changes") or {}
    if changes:
        report["pcode_changes"] = dict(list(sorted(changes.items()))[:REPORT_LIMIT])
    if item.query is not None:
        report["query"] = _jsonable(item.query)
    if item.personal_data:
        report["personal_data"] = [
            {"column": c.column, "category": c.category, "reason": c.reason}
            for c in item.personal_data
        ]
    if message:
        report["message"] = message
    return report


def _problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "row": problem.row,
        "column": problem.column,
        "value": problem.value,
        "rule": problem.rule,
        "message": problem.message,
        "fatal": problem.fatal,
    }


def _summary(batch: IngestBatch) -> BatchSummary:
    report = batch.report or {}
    assert batch.id is not None
    return BatchSummary(
        batch_id=batch.id,
        source_id=batch.source_id,
        status=batch.status,
        kind=batch.kind,
        location=batch.location,
        content_hash=batch.content_hash,
        rows_read=batch.rows_read,
        rows_stored=batch.rows_stored,
        rows_unchanged=batch.rows_unchanged,
        rows_quarantined=batch.rows_quarantined,
        rows_set_aside=batch.rows_set_aside,
        problems=list(report.get("problems", [])),
        problem_count=int(report.get("problem_count", 0)),
        notes=list(report.get("notes", [])),
        reporting_dates=list(batch.reporting_dates or []),
        rounds=list(report.get("rounds", [])),
        counts=dict(report.get("counts", {})),
        message=report.get("message"),
    )


def _store_areas(session: Session, frame: pd.DataFrame, batch: IngestBatch) -> tuple[int, int]:
    """Upsert areas by pcode: (stored, unchanged). A changed name, parent or geometry updates."""
    boundary_version = (batch.content_hash or "")[:16] or None
    pcodes = [str(p) for p in frame["pcode"]]
    existing: dict[str, Area] = {}
    for chunk in _chunks(pcodes, 5000):
        statement = select(Area).where(col(Area.pcode).in_(chunk))
        existing.update((area.pcode, area) for area in session.exec(statement))
    stored = unchanged = 0
    for row in frame.itertuples(index=False):
        geometry = getattr(row, "geometry", None)
        if geometry is not None and (not isinstance(geometry, shapely.Geometry)
                                     or geometry.is_empty):
            geometry = None
        values: dict[str, Any] = {
            "name": str(row.name)[:200],
            "admin_level": int(row.admin_level),
            "parent_pcode": None if _missing(row.parent_pcode) else str(row.parent_pcode),
            "country_iso3": str(row.country_iso3),
        }
        area = existing.get(str(row.pcode))
        if area is None:
            session.add(Area(pcode=str(row.pcode), geometry=geometry,
                             boundary_version=boundary_version if geometry is not None else None,
                             batch_id=batch.id, **values))
            stored += 1
            continue
        same_geometry = (geometry is None and area.geometry is None) or (
            geometry is not None and area.geometry is not None
            and shapely.equals_exact(geometry, area.geometry, tolerance=1e-9)
        )
        if geometry is None and area.geometry is not None:
            same_geometry = True  # a gazetteer never erases a known geometry
        if same_geometry and all(getattr(area, k) == v for k, v in values.items()):
            unchanged += 1
            continue
        for key, value in values.items():
            setattr(area, key, value)
        if not same_geometry:
            area.geometry = geometry
            area.boundary_version = boundary_version
        area.batch_id = batch.id
        area.updated_at = utcnow()
        session.add(area)
        stored += 1
    session.flush()
    return stored, unchanged


def _store_observations(
    session: Session, incoming: pd.DataFrame, batch: IngestBatch
) -> tuple[int, int]:
    """Add new observations and revisions: (stored, unchanged); identical values change nothing.

    A batch whose variables and periods have no current observation yet (the first ingest of a
    source, a new round) needs no comparison: every figure is new. Otherwise the current values
    are read and merged on the observation key. The rows go in through the backend's bulk path
    (``_insert_observations``).
    """
    now = utcnow()
    if incoming.empty:
        return 0, 0
    if not _has_current_observations(session, incoming):
        _insert_observations(session, incoming, np.ones(len(incoming), dtype=np.int64),
                             batch, now)
        return len(incoming), 0
    current = _current_observations(session, incoming)
    merged = incoming.merge(current, on=OBSERVATION_KEY, how="left", suffixes=("", "_old"))
    is_new = merged["id_old"].isna()
    same = ~is_new & _close(merged["value"], merged["value_old"])
    revised = ~is_new & ~same
    if revised.any():
        old_ids = [int(i) for i in merged.loc[revised, "id_old"]]
        for chunk in _chunks(old_ids, 5000):
            session.execute(
                update(Observation).where(col(Observation.id).in_(chunk)).values(superseded_at=now)
            )
    to_insert = merged.loc[is_new | revised].reset_index(drop=True)
    versions = (to_insert["version_old"].fillna(0).astype(np.int64) + 1).to_numpy()
    _insert_observations(session, to_insert, versions, batch, now)
    return len(to_insert), int(same.sum())


def _has_current_observations(session: Session, incoming: pd.DataFrame) -> bool:
    """Whether any current observation shares a variable and a period with ``incoming``."""
    variables = sorted(incoming["variable"].unique())
    periods = sorted(incoming["period"].unique())
    for chunk in _chunks(periods, 1000):
        statement = (
            sa_select(col(Observation.id))
            .where(
                col(Observation.variable).in_(variables),
                col(Observation.period).in_(chunk),
                col(Observation.superseded_at).is_(None),
            )
            .limit(1)
        )
        if session.execute(statement).first() is not None:
            return True
    return False


#: Rows per block written to PostgreSQL's COPY.
_COPY_CHUNK = 100_000
_INSERT_COLUMNS = ("area_pcode", "variable", "period", "value", "operation", "assessment_type",
                   "round", "version", "batch_id", "recorded_at")


def _insert_observations(
    session: Session, rows: pd.DataFrame, versions: np.ndarray, batch: IngestBatch,
    now: dt.datetime,
) -> None:
    """Insert observation rows in bulk, in the session's transaction.

    PostgreSQL: ``COPY ... FROM STDIN`` (psycopg); SQLite: one prepared ``executemany``; any
    other backend: SQLAlchemy's multi-row insert. Values are stored as the ORM would store them
    (``recorded_at`` in UTC; the SQLite text formats of SQLAlchemy's Date and DateTime).
    """
    if rows.empty:
        return
    rounds = [None if _missing(r) else str(r)[:32] for r in rows["round"].tolist()]
    columns: dict[str, list[Any]] = {
        "area_pcode": rows["area_pcode"].tolist(),
        "variable": rows["variable"].tolist(),
        "period": rows["period"].tolist(),
        "value": rows["value"].astype(float).tolist(),
        "operation": rows["operation"].tolist(),
        "assessment_type": rows["assessment_type"].tolist(),
        "round": rounds,
        "version": [int(v) for v in versions],
    }
    count = len(rows)
    connection = session.connection()
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    names = ", ".join(_INSERT_COLUMNS)
    if dialect == "postgresql" and hasattr(driver, "cursor") and hasattr(
        driver.cursor(), "copy"
    ):
        recorded = now.astimezone(dt.UTC).isoformat()
        table = pd.DataFrame({**columns, "batch_id": batch.id, "recorded_at": recorded})
        # CSV: an unquoted empty field is NULL (round), except in the NOT NULL text columns.
        statement = (f"COPY observation ({names}) FROM STDIN "
                     "(FORMAT csv, FORCE_NOT_NULL (operation, assessment_type))")
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for start in range(0, count, _COPY_CHUNK):
                part = table.iloc[start:start + _COPY_CHUNK]
                copy.write(part.to_csv(header=False, index=False, float_format="%.17g"))
        return
    if dialect == "sqlite":
        recorded_text = now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        periods = [p.isoformat() for p in columns["period"]]
        values = zip(
            columns["area_pcode"], columns["variable"], periods, columns["value"],
            columns["operation"], columns["assessment_type"], columns["round"],
            columns["version"], [batch.id] * count, [recorded_text] * count, strict=True,
        )
        marks = ", ".join("?" for _ in _INSERT_COLUMNS)
        driver.executemany(f"INSERT INTO observation ({names}) VALUES ({marks})", values)
        return
    keys = list(columns)
    dicts = [
        {**dict(zip(keys, row, strict=True)), "batch_id": batch.id, "recorded_at": now,
         "superseded_at": None}
        for row in zip(*columns.values(), strict=True)
    ]
    for chunk in _chunks(dicts, 5000):
        session.execute(insert(Observation), chunk)


def _normalise_observations(frame: pd.DataFrame, item: _Input) -> pd.DataFrame:
    """The matched figures in the store's shape; duplicate keys keep the last (noted)."""
    def text(name: str) -> pd.Series:
        if name not in frame:
            return pd.Series([""] * len(frame), dtype=object)
        return frame[name].astype(object).where(frame[name].notna(), "").astype(str)

    out = pd.DataFrame(
        {
            "area_pcode": frame["pcode"].astype(str),
            "variable": frame["variable"].astype(str),
            "period": [_as_date(v) for v in frame["period"]],
            "value": frame["value"].astype(float),
            "operation": text("operation").str.slice(0, 200),
            "assessment_type": text("assessment_type").str.slice(0, 16),
            "round": frame.get("round"),
            "country_iso3": frame.get("country_iso3"),
        }
    )
    empty = int(out["value"].isna().sum())
    if empty:
        item.notes.append(f"{empty:,} figure(s) without a value left out")
        out = out.dropna(subset=["value"])
    duplicated = out.duplicated(subset=OBSERVATION_KEY, keep="last")
    if duplicated.any():
        item.notes.append(
            f"{int(duplicated.sum()):,} figure(s) given twice for the same area, variable, period, "
            "operation and assessment type: the last one kept"
        )
        out = out[~duplicated]
    return out.reset_index(drop=True)


def _current_observations(session: Session, incoming: pd.DataFrame) -> pd.DataFrame:
    columns = OBSERVATION_KEY + ["id_old", "value_old", "version_old"]
    if incoming.empty:
        return pd.DataFrame(columns=columns)
    variables = sorted(incoming["variable"].unique())
    periods = sorted(incoming["period"].unique())
    rows: list[Any] = []
    for chunk in _chunks(periods, 1000):
        # SQLAlchemy's select: SQLModel's typed overloads stop at four columns.
        statement = sa_select(
            col(Observation.area_pcode), col(Observation.variable), col(Observation.period),
            col(Observation.operation), col(Observation.assessment_type),
            col(Observation.id), col(Observation.value), col(Observation.version),
        ).where(
            col(Observation.variable).in_(variables),
            col(Observation.period).in_(chunk),
            col(Observation.superseded_at).is_(None),
        )
        rows.extend(session.execute(statement).all())
    current = pd.DataFrame(rows, columns=columns)
    current["period"] = [_as_date(v) for v in current["period"]]
    for key in ("area_pcode", "variable", "operation", "assessment_type"):
        current[key] = current[key].astype(str)
    return current


# --- helpers -----------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """Content hash of a file, the identity of a snapshot in the batch lineage."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """Content hash of a reader's figures (for inputs without a file, such as an API answer)."""
    columns = sorted(frame.columns)
    ordered = frame[columns].astype(str).sort_values(columns).to_csv(index=False)
    return hashlib.sha256(ordered.encode("utf-8")).hexdigest()


def known_areas(engine: Engine, *, names: bool = False) -> pd.DataFrame:
    """The areas in the database (pcode, admin_level, country_iso3), for pcode matching.

    With ``names`` the frame has their ``name`` too, for matching area names.
    """
    with Session(engine) as session:
        if names:
            rows: Sequence[Any] = session.exec(
                select(Area.pcode, Area.admin_level, Area.country_iso3, Area.name)
            ).all()
            return pd.DataFrame(rows, columns=["pcode", "admin_level", "country_iso3", "name"])
        rows = session.exec(select(Area.pcode, Area.admin_level, Area.country_iso3)).all()
    return pd.DataFrame(rows, columns=["pcode", "admin_level", "country_iso3"])


def finest_area_polygons(engine: Engine, country_iso3: str | None = None) -> Any:
    """The finest admin level's polygons (per country) as a GeoDataFrame in EPSG:4326."""
    import geopandas as gpd

    with Session(engine) as session:
        statement = select(Area).where(col(Area.geometry).is_not(None))
        if country_iso3:
            statement = statement.where(Area.country_iso3 == country_iso3)
        areas = list(session.exec(statement))
    frame = gpd.GeoDataFrame(
        {
            "pcode": [a.pcode for a in areas],
            "name": [a.name for a in areas],
            "admin_level": [a.admin_level for a in areas],
            "parent_pcode": [a.parent_pcode for a in areas],
            "country_iso3": [a.country_iso3 for a in areas],
        },
        geometry=[a.geometry for a in areas],
        crs="EPSG:4326",
    )
    if frame.empty:
        return frame
    finest = frame.groupby("country_iso3")["admin_level"].transform("max")
    return frame[frame["admin_level"] == finest].reset_index(drop=True)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == "" or (
        value is pd.NA
    )


def _as_date(value: Any) -> dt.date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _close(new: pd.Series, old: pd.Series) -> pd.Series:
    new_values = new.astype(float)
    old_values = old.astype(float)
    scale = np.maximum(np.maximum(new_values.abs(), old_values.abs()), 1.0)
    return ((new_values - old_values).abs() <= VALUE_TOLERANCE * scale).fillna(False)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _jsonable(value: Any) -> Any:
    """Plain JSON data from reader metadata (dates, numpy numbers, sets)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
