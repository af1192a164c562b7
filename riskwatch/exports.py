"""Data out: what `riskwatch export WHAT` exports (CONTRACTS.md, "Exports"), loaded and checked.

- **Specs**: each export as columns with their HXL tags and kinds (:data:`EXPORT_SPECS`).
  Areas, observations, scores, hotspots and alerts each have a loader (a function returning
  an :class:`ExportTable`).
- **Loading**: :func:`build_export` reads one frame of exactly the spec's columns (observations
  through :mod:`riskwatch.observations`), blanks small counts of sensitive variables
  (:mod:`riskwatch.privacy`) and gathers what travels with every export (:class:`ExportAbout`:
  attribution, licence, sensitivity label, filters, schema revision).

Writing the formats is :mod:`riskwatch.export_writers`' job. Rows are sorted by code point in
pandas, not under a database collation, so the same data gives the same bytes on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func
from sqlalchemy import select as sql_select  # sqlmodel's select stops at four columns
from sqlmodel import Session, col, select

from riskwatch.catalog import ScoringModel
from riskwatch.db.migrate import schema_state
from riskwatch.db.models import (
    Area,
    AreaScore,
    Hotspot,
    IndicatorProfile,
    IngestBatch,
    Meta,
    ScoreRun,
    Source,
)
from riskwatch.errors import RiskwatchError, UsageError
from riskwatch.hotspot_stage import CONFLICT_VARIABLE, MIN_AREAS, RISK_VARIABLE
from riskwatch.observations import finest_observed_level, known_variables, observations_frame
from riskwatch.privacy import is_sensitive, sensitivity_label, suppress_small_counts
from riskwatch.timeutil import to_utc

FORMATS: tuple[str, ...] = ("csv", "geojson", "gpkg", "html", "png")
#: Map formats: a standalone HTML map and a PNG image of risk classes (scores only).
MAP_FORMATS: tuple[str, ...] = ("html", "png")
#: The exports that map formats can draw: a map colours areas by their risk class.
MAP_EXPORTS: tuple[str, ...] = ("scores",)
#: Binary formats: never to standard output.
BINARY_FORMATS: tuple[str, ...] = ("gpkg", "png")
#: Formats that carry the areas' geometries.
SPATIAL_FORMATS: tuple[str, ...] = ("geojson", "gpkg")


class ExportRefused(RiskwatchError):
    """The export cannot be made from this database (exit code 1)."""


# --- specs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportColumn:
    """One exported column: its name, HXL hashtag (empty: none fixed yet) and kind of value."""

    name: str
    hxl: str
    kind: str  # text, integer, number, date


@dataclass(frozen=True)
class ExportRequest:
    """What the user asked for, parsed and validated for form (see :func:`check_request`)."""

    what: str
    format: str
    level: int | None = None
    variable: str | None = None
    period: date | None = None
    country: str | None = None  # ISO3, upper case
    as_of: datetime | None = None
    run: int | None = None


@dataclass(frozen=True)
class SourceNote:
    """A source whose rows are in the export, with its attribution and licence."""

    id: str
    title: str | None
    attribution: str | None
    licence: str | None


@dataclass(frozen=True)
class ExportAbout:
    """What travels with every export: provenance, protection, and how it was selected."""

    what: str
    filters: dict[str, str]
    sources: tuple[SourceNote, ...]
    sensitivity: str
    schema_revision: str
    rows: int
    suppressed: int = 0
    threshold: int = 0

    @property
    def attribution(self) -> str:
        """One line per source: ``title (id): attribution``."""
        return "; ".join(
            f"{_source_name(s)}: {s.attribution or 'no attribution recorded'}"
            for s in self.sources
        ) or "no sources"

    @property
    def licence(self) -> str:
        """One line per source: ``title (id): licence``."""
        return "; ".join(
            f"{_source_name(s)}: {s.licence or 'no licence recorded'}" for s in self.sources
        ) or "no sources"

    def items(self) -> list[tuple[str, str]]:
        """Key/value pairs, in a fixed order, for the gpkg ``about`` table and layer metadata."""
        pairs = [
            ("export", self.what),
            ("attribution", self.attribution),
            ("licence", self.licence),
            ("sensitivity", self.sensitivity),
            ("rows", str(self.rows)),
            ("suppressed_values", str(self.suppressed)),
            ("schema_revision", self.schema_revision),
        ]
        pairs += [(f"filter_{name}", value) for name, value in self.filters.items()]
        # Plain keys (GDAL metadata gives ":" and "=" a meaning of their own).
        for number, source in enumerate(self.sources, start=1):
            pairs += [
                (f"source_{number}_id", source.id),
                (f"source_{number}_title", source.title or ""),
                (f"source_{number}_attribution", source.attribution or ""),
                (f"source_{number}_licence", source.licence or ""),
            ]
        return pairs

    def as_text(self, export_format: str) -> str:
        """The sidecar ``PATH.about.txt`` of a csv export (no timestamp: same data, same bytes)."""
        filters = "; ".join(f"{name.replace('_', ' ')}: {value}"
                            for name, value in self.filters.items())
        lines = [
            f"riskwatch export: {self.what} ({export_format})",
            "Layout: UTF-8 CSV; row 1 column names, row 2 HXL hashtags, then data rows.",
            f"Rows: {self.rows}",
            f"Filters: {filters}",
            f"Database schema revision: {self.schema_revision}",
            self.sensitivity,  # the label names itself ("Sensitivity: ...")
        ]
        if self.suppressed:
            lines.append(f"Suppressed values: {self.suppressed} (sensitive counts from 1 to "
                         f"{self.threshold - 1} left blank)")
        lines += ["", "Sources (attribution and licence):"]
        if not self.sources:
            lines.append("- none")
        for source in self.sources:
            lines += [
                f"- {_source_name(source)}",
                f"  Attribution: {source.attribution or 'not recorded for this source'}",
                f"  Licence: {source.licence or 'not recorded for this source'}",
            ]
        return "\n".join(lines) + "\n"


def _source_name(source: SourceNote) -> str:
    return f"{source.title} ({source.id})" if source.title else source.id


@dataclass
class ExportTable:
    """A loaded export: the rows (exactly the spec's columns) and what travels with them."""

    spec: ExportSpec
    frame: pd.DataFrame
    about: ExportAbout
    # pcode -> geometry (None: no boundary), for the spatial formats only.
    geometries: dict[str, BaseGeometry | None] = field(default_factory=dict)
    # pcode -> area name and the demo flag, for the map formats (labels, "synthetic" note).
    names: dict[str, str] = field(default_factory=dict)
    is_demo: bool = False


Loader = Callable[[Session, ExportRequest, int, bool], ExportTable]


@dataclass(frozen=True)
class ExportSpec:
    """One WHAT of `riskwatch export`: its columns, the options it takes, how it is loaded."""

    what: str
    columns: tuple[ExportColumn, ...]
    options: frozenset[str]  # which of level/variable/period/country/as_of/run apply
    loader: Loader | None = None  # None: not available yet

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]


