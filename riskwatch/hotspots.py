"""Spatial hotspots (Getis-Ord Gi* + Benjamini-Hochberg) and their temporal classes.

:func:`hotspot_statistics` runs Gi* on one variable (the risk score or any indicator) for the
areas of one country, admin level and period; :func:`emerging_classes` turns the per-period
results into ESRI's emerging hot spot classes. Both are pure functions over frames: the score
run stores their results (``Hotspot`` rows), nothing here touches the database.

Inference is analytic by default: the normal approximation of Gi*'s z (Ord and Getis 1995),
two-sided, then BH over the areas analysed together. Its p-values go as low as the data say, so
the 99% class survives the correction (a permutation p cannot go below 2 / (permutations + 1),
which BH then multiplies), and it is deterministic and cheap. ``permutations=`` (conditional
randomisation, fixed ``seed``) is available and refuses counts that can never reach 99%.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import esda
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from libpysal.graph import Graph
from scipy import special

from riskwatch.spatial_weights import DEFAULT_K_FALLBACK, build_weights

NOT_SIGNIFICANT = "not_significant"
#: CONTRACTS.md ``hotspot_class``, hottest first.
HOTSPOT_CLASSES = ("hot_99", "hot_95", "hot_90", NOT_SIGNIFICANT, "cold_90", "cold_95", "cold_99")
HOT_CLASSES = frozenset(c for c in HOTSPOT_CLASSES if c.startswith("hot_"))
COLD_CLASSES = frozenset(c for c in HOTSPOT_CLASSES if c.startswith("cold_"))
DEFAULT_ALPHA_LEVELS = (0.01, 0.05, 0.10)

#: ESRI emerging hot spot patterns; cold-spot patterns carry a ``cold_`` prefix.
TEMPORAL_PATTERNS = (
    "new",
    "consecutive",
    "intensifying",
    "persistent",
    "diminishing",
    "sporadic",
    "oscillating",
    "historical",
)
NO_PATTERN = "none"
#: CONTRACTS.md ``temporal_class``.
TEMPORAL_CLASSES = (
    TEMPORAL_PATTERNS + tuple(f"cold_{pattern}" for pattern in TEMPORAL_PATTERNS) + (NO_PATTERN,)
)
#: ESRI: "at least ninety percent of the time-step intervals".
PERSISTENCE_SHARE = 0.9
#: A Mann-Kendall trend counts at 90% confidence, ESRI's lowest trend bin.
DEFAULT_TREND_ALPHA = 0.10

RESULT_COLUMNS = ["pcode", "gi_z", "p_value", "p_fdr", "hotspot_class"]


# --- Gi* -----------------------------------------------------------------------------------


def hotspot_statistics(
    areas: gpd.GeoDataFrame,
    values: pd.Series,
    *,
    weights: Graph | None = None,
    alpha_levels: Sequence[float] = DEFAULT_ALPHA_LEVELS,
    permutations: int = 0,
    seed: int = 0,
    k_fallback: int = DEFAULT_K_FALLBACK,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Gi* z, p, BH-adjusted p and ``hotspot_class`` for every area of ``areas``.

    ``areas`` has ``pcode`` and ``geometry``, one row per area of one country and admin level;
    ``values`` is indexed by pcode. Areas without a value (missing or NaN) or without geometry
    are left out of the analysis and reported ``not_significant`` with empty statistics, as are
    all areas when the values are constant (Gi*'s z is undefined), an area with no neighbour
    among the analysed areas, and an area neighbouring every other one (zero variance).

    ``weights`` defaults to :func:`~riskwatch.spatial_weights.build_weights` over the analysed
    areas (cached, so pass the graph yourself only to skip hashing the geometries). A given
    graph (from ``build_weights``) must cover every area that has a value and a geometry; it is
    cut down to the analysed areas, and an area left without neighbours is not significant.

    ``alpha_levels`` are the BH-adjusted p thresholds of the classes, a subset of 0.01, 0.05
    and 0.10 (hot/cold at 99, 95 and 90% confidence). ``permutations`` > 0 uses conditional
    permutation p-values with the fixed ``seed``; their floor, 2 / (permutations + 1), times
    the areas tested over the rank after BH, must stay below 0.01 for a hot_99: thousands of
    permutations, where the analytic test needs none.

    Returns one row per area of ``areas`` (same order): pcode, gi_z, p_value, p_fdr,
    hotspot_class.
    """
    levels = _check_alpha_levels(alpha_levels)
    if permutations and 2.0 / (permutations + 1) > levels[0]:
        raise ValueError(
            f"{permutations} permutations cannot give a two-sided p of {levels[0]}: use at "
            f"least {int(np.ceil(2.0 / levels[0] - 1))}, better 9999 (BH raises small p-values),"
            " or the analytic test"
        )
    pcodes = areas["pcode"].to_numpy()
    y = _aligned_values(values, areas["pcode"])
    has_value = ~np.isnan(y)
    if weights is None:
        analysed = has_value & _has_geometry(areas)
    else:
        analysed = has_value & _covered_by(weights, areas, has_value)

    n = len(pcodes)
    z = np.full(n, np.nan)
    p = np.full(n, np.nan)
    subset = np.flatnonzero(analysed)
    if subset.size > 1 and np.ptp(y[subset]) > 0:
        if weights is None:
            weights, _ = build_weights(
                areas.iloc[subset] if subset.size < n else areas,
                k_fallback=k_fallback,
                cache_dir=cache_dir,
            )
        else:
            weights = _weights_for(weights, pcodes[subset])
        z[subset], p[subset] = gi_star(y[subset], weights, permutations=permutations, seed=seed)
    p_fdr = benjamini_hochberg(p)
    return pd.DataFrame(
        {
            "pcode": pcodes,
            "gi_z": z,
            "p_value": p,
            "p_fdr": p_fdr,
            "hotspot_class": classify_hotspots(z, p_fdr, levels),
        }
    )


