"""Map geometry for the dashboard: simplified, quantised, levels of detail, cached.

The map never ships GeoJSON. Per admin level and level of detail (LOD) the area outlines are
simplified together as a coverage (:func:`shapely.coverage_simplify`, so neighbours keep sharing
their edges and no gaps or slivers appear), snapped to an integer grid and kept as flat arrays:
per area the number of rings, per ring the number of points, and the points as int32 grid
coordinates. That is built ONCE per boundary version, level and LOD and cached in memory and on
disk (``<data_dir>/map_cache``), keyed by a fingerprint of the level's areas, so a new boundary
ingest invalidates it by itself.

Levels of detail follow web-map zoom levels: LOD ``k`` is simplified to about half a pixel at
zoom :data:`LOD_ZOOMS` ``[k]``; the last one keeps the full outline on a ~1 m grid. The first
render of a level sends one LOD for every area (small: half a pixel of the whole level's
extent); finer LODs are sent per tile (standard XYZ tiles) as the user zooms in.

:func:`encode` packs a selection of areas into one compact binary message (delta-encoded
coordinates; gzip does the rest) that ``dashboards/assets/riskmap.js`` decodes; :func:`decode`
is the same in Python, for tests. This module has no web code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.db.models import Area

log = logging.getLogger(__name__)

#: Web-map zoom level of each LOD (tolerance: half a pixel at that zoom).
LOD_ZOOMS: tuple[int, ...] = (3, 5, 7, 9, 11, 13)
#: Grid step of the full-detail (last) LOD, in degrees (~1 m at the equator).
FULL_DETAIL_QUANTUM = 1e-5
#: Simplification tolerance in pixels at the LOD's zoom.
TOLERANCE_PIXELS = 0.5
#: Tiles of a LOD are XYZ tiles this many zoom steps coarser (1024 px square at the LOD's zoom).
TILE_ZOOM_OFFSET = 2
MAGIC = b"RWG1"
FORMAT_VERSION = 1
CACHE_FOLDER = "map_cache"
MEMORY_CACHE_ENTRIES = 12


def lod_tolerance(lod: int) -> float:
    """Simplification tolerance of ``lod`` in degrees (0 for the full-detail LOD)."""
    if lod >= len(LOD_ZOOMS) - 1:
        return 0.0
    return TOLERANCE_PIXELS * 360.0 / (256.0 * 2.0 ** LOD_ZOOMS[lod])


def lod_quantum(lod: int) -> float:
    """Grid step of ``lod`` in degrees: a fraction of its tolerance, so snapping adds little."""
    tolerance = lod_tolerance(lod)
    return max(tolerance / 4.0, FULL_DETAIL_QUANTUM) if tolerance else FULL_DETAIL_QUANTUM


def fit_zoom(
    bounds: tuple[float, float, float, float], width_px: int = 900, height_px: int = 500
) -> float:
    """The web-map zoom at which ``bounds`` (lon/lat) fits a viewport of that size."""
    min_x, min_y, max_x, max_y = bounds
    span_x = max(max_x - min_x, 1e-6)
    y0, y1 = _mercator_y(min_y), _mercator_y(max_y)  # 0..1 of the world height
    span_y = max(abs(y1 - y0), 1e-9)
    zoom_x = math.log2(width_px * 360.0 / (256.0 * span_x))
    zoom_y = math.log2(height_px / (256.0 * span_y))
    return max(0.0, min(18.0, zoom_x, zoom_y))


def first_lod(
    bboxes: np.ndarray,
    countries: np.ndarray,
    selected: Sequence[str] | None,
    width_px: int = 1000,
    height_px: int = 560,
) -> int:
    """The LOD of a level's first render: about one pixel of tolerance when the selected
    countries' areas fill a map of that size."""
    boxes = bboxes if selected is None else bboxes[np.isin(countries, list(selected))]
    if len(boxes) == 0:
        return 0
    bounds = (
        float(boxes[:, 0].min()),
        float(boxes[:, 1].min()),
        float(boxes[:, 2].max()),
        float(boxes[:, 3].max()),
    )
    return lod_for_zoom(fit_zoom(bounds, width_px, height_px) + 1)


