"""Map geometry: coverage simplification, quantisation, encoding, levels of detail, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from riskwatch import map_geometry as mg
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import Area


def wavy_grid(columns: int = 6, rows: int = 5, size: float = 0.2) -> list[Polygon]:
    """A coverage of cells whose shared edges are wiggly lines (many vertices, like real ones).

    Each edge is built once from its two end points, so both neighbours share it exactly.
    """
    steps = 40

    def edge(a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
        key = (min(a, b), max(a, b))
        t = np.linspace(0.0, 1.0, steps, endpoint=False)
        p, q = np.array(key[0]), np.array(key[1])
        d = q - p
        normal = np.array([-d[1], d[0]])
        seed = int(abs(hash(key)) % 2**32)
        wiggle = np.random.default_rng(seed).normal(0, 0.01, steps) * np.sin(np.pi * t)
        points = p + np.outer(t, d) + np.outer(wiggle, normal)
        if key[0] == a:
            return points
        return np.vstack([q[None], points[:0:-1]])

    cells = []
    for i in range(columns):
        for j in range(rows):
            corners = [
                (round(i * size, 6), round(j * size, 6)),
                (round((i + 1) * size, 6), round(j * size, 6)),
                (round((i + 1) * size, 6), round((j + 1) * size, 6)),
                (round(i * size, 6), round((j + 1) * size, 6)),
            ]
            ring = np.vstack(
                [edge(a, b) for a, b in zip(corners, corners[1:] + corners[:1], strict=True)]
            )
            cells.append(Polygon(ring))
    return cells


def build(lod: int, cells: list[Polygon] | None = None) -> mg.LevelGeometry:
    cells = cells or wavy_grid()
    pcodes = [f"AA{index:03d}" for index in range(len(cells))]
    return mg.build_level_geometry("k", 2, lod, pcodes, pcodes, ["AAA"] * len(cells), cells)


def test_grid_is_a_valid_dense_coverage() -> None:
    cells = wavy_grid()
    assert shapely.coverage_is_valid(np.array(cells, dtype=object))
    assert min(len(cell.exterior.coords) for cell in cells) > 150


@pytest.mark.parametrize("lod", range(len(mg.LOD_ZOOMS)))
def test_round_trip_error_is_bounded_by_tolerance_and_grid(lod: int) -> None:
    cells = wavy_grid()
    geometry = build(lod, cells)
    decoded = mg.decode(
        mg.encode(geometry, np.arange(geometry.size), np.arange(geometry.size), with_meta=True)
    )
    assert decoded["pcodes"] == geometry.pcodes.tolist()
    bound = mg.lod_tolerance(lod) + mg.lod_quantum(lod)  # simplification + half-grid snapping
    for index, cell in enumerate(cells):
        rings = decoded["rings"][index]
        assert len(rings) == 1
        outline = Polygon(rings[0])
        # Every decoded point lies near the original outline and vice versa (Hausdorff).
        assert shapely.hausdorff_distance(outline.exterior, cell.exterior) <= bound * 1.01
        np.testing.assert_allclose(rings[0], geometry.area_rings(index)[0], atol=1e-9)


def test_coarse_lods_are_much_smaller_than_full_detail() -> None:
    points = [len(build(lod).coords) for lod in range(len(mg.LOD_ZOOMS))]
    assert points == sorted(points)  # finer LODs never have fewer points
    assert points[0] * 10 < points[-1]


def test_topology_preserved_neighbours_share_their_edges() -> None:
    cells = wavy_grid()
    geometry = build(2, cells)
    polygons = np.array(
        [Polygon(geometry.area_rings(index)[0]) for index in range(geometry.size)], dtype=object
    )
    assert shapely.is_valid(polygons).all()
    # Still a coverage: no overlaps, no gaps between neighbours (shared vertices identical).
    assert shapely.coverage_is_valid(polygons)
    union = shapely.union_all(polygons)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0


def test_holes_and_multipolygons_survive() -> None:
    ring = box(0, 0, 1, 1).difference(box(0.4, 0.4, 0.6, 0.6))
    islands = MultiPolygon([box(2, 0, 2.5, 0.5), box(3, 0, 3.5, 0.5)])
    geometry = mg.build_level_geometry(
        "k", 1, 3, ["A", "B"], ["a", "b"], ["AAA", "AAA"], [ring, islands]
    )
    decoded = mg.decode(mg.encode(geometry, np.arange(2), np.arange(2), with_meta=True))
    assert [len(rings) for rings in decoded["rings"]] == [2, 2]
    rebuilt = Polygon(decoded["rings"][0][0], [decoded["rings"][0][1]])
    assert rebuilt.area == pytest.approx(ring.area, rel=1e-3)


def test_tiles_carry_only_their_areas_with_the_browsers_ids() -> None:
    geometry = build(4)
    selection = geometry.select()
    bounds = (0.0, 0.0, 0.35, 0.35)
    inside = geometry.select(None, bounds)
    assert 0 < len(inside) < geometry.size
    ids = np.searchsorted(selection, inside)
    decoded = mg.decode(mg.encode(geometry, inside, ids, with_meta=False))
    assert decoded["ids"].tolist() == ids.tolist()
    assert "pcodes" not in decoded


def test_lod_choice_by_zoom_and_tile_bounds() -> None:
    assert mg.lod_for_zoom(0) == 0
    assert mg.lod_for_zoom(mg.LOD_ZOOMS[2]) == 2
    assert mg.lod_for_zoom(30) == len(mg.LOD_ZOOMS) - 1
    assert mg.lod_tolerance(len(mg.LOD_ZOOMS) - 1) == 0.0
    west, south, east, north = mg.tile_bounds(1, 1, 0)
    assert (west, east) == (0.0, 180.0) and south == pytest.approx(0.0, abs=1e-9)
    assert north == pytest.approx(85.0511, abs=1e-3)
    # 10 degrees of longitude at the fitted zoom span the 1000 px exactly (width decides here).
    zoom = mg.fit_zoom((0, 0, 10, 2), 1000, 1000)
    assert 10 / 360 * 256 * 2**zoom == pytest.approx(1000)


def test_cache_builds_once_hits_disk_and_follows_the_boundary_version(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'map.db'}")
    upgrade(engine)
    cells = wavy_grid(3, 2)
    with session_scope(engine) as session:
        for index, cell in enumerate(cells):
            session.add(
                Area(
                    pcode=f"AA{index:02d}",
                    name=f"Area {index}",
                    admin_level=2,
                    country_iso3="AAA",
                    geometry=MultiPolygon([cell]),
                    boundary_version="v1",
                )
            )
    cache = mg.GeometryCache(tmp_path / "cache")
    with session_scope(engine) as session:
        key = mg.level_key(session, 2)
    extent = cache.extent(engine, 2, key)  # what the first request asks before any LOD
    assert extent.pcodes.tolist() == sorted(f"AA{index:02d}" for index in range(len(cells)))
    first = cache.get(engine, 2, 1)
    assert cache.builds == 1 and first.size == len(cells)
    assert first.pcodes.tolist() == extent.pcodes.tolist()  # the same order at every LOD
    np.testing.assert_allclose(first.bboxes, extent.bboxes)
    assert not cache._loaded  # the outlines read for the extent were used and let go
    assert cache.get(engine, 2, 1) is first  # memory hit
    assert cache.builds == 1
    other_process = mg.GeometryCache(tmp_path / "cache")
    again = other_process.get(engine, 2, 1)
    assert other_process.builds == 0 and other_process.disk_hits == 1
    np.testing.assert_array_equal(again.coords, first.coords)

    # A new boundary version (an ingest updates the area): a new key, a new build.
    with session_scope(engine) as session:
        area = session.get(Area, "AA00")
        assert area is not None
        area.geometry = MultiPolygon([shapely.affinity.scale(cells[0], 0.9, 0.9)])
        area.boundary_version = "v2"
        session.add(area)
    rebuilt = cache.get(engine, 2, 1)
    assert cache.builds == 2 and rebuilt.key != first.key
    engine.dispose()
