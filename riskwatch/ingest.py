"""Write what the source readers return: one batch, one transaction, with lineage.

Readers in ``riskwatch.sources`` validate and normalise; this module only decides what is new,
what is a revision and what is unchanged, and writes it atomically:

- areas are upserted by pcode (a changed name, parent or geometry updates the row);
- observations are versioned: an identical value changes nothing, a different value supersedes
  the current version (``superseded_at``) and adds ``version + 1`` carrying the new batch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import shapely
from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.db.engine import session_scope
from riskwatch.db.models import Area, IngestBatch, Observation, Source
from riskwatch.sources.report import ReadResult
from riskwatch.timeutil import utcnow

OBSERVATION_KEY = ["area_pcode", "variable", "period", "operation", "assessment_type"]
# Relative tolerance under which a re-ingested value counts as identical (float round-trips).
VALUE_TOLERANCE = 1e-9


class IngestRefused(Exception):
    """The input was refused whole; nothing was written."""


@dataclass
class BatchSummary:
    """What one ingest did, for the CLI and the job history."""

    batch_id: int
    source_id: str
    status: str
    rows_read: int = 0
    rows_stored: int = 0
    rows_unchanged: int = 0
    rows_quarantined: int = 0
    rows_set_aside: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    """Content hash of a file, the identity of a snapshot in the batch lineage."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_source(
    session: Session,
    source_id: str,
    kind: str,
    location: str,
    *,
    title: str | None = None,
    attribution: str | None = None,
    licence: str | None = None,
) -> Source:
    """The source row, created on first use and kept up to date with its declaration."""
    source = session.get(Source, source_id)
    if source is None:
        source = Source(id=source_id, kind=kind, location=location)
    source.kind, source.location = kind, location
    if title is not None:
        source.title = title
    if attribution is not None:
        source.attribution = attribution
    if licence is not None:
        source.licence = licence
    session.add(source)
    session.flush()
    return source


def _open_batch(session: Session, source_id: str, kind: str, location: str,
                content_hash: str | None, result: ReadResult) -> IngestBatch:
    batch = IngestBatch(
        source_id=source_id,
        kind=kind,
        location=location,
        content_hash=content_hash,
        rows_read=result.rows_read,
        rows_quarantined=result.rows_quarantined,
        rows_set_aside=result.rows_set_aside,
        reporting_dates=[str(d) for d in result.meta.get("reporting_dates", [])] or None,
        report={
            "problems": [str(p) for p in result.problems[:1000]],
            "problem_count": len(result.problems),
            "notes": result.notes[:1000],
        },
    )
    session.add(batch)
    session.flush()
    return batch


def _close_batch(batch: IngestBatch, stored: int, unchanged: int) -> BatchSummary:
    batch.rows_stored = stored
    batch.rows_unchanged = unchanged
    batch.status = "succeeded" if stored else "unchanged"
    batch.finished_at = utcnow()
    report = batch.report or {}
    assert batch.id is not None
    return BatchSummary(
        batch_id=batch.id,
        source_id=batch.source_id,
        status=batch.status,
        rows_read=batch.rows_read,
        rows_stored=stored,
        rows_unchanged=unchanged,
        rows_quarantined=batch.rows_quarantined,
        rows_set_aside=batch.rows_set_aside,
        problems=list(report.get("problems", [])),
        notes=list(report.get("notes", [])),
    )


def refuse_if_fatal(result: ReadResult, max_bad_row_share: float) -> None:
    """Refuse the whole input on a fatal problem or when too many rows are bad."""
    fatal = [str(p) for p in result.problems if p.fatal]
    if fatal:
        raise IngestRefused("; ".join(fatal))
    if result.rows_read and result.rows_quarantined / result.rows_read > max_bad_row_share:
        raise IngestRefused(
            f"{result.rows_quarantined} of {result.rows_read} rows are bad "
            f"({result.rows_quarantined / result.rows_read:.1%}, more than the allowed "
            f"{max_bad_row_share:.0%}); nothing was written. First problems: "
            + "; ".join(str(p) for p in result.problems[:5])
        )


