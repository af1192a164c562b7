"""Benchmark: Gi* + FDR on 50,000 areas against the bare esda call, weights cached.

Run explicitly (benchmarks are not collected by default):

    .venv/bin/pytest tests/benchmarks/test_hotspots_benchmark.py -q -s

The country is 50,000 Voronoi cells of seeded random points. Weights are built once (and
cached); then, round after round, ``hotspot_statistics`` (Gi* + BH + classes + frame) and the
bare ``esda.G_Local`` with the same settings run on the same values, interleaved, and the
medians are compared. The other timings are printed for the record, not asserted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import esda
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from riskwatch.hotspots import emerging_classes, hotspot_statistics
from riskwatch.spatial_weights import build_weights, clear_weights_cache
from riskwatch.surges import detect_surges

AREAS = 50_000
ROUNDS = 10
MAX_RATIO = 1.5


def voronoi_country(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    points = np.random.default_rng(seed).uniform(0, 100, (n, 2))
    frame = shapely.box(0, 0, 100, 100)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame)
    )
    cells = shapely.intersection(cells, frame)
    pcodes = [f"BM{i:06d}" for i in range(len(cells))]
    return gpd.GeoDataFrame({"pcode": pcodes}, geometry=cells, crs=None)


def seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def round_values(areas: gpd.GeoDataFrame, seed: int) -> pd.Series:
    """Noise plus a few planted clusters of high values."""
    rng = np.random.default_rng(seed)
    values = rng.normal(100.0, 15.0, len(areas))
    centroids = shapely.centroid(np.asarray(areas.geometry.array))
    x, y = shapely.get_x(centroids), shapely.get_y(centroids)
    for cx, cy in rng.uniform(10, 90, (5, 2)):
        values[np.hypot(x - cx, y - cy) < 1.5] += 60.0
    return pd.Series(values, index=areas["pcode"].to_numpy())


@pytest.mark.slow
def test_gi_star_with_fdr_costs_at_most_one_and_a_half_bare_esda_calls(tmp_path: Path):
    started = time.perf_counter()
    areas = voronoi_country(AREAS)
    made = time.perf_counter() - started
    clear_weights_cache()

    build = seconds(lambda: build_weights(areas, cache_dir=tmp_path))
    lookup = seconds(lambda: build_weights(areas, cache_dir=tmp_path))
    clear_weights_cache()
    from_disk = seconds(lambda: build_weights(areas, cache_dir=tmp_path))
    weights, _ = build_weights(areas, cache_dir=tmp_path)

    rounds = [round_values(areas, seed) for seed in range(ROUNDS)]
    # Warm both paths (imports, lazily built sparse matrices) before timing.
    esda.G_Local(rounds[0].to_numpy(), weights, transform="B", star=True, permutations=0)
    hotspot_statistics(areas, rounds[0], weights=weights)

    ours, bare, results = [], [], []
    for index, values in enumerate(rounds):
        y = values.to_numpy()

        def run_bare(y: np.ndarray = y) -> None:
            esda.G_Local(y, weights, transform="B", star=True, permutations=0)

        def run_ours(values: pd.Series = values) -> None:
            results.append(hotspot_statistics(areas, values, weights=weights))

        # Alternate which goes first so neither always runs on a warmer cache.
        if index % 2:
            bare.append(seconds(run_bare))
            ours.append(seconds(run_ours))
        else:
            ours.append(seconds(run_ours))
            bare.append(seconds(run_bare))
    ratio = statistics.median(ours) / statistics.median(bare)

    with_lookup = seconds(lambda: hotspot_statistics(areas, rounds[0]))
    z = pd.DataFrame({i: r["gi_z"].to_numpy() for i, r in enumerate(results)}, index=areas.pcode)
    classes = pd.DataFrame(
        {i: r["hotspot_class"].to_numpy() for i, r in enumerate(results)}, index=areas.pcode
    )
    emerging = seconds(lambda: emerging_classes(z, classes))
    periods = pd.date_range("2020-01-31", periods=ROUNDS, freq="QE")
    series = pd.concat(
        [
            pd.DataFrame({"pcode": values.index, "period": period, "value": values.to_numpy()})
            for period, values in zip(periods, rounds, strict=True)
        ],
        ignore_index=True,
    )
    surges = seconds(lambda: detect_surges(series))

    hot = results[0]["hotspot_class"].str.startswith("hot_").sum()
    print(
        f"\n{AREAS:,} Voronoi areas ({made:.1f} s to make), {ROUNDS} rounds\n"
        f"  weights: build {build:.2f} s (queen + k-nearest fallback + cache file), "
        f"memory-cache hit {lookup * 1000:.0f} ms (hashing pcodes + geometries), "
        f"disk-cache load {from_disk * 1000:.0f} ms\n"
        f"  bare esda.G_Local (analytic, star, binary), median {statistics.median(bare) * 1000:.1f}"
        f" ms  [{', '.join(f'{t * 1000:.0f}' for t in bare)}]\n"
        f"  hotspot_statistics (Gi* + BH + classes), median {statistics.median(ours) * 1000:.1f}"
        f" ms  [{', '.join(f'{t * 1000:.0f}' for t in ours)}]\n"
        f"  ratio {ratio:.2f} (limit {MAX_RATIO}); round 0: {hot:,} hot areas\n"
        f"  hotspot_statistics, weights from the cache by hash: {with_lookup * 1000:.0f} ms\n"
        f"  emerging_classes {AREAS:,} x {ROUNDS}: {emerging * 1000:.0f} ms; "
        f"detect_surges {AREAS * ROUNDS:,} values: {surges * 1000:.0f} ms"
    )
    assert ratio <= MAX_RATIO