def lod_for_zoom(zoom: float) -> int:
    """The coarsest LOD fine enough for ``zoom`` (the highest LOD whose zoom is at most it)."""
    lod = 0
    for index, lod_zoom in enumerate(LOD_ZOOMS):
        if lod_zoom <= zoom + 1e-9:
            lod = index
    return lod


def _mercator_y(lat: float) -> float:
    lat = max(-85.0511, min(85.0511, lat))
    rad = math.radians(lat)
    return (1.0 - math.log(math.tan(rad) + 1.0 / math.cos(rad)) / math.pi) / 2.0


def tile_bounds(zoom: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Lon/lat bounds (min_x, min_y, max_x, max_y) of the XYZ tile ``zoom/x/y``."""
    count = 2.0**zoom

    def lat(row: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1.0 - 2.0 * row / count))))

    return (x / count * 360.0 - 180.0, lat(y + 1), (x + 1) / count * 360.0 - 180.0, lat(y))


def tile_zoom(lod: int) -> int:
    """The XYZ zoom of the tiles in which ``lod`` is served."""
    return max(0, LOD_ZOOMS[lod] - TILE_ZOOM_OFFSET)


@dataclass
class LevelGeometry:
    """One admin level at one LOD: every area with a geometry, ordered by (country, pcode).

    ``coords`` are absolute grid coordinates (``round(lon / quantum)``, ``round(lat /
    quantum)``), one row per point, rings not closed (the last point is not the first again).
    ``bboxes`` and ``labels`` come from the original outlines, so they are the same at every LOD.
    """

    key: str
    level: int
    lod: int
    quantum: float
    pcodes: np.ndarray  # str, (n,)
    names: np.ndarray  # str, (n,)
    countries: np.ndarray  # str, (n,)
    ring_counts: np.ndarray  # uint32, (n,)
    ring_lengths: np.ndarray  # uint32, (rings,)
    coords: np.ndarray  # int32, (points, 2)
    bboxes: np.ndarray  # float64, (n, 4): min lon, min lat, max lon, max lat
    labels: np.ndarray  # float64, (n, 2): a point inside each area, for its label

    @property
    def size(self) -> int:
        """Number of areas."""
        return int(len(self.pcodes))

    def ring_offsets(self) -> np.ndarray:
        """Index of each area's first ring, plus the total (n + 1 values)."""
        return np.concatenate([[0], np.cumsum(self.ring_counts, dtype=np.int64)])

    def point_offsets(self) -> np.ndarray:
        """Index of each ring's first point, plus the total (rings + 1 values)."""
        return np.concatenate([[0], np.cumsum(self.ring_lengths, dtype=np.int64)])

    def bounds(self, indices: np.ndarray | None = None) -> tuple[float, float, float, float]:
        """Lon/lat bounds of all areas, or of ``indices``."""
        boxes = self.bboxes if indices is None else self.bboxes[indices]
        if len(boxes) == 0:
            return (-180.0, -60.0, 180.0, 75.0)
        return (
            float(boxes[:, 0].min()),
            float(boxes[:, 1].min()),
            float(boxes[:, 2].max()),
            float(boxes[:, 3].max()),
        )

    def select(
        self,
        countries: Sequence[str] | None = None,
        bounds: tuple[float, float, float, float] | None = None,
    ) -> np.ndarray:
        """Indices of the areas in ``countries`` (None: all) whose box meets ``bounds``."""
        mask = np.ones(self.size, dtype=bool)
        if countries is not None:
            mask &= np.isin(self.countries, list(countries))
        if bounds is not None:
            min_x, min_y, max_x, max_y = bounds
            boxes = self.bboxes
            mask &= (
                (boxes[:, 2] >= min_x)
                & (boxes[:, 0] <= max_x)
                & (boxes[:, 3] >= min_y)
                & (boxes[:, 1] <= max_y)
            )
        return np.nonzero(mask)[0]

    def area_rings(self, index: int) -> list[np.ndarray]:
        """The rings of area ``index`` as (points, 2) arrays of lon/lat degrees."""
        ring_offsets, point_offsets = self.ring_offsets(), self.point_offsets()
        rings = []
        for ring in range(int(ring_offsets[index]), int(ring_offsets[index + 1])):
            points = self.coords[point_offsets[ring] : point_offsets[ring + 1]]
            rings.append(points.astype(np.float64) * self.quantum)
        return rings


@dataclass(frozen=True)
class LevelExtent:
    """What every LOD of a level shares: pcodes, countries and boxes, in map order."""

    pcodes: np.ndarray
    countries: np.ndarray
    bboxes: np.ndarray

    def select(self, countries: Sequence[str] | None = None) -> np.ndarray:
        """Indices of the areas in ``countries`` (None: all), as LevelGeometry.select."""
        if countries is None:
            return np.arange(len(self.pcodes))
        return np.nonzero(np.isin(self.countries, list(countries)))[0]


# Building ------------------------------------------------------------------------------------
def simplify_level(geometries: np.ndarray, countries: np.ndarray, tolerance: float) -> np.ndarray:
    """Coverage-preserving simplification, one country at a time.

    A country's areas are one coverage (shared edges simplified once, the same way on both
    sides). Countries are separate because neighbouring countries' boundary sets rarely match
    exactly, and an invalid coverage would spoil the whole level. A set that is not a valid
    coverage falls back to per-area topology-preserving simplification.
    """
    if tolerance <= 0:
        return geometries
    result = np.empty(len(geometries), dtype=object)
    for country in np.unique(countries):
        mask = countries == country
        part = geometries[mask]
        try:
            simple = shapely.coverage_simplify(part, tolerance)
        except shapely.errors.GEOSException:
            log.warning(
                "the %s boundaries are not a clean coverage: simplifying area by area", country
            )
            simple = shapely.simplify(part, tolerance, preserve_topology=True)
        # A sliver can vanish at a coarse tolerance: keep its outline rather than lose the area.
        empty = shapely.is_empty(simple) | shapely.is_missing(simple)
        simple[empty] = part[empty]
        result[mask] = simple
    return result


def build_level_geometry(
    key: str,
    level: int,
    lod: int,
    pcodes: Sequence[str],
    names: Sequence[str],
    countries: Sequence[str],
    geometries: Sequence[BaseGeometry],
) -> LevelGeometry:
    """Simplify and quantise one level's areas for ``lod`` (input in any order)."""
    order = np.lexsort((np.asarray(pcodes, dtype=str), np.asarray(countries, dtype=str)))
    pcode_array = np.asarray(pcodes, dtype=str)[order]
    name_array = np.asarray(names, dtype=str)[order]
    country_array = np.asarray(countries, dtype=str)[order]
    originals = np.asarray(geometries, dtype=object)[order]
    if len(originals) == 0:
        return _empty(key, level, lod)
    originals = shapely.make_valid(originals)
    bboxes = shapely.bounds(originals)
    labels = shapely.get_coordinates(shapely.point_on_surface(originals))
    simple = simplify_level(originals, country_array, lod_tolerance(lod))
    quantum = lod_quantum(lod)

    polygons, polygon_area = shapely.get_parts(simple, return_index=True)
    is_polygon = shapely.get_type_id(polygons) == 3
    polygons, polygon_area = polygons[is_polygon], polygon_area[is_polygon]
    rings, ring_polygon = shapely.get_rings(polygons, return_index=True)
    ring_area = polygon_area[ring_polygon]
    points, point_ring = shapely.get_coordinates(rings, return_index=True)
    grid = np.rint(points / quantum).astype(np.int64)

    # Drop each ring's closing point and points that snapped onto their predecessor; keep at
    # least three points of every ring so no area disappears.
    ring_count = len(rings)
    starts = np.searchsorted(point_ring, np.arange(ring_count))
    ends = np.searchsorted(point_ring, np.arange(ring_count), side="right")
    keep = np.ones(len(grid), dtype=bool)
    keep[ends[ends > starts] - 1] = False  # closing point
    same = np.zeros(len(grid), dtype=bool)
    same[1:] = np.all(grid[1:] == grid[:-1], axis=1) & (point_ring[1:] == point_ring[:-1])
    dedup = keep & ~same
    kept_per_ring = np.bincount(point_ring[dedup], minlength=ring_count)
    short = kept_per_ring < 3
    if short.any():
        dedup |= keep & short[point_ring]
    grid, point_ring = grid[dedup], point_ring[dedup]
    ring_lengths = np.bincount(point_ring, minlength=ring_count).astype(np.uint32)
    ring_counts = np.bincount(ring_area, minlength=len(originals)).astype(np.uint32)
    return LevelGeometry(
        key=key,
        level=level,
        lod=lod,
        quantum=quantum,
        pcodes=pcode_array,
        names=name_array,
        countries=country_array,
        ring_counts=ring_counts,
        ring_lengths=ring_lengths,
        coords=grid.astype(np.int32),
        bboxes=bboxes.astype(np.float64),
        labels=labels.astype(np.float64),
    )


def _empty(key: str, level: int, lod: int) -> LevelGeometry:
    return LevelGeometry(
        key=key,
        level=level,
        lod=lod,
        quantum=lod_quantum(lod),
        pcodes=np.array([], dtype=str),
        names=np.array([], dtype=str),
        countries=np.array([], dtype=str),
        ring_counts=np.array([], dtype=np.uint32),
        ring_lengths=np.array([], dtype=np.uint32),
        coords=np.zeros((0, 2), dtype=np.int32),
        bboxes=np.zeros((0, 4)),
        labels=np.zeros((0, 2)),
    )


# Database ------------------------------------------------------------------------------------
def level_key(session: Session, level: int) -> str:
    """Fingerprint of a level's boundaries: changes whenever an area of it is added or updated.

    Aggregates only (no geometry read): cheap enough to check on every request.
    """
    row = session.exec(
        select(
            func.count(),
            func.max(Area.updated_at),
            func.min(Area.boundary_version),
            func.max(Area.boundary_version),
            func.sum(func.length(Area.pcode)),
        ).where(Area.admin_level == level, col(Area.geometry).is_not(None))
    ).one()
    text = f"{FORMAT_VERSION}|{level}|" + "|".join(
        "" if part is None else str(part) for part in row
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def mapped_levels(session: Session, countries: Sequence[str] | None = None) -> list[int]:
    """Admin levels that have areas with a geometry (within ``countries``), ascending."""
    statement = select(Area.admin_level).where(col(Area.geometry).is_not(None)).distinct()
    if countries:
        statement = statement.where(col(Area.country_iso3).in_(list(countries)))
    return sorted(int(level) for level in session.exec(statement).all())


def load_level(session: Session, level: int) -> tuple[list[str], list[str], list[str], list[Any]]:
    """pcodes, names, countries and geometries of every area of ``level`` with a geometry."""
    rows = session.exec(
        select(Area.pcode, Area.name, Area.country_iso3, Area.geometry).where(
            Area.admin_level == level, col(Area.geometry).is_not(None)
        )
    ).all()
    return ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


class GeometryCache:
    """Memory and disk cache of :class:`LevelGeometry` by (boundary key, level, LOD).

    Thread-safe; one build per key even when several requests ask at once. ``builds`` and
    ``disk_hits`` count what happened (tests and logs read them).
    """

    def __init__(self, cache_dir: Path | None, entries: int = MEMORY_CACHE_ENTRIES) -> None:
        self.cache_dir = cache_dir
        self.entries = entries
        self._memory: OrderedDict[tuple[str, int, int], LevelGeometry] = OrderedDict()
        self._lock = threading.Lock()
        self._build_locks: dict[tuple[str, int, int], threading.Lock] = {}
        self._extents: dict[tuple[str, int], LevelExtent] = {}
        self._loaded: dict[tuple[str, int], tuple[list[str], list[str], list[str], list[Any]]] = {}
        self.builds = 0
        self.disk_hits = 0

    def get(self, engine: Engine, level: int, lod: int, key: str | None = None) -> LevelGeometry:
        """The level's geometry at ``lod`` for the current boundary version (built if needed)."""
        if key is None:
            with Session(engine) as session:
                key = level_key(session, level)
        cache_key = (key, level, lod)
        with self._lock:
            found = self._memory.get(cache_key)
            if found is not None:
                self._memory.move_to_end(cache_key)
                return found
            build_lock = self._build_locks.setdefault(cache_key, threading.Lock())
        with build_lock:
            with self._lock:
                found = self._memory.get(cache_key)
            if found is None:
                found = self._read_disk(cache_key)
                if found is None:
                    with self._lock:
                        loaded = self._loaded.pop((key, level), None)
                    if loaded is None:
                        with Session(engine) as session:
                            loaded = load_level(session, level)
                    found = build_level_geometry(key, level, lod, *loaded)
                    del loaded
                    self.builds += 1
                    self._write_disk(cache_key, found)
                else:
                    self.disk_hits += 1
            with self._lock:
                self._loaded.pop((key, level), None)
                self._memory[cache_key] = found
                self._memory.move_to_end(cache_key)
                while len(self._memory) > self.entries:
                    self._memory.popitem(last=False)
        return found

    def extent(self, engine: Engine, level: int, key: str) -> LevelExtent:
        """Pcodes, countries and boxes of the level's areas, in map order (every LOD's order).

        Taken from any LOD already cached, else computed from the outlines once and kept, so
        choosing the first LOD, or the values of a level, never costs a simplification.
        """
        with self._lock:
            for (cached_key, cached_level, _), found in self._memory.items():
                if cached_key == key and cached_level == level:
                    return LevelExtent(found.pcodes, found.countries, found.bboxes)
            extent = self._extents.get((key, level))
            extent_lock = self._build_locks.setdefault((key, level, -1), threading.Lock())
        if extent is not None:
            return extent
        with extent_lock:  # the geometry and values routes ask at the same time
            with self._lock:
                extent = self._extents.get((key, level))
            if extent is None:
                extent = self._compute_extent(engine, level, key)
            return extent

    def _compute_extent(self, engine: Engine, level: int, key: str) -> LevelExtent:
        path = None if self.cache_dir is None else self.cache_dir / key / f"level{level}_extent.npz"
        if path is not None and path.exists():
            with np.load(path, allow_pickle=False) as data:
                extent = LevelExtent(data["pcodes"], data["countries"], data["bboxes"])
        else:
            with Session(engine) as session:
                loaded = load_level(session, level)
            pcodes, _, countries, geometries = loaded
            with self._lock:
                # Kept for the LOD build that follows (one read of the outlines, not two);
                # one level at most, so an extent asked for alone holds little memory.
                self._loaded.clear()
                self._loaded[(key, level)] = loaded
            pcode_array = np.asarray(pcodes, dtype=str)
            country_array = np.asarray(countries, dtype=str)
            order = np.lexsort((pcode_array, country_array))
            boxes = shapely.bounds(np.asarray(geometries, dtype=object)[order])
            extent = LevelExtent(pcode_array[order], country_array[order], boxes)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npz")
                np.savez(temporary, pcodes=extent.pcodes, countries=extent.countries,
                         bboxes=extent.bboxes)  # fmt: skip
                os.replace(temporary, path)
        with self._lock:
            self._extents[(key, level)] = extent
        return extent

    def _path(self, cache_key: tuple[str, int, int]) -> Path | None:
        if self.cache_dir is None:
            return None
        key, level, lod = cache_key
        return self.cache_dir / key / f"level{level}_lod{lod}.npz"

    def _read_disk(self, cache_key: tuple[str, int, int]) -> LevelGeometry | None:
        path = self._path(cache_key)
        if path is None or not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError):
            log.warning("ignoring the unreadable map cache file %s", path)
            return None
        key, level, lod = cache_key
        return LevelGeometry(
            key=key, level=level, lod=lod, quantum=float(arrays.pop("quantum")), **arrays
        )

    def _write_disk(self, cache_key: tuple[str, int, int], geometry: LevelGeometry) -> None:
        path = self._path(cache_key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npz")
        np.savez(
            temporary,
            quantum=np.float64(geometry.quantum),
            pcodes=geometry.pcodes,
            names=geometry.names,
            countries=geometry.countries,
            ring_counts=geometry.ring_counts,
            ring_lengths=geometry.ring_lengths,
            coords=geometry.coords,
            bboxes=geometry.bboxes,
            labels=geometry.labels,
        )
        os.replace(temporary, path)  # readers never see half a file


# Encoding ------------------------------------------------------------------------------------
def _gather(offsets: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Concatenated index ranges ``offsets[i]:offsets[i+1]`` for each ``i`` in ``items``."""
    starts, ends = offsets[items], offsets[items + 1]
    lengths = (ends - starts).astype(np.int64)
    before = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.repeat(starts - before, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def encode(
    geometry: LevelGeometry,
    indices: np.ndarray,
    area_ids: np.ndarray,
    *,
    with_meta: bool,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """Pack areas ``indices`` of ``geometry`` as one binary message.

    ``area_ids`` are the numbers the browser knows these areas by (positions in the list of
    areas it was first sent). With ``with_meta`` the message also carries every area's pcode,
    name, box and label point (the first message of a level); tiles leave them out.

    Layout (little-endian): ``RWG1``, uint32 header length, the JSON header (padded to 4
    bytes), then uint32 ids, uint32 ring counts, uint32 ring lengths, int32 x/y of each ring's
    first point, the other points as x/y differences from the previous one (int16, or int32
    when ``delta_bytes`` is 4; padded to 4 bytes), and with meta the int32 grid x/y of each
    area's label point. Grid coordinates times ``quantum`` are degrees.
    """
    indices = np.asarray(indices, dtype=np.int64)
    ring_offsets = geometry.ring_offsets()
    point_offsets = geometry.point_offsets()
    rings = _gather(ring_offsets, indices)
    points = _gather(point_offsets, rings)
    coords = geometry.coords[points].astype(np.int64)
    ring_lengths = geometry.ring_lengths[rings]
    deltas = coords.copy()
    deltas[1:] -= coords[:-1]
    ring_starts = np.concatenate([[0], np.cumsum(ring_lengths, dtype=np.int64)[:-1]])
    ring_starts = ring_starts[ring_lengths > 0]
    firsts = coords[ring_starts]
    is_first = np.zeros(len(coords), dtype=bool)
    is_first[ring_starts] = True
    deltas = deltas[~is_first]
    # Steps between neighbouring points are small: two bytes each unless one is not.
    wide = bool(len(deltas)) and int(np.abs(deltas).max()) > 32767
    header: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "key": geometry.key,
        "level": geometry.level,
        "lod": geometry.lod,
        "zoom": LOD_ZOOMS[geometry.lod],
        "quantum": geometry.quantum,
        "areas": int(len(indices)),
        "rings": int(len(rings)),
        "points": int(len(points)),
        "meta": with_meta,
        "delta_bytes": 4 if wide else 2,
    }
    if with_meta:
        header["pcodes"] = geometry.pcodes[indices].tolist()
        header["names"] = geometry.names[indices].tolist()
    header.update(extra or {})
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 4)
    parts = [
        MAGIC,
        struct.pack("<I", len(text)),
        text,
        np.asarray(area_ids, dtype="<u4").tobytes(),
        geometry.ring_counts[indices].astype("<u4").tobytes(),
        ring_lengths.astype("<u4").tobytes(),
        firsts.astype("<i4").tobytes(),
    ]
    packed = deltas.astype("<i4" if wide else "<i2").tobytes()
    parts += [packed, b"\0" * (-len(packed) % 4)]
    if with_meta:
        labels = np.rint(geometry.labels[indices] / geometry.quantum)
        parts.append(labels.astype("<i4").tobytes())
    return b"".join(parts)


def decode(message: bytes) -> dict[str, Any]:
    """The inverse of :func:`encode`: header fields plus ``ids``, ``rings`` (per area, a list
    of (points, 2) lon/lat arrays) and, with meta, ``labels`` (lon/lat per area)."""
    if message[:4] != MAGIC:
        raise ValueError("not a riskwatch map geometry message")
    (length,) = struct.unpack_from("<I", message, 4)
    header = json.loads(message[8 : 8 + length].decode("utf-8"))
    offset = 8 + length

    def take(dtype: str, count: int) -> np.ndarray:
        nonlocal offset
        array = np.frombuffer(message, dtype=dtype, count=count, offset=offset)
        offset += array.nbytes
        return array

    areas, ring_total, point_total = header["areas"], header["rings"], header["points"]
    ids = take("<u4", areas)
    ring_counts = take("<u4", areas)
    ring_lengths = take("<u4", ring_total)
    nonempty = ring_lengths[ring_lengths > 0]
    firsts = take("<i4", len(nonempty) * 2).reshape(-1, 2).astype(np.int64)
    step_count = point_total - len(nonempty)
    wide = header["delta_bytes"] == 4
    deltas = take("<i4" if wide else "<i2", step_count * 2).reshape(-1, 2).astype(np.int64)
    offset += -offset % 4
    quantum = header["quantum"]
    result: dict[str, Any] = dict(header)
    result["ids"] = ids
    area_rings: list[list[np.ndarray]] = []
    ring = first = step = 0
    for count in ring_counts:
        rings = []
        for _ in range(int(count)):
            n = int(ring_lengths[ring])
            ring += 1
            if n == 0:
                rings.append(np.zeros((0, 2)))
                continue
            steps = np.vstack([firsts[first : first + 1], deltas[step : step + n - 1]])
            rings.append(np.cumsum(steps, axis=0) * quantum)
            first += 1
            step += n - 1
        area_rings.append(rings)
    result["rings"] = area_rings
    if header["meta"]:
        result["labels"] = take("<i4", areas * 2).reshape(-1, 2) * quantum
    return result


def warm_cache(engine: Engine, cache: GeometryCache) -> dict[str, int]:
    """Build (or read back) each mapped level's first-render geometry ahead of the first visitor.

    A new boundary version of 50,000 dense areas takes over a minute to simplify; the pipeline
    calls this after a score run so that the map's first request finds it on disk. The first LOD
    is the one for all countries and for each country alone (a scoped user's first view).
    """
    built = cache.builds
    warmed = 0
    with Session(engine) as session:
        levels = mapped_levels(session)
        keys = {level: level_key(session, level) for level in levels}
    for level in levels:
        extent = cache.extent(engine, level, keys[level])
        selections: list[Sequence[str] | None] = [None]
        selections += [[country] for country in sorted(set(extent.countries.tolist()))]
        lods = {first_lod(extent.bboxes, extent.countries, chosen) for chosen in selections}
        for lod in sorted(lods):
            cache.get(engine, level, lod, keys[level])
            warmed += 1
    return {"levels": len(levels), "geometries": warmed, "built": cache.builds - built}