def _columns(*columns: tuple[str, str, str]) -> tuple[ExportColumn, ...]:
    return tuple(ExportColumn(name, hxl, kind) for name, hxl, kind in columns)


# Tags CONTRACTS.md does not fix yet are empty: an empty hashtag cell is valid HXL (untagged).
_AREA_COLUMNS = _columns(
    ("pcode", "#adm+code", "text"),
    ("name", "#adm+name", "text"),
    ("admin_level", "#adm+level", "integer"),
    ("parent_pcode", "#adm+code+parent", "text"),
    ("country", "#country+code", "text"),
)
_OBSERVATION_COLUMNS = _columns(
    ("pcode", "#adm+code", "text"),
    ("admin_level", "#adm+level", "integer"),
    ("variable", "#indicator+code", "text"),
    ("period", "#date", "date"),
    ("value", "#indicator+value+num", "number"),
    ("operation", "#operation+name", "text"),
    ("assessment_type", "#assessment+type", "text"),
    ("round", "#round+code", "text"),
    ("source", "#meta+source", "text"),
    ("batch", "#meta+batch", "integer"),
)
_SCORE_COLUMNS = _columns(
    ("pcode", "#adm+code", "text"),
    ("admin_level", "#adm+level", "integer"),
    ("period", "#date", "date"),
    ("risk", "#severity+num", "number"),
    ("risk_class", "#severity+type", "text"),
    ("reliability", "", "number"),
    ("exposure", "", "number"),
    ("vulnerability", "", "number"),
    ("lack_of_capacity", "", "number"),
    ("top_drivers", "", "text"),
    ("run", "", "integer"),
)
_HOTSPOT_COLUMNS = _columns(
    ("pcode", "#adm+code", "text"),
    ("admin_level", "#adm+level", "integer"),
    ("period", "#date", "date"),
    ("variable", "#indicator+code", "text"),
    ("gi_z", "", "number"),
    ("p_value", "", "number"),
    ("p_fdr", "", "number"),
    ("hotspot_class", "", "text"),
    ("temporal_class", "", "text"),
    ("surge", "", "text"),
    ("surge_size", "", "number"),
    ("run", "", "integer"),
)
_ALERT_COLUMNS = _columns(
    ("id", "", "integer"),
    ("rule", "", "text"),
    ("pcode", "#adm+code", "text"),
    ("admin_level", "#adm+level", "integer"),
    ("severity", "", "text"),
    ("state", "", "text"),
    ("first_seen", "", "text"),
    ("last_seen", "", "text"),
    ("acknowledged_by", "", "text"),
    ("acknowledged_at", "", "text"),
)


