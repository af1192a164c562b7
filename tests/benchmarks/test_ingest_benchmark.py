"""Benchmark: the ingest writer and point assignment against bare pandas / geopandas.

Run explicitly (benchmarks are not collected by default), with PostgreSQL for its variant:

    RISKWATCH_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/pytest tests/benchmarks/test_ingest_benchmark.py -q -s

(a) 1,000,000 DTM-like figures (20,000 areas x 50 periods, variable idps) go through riskwatch's
    check-and-store path (``ingest.ingest_read_result``: the call ``ingest_file`` makes once its
    reader returned: pcode matching, normalisation, versioning, one transaction) and, on the same
    database, through a bare ``DataFrame.to_sql`` of the same rows into a plain table. Asserted:
    riskwatch within 2x of ``to_sql``; on PostgreSQL (COPY) faster than ``to_sql``.
(b) 1,000,000 points assigned to 50,000 Voronoi cells by ``events.assign_points`` against a bare
    ``geopandas.sjoin``; asserted within 1.5x.
(c) The peak resident memory (``ru_maxrss``) of a fresh process that builds (a)'s data and stores
    it through riskwatch: under 2 GB.

``RISKWATCH_BENCH_SCALE`` (default 1.0) scales the row and point counts for a quick try.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import func, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from riskwatch.db.engine import make_engine
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import Area, Observation
from riskwatch.ingest import ingest_read_result
from riskwatch.sources.events import assign_points
from riskwatch.sources.report import ReadResult
from riskwatch.sources.values import observation_frame

SCALE = float(os.environ.get("RISKWATCH_BENCH_SCALE", "1.0"))
AREAS = max(10, int(20_000 * SCALE))
PERIODS = 50
CELLS = max(10, int(50_000 * SCALE))
POINTS = max(100, int(1_000_000 * SCALE))
MAX_WRITER_RATIO = 2.0
MAX_POINTS_RATIO = 1.5
MAX_RSS_BYTES = 2 * 1024**3
BOX = (-74.5, 18.0, -71.6, 20.1)  # roughly Haiti's extent, lon/lat


# --- (a) the observation writer ------------------------------------------------------------


def area_pcodes(count: int = AREAS) -> list[str]:
    return [f"HT{i:06d}" for i in range(count)]


def add_areas(engine: Engine, pcodes: list[str]) -> None:
    """The known admin2 areas of a synthetic country (and the country itself)."""
    rows = [{"pcode": "HTI", "name": "HTI", "admin_level": 0, "country_iso3": "HTI"}] + [
        {"pcode": p, "name": f"Area {p}", "admin_level": 2, "country_iso3": "HTI",
         "parent_pcode": None}
        for p in pcodes
    ]
    with Session(engine) as session:
        session.execute(insert(Area), rows)
        session.commit()


def figures(pcodes: list[str], periods: int = PERIODS, seed: int = 1) -> pd.DataFrame:
    """What a DTM reader returns: one idps figure per area and period (rounds every period)."""
    rng = np.random.default_rng(seed)
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=14 * k) for k in range(periods)]
    n = len(pcodes) * periods
    return observation_frame(
        {
            "pcode": np.repeat(np.array(pcodes, dtype=object), periods),
            "variable": "idps",
            "period": pd.Series(days * len(pcodes), dtype=object),
            "value": rng.integers(0, 50_000, n).astype(float),
            "operation": "Benchmark operation",
            "assessment_type": "BA",
            "round": pd.Series([str(k + 1) for k in range(periods)] * len(pcodes), dtype=object),
            "admin_level": 2,
            "country_iso3": "HTI",
        }
    )


def store_through_riskwatch(engine: Engine, frame: pd.DataFrame) -> float:
    """Seconds for riskwatch's check-and-store of ``frame`` (as a reader returned it)."""
    result = ReadResult(frame=frame, rows_read=len(frame))
    start = time.perf_counter()
    summary = ingest_read_result(engine, result, "dtm", source_id="bench", location="benchmark",
                                 content_hash="benchmark")
    seconds = time.perf_counter() - start
    assert summary.status == "succeeded", summary.message
    assert summary.rows_stored == len(frame)
    return seconds