def store_areas(
    engine: Engine,
    result: ReadResult,
    *,
    source_id: str,
    kind: str,
    location: str,
    content_hash: str | None,
    boundary_version: str | None = None,
) -> BatchSummary:
    """Upsert the areas of a boundaries or gazetteer read, in one transaction."""
    frame = result.frame
    with session_scope(engine) as session:
        ensure_source(session, source_id, kind, location)
        batch = _open_batch(session, source_id, kind, location, content_hash, result)
        existing = {
            area.pcode: area
            for area in session.exec(
                select(Area).where(col(Area.pcode).in_(list(frame["pcode"])))
            )
        }
        stored = unchanged = 0
        for row in frame.itertuples(index=False):
            geometry = getattr(row, "geometry", None)
            if geometry is not None and (not isinstance(geometry, shapely.Geometry)
                                         or geometry.is_empty):
                geometry = None
            values: dict[str, Any] = {
                "name": str(row.name),
                "admin_level": int(row.admin_level),
                "parent_pcode": None if _missing(row.parent_pcode) else str(row.parent_pcode),
                "country_iso3": str(row.country_iso3),
            }
            area = existing.get(str(row.pcode))
            if area is None:
                session.add(Area(pcode=str(row.pcode), geometry=geometry,
                                 boundary_version=boundary_version, batch_id=batch.id,
                                 **values))
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
        return _close_batch(batch, stored, unchanged)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def store_observations(
    engine: Engine,
    result: ReadResult,
    *,
    source_id: str,
    kind: str,
    location: str,
    content_hash: str | None,
) -> BatchSummary:
    """Add new observations and revisions of a read, in one transaction; identical = no-op."""
    incoming = _normalise_observations(result.frame)
    with session_scope(engine) as session:
        ensure_source(session, source_id, kind, location)
        batch = _open_batch(session, source_id, kind, location, content_hash, result)
        current = _current_observations(session, incoming)
        merged = incoming.merge(current, on=OBSERVATION_KEY, how="left", suffixes=("", "_old"))
        is_new = merged["id_old"].isna()
        same = ~is_new & _close(merged["value"], merged["value_old"])
        revised = ~is_new & ~same
        now = utcnow()
        if revised.any():
            old_ids = [int(i) for i in merged.loc[revised, "id_old"]]
            for chunk in _chunks(old_ids, 5000):
                session.execute(
                    update(Observation)
                    .where(col(Observation.id).in_(chunk))
                    .values(superseded_at=now)
                )
        to_insert = merged.loc[is_new | revised].copy()
        to_insert["version"] = (
            to_insert["version_old"].fillna(0).astype(int) + 1 if len(to_insert) else []
        )
        rows = [
            {
                "area_pcode": r.area_pcode,
                "variable": r.variable,
                "period": r.period,
                "value": float(r.value),
                "operation": r.operation,
                "assessment_type": r.assessment_type,
                "round": None if _missing(r.round) else str(r.round),
                "version": int(r.version),
                "batch_id": batch.id,
                "recorded_at": now,
                "superseded_at": None,
            }
            for r in to_insert.itertuples(index=False)
        ]
        for chunk in _chunks(rows, 5000):
            session.execute(insert(Observation), chunk)
        return _close_batch(batch, len(rows), int(same.sum()))


def _normalise_observations(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "area_pcode": frame["pcode"].astype(str),
            "variable": frame["variable"].astype(str),
            "period": [_as_date(v) for v in frame["period"]],
            "value": frame["value"].astype(float),
            "operation": frame["operation"].fillna("").astype(str)
            if "operation" in frame else "",
            "assessment_type": frame["assessment_type"].fillna("").astype(str)
            if "assessment_type" in frame else "",
            "round": frame.get("round", None),
        }
    )
    out = out.dropna(subset=["value"])
    # A reader should not emit duplicates; if it does, the last value wins (and is reported).
    return out.drop_duplicates(subset=OBSERVATION_KEY, keep="last").reset_index(drop=True)


def _as_date(value: Any) -> date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value if type(value) is date else value.date()  # type: ignore[attr-defined]
    return pd.Timestamp(value).date()