# --- loading -------------------------------------------------------------------------------------
def _check_country(session: Session, country: str | None) -> None:
    if country is None:
        return
    known = session.exec(
        select(func.count()).select_from(Area).where(Area.country_iso3 == country)
    ).one()
    if not known:
        raise ExportRefused(f"no areas for country {country}: load its boundaries or gazetteer "
                            "first, or check the ISO3 code")


def _area_levels(session: Session, country: str | None) -> list[int]:
    statement = select(Area.admin_level).distinct()
    if country:
        statement = statement.where(Area.country_iso3 == country)
    return sorted(int(level) for level in session.exec(statement).all())


def _check_level(session: Session, level: int, country: str | None) -> None:
    levels = _area_levels(session, country)
    if level not in levels:
        where = f" for country {country}" if country else ""
        loaded = ", ".join(str(n) for n in levels) or "none"
        raise ExportRefused(f"no areas at admin level {level}{where}; levels loaded: {loaded}")


def _sources_of_batches(session: Session, batch_ids: list[int]) -> tuple[SourceNote, ...]:
    """The sources behind ``batch_ids``, sorted by id (few rows: one query per 1000 batches)."""
    source_ids: set[str] = set()
    for start in range(0, len(batch_ids), 1000):
        chunk = batch_ids[start:start + 1000]
        source_ids.update(session.exec(
            select(IngestBatch.source_id).where(col(IngestBatch.id).in_(chunk)).distinct()
        ).all())
    if not source_ids:
        return ()
    sources = session.exec(select(Source).where(col(Source.id).in_(sorted(source_ids)))).all()
    # Sorted here, by code point: a database collation could order them differently.
    return tuple(sorted(
        (SourceNote(s.id, s.title, s.attribution, s.licence) for s in sources),
        key=lambda note: note.id,
    ))


def _schema_revision(session: Session) -> str:
    return schema_state(session.get_bind()).current or "none"  # type: ignore[arg-type]


def _geometries(session: Session, level: int, country: str | None) -> dict[str, Any]:
    statement = select(Area.pcode, Area.geometry).where(Area.admin_level == level)
    if country:
        statement = statement.where(Area.country_iso3 == country)
    return {str(pcode): geometry for pcode, geometry in session.exec(statement).all()}


def _filters(request: ExportRequest, level: int, default_note: str | None) -> dict[str, str]:
    """The selection as written into every export (effective level, "all" for no filter)."""
    filters = {"level": f"{level} ({default_note})" if default_note else str(level)}
    if request.what != "areas":
        filters["variable"] = request.variable or "all"
        filters["period"] = request.period.isoformat() if request.period else "all"
    filters["country"] = request.country or "all"
    if request.what != "areas":
        filters["as_of"] = (_iso_utc(request.as_of) if request.as_of
                            else "current versions")
    return filters


def _iso_utc(moment: datetime) -> str:
    return to_utc(moment).isoformat().replace("+00:00", "Z")


