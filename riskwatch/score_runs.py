"""The database side of a score run: what goes in, how it is versioned, what is stored.

:func:`run_score` is the one function that creates a score run (the CLI's ``score``, ``run`` and
the scheduler call it). It

1. resolves the profile: from the catalog files (a new :class:`IndicatorProfile` version is
   published whenever their content hash changes), or with ``as_of`` the version that was
   current then;
2. loads the areas and the observations as known at the run's ``data_as_of`` (versions recorded
   by then and not yet superseded), DTM reduced to the preferred assessment type per area and
   period, summed over operations;
3. scores every area at every period (:func:`riskwatch.scoring.score_areas`);
4. writes, in ONE transaction, the :class:`ScoreRun` (profile version and hash, data as-of time,
   parameters and their hash, boundary fingerprint), one :class:`AreaScore` per area and period,
   and whatever the stages add to the same run (by default hotspots and surges:
   :mod:`riskwatch.hotspot_stage`), then marks the run
   succeeded. A failure leaves no partial run: a ``failed`` run row records the attempt.

``as_of`` reproduces an earlier run: same data, same profile version, and the parameters of the
latest successful run of that profile at or before that time (the current settings when there
is none). Areas are not versioned in the store, so the run records a boundary fingerprint and the
summary says when the current boundaries differ from the reproduced run's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.catalog import ScoringModel, content_hash, load_catalog
from riskwatch.config import Settings
from riskwatch.db.engine import session_scope
from riskwatch.db.models import Area, AreaScore, IndicatorProfile, ScoreRun
from riskwatch.errors import RiskwatchError
from riskwatch.hotspot_stage import hotspot_stage
from riskwatch.observations import observations_frame, preferred_values
from riskwatch.scoring import ScoreTable, ScoringParams, score_areas
from riskwatch.timeutil import iso_utc, to_utc, utcnow

PROFILE_AUTHOR = "indicator files"
_INSERT_CHUNK = 5000


@dataclass
class ScoreRunContext:
    """What an extra stage of a score run gets: the open session and everything computed."""

    session: Session
    run: ScoreRun
    table: ScoreTable
    model: ScoringModel
    observations: pd.DataFrame
    areas: pd.DataFrame
    settings: Settings


#: A stage added to a score run (e.g. hotspots): it writes its rows with ``context.session``.
Stage = Callable[[ScoreRunContext], None]

#: What every score run computes besides the scores (CONTRACTS.md: `score` makes scores *and*
#: hotspots/surges in one run), before any ``extra_stages``.
DEFAULT_STAGES: tuple[Stage, ...] = (hotspot_stage,)


@dataclass
class ScoreRunSummary:
    """What one score run did, for the CLI and the job history."""

    run_id: int | None
    profile_name: str
    profile_version: int | None = None
    profile_hash: str | None = None
    data_as_of: datetime | None = None
    params_hash: str | None = None
    params_from: str = "settings"
    boundary_version: str | None = None
    boundary_changed: bool = False
    periods: list[date] = field(default_factory=list)
    areas: int = 0
    rows: int = 0
    latest_period: date | None = None
    class_counts: dict[str, int] = field(default_factory=dict)  # each country's latest period
    unavailable_by_country: dict[str, list[str]] = field(default_factory=dict)
    missing_dimensions_by_country: dict[str, list[str]] = field(default_factory=dict)
    # (pcode, admin level, period, risk, class, top drivers) of the highest risks
    top_areas: list[tuple[str, int, date, float, str, str]] = field(default_factory=list)
    message: str | None = None  # set when there was nothing to score


def scoring_params(settings: Settings) -> ScoringParams:
    """The run parameters from the ``[scoring]`` settings."""
    scoring = settings.scoring
    return ScoringParams(
        max_age_days=scoring.max_age_days,
        denominator_max_age_days=scoring.denominator_max_age_days,
        inherited_discount=scoring.inherited_discount,
        min_indicators=scoring.min_indicators,
        min_weight_share=scoring.min_weight_share,
        period_variables=tuple(scoring.period_variables),
        extra_variables=tuple(scoring.extra_variables),
    )


def run_parameters(params: ScoringParams, preference: Sequence[str]) -> dict[str, Any]:
    """The parameters stored (and hashed) with a run."""
    return {"scoring": params.as_dict(), "assessment_preference": list(preference)}


def run_score(
    engine: Engine,
    settings: Settings,
    *,
    profile: str | None = None,
    as_of: datetime | None = None,
    catalog_dir: Path | None = None,
    extra_stages: Sequence[Stage] = (),
    stages: Sequence[Stage] | None = None,
) -> ScoreRunSummary:
    """Create one score run (see the module docstring); RiskwatchError when refused.

    ``stages`` replaces :data:`DEFAULT_STAGES` (``()``: scores only, for tests of the run
    itself); ``extra_stages`` run after them.
    """
    run_stages = [*(DEFAULT_STAGES if stages is None else stages), *extra_stages]
    name = profile or settings.scoring.profile
    summary = ScoreRunSummary(run_id=None, profile_name=name)
    if as_of is None:
        data_as_of = utcnow()
        catalog = load_catalog(catalog_dir or settings.resolved_indicators_dir,
                               extra_variables=settings.scoring.extra_variables)
        model = catalog.model(name)
        params = scoring_params(settings)
        preference: list[str] = list(settings.scoring.assessment_preference)
        previous_boundary = None
    else:
        data_as_of = to_utc(as_of)
        with Session(engine) as session:
            version = profile_as_of(session, name, data_as_of)
            model = ScoringModel.from_content(version.content or {})
            earlier = _latest_run_of_profile(session, name, data_as_of)
        if earlier is not None and earlier.params:
            params = ScoringParams.from_dict(earlier.params.get("scoring", {}))
            preference = list(earlier.params.get("assessment_preference", []))
            summary.params_from = f"run {earlier.id}"
            previous_boundary = earlier.boundary_version
        else:
            params = scoring_params(settings)
            preference = list(settings.scoring.assessment_preference)
            previous_boundary = None
    summary.data_as_of = data_as_of

    with Session(engine) as session:
        areas = load_areas(session)
        variables = sorted(set(model.variables) | set(params.period_variables))
        observations = load_observations(session, variables, as_of=data_as_of,
                                         preference=preference, areas=areas)
    summary.areas = len(areas)
    if areas.empty:
        summary.message = "no areas in the database: ingest boundaries or a gazetteer first"
        return summary
    table = score_areas(observations, model, params, areas=areas)
    if table.units.empty:
        summary.message = "no observations of the profile's variables to score"
        return summary
    boundary = boundary_fingerprint(areas)
    parameters = run_parameters(params, preference)
    try:
        with session_scope(engine) as session:
            version_row = (publish_profile(session, model, at=data_as_of) if as_of is None
                           else profile_as_of(session, name, data_as_of))
            run = ScoreRun(
                profile_id=version_row.id, profile_hash=version_row.content_hash,
                data_as_of=data_as_of, params_hash=content_hash(parameters), params=parameters,
                boundary_version=boundary, status="running",
            )
            session.add(run)
            session.flush()
            assert run.id is not None
            _write_area_scores(session, run.id, table)
            context = ScoreRunContext(session, run, table, model, observations, areas, settings)
            for stage in run_stages:
                stage(context)
            run.status = "succeeded"
            run.finished_at = utcnow()
            session.add(run)
            session.flush()
            summary.run_id = run.id
            summary.profile_version = version_row.version
            summary.profile_hash = version_row.content_hash
            summary.params_hash = run.params_hash
    except Exception:
        _record_failed_run(engine, model, data_as_of, parameters, boundary)
        raise
    summary.boundary_version = boundary
    summary.boundary_changed = previous_boundary is not None and previous_boundary != boundary
    _summarise(summary, table)
    return summary


# --- profile versions ------------------------------------------------------------------------


def publish_profile(
    session: Session, model: ScoringModel, *, at: datetime, author: str = PROFILE_AUTHOR,
    note: str | None = None,
) -> IndicatorProfile:
    """The profile version with this content: the latest one if unchanged, else a new version.

    A content that returns to an earlier state gets a new version too, so that "the version
    current at time T" stays the latest one published at or before T.
    """
    digest = model.content_hash()
    latest = session.exec(
        select(IndicatorProfile).where(IndicatorProfile.name == model.name)
        .order_by(col(IndicatorProfile.version).desc())
    ).first()
    if latest is not None and latest.content_hash == digest:
        return latest
    row = IndicatorProfile(
        name=model.name, version=(latest.version + 1) if latest else 1, content_hash=digest,
        content=model.content(), author=author,
        note=note or "published by `riskwatch score` from the catalog files", published_at=at,
    )
    session.add(row)
    session.flush()
    return row


def profile_as_of(session: Session, name: str, as_of: datetime) -> IndicatorProfile:
    """The version of a profile that was current at ``as_of``; RiskwatchError if none was."""
    row = session.exec(
        select(IndicatorProfile)
        .where(IndicatorProfile.name == name, col(IndicatorProfile.published_at) <= as_of)
        .order_by(col(IndicatorProfile.version).desc())
    ).first()
    if row is None:
        raise RiskwatchError(
            f"no version of profile {name!r} was published at or before {iso_utc(as_of)}: "
            "nothing to reproduce (a profile version is published by its first score run)"
        )
    return row


def _latest_run_of_profile(session: Session, name: str, as_of: datetime) -> ScoreRun | None:
    return session.exec(
        select(ScoreRun)
        .join(IndicatorProfile, col(IndicatorProfile.id) == col(ScoreRun.profile_id))
        .where(IndicatorProfile.name == name, ScoreRun.status == "succeeded",
               col(ScoreRun.data_as_of) <= as_of)
        .order_by(col(ScoreRun.data_as_of).desc(), col(ScoreRun.id).desc())
    ).first()


# --- inputs ----------------------------------------------------------------------------------


def load_areas(session: Session) -> pd.DataFrame:
    """Every area (pcode, admin_level, parent_pcode, country_iso3, boundary_version)."""
    statement = sa_select(
        col(Area.pcode), col(Area.admin_level), col(Area.parent_pcode), col(Area.country_iso3),
        col(Area.boundary_version),
    ).order_by(col(Area.pcode))
    rows = session.connection().execute(statement).all()
    return pd.DataFrame(rows, columns=["pcode", "admin_level", "parent_pcode", "country_iso3",
                                       "boundary_version"])


def load_observations(
    session: Session,
    variables: Sequence[str],
    *,
    as_of: datetime,
    preference: Sequence[str],
    areas: pd.DataFrame,
) -> pd.DataFrame:
    """Observations as known at ``as_of``, one value per pcode, variable and period.

    DTM figures use the preferred assessment type present for that area and period, summed over
    operations; they are never summed across assessment types
    (:func:`riskwatch.observations.preferred_values`).
    """
    raw = observations_frame(session, variables=list(variables), as_of=as_of)
    reduced = preferred_values(raw, tuple(preference))
    return reduced[["pcode", "variable", "period", "value"]].merge(
        areas[["pcode", "admin_level", "parent_pcode", "country_iso3"]], on="pcode", how="inner"
    )


def boundary_fingerprint(areas: pd.DataFrame) -> str:
    """A short hash of the area set (pcodes, levels, parents, boundary versions)."""
    digest = hashlib.sha256()
    for row in areas.sort_values("pcode").itertuples(index=False):
        digest.update(f"{row.pcode}|{row.admin_level}|{row.parent_pcode or ''}|"
                      f"{row.boundary_version or ''}\n".encode())
    return digest.hexdigest()[:16]


# --- output ----------------------------------------------------------------------------------


def _optional(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _write_area_scores(session: Session, run_id: int, table: ScoreTable) -> None:
    units = table.units
    records = []
    for unit, row in enumerate(units.itertuples(index=False)):
        records.append({
            "run_id": run_id,
            "area_pcode": row.pcode,
            "period": row.period,
            "risk": _optional(row.risk),
            "risk_class": row.risk_class,
            "reliability": _optional(row.reliability),
            "exposure": _optional(row.exposure),
            "vulnerability": _optional(row.vulnerability),
            "lack_of_capacity": _optional(row.lack_of_capacity),
            "drivers": table.drivers(unit),
        })
        if len(records) >= _INSERT_CHUNK:
            session.execute(insert(AreaScore), records)
            records = []
    if records:
        session.execute(insert(AreaScore), records)


def _record_failed_run(
    engine: Engine, model: ScoringModel, data_as_of: datetime, parameters: dict[str, Any],
    boundary: str,
) -> None:
    """Keep a trace of the attempt; the failure itself is what the caller reports."""
    try:
        with session_scope(engine) as session:
            session.add(ScoreRun(
                profile_hash=model.content_hash(), data_as_of=data_as_of,
                params_hash=content_hash(parameters), params=parameters,
                boundary_version=boundary, status="failed", finished_at=utcnow(),
            ))
    except Exception:  # noqa: BLE001 - the original error matters more than this record
        pass


def _summarise(summary: ScoreRunSummary, table: ScoreTable) -> None:
    units = table.units
    summary.periods = table.periods
    summary.rows = len(units)
    summary.latest_period = summary.periods[-1] if summary.periods else None
    latest = table.latest()
    summary.class_counts = {k: int(v) for k, v in latest["risk_class"].value_counts().items()}
    summary.unavailable_by_country = table.unavailable_by_country()
    summary.missing_dimensions_by_country = table.missing_dimensions_by_country()
    ranked = latest.dropna(subset=["risk"]).sort_values(
        ["risk", "pcode"], ascending=[False, True]
    ).head(10)
    summary.top_areas = [
        (r.pcode, int(r.admin_level), r.period, float(r.risk), r.risk_class, r.top_drivers)
        for r in ranked.itertuples(index=False)
    ]