def gi_star(
    y: np.ndarray, weights: Graph, *, permutations: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Gi* z-scores and two-sided p-values of ``y`` (aligned with ``weights``) via esda.

    z is NaN (p NaN) where Gi* is undefined: an area with no neighbour, one that neighbours
    every other area, or every area when ``y`` is constant.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    spread = y.std()
    if n < 2 or not spread > 0:
        return np.full(n, np.nan), np.full(n, np.nan)
    # esda computes Gi* as the ratio G = sum(w*y) / sum(y) and scales by the mean: a negative
    # mean flips the sign of z and a zero mean divides by zero (think of "change in IDPs").
    # Gi*'s z is invariant under y -> a*y + b with a > 0, and so are permutation p-values, so
    # esda gets standardised values with mean 1, for which its formula is exact and well
    # conditioned whatever the variable.
    standardised = (y - y.mean()) / spread + 1.0
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        # esda 2.x warns that its permutation p will become two-sided in its next major
        # release; until then it is the one-sided "directed" p, doubled below (a test pins it).
        warnings.simplefilter("ignore", DeprecationWarning)
        result = esda.G_Local(
            standardised,
            weights,
            transform="B",
            star=True,
            permutations=permutations,
            seed=seed if permutations else None,
            n_jobs=1,  # one stream of random numbers: the same seed gives the same p-values
            keep_simulations=False,
        )
    z = np.array(result.Zs, dtype=np.float64)
    # EGs = (neighbours + self) / n: no neighbour, or all areas, leaves Gi* without variance.
    neighbourhood = np.rint(np.asarray(result.EGs) * n)
    z[(neighbourhood <= 1) | (neighbourhood >= n) | ~np.isfinite(z)] = np.nan
    if permutations:
        # esda's p_sim is one-sided towards the observed tail; the classes are two-sided.
        p = np.minimum(1.0, 2.0 * np.asarray(result.p_sim, dtype=np.float64))
        p[np.isnan(z)] = np.nan
    else:
        p = 2.0 * special.ndtr(-np.abs(z))  # the normal tail, without scipy.stats' overhead
    return z, p


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values; NaN stays NaN and is not counted as a test.

    The same numbers as ``scipy.stats.false_discovery_control(p, method="bh")`` (a test checks
    it), in plain numpy because scipy's generic version costs three times the sort it needs,
    which at 50,000 areas is a third of the Gi* call itself.
    """
    p_values = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p_values.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p_values))
    m = tested.size
    if m:
        order = np.argsort(p_values[tested])
        scaled = p_values[tested][order] * m / np.arange(1, m + 1)
        # Step-up: each p takes the smallest scaled p at its rank or above.
        monotone = np.minimum.accumulate(scaled[::-1])[::-1]
        adjusted[tested[order]] = np.minimum(monotone, 1.0)
    return adjusted


def classify_hotspots(
    z: np.ndarray, p_fdr: np.ndarray, alpha_levels: Sequence[float] = DEFAULT_ALPHA_LEVELS
) -> np.ndarray:
    """``hotspot_class`` per area: the finest level whose alpha the adjusted p meets."""
    levels = _check_alpha_levels(alpha_levels)
    hot = np.array([_class_name("hot", a) for a in levels] + [NOT_SIGNIFICANT], dtype=object)
    cold = np.array([_class_name("cold", a) for a in levels] + [NOT_SIGNIFICANT], dtype=object)
    # p <= alpha rejects at that level (BH's own rule); NaN sorts past every level.
    level = np.searchsorted(np.asarray(levels), np.asarray(p_fdr, dtype=np.float64), side="left")
    return np.where(np.asarray(z) > 0, hot[level], cold[level])


def _class_name(kind: str, alpha: float) -> str:
    return f"{kind}_{round(100 * (1 - alpha))}"


def _check_alpha_levels(alpha_levels: Sequence[float]) -> list[float]:
    levels = sorted(float(a) for a in alpha_levels)
    names = [_class_name("hot", a) for a in levels]
    if not levels or len(set(names)) != len(names) or not set(names) <= HOT_CLASSES:
        raise ValueError(f"alpha_levels must be a subset of 0.01, 0.05, 0.10: {alpha_levels}")
    return levels


def _aligned_values(values: pd.Series, pcodes: pd.Series) -> np.ndarray:
    if values.index.equals(pd.Index(pcodes)):  # the common case: no hashing needed
        aligned = values
    else:
        if not values.index.is_unique:
            raise ValueError("values have duplicate pcodes")
        aligned = values.reindex(pcodes.to_numpy())
    return pd.to_numeric(aligned, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _has_geometry(areas: gpd.GeoDataFrame) -> np.ndarray:
    geometry = np.asarray(areas.geometry.array)
    return ~(shapely.is_missing(geometry) | shapely.is_empty(geometry))


def _covered_by(weights: Graph, areas: gpd.GeoDataFrame, has_value: np.ndarray) -> np.ndarray:
    """Which areas ``weights`` covers; an area with a value and a geometry must be covered."""
    pcodes = areas["pcode"].to_numpy()
    if _same_ids(weights, pcodes):  # weights built for exactly these areas: nothing to check
        return np.ones(len(pcodes), dtype=bool)
    if not areas["pcode"].is_unique:
        raise ValueError("areas have duplicate pcodes")
    covered = pd.Index(pcodes).isin(weights.unique_ids)
    lacking = has_value & ~covered & _has_geometry(areas)
    if lacking.any():
        names = ", ".join(map(str, pcodes[lacking][:10]))
        raise ValueError(f"weights lack areas that have a value and a geometry: {names}")
    return covered


def _same_ids(weights: Graph, pcodes: np.ndarray) -> bool:
    ids = weights.unique_ids
    return len(ids) == len(pcodes) and bool((ids.to_numpy() == pcodes).all())


def _weights_for(weights: Graph, pcodes: np.ndarray) -> Graph:
    """``weights`` restricted to ``pcodes`` in their order (a no-op when they already match)."""
    return weights if _same_ids(weights, pcodes) else weights.subgraph(pcodes)


# --- emerging hot spots ---------------------------------------------------------------------


def emerging_classes(
    z_by_period: pd.DataFrame,
    classes_by_period: pd.DataFrame,
    *,
    trend_alpha: float = DEFAULT_TREND_ALPHA,
) -> pd.Series:
    """ESRI emerging hot spot class per area from its Gi* results over the time steps.

    ``z_by_period`` holds Gi* z (rows: pcode, columns: periods, sorted here oldest first);
    ``classes_by_period`` the ``hotspot_class`` of the same cells (a bin is a significant hot
    or cold spot when its class is any hot_ or cold_ class, i.e. at 90% or more after FDR).
    A missing cell (an area not covered in a period) is a bin that is neither hot nor cold,
    and its z is left out of the Mann-Kendall trend test.

    The ESRI definitions (hot; cold mirrors them with a ``cold_`` prefix and the trend sign
    reversed), with n time steps and "hot share" the fraction of the n bins that are hot:

    * new: hot in the final step only, never a significant hot or cold spot before;
    * consecutive: one uninterrupted run of >= 2 hot bins ending in the final step, never
      significant before the run, hot share below 90%;
    * intensifying / persistent / diminishing: hot share >= 90% including the final step, with
      a significant upward / no significant / a significant downward Mann-Kendall trend in z;
    * sporadic: hot in the final step, on and off before, hot share below 90%, never cold;
    * oscillating: hot in the final step, cold in some earlier step, hot share below 90%;
    * historical: the final step is not significant, but hot share >= 90%.

    ESRI's definitions overlap where a final step of one sign follows a history of the other
    (e.g. oscillating cold vs historical hot); the final step decides, as an early warning
    should: a final hot bin gives a hot pattern, a final cold bin a cold one.
    """
    periods = sorted(z_by_period.columns)
    z = z_by_period.reindex(columns=periods).to_numpy(dtype=np.float64, na_value=np.nan)
    classes = classes_by_period.reindex(index=z_by_period.index, columns=periods)
    hot = classes.isin(HOT_CLASSES).to_numpy()
    cold = classes.isin(COLD_CLASSES).to_numpy()
    if not periods:
        return pd.Series(NO_PATTERN, index=z_by_period.index, name="temporal_class", dtype=object)
    statistic, p_trend = mann_kendall(z)
    rising = (p_trend <= trend_alpha) & (statistic > 0)
    falling = (p_trend <= trend_alpha) & (statistic < 0)
    hot_pattern = _patterns(hot, cold, rising, falling)
    cold_pattern = _patterns(cold, hot, falling, rising)
    cold_named = np.array([f"cold_{p}" if p != NO_PATTERN else p for p in cold_pattern], object)
    share_hot = hot.mean(axis=1)
    share_cold = cold.mean(axis=1)
    result = np.select(
        [
            hot[:, -1],
            cold[:, -1],
            share_hot >= PERSISTENCE_SHARE,
            share_cold >= PERSISTENCE_SHARE,
        ],
        [hot_pattern, cold_named, "historical", "cold_historical"],
        default=NO_PATTERN,
    )
    return pd.Series(result, index=z_by_period.index, name="temporal_class", dtype=object)


def _patterns(
    same: np.ndarray, opposite: np.ndarray, stronger: np.ndarray, weaker: np.ndarray
) -> np.ndarray:
    """The pattern of areas whose final bin is significant of kind ``same`` (hot or cold)."""
    steps = same.shape[1]
    count = same.sum(axis=1)
    share = count / steps
    # Length of the run of ``same`` bins that ends in the final step.
    reverse = same[:, ::-1]
    run = np.where(reverse.all(axis=1), steps, np.argmin(reverse, axis=1))
    never_opposite = ~opposite.any(axis=1)
    persistent = share >= PERSISTENCE_SHARE
    return np.select(
        [
            (count == 1) & never_opposite,
            (run >= 2) & (count == run) & never_opposite & ~persistent,
            persistent & stronger,
            persistent & ~stronger & ~weaker,
            persistent & weaker,
            ~never_opposite,
            never_opposite,
        ],
        [
            "new",
            "consecutive",
            "intensifying",
            "persistent",
            "diminishing",
            "oscillating",
            "sporadic",
        ],
        default=NO_PATTERN,
    )


def mann_kendall(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mann-Kendall trend test on each row of ``series``: (S, two-sided p).

    The classic test (Mann 1945, Kendall 1975): S = sum of sign(x_j - x_i) over i < j, variance
    corrected for ties, normal approximation with continuity correction. NaN values are left
    out of their row; a row with fewer than three values has no trend (p = 1). Vectorised over
    rows, in chunks of a few million pairs, because a score run tests every area of a country.
    """
    x = np.atleast_2d(np.asarray(series, dtype=np.float64))
    rows, steps = x.shape
    statistic = np.zeros(rows)
    p = np.ones(rows)
    if steps < 3:
        return statistic, p
    first, second = np.triu_indices(steps, k=1)
    chunk = max(1, 4_000_000 // (steps * steps))
    for start in range(0, rows, chunk):
        block = x[start : start + chunk]
        with np.errstate(invalid="ignore"):
            signs = np.sign(block[:, second] - block[:, first])
        s = np.nansum(signs, axis=1)  # pairs with a NaN give NaN and are skipped
        present = ~np.isnan(block)
        valid = present.sum(axis=1)
        # Tie groups: each member of a group of size t adds (t - 1)(2t + 5); NaN ties nothing.
        tied = np.where(present, (block[:, :, None] == block[:, None, :]).sum(axis=2), 1)
        ties = ((tied - 1) * (2 * tied + 5)).sum(axis=1)
        variance = (valid * (valid - 1) * (2 * valid + 5) - ties) / 18.0
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(variance > 0, (s - np.sign(s)) / np.sqrt(variance), 0.0)
        statistic[start : start + chunk] = s
        p[start : start + chunk] = np.where(valid >= 3, 2.0 * special.ndtr(-np.abs(z)), 1.0)
    return statistic, p