def load_areas(
    session: Session, request: ExportRequest, threshold: int, with_geometry: bool
) -> ExportTable:
    """The areas of one admin level (default: the finest loaded), sorted by pcode."""
    levels = _area_levels(session, request.country)
    if not levels:
        raise ExportRefused("nothing to export: no areas are loaded; ingest boundaries or a "
                            "gazetteer first")
    level = request.level if request.level is not None else max(levels)
    _check_level(session, level, request.country)
    statement = sql_select(
        col(Area.pcode), col(Area.name), col(Area.admin_level), col(Area.parent_pcode),
        col(Area.country_iso3), col(Area.batch_id),
    ).where(col(Area.admin_level) == level)
    if request.country:
        statement = statement.where(col(Area.country_iso3) == request.country)
    rows = [tuple(row) for row in session.execute(statement).all()]
    raw = pd.DataFrame(rows, columns=["pcode", "name", "admin_level", "parent_pcode",
                                      "country", "batch_id"], dtype="object")
    raw = raw.sort_values("pcode", kind="stable", ignore_index=True)
    batch_ids = sorted({int(b) for b in raw["batch_id"] if b is not None and not pd.isna(b)})
    frame = pd.DataFrame({
        "pcode": raw["pcode"].astype("str"),
        "name": raw["name"].astype("str"),
        "admin_level": raw["admin_level"].astype("int64"),
        "parent_pcode": raw["parent_pcode"].astype("str"),
        "country": raw["country"].astype("str"),
    })
    about = ExportAbout(
        what="areas",
        filters=_filters(request, level, "finest loaded" if request.level is None else None),
        sources=_sources_of_batches(session, batch_ids),
        sensitivity=sensitivity_label([], threshold),
        schema_revision=_schema_revision(session),
        rows=len(frame),
        threshold=threshold,
    )
    geometries = _geometries(session, level, request.country) if with_geometry else {}
    return ExportTable(_SPECS_BY_NAME["areas"], frame, about, geometries)


def load_observations(
    session: Session, request: ExportRequest, threshold: int, with_geometry: bool
) -> ExportTable:
    """Raw observations (by operation and assessment type): current, or as known at ``as_of``.

    Not the preferred-assessment combination the score uses: an export shows what the sources
    said. Sensitive variables are suppressed below ``threshold``.
    """
    variables = known_variables(session)
    if not variables:
        raise ExportRefused("nothing to export: no observations are loaded; ingest a source "
                            "first")
    if request.variable is not None and request.variable not in variables:
        raise ExportRefused(f"no observations of variable {request.variable!r}; variables "
                            f"loaded: {', '.join(variables)}")
    selected = [request.variable] if request.variable else None
    countries = [request.country] if request.country else None
    level = request.level
    if level is None:
        level = finest_observed_level(session, variables=selected, countries=countries,
                                      period=request.period, as_of=request.as_of)
    if level is None:  # nothing matches: an empty export at the finest area level
        level = max(_area_levels(session, request.country))
    else:
        _check_level(session, level, request.country)

    frame = observations_frame(session, variables=selected, countries=countries, levels=[level],
                               period=request.period, as_of=request.as_of)
    batch_ids = sorted(int(b) for b in frame["batch_id"].unique())
    frame = frame.rename(columns={"source_id": "source", "batch_id": "batch"})
    frame = frame[_SPECS_BY_NAME["observations"].names]
    suppressed = _suppress(frame, threshold)
    about = ExportAbout(
        what="observations",
        filters=_filters(request, level,
                         "finest with data" if request.level is None else None),
        sources=_sources_of_batches(session, batch_ids),
        sensitivity=sensitivity_label(set(frame["variable"].unique()), threshold),
        schema_revision=_schema_revision(session),
        rows=len(frame),
        suppressed=suppressed,
        threshold=threshold,
    )
    geometries = _geometries(session, level, request.country) if with_geometry else {}
    return ExportTable(_SPECS_BY_NAME["observations"], frame, about, geometries)


def _suppress(frame: pd.DataFrame, threshold: int) -> int:
    """Blank small counts of sensitive variables in place; how many were blanked.

    privacy.suppress_small_counts copies what it is given, so it gets only the sensitive rows
    (usually few), not the whole export.
    """
    flags = {variable: is_sensitive(variable) for variable in frame["variable"].unique()}
    sensitive = frame["variable"].map(flags).astype(bool)
    if not sensitive.any():
        return 0
    checked = suppress_small_counts(frame.loc[sensitive, ["variable", "value"]], threshold)
    frame.loc[sensitive, "value"] = checked["value"]
    return int(checked["suppressed"].sum())