def bare_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows the store holds for ``frame``, as a plain table for ``to_sql``."""
    return pd.DataFrame(
        {
            "area_pcode": frame["pcode"],
            "variable": frame["variable"],
            "period": frame["period"],
            "value": frame["value"],
            "operation": frame["operation"],
            "assessment_type": frame["assessment_type"],
            "round": frame["round"],
            "version": 1,
            "batch_id": 1,
            "recorded_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        }
    )


def store_bare(engine: Engine, frame: pd.DataFrame) -> float:
    rows = bare_rows(frame)
    start = time.perf_counter()
    rows.to_sql("bench_bare_observation", engine, if_exists="append", index=False,
                chunksize=10_000)
    return time.perf_counter() - start


def prepared_database(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    add_areas(engine, area_pcodes())
    return engine


def test_observation_writer(database_url: str) -> None:
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    engine = prepared_database(database_url)
    try:
        frame = figures(area_pcodes())
        bare = store_bare(engine, frame)
        ours = store_through_riskwatch(engine, frame)
        with Session(engine) as session:
            stored = session.exec(select(func.count()).select_from(Observation)).one()
        assert stored == len(frame)
        # The same snapshot again: every value is compared, nothing is written.
        again = ReadResult(frame=frame, rows_read=len(frame))
        start = time.perf_counter()
        summary = ingest_read_result(engine, again, "dtm", source_id="bench",
                                     location="benchmark", content_hash="benchmark")
        unchanged = time.perf_counter() - start
        assert summary.status == "unchanged" and summary.rows_unchanged == len(frame)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE bench_bare_observation"))
    finally:
        engine.dispose()
    ratio = ours / bare
    print(
        f"\n[ingest {backend}] {len(frame):,} rows: riskwatch {ours:.2f}s, "
        f"pandas to_sql {bare:.2f}s, ratio {ratio:.2f}x (target <= {MAX_WRITER_RATIO}x); "
        f"re-ingest unchanged {unchanged:.2f}s"
    )
    assert ratio <= MAX_WRITER_RATIO
    if backend == "postgresql":
        assert ours < bare, "on PostgreSQL the COPY path should beat to_sql"


# --- (b) point assignment ----------------------------------------------------------------------


def voronoi_cells(count: int = CELLS, seed: int = 2) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = BOX
    seeds = shapely.points(rng.uniform(xmin, xmax, count), rng.uniform(ymin, ymax, count))
    box = shapely.box(*BOX)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box))
    cells = shapely.intersection(cells, box)
    return gpd.GeoDataFrame({"pcode": [f"C{i:06d}" for i in range(len(cells))]},
                            geometry=cells, crs="EPSG:4326")


def random_points(count: int = POINTS, seed: int = 3) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = BOX
    # Strictly inside the box: every point falls in a cell (no offshore search).
    x = rng.uniform(xmin + 1e-6, xmax - 1e-6, count)
    y = rng.uniform(ymin + 1e-6, ymax - 1e-6, count)
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs="EPSG:4326")


def test_point_assignment() -> None:
    cells = voronoi_cells()
    points = random_points()
    start = time.perf_counter()
    bare = gpd.sjoin(points, cells[["geometry"]], how="inner", predicate="intersects")
    bare_seconds = time.perf_counter() - start
    start = time.perf_counter()
    assigned, distance = assign_points(points, cells, max_offshore_km=10.0)
    ours = time.perf_counter() - start
    assert (assigned >= 0).all() and (distance == 0).all()
    first = bare.groupby(level=0)["index_right"].min()
    assert np.array_equal(assigned[first.index.to_numpy()], first.to_numpy())
    ratio = ours / bare_seconds
    print(
        f"\n[points] {len(points):,} points in {len(cells):,} cells: riskwatch assign_points "
        f"{ours:.2f}s, geopandas sjoin {bare_seconds:.2f}s, ratio {ratio:.2f}x "
        f"(target <= {MAX_POINTS_RATIO}x)"
    )
    assert ratio <= MAX_POINTS_RATIO


# --- (c) peak memory ---------------------------------------------------------------------------


def _memory_child(url: str) -> None:
    """In a fresh process: build (a)'s data, store it through riskwatch, print ru_maxrss."""
    engine = prepared_database(url)
    seconds = store_through_riskwatch(engine, figures(area_pcodes()))
    engine.dispose()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"PEAK_RSS_BYTES={peak_kib * 1024} SECONDS={seconds:.2f}")


def test_writer_peak_memory(database_url: str) -> None:
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), database_url],
        capture_output=True, text=True, check=False, env={**os.environ},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("PEAK_RSS_BYTES="))
    peak = int(line.split()[0].split("=")[1])
    print(f"\n[memory {backend}] peak RSS of a process storing {AREAS * PERIODS:,} rows through "
          f"riskwatch (data generation included): {peak / 1024**2:,.0f} MiB "
          f"(target < {MAX_RSS_BYTES / 1024**3:.0f} GiB)")
    assert peak < MAX_RSS_BYTES


if __name__ == "__main__":
    _memory_child(sys.argv[1])
