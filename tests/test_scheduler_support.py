"""Helpers of the scheduler and pipeline tests: a small scenario declared in a sources.toml,
real `riskwatch` processes, and the database checks every test repeats.

(No tests here; the module is imported by tests/test_scheduler*.py and tests/test_pipeline*.py.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from riskwatch.db.engine import make_engine
from riskwatch.db.models import (
    AreaScore,
    IngestBatch,
    JobRun,
    Notification,
    NotificationAlert,
    Observation,
    SchedulerLease,
    ScoreRun,
)

RISKWATCH = Path(sys.executable).with_name("riskwatch")
POPULATION_MAPPING = """\
country = "XDM"
period = 2024-01-01
pcode_column = "ADM2_PCODE"
aggregate_columns = ["population", "children_share", "women_share"]

[variables]
population = "population"
children_share = "children_share"
women_share = "women_share"
"""


@lru_cache(maxsize=1)
def _scenario_cache() -> Path:
    """The demo scenario, generated once per test session (deterministic)."""
    import tempfile

    from riskwatch import demo

    directory = Path(tempfile.mkdtemp(prefix="riskwatch-scenario-"))
    demo.generate_scenario(directory)
    return directory


def scenario(directory: Path, *, failing: bool = False, dtm_scale: float | None = None,
             extra: str = "", cadence: int | None = None) -> Path:
    """Copy the demo scenario into ``directory`` and declare it in a sources.toml there.

    ``failing`` adds a source whose file does not exist and one whose URL is refused (a
    loopback address, without allow_private_addresses: no connection is even tried);
    ``dtm_scale`` rewrites the DTM figures (new values: a new batch and a new score run);
    ``cadence`` sets expected_cadence_days.
    Returns the sources.toml path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    source = _scenario_cache()
    for name in ("boundaries_adm1.geojson", "boundaries_adm2.geojson", "dtm_admin2.csv",
                 "ipc_food_security.csv", "population.csv"):
        if not (directory / name).exists():
            shutil.copy(source / name, directory / name)
    if dtm_scale is not None:
        scale_dtm(directory / "dtm_admin2.csv", dtm_scale)
    (directory / "population.toml").write_text(POPULATION_MAPPING, encoding="utf-8")
    cadence_line = f"expected_cadence_days = {cadence}\n" if cadence else ""
    text_ = f"""
[[source]]
id = "xdm-adm1"
kind = "boundaries"
location = "boundaries_adm1.geojson"
country = "XDM"
level = 1

[[source]]
id = "xdm-adm2"
kind = "boundaries"
location = "boundaries_adm2.geojson"
country = "XDM"
level = 2

[[source]]
id = "xdm-dtm"
kind = "dtm"
location = "dtm_admin2.csv"
{cadence_line}
[[source]]
id = "xdm-ipc"
kind = "hapi"
location = "ipc_food_security.csv"

[[source]]
id = "xdm-population"
kind = "table"
location = "population.csv"
mapping = "population.toml"
"""
    if failing:
        text_ += """
[[source]]
id = "xdm-missing"
kind = "dtm"
location = "no-such-file.csv"
expected_cadence_days = 30

[[source]]
id = "xdm-url"
kind = "dtm"
location = "http://127.0.0.1:9/dtm.csv"
"""
    path = directory / "sources.toml"
    path.write_text(text_ + extra, encoding="utf-8")
    return path


def scale_dtm(path: Path, factor: float) -> None:
    """Multiply the DTM head counts (new values, so a new batch stores new versions)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    index = header.index("numPresentIdpInd")
    out = lines[:2]
    for line in lines[2:]:
        cells = line.split(",")
        cells[index] = str(round(float(cells[index]) * factor))
        out.append(",".join(cells))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    # A later mtime even within the same second: the cycle sees the file changed.
    stamp = time.time() + 1
    os.utime(path, (stamp, stamp))


def env_for(database_url: str, sources: Path, data_dir: Path, **settings: Any) -> dict[str, str]:
    """The environment of a riskwatch process: database, sources, data dir, scheduler settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKWATCH_")}
    env.update({
        "RISKWATCH_DATABASE_URL": database_url,
        "RISKWATCH_INGEST__SOURCES_FILE": str(sources),
        "RISKWATCH_DATA_DIR": str(data_dir),
        "RISKWATCH_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    for key, value in settings.items():
        env[f"RISKWATCH_SCHEDULER__{key.upper()}"] = str(value)
    return env


def start(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """A real `riskwatch ...` process (the console script), output to ``log``."""
    handle = log.open("ab")
    return subprocess.Popen([str(RISKWATCH), *args], env=env, cwd=cwd, stdout=handle,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
         timeout: float = 30) -> int:
    """Signal a process and reap it; its exit code."""
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=timeout)


def wait_for(condition: Callable[[], Any], timeout: float, *, what: str,
             interval: float = 0.1) -> Any:
    """Poll until ``condition()`` is truthy; its value, or AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Db:
    """Short-lived sessions on the test database (a new engine per instance)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    def scalar(self, statement: Any) -> Any:
        with Session(self.engine) as session:
            return session.exec(statement).one()

    def all(self, statement: Any) -> list[Any]:
        with Session(self.engine) as session:
            return list(session.exec(statement).all())

    def lease(self) -> SchedulerLease | None:
        with Session(self.engine) as session:
            return session.get(SchedulerLease, "scheduler")

    def runs(self, job: str | None = None) -> list[JobRun]:
        statement = select(JobRun).order_by(col(JobRun.id))
        if job is not None:
            statement = statement.where(JobRun.job == job)
        return self.all(statement)

    def dispose(self) -> None:
        self.engine.dispose()


def assert_consistent(db: Db) -> None:
    """What no crash may leave behind: running or partial batches and score runs, duplicates."""
    assert db.all(select(IngestBatch).where(IngestBatch.status == "running")) == []
    assert db.all(select(ScoreRun).where(ScoreRun.status == "running")) == []
    # Observations only come from batches that succeeded (a failed batch stored nothing).
    orphans = db.scalar(
        select(func.count()).select_from(Observation)
        .join(IngestBatch, col(IngestBatch.id) == col(Observation.batch_id))
        .where(IngestBatch.status != "succeeded")
    )
    assert orphans == 0
    # A score run that did not succeed has no scores.
    partial = db.scalar(
        select(func.count()).select_from(AreaScore)
        .join(ScoreRun, col(ScoreRun.id) == col(AreaScore.run_id))
        .where(ScoreRun.status != "succeeded")
    )
    assert partial == 0
    # No alert goes twice to the same channel as two notifications with different keys.
    pairs = db.all(
        select(NotificationAlert.alert_id, Notification.channel_id, Notification.kind,
               func.count(func.distinct(Notification.idempotency_key)))
        .join(Notification, col(Notification.id) == col(NotificationAlert.notification_id))
        .group_by(NotificationAlert.alert_id, Notification.channel_id, Notification.kind)
    )
    assert [p for p in pairs if p[3] > 1] == []
    with db.engine.connect() as connection:
        keys = connection.execute(text(
            "SELECT idempotency_key, count(*) FROM notification GROUP BY idempotency_key "
            "HAVING count(*) > 1")).all()
    assert keys == []