_SCORE_RUN_MISSING = "not available yet: the scoring engine has not produced any score run"


# --- scores and hotspots -------------------------------------------------------------------------
#: The hotspot variables every score run may compute besides its profile's indicators
#: (CONTRACTS.md: "hotspots of the risk score unless --variable names an indicator"; conflict
#: events carry their own surges, :mod:`riskwatch.hotspot_stage`).
HOTSPOT_VARIABLES: tuple[str, ...] = (RISK_VARIABLE, CONFLICT_VARIABLE)


def _hotspot_variables(session: Session, run: ScoreRun) -> list[str]:
    """The variables ``--variable`` may name for ``run``: the risk, conflict events and the
    indicators of the run's profile version (also those that got no rows in the run)."""
    indicators: set[str] = set()
    profile = session.get(IndicatorProfile, run.profile_id) if run.profile_id else None
    if profile is not None and profile.content:
        indicators = {i.id for i in ScoringModel.from_content(profile.content).indicators}
    stored = session.exec(
        select(Hotspot.variable).where(Hotspot.run_id == run.id).distinct()
    ).all()
    return [*HOTSPOT_VARIABLES, *sorted((indicators | set(stored)) - set(HOTSPOT_VARIABLES))]


def _check_hotspot_variable(session: Session, request: ExportRequest, variable: str) -> None:
    """Refuse an unknown variable (naming the known ones) or one without rows in the run."""
    run = _score_run(session, request)
    known = _hotspot_variables(session, run)
    if variable not in known:
        raise ExportRefused(f"no hotspots of {variable!r}: not an indicator of score run "
                            f"{run.id}; known: {', '.join(known)}")
    has_rows = session.exec(
        select(Hotspot.id).where(Hotspot.run_id == run.id, Hotspot.variable == variable)
        .limit(1)
    ).first()
    if has_rows is None:
        raise ExportRefused(
            f"no hotspots of {variable!r} in score run {run.id}: it had no value in at least "
            f"{MIN_AREAS} areas with a geometry of any country, level and period (unavailable "
            "where its inputs have no data)"
        )


def _score_run(session: Session, request: ExportRequest) -> ScoreRun:
    """The run asked for (``--run``), else the latest succeeded one (known at ``--as-of``)."""
    if request.run is not None:
        run = session.get(ScoreRun, request.run)
        if run is None:
            raise ExportRefused(f"no score run {request.run}")
        if run.status != "succeeded":
            raise ExportRefused(f"score run {request.run} did not succeed ({run.status})")
        return run
    statement = select(ScoreRun).where(ScoreRun.status == "succeeded")
    if request.as_of is not None:
        # The run a user would have seen then: the latest finished by that time.
        statement = statement.where(col(ScoreRun.finished_at) <= request.as_of)
    latest = session.exec(statement.order_by(col(ScoreRun.id).desc())).first()
    if latest is None:
        if request.as_of is not None:
            raise ExportRefused(f"no score run had finished by {_iso_utc(request.as_of)}")
        raise ExportRefused("nothing to export: the scoring engine has not produced any score "
                            "run yet; run `riskwatch score` first")
    return latest


def _run_rows(
    session: Session, request: ExportRequest, table: Any, columns: list[Any], names: list[str],
    *extra: Any,
) -> tuple[ScoreRun, int, str | None, pd.DataFrame]:
    """One period of a run's rows of ``table`` (AreaScore or Hotspot) at one admin level.

    The level defaults to the finest the run scored; the period to each country's latest one
    in the run (countries are scored at their own DTM dates), or ``--period``.
    """
    run = _score_run(session, request)
    assert run.id is not None
    joined = col(Area.pcode) == table.area_pcode
    where = [table.run_id == run.id, *extra]
    if request.country:
        where.append(col(Area.country_iso3) == request.country)
    default_note = None
    level = request.level
    if level is None:
        finest = session.execute(
            sql_select(func.max(Area.admin_level)).join(table, joined).where(*where)
        ).scalar_one_or_none()
        if finest is None:  # the run has no rows here: an empty export at the finest level
            finest = max(_area_levels(session, request.country))
        level, default_note = int(finest), "finest scored"
    else:
        _check_level(session, level, request.country)
    where.append(col(Area.admin_level) == level)
    if request.period is not None:
        where.append(table.period == request.period)
    statement = sql_select(*columns, col(Area.admin_level), col(Area.country_iso3)).join(
        Area, joined).where(*where)
    rows = [tuple(row) for row in session.execute(statement).all()]
    frame = pd.DataFrame(rows, columns=[*names, "admin_level", "country"], dtype="object")
    if request.period is None and not frame.empty:
        latest = frame.groupby("country")["period"].transform("max")
        frame = frame[frame["period"] == latest]
    frame = frame.sort_values(["pcode", "period"], kind="stable", ignore_index=True)
    return run, level, default_note, frame


