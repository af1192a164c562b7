"""One cycle's decisions: is a new score run due? (CONTRACTS `run`: score when anything changed
since the last score run — a scheduled or ad-hoc ingest, a new profile, new parameters.)

Shared by the demo, `riskwatch run` and the scheduler, so "nothing changed" means the same
everywhere and repeated cycles on unchanged data leave the same content.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.catalog import content_hash, load_catalog
from riskwatch.config import Settings
from riskwatch.db.models import Area, IndicatorProfile, Observation, ScoreRun
from riskwatch.score_runs import run_parameters, scoring_params


@dataclass(frozen=True)
class ScoringDue:
    due: bool
    reason: str


def scoring_due(engine: Engine, settings: Settings, profile: str | None = None) -> ScoringDue:
    """Whether the data, the profile or the parameters changed since the latest score run."""
    name = profile or settings.scoring.profile
    catalog = load_catalog(settings.resolved_indicators_dir,
                           extra_variables=settings.scoring.extra_variables)
    model = catalog.model(name)
    params = run_parameters(scoring_params(settings), settings.scoring.assessment_preference)
    with Session(engine) as session:
        latest = session.exec(
            select(ScoreRun, IndicatorProfile)
            .join(IndicatorProfile, col(IndicatorProfile.id) == col(ScoreRun.profile_id))
            .where(IndicatorProfile.name == name, ScoreRun.status == "succeeded")
            .order_by(col(ScoreRun.data_as_of).desc(), col(ScoreRun.id).desc())
        ).first()
        if latest is None:
            return ScoringDue(True, f"no score run of profile {name!r} yet")
        run, version = latest
        since = run.data_as_of
        if version.content_hash != model.content_hash():
            return ScoringDue(True, f"profile {name!r} changed since run {run.id}")
        if run.params_hash != content_hash(params):
            return ScoringDue(True, f"scoring settings changed since run {run.id}")
        newer_values = session.exec(
            select(func.count()).select_from(Observation).where(
                (col(Observation.recorded_at) > since) | (col(Observation.superseded_at) > since)
            )
        ).one()
        if newer_values:
            return ScoringDue(True, f"{newer_values} observation versions since run {run.id}")
        newer_areas = session.exec(
            select(func.count()).select_from(Area).where(col(Area.updated_at) > since)
        ).one()
        if newer_areas:
            return ScoringDue(True, f"{newer_areas} areas changed since run {run.id}")
    return ScoringDue(False, f"nothing changed since score run {run.id}")
