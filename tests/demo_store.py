"""The synthetic demo store for tests: generate, ingest and (optionally) score into a database."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from sqlalchemy.engine import Engine

from riskwatch.config import Settings, load_settings
from riskwatch.db.engine import make_engine
from riskwatch.demo_setup import run_demo
from riskwatch.score_runs import ScoreRunSummary, run_score

REPO_CATALOG = Path(__file__).resolve().parents[1] / "indicators"


def demo_settings(database_url: str, data_dir: Path) -> Settings:
    """Settings for the demo in `data_dir` with the repository's indicator catalog."""
    return load_settings(
        overrides={"database_url": database_url, "data_dir": str(data_dir),
                   "indicators_dir": str(REPO_CATALOG)},
        cwd=data_dir,
    )


def build_demo_store(
    database_url: str, data_dir: Path, *, score: bool = True
) -> tuple[Settings, Engine, ScoreRunSummary | None]:
    """Run the demo (generate + ingest) into `database_url`, then a score run unless `score` is
    False; returns the settings, an open engine (the caller disposes it) and the score summary."""
    settings = demo_settings(database_url, data_dir)
    engine = make_engine(database_url)
    run_demo(settings, engine, database_url, console=Console(quiet=True))
    summary = run_score(engine, settings) if score else None
    return settings, engine, summary