def _run_about(
    session: Session, request: ExportRequest, what: str, run: ScoreRun, level: int,
    default_note: str | None, rows: int, threshold: int,
) -> ExportAbout:
    filters = {"level": f"{level} ({default_note})" if default_note else str(level)}
    if what == "hotspots":
        filters["variable"] = request.variable or "risk"
    filters["period"] = (request.period.isoformat() if request.period
                         else "latest of each country")
    filters["country"] = request.country or "all"
    filters["run"] = str(run.id) if request.run is not None else f"{run.id} (latest)"
    if request.as_of is not None:
        filters["as_of"] = _iso_utc(request.as_of)
    # The run used what had been ingested by its data time: those batches' sources.
    batch_ids = [int(b) for b in session.exec(
        select(IngestBatch.id).where(col(IngestBatch.started_at) <= run.data_as_of)
    ).all() if b is not None]
    return ExportAbout(
        what=what, filters=filters, sources=_sources_of_batches(session, sorted(batch_ids)),
        sensitivity=sensitivity_label([], threshold), schema_revision=_schema_revision(session),
        rows=rows, threshold=threshold,
    )


def _numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype("float64")


def load_scores(
    session: Session, request: ExportRequest, threshold: int, with_geometry: bool
) -> ExportTable:
    """A run's area scores: one row per area for one period (each country's latest)."""
    columns = [col(AreaScore.area_pcode), col(AreaScore.period), col(AreaScore.risk),
               col(AreaScore.risk_class), col(AreaScore.reliability), col(AreaScore.exposure),
               col(AreaScore.vulnerability), col(AreaScore.lack_of_capacity),
               col(AreaScore.drivers)]
    names = ["pcode", "period", "risk", "risk_class", "reliability", "exposure",
             "vulnerability", "lack_of_capacity", "drivers"]
    run, level, note, raw = _run_rows(session, request, AreaScore, columns, names)
    frame = pd.DataFrame({
        "pcode": raw["pcode"].astype("str"),
        "admin_level": raw["admin_level"].astype("int64"),
        "period": raw["period"],
        **{name: _numbers(raw[name]) for name in ("risk",)},
        "risk_class": raw["risk_class"].astype("str"),
        **{name: _numbers(raw[name]) for name in ("reliability", "exposure", "vulnerability",
                                                  "lack_of_capacity")},
        "top_drivers": raw["drivers"].map(
            lambda d: (d or {}).get("top_drivers", "") if isinstance(d, dict) else ""
        ).astype("str"),
        "run": pd.Series([run.id] * len(raw), dtype="int64"),
    })
    about = _run_about(session, request, "scores", run, level, note, len(frame), threshold)
    geometries = _geometries(session, level, request.country) if with_geometry else {}
    return ExportTable(_SPECS_BY_NAME["scores"], frame, about, geometries)