def _current_observations(session: Session, incoming: pd.DataFrame) -> pd.DataFrame:
    columns = OBSERVATION_KEY + ["id_old", "value_old", "version_old"]
    if incoming.empty:
        return pd.DataFrame(columns=columns)
    variables = sorted(incoming["variable"].unique())
    periods = sorted(incoming["period"].unique())
    statement = select(
        Observation.area_pcode, Observation.variable, Observation.period,
        Observation.operation, Observation.assessment_type,
        Observation.id, Observation.value, Observation.version,
    ).where(
        col(Observation.variable).in_(variables),
        col(Observation.period).in_(periods),
        col(Observation.superseded_at).is_(None),
    )
    rows = session.exec(statement).all()
    current = pd.DataFrame(rows, columns=columns)
    if current.empty:
        current = pd.DataFrame(columns=columns)
    current["period"] = [_as_date(v) for v in current["period"]]
    for key in ("area_pcode", "variable", "operation", "assessment_type"):
        current[key] = current[key].astype(str)
    return current


def _close(new: pd.Series, old: pd.Series) -> pd.Series:
    new_values = new.astype(float)
    old_values = old.astype(float)
    scale = new_values.abs().combine(old_values.abs(), max).clip(lower=1.0)
    return ((new_values - old_values).abs() <= VALUE_TOLERANCE * scale).fillna(False)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- one file of one kind, through the real readers ----------------------------------------------
AREA_KINDS = ("boundaries", "gazetteer")
OBSERVATION_KINDS = ("dtm", "hapi", "acled", "table")


def known_areas(engine: Engine) -> pd.DataFrame:
    """The areas in the database (pcode, admin_level, country_iso3), for pcode matching."""
    with Session(engine) as session:
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


def ensure_country_areas(engine: Engine, countries: Iterable[str], batch_id: int | None) -> None:
    """Countries (admin0) exist implicitly from their ISO3 codes (CONTRACTS.md)."""
    with session_scope(engine) as session:
        for iso3 in sorted(set(countries)):
            if session.get(Area, iso3) is None:
                session.add(Area(pcode=iso3, name=iso3, admin_level=0, country_iso3=iso3,
                                 batch_id=batch_id))


def ingest_file(
    engine: Engine,
    path: Path,
    kind: str,
    *,
    source_id: str | None = None,
    country_iso3: str | None = None,
    level: int | None = None,
    mapping: dict[str, str] | None = None,
    period: date | None = None,
    max_bad_row_share: float = 0.05,
    offshore_max_km: float = 10.0,
) -> BatchSummary:
    """Read one file with the reader for its kind, check it, and store it as one batch."""
    from riskwatch.sources import area_table, boundaries, dtm, events, gazetteer, hapi, pcodes

    source_id = source_id or f"file:{path.name}"
    location = str(path)
    content_hash = file_sha256(path)
    if kind in AREA_KINDS:
        if kind == "boundaries":
            result = boundaries.read_boundaries(path, level=level, country_iso3=country_iso3)
        else:
            result = gazetteer.read_gazetteer(path, country_iso3=country_iso3)
        refuse_if_fatal(result, max_bad_row_share)
        summary = store_areas(engine, result, source_id=source_id, kind=kind, location=location,
                              content_hash=content_hash, boundary_version=content_hash[:16])
        ensure_country_areas(engine, result.frame["country_iso3"], summary.batch_id)
        return summary
    if kind == "dtm":
        result = dtm.read_dtm_table(path)
    elif kind == "hapi":
        result = hapi.read_hapi_table(path)
    elif kind == "acled":
        result = events.read_acled_events(
            path, finest_area_polygons(engine, country_iso3), max_offshore_km=offshore_max_km
        )
    elif kind == "table":
        if not mapping:
            raise IngestRefused("an area table needs a mapping of columns to variables")
        result = area_table.read_area_table(path, mapping=mapping, period=period)
    else:
        raise IngestRefused(f"unknown kind {kind!r}; known kinds: "
                            f"{', '.join(AREA_KINDS + OBSERVATION_KINDS)}")
    refuse_if_fatal(result, max_bad_row_share)
    matched = pcodes.match_pcodes(result.frame, known_areas(engine))
    merged = ReadResult(
        frame=matched.frame,
        problems=result.problems + matched.problems,
        rows_read=result.rows_read,
        rows_quarantined=result.rows_quarantined + matched.rows_quarantined,
        rows_set_aside=result.rows_set_aside + matched.rows_set_aside,
        notes=result.notes + matched.notes,
        meta=result.meta,
    )
    refuse_if_fatal(merged, max_bad_row_share)
    return store_observations(engine, merged, source_id=source_id, kind=kind, location=location,
                              content_hash=content_hash)
