"""Spatial weights for Gi*: queen contiguity with a k-nearest fallback, built once and cached.

Areas that share an edge or a corner are neighbours (queen contiguity, libpysal's vertex-based
builder). Contiguity leaves islands without neighbours and small archipelagos or exclaves cut
off from the rest of the country; an area in a contiguity component of at most ``k_fallback``
areas therefore also gets its ``k_fallback`` nearest areas (by centroid; great-circle order for
geographic coordinates) as neighbours, in both directions, so its clustering is judged against
the coast it faces. Every area is its own neighbour with weight 1 (the "star" of Gi*), so the
graph goes to ``esda.G_Local(..., transform="B", star=True)`` unchanged.

Building contiguity for 50,000 areas takes seconds, so weights are cached per boundary version:
in memory (a small LRU, keyed by a hash of the pcodes, geometries, CRS and parameters) and, when
``cache_dir`` is given, on disk as a plain ``.npz`` (no pickle) that another process can reuse.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from libpysal.graph import Graph
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

#: Nearest areas given to an area of a small contiguity component (an island). Typical admin
#: tessellations have 5-6 queen neighbours; 4 keeps the island's neighbourhood to the facing
#: coast while still giving Gi* a neighbourhood in which a cluster can be significant.
DEFAULT_K_FALLBACK = 4

# Part of every cache key: changing how weights are built must invalidate old cache files.
_METHOD = "riskwatch-gistar-queen-knn-v1"
_MEMORY_ENTRIES = 16
_memory: OrderedDict[str, Graph] = OrderedDict()
_memory_lock = threading.Lock()


def weights_key(areas: gpd.GeoDataFrame, *, k_fallback: int = DEFAULT_K_FALLBACK) -> str:
    """The cache key of ``areas``' weights: a hash of pcodes, geometries, CRS and parameters.

    The same boundary version (same pcodes in the same order, same geometries) gives the same
    key in every process, so the key can also name a file shared between processes.
    """
    _check_areas(areas)
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{_METHOD}|k={k_fallback}|crs={_crs_text(areas)}|n={len(areas)}".encode())
    # NUL cannot occur in a pcode, and WKB is self-delimiting, so the joins are unambiguous.
    digest.update("\0".join(areas["pcode"].astype(str)).encode())
    digest.update(b"".join(shapely.to_wkb(np.asarray(areas.geometry.array))))
    return digest.hexdigest()


def build_weights(
    areas: gpd.GeoDataFrame,
    *,
    k_fallback: int = DEFAULT_K_FALLBACK,
    cache_dir: str | Path | None = None,
) -> tuple[Graph, str]:
    """Gi* weights for ``areas`` (columns ``pcode``, ``geometry``) and their cache key.

    Returns a binary libpysal ``Graph`` indexed by pcode in the order of ``areas``, with queen
    contiguity, the k-nearest fallback for small components and a self-weight of 1 on every
    area. A one-area country gets a graph with only its self-weight (no neighbours). Raises
    ``ValueError`` for duplicate or missing pcodes and for missing or empty geometries.
    """
    if k_fallback < 1:
        raise ValueError(f"k_fallback must be at least 1, got {k_fallback}")
    key = weights_key(areas, k_fallback=k_fallback)
    with _memory_lock:
        if key in _memory:
            _memory.move_to_end(key)
            return _memory[key], key
    path = Path(cache_dir) / f"gistar-weights-{key}.npz" if cache_dir is not None else None
    pcodes = areas["pcode"].astype(str).to_numpy()
    graph = _read_cached(path, key, pcodes) if path is not None else None
    if graph is None:
        adjacency = _adjacency(areas, k_fallback)
        graph = _star_graph(adjacency, pcodes)
        if path is not None:
            _write_cached(path, key, pcodes, adjacency)
    with _memory_lock:
        _memory[key] = graph
        while len(_memory) > _MEMORY_ENTRIES:
            _memory.popitem(last=False)
    return graph, key


def clear_weights_cache() -> None:
    """Forget the weights cached in memory (files under a ``cache_dir`` stay)."""
    with _memory_lock:
        _memory.clear()


def _check_areas(areas: gpd.GeoDataFrame) -> None:
    if "pcode" not in areas.columns:
        raise ValueError("areas need a 'pcode' column")
    pcodes = areas["pcode"]
    if pcodes.isna().any():
        raise ValueError("areas have missing pcodes")
    if not pcodes.is_unique:
        duplicated = sorted(set(pcodes[pcodes.duplicated()].astype(str)))
        raise ValueError(f"areas have duplicate pcodes: {', '.join(duplicated[:10])}")
    geometry = np.asarray(areas.geometry.array)
    unusable = shapely.is_missing(geometry) | shapely.is_empty(geometry)
    if unusable.any():
        missing = pcodes[unusable].astype(str).tolist()
        raise ValueError(f"areas without geometry: {', '.join(missing[:10])}")


def _crs_text(areas: gpd.GeoDataFrame) -> str:
    return "" if areas.crs is None else areas.crs.to_string()


def _adjacency(areas: gpd.GeoDataFrame, k_fallback: int) -> sparse.csr_array:
    """Binary, symmetric neighbour matrix without self-loops, in the order of ``areas``."""
    n = len(areas)
    if n < 2:
        return sparse.csr_array((n, n), dtype=np.float64)
    geometry = areas.geometry.reset_index(drop=True)
    contiguity = Graph.build_contiguity(geometry, rook=False).sparse
    # Isolates are stored as zero-weight self-loops: drop them and keep a clean 0/1 matrix.
    adjacency = sparse.csr_array((contiguity != 0).astype(np.float64))
    adjacency.setdiag(0)
    adjacency.eliminate_zeros()
    return _attach_small_components(adjacency, _centroid_points(areas), k_fallback)


def _attach_small_components(
    adjacency: sparse.csr_array, points: np.ndarray, k_fallback: int
) -> sparse.csr_array:
    """Give every area of a component with at most ``k_fallback`` areas its k nearest areas."""
    n = adjacency.shape[0]
    count, labels = connected_components(adjacency, directed=False)
    if count < 2:
        return adjacency  # one connected country: nothing to attach it to
    small = np.bincount(labels)[labels] <= k_fallback
    rows = np.flatnonzero(small)
    if rows.size == 0:
        return adjacency
    k = min(k_fallback, n - 1)
    _, candidates = cKDTree(points).query(points[rows], k=k + 1)
    # The nearest point is normally the area itself; drop it (wherever ties put it), keep k.
    not_self = candidates != rows[:, None]
    order = np.argsort(~not_self, axis=1, kind="stable")[:, :k]
    nearest = np.take_along_axis(candidates, order, axis=1)
    focal = np.repeat(rows, k)
    extra = sparse.csr_array(
        (np.ones(focal.size), (focal, nearest.ravel())), shape=(n, n), dtype=np.float64
    )
    # Symmetric: the coast facing an island counts the island among its neighbours as well.
    joined = sparse.csr_array(((adjacency + extra + extra.T) != 0).astype(np.float64))
    joined.setdiag(0)
    joined.eliminate_zeros()
    return joined


def _centroid_points(areas: gpd.GeoDataFrame) -> np.ndarray:
    """Centroids as coordinates in which Euclidean order is the order of true distance."""
    centroids = shapely.centroid(np.asarray(areas.geometry.array))
    x, y = shapely.get_x(centroids), shapely.get_y(centroids)
    if areas.crs is not None and areas.crs.is_geographic:
        # Chord length on the unit sphere grows with great-circle distance: no projection needed.
        lon, lat = np.radians(x), np.radians(y)
        return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    return np.column_stack([x, y])


def _star_graph(adjacency: sparse.csr_array, pcodes: np.ndarray) -> Graph:
    """The Graph esda's Gi* uses as is: binary neighbours plus a self-weight of 1."""
    star = sparse.csr_array(adjacency + sparse.eye_array(adjacency.shape[0], format="csr"))
    star.sort_indices()
    edges = star.tocoo()  # row-major with sorted columns: the Graph's canonical order
    ids = pd.Index(pcodes)
    # Built from codes, not labels: Graph.from_sparse hashes 50,000 pcodes per edge list and
    # takes 40 times longer, which would dominate loading the weights from the disk cache.
    index = pd.MultiIndex(
        levels=[ids, ids], codes=[edges.row, edges.col], names=["focal", "neighbor"]
    )
    weight = pd.Series(np.ones(edges.nnz, dtype=np.int64), index=index, name="weight")
    return Graph(weight, transformation="B", is_sorted=True)


def _read_cached(path: Path, key: str, pcodes: np.ndarray) -> Graph | None:
    """The graph stored at ``path``, or None when absent, unreadable or for other areas."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key or not np.array_equal(stored["pcodes"], pcodes):
                return None
            n = len(pcodes)
            adjacency = sparse.csr_array(
                (stored["data"], stored["indices"], stored["indptr"]), shape=(n, n)
            )
    except (OSError, ValueError, KeyError):
        return None  # a damaged or foreign file is rebuilt, never trusted
    return _star_graph(adjacency, pcodes)


def _write_cached(path: Path, key: str, pcodes: np.ndarray, adjacency: sparse.csr_array) -> None:
    """Write atomically, so a concurrent reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(
                file,
                key=np.array(key),
                pcodes=pcodes.astype(str),
                data=adjacency.data,
                indices=adjacency.indices,
                indptr=adjacency.indptr,
            )
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