def load_hotspots(
    session: Session, request: ExportRequest, threshold: int, with_geometry: bool
) -> ExportTable:
    """A run's hotspots of the risk score, or of the indicator ``--variable`` names: one row
    per area for one period (indicators: the areas analysed, see :mod:`riskwatch.hotspot_stage`).
    """
    variable = request.variable or RISK_VARIABLE
    if variable != RISK_VARIABLE:
        _check_hotspot_variable(session, request, variable)
    columns = [col(Hotspot.area_pcode), col(Hotspot.period), col(Hotspot.variable),
               col(Hotspot.gi_z), col(Hotspot.p_value), col(Hotspot.p_fdr),
               col(Hotspot.hotspot_class), col(Hotspot.temporal_class), col(Hotspot.surge),
               col(Hotspot.surge_size)]
    names = ["pcode", "period", "variable", "gi_z", "p_value", "p_fdr", "hotspot_class",
             "temporal_class", "surge", "surge_size"]
    run, level, note, raw = _run_rows(session, request, Hotspot, columns, names,
                                      col(Hotspot.variable) == variable)
    surge = raw["surge"].astype(bool)
    frame = pd.DataFrame({
        "pcode": raw["pcode"].astype("str"),
        "admin_level": raw["admin_level"].astype("int64"),
        "period": raw["period"],
        "variable": raw["variable"].astype("str"),
        **{name: _numbers(raw[name]) for name in ("gi_z", "p_value", "p_fdr")},
        "hotspot_class": raw["hotspot_class"].astype("str"),
        "temporal_class": raw["temporal_class"].astype("str"),
        "surge": surge.map({True: "true", False: "false"}).astype("str"),
        # CONTRACTS.md: the increase that triggered a surge, empty when there is none.
        "surge_size": _numbers(raw["surge_size"]).where(surge),
        "run": pd.Series([run.id] * len(raw), dtype="int64"),
    })
    about = _run_about(session, request, "hotspots", run, level, note, len(frame), threshold)
    geometries = _geometries(session, level, request.country) if with_geometry else {}
    return ExportTable(_SPECS_BY_NAME["hotspots"], frame, about, geometries)


def load_alerts(
    session: Session, request: ExportRequest, threshold: int, with_geometry: bool
) -> ExportTable:
    """Every alert (firing and resolved), sorted by id; ``--level``/``--country`` filter the
    areas, ``--run`` keeps the alerts last evaluated against that score run."""
    from riskwatch.alerts.queries import acknowledged_by
    from riskwatch.db.models import Alert

    if request.run is not None:
        _score_run(session, request)  # refuses an unknown or failed run
    elif not session.exec(select(func.count()).select_from(ScoreRun)).one():
        raise ExportRefused(_SCORE_RUN_MISSING)  # alerts come from score runs
    statement = sql_select(
        col(Alert.id), col(Alert.rule), col(Alert.area_pcode), col(Area.admin_level),
        col(Alert.severity), col(Alert.state), col(Alert.first_seen), col(Alert.last_seen),
        col(Alert.acknowledged_at),
    ).join(Area, col(Area.pcode) == col(Alert.area_pcode))
    if request.level is not None:
        _check_level(session, request.level, request.country)
        statement = statement.where(col(Area.admin_level) == request.level)
    if request.country:
        statement = statement.where(col(Area.country_iso3) == request.country)
    if request.run is not None:
        statement = statement.where(col(Alert.run_id) == request.run)
    rows = [tuple(row) for row in session.execute(statement).all()]
    raw = pd.DataFrame(rows, columns=["id", "rule", "pcode", "admin_level", "severity", "state",
                                      "first_seen", "last_seen", "acknowledged_at"],
                       dtype="object")
    raw = raw.sort_values("id", kind="stable", ignore_index=True)
    by = acknowledged_by(session, [int(i) for i in raw["id"]])

    def _time(value: Any) -> str:
        return _iso_utc(value) if isinstance(value, datetime) else ""

    frame = pd.DataFrame({
        "id": raw["id"].astype("int64"),
        "rule": raw["rule"].astype("str"),
        "pcode": raw["pcode"].astype("str"),
        "admin_level": raw["admin_level"].astype("int64"),
        "severity": raw["severity"].astype("str"),
        "state": raw["state"].astype("str"),
        "first_seen": raw["first_seen"].map(_time).astype("str"),
        "last_seen": raw["last_seen"].map(_time).astype("str"),
        "acknowledged_by": raw["id"].map(lambda i: by.get(int(i), "")).astype("str"),
        "acknowledged_at": raw["acknowledged_at"].map(_time).astype("str"),
    })
    filters = {"level": str(request.level) if request.level is not None else "all",
               "country": request.country or "all",
               "run": str(request.run) if request.run is not None else "all"}
    batch_ids = [int(b) for b in session.exec(select(IngestBatch.id)).all() if b is not None]
    about = ExportAbout(
        what="alerts", filters=filters, sources=_sources_of_batches(session, sorted(batch_ids)),
        sensitivity=sensitivity_label([], threshold), schema_revision=_schema_revision(session),
        rows=len(frame), threshold=threshold,
    )
    geometries: dict[str, Any] = {}
    if with_geometry and len(frame):
        pcodes = sorted(set(frame["pcode"]))
        geometries = {str(p): g for p, g in session.exec(
            select(Area.pcode, Area.geometry).where(col(Area.pcode).in_(pcodes))).all()}
    return ExportTable(_SPECS_BY_NAME["alerts"], frame, about, geometries)


EXPORT_SPECS: tuple[ExportSpec, ...] = (
    ExportSpec("areas", _AREA_COLUMNS, frozenset({"level", "country"}), load_areas),
    ExportSpec("observations", _OBSERVATION_COLUMNS,
               frozenset({"level", "variable", "period", "country", "as_of"}), load_observations),
    ExportSpec("scores", _SCORE_COLUMNS,
               frozenset({"level", "period", "country", "run", "as_of"}), load_scores),
    ExportSpec("hotspots", _HOTSPOT_COLUMNS,
               frozenset({"level", "variable", "period", "country", "run", "as_of"}),
               load_hotspots),
    ExportSpec("alerts", _ALERT_COLUMNS, frozenset({"level", "country", "run"}),
               load_alerts),
)
_SPECS_BY_NAME = {spec.what: spec for spec in EXPORT_SPECS}
EXPORT_NAMES: tuple[str, ...] = tuple(_SPECS_BY_NAME)

_OPTION_FLAGS = {"level": "--level", "variable": "--variable", "period": "--period",
                 "country": "--country", "as_of": "--as-of", "run": "--run"}


def check_request(request: ExportRequest) -> ExportSpec:
    """Refuse a request that can never work, before the database is opened; its spec."""
    spec = _SPECS_BY_NAME.get(request.what)
    if spec is None:
        raise UsageError(f"unknown export {request.what!r}; one of {', '.join(EXPORT_NAMES)}")
    if request.format not in FORMATS:
        raise UsageError(f"unknown format {request.format!r}; one of {', '.join(FORMATS)}")
    if request.format in MAP_FORMATS and spec.what not in MAP_EXPORTS:
        raise UsageError(f"{request.format} exports are maps of risk classes: use "
                         f"`riskwatch export scores --format {request.format}`; {spec.what} "
                         "exports come as csv, geojson or gpkg")
    for option, flag in _OPTION_FLAGS.items():
        if getattr(request, option) is not None and option not in spec.options:
            raise UsageError(f"{flag} does not apply to {spec.what} exports")
    return spec


def check_destination(export_format: str, out: Path | None) -> None:
    """Refuse binary output to standard output, and a file in a folder that does not exist."""
    if export_format in BINARY_FORMATS and out is None:
        raise UsageError(f"{export_format} is a binary format and is not written to standard "
                         "output: give --out PATH")
    if out is not None and not out.parent.is_dir():
        raise ExportRefused(f"cannot write {out}: the folder {out.parent} does not exist")


def build_export(session: Session, request: ExportRequest, *, threshold: int) -> ExportTable:
    """Check the request against the database and load it (``threshold``: privacy setting)."""
    spec = check_request(request)
    if spec.loader is None:
        runs = session.exec(select(func.count()).select_from(ScoreRun)).one()
        if not runs:
            raise ExportRefused(_SCORE_RUN_MISSING)
        raise ExportRefused(f"not available yet: {spec.what} exports are not implemented in "
                            "this version of riskwatch")
    _check_country(session, request.country)
    is_map = request.format in MAP_FORMATS
    table = spec.loader(session, request, threshold,
                        request.format in SPATIAL_FORMATS or is_map)
    if is_map:
        pcodes = table.frame["pcode"].astype(str).unique().tolist()
        table.names = _area_names(session, pcodes)
        kind = session.get(Meta, "database_kind")
        table.is_demo = kind is not None and kind.value == "demo"
    return table


def _area_names(session: Session, pcodes: list[str]) -> dict[str, str]:
    """Area names for map labels (one query per 1000 pcodes)."""
    names: dict[str, str] = {}
    for start in range(0, len(pcodes), 1000):
        chunk = pcodes[start:start + 1000]
        names.update({str(pcode): str(name) for pcode, name in session.exec(
            select(Area.pcode, Area.name).where(col(Area.pcode).in_(chunk))).all()})
    return names
