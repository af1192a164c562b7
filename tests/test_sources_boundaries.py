"""read_boundaries on the real AFG geoBoundaries file and on COD-AB-style files built here."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import MultiPolygon, Point, Polygon, box

from riskwatch.sources.boundaries import read_boundaries
from riskwatch.sources.report import AREA_COLUMNS
from riskwatch.sources.tabular import read_table

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="shared test data not available")

BOWTIE = Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])  # self-intersecting at (0.5, 0.5)


@needs_data
def test_afg_geoboundaries_gives_34_provinces_matching_every_dtm_admin1_pcode() -> None:
    result = read_boundaries(DATA / "boundaries" / "afg_adm1_geoboundaries_pcodes.geojson")
    assert not result.problems
    areas = result.frame
    assert list(areas.columns) == AREA_COLUMNS
    assert len(areas) == 34
    assert areas["pcode"].str.fullmatch(r"AF\d\d").all()
    assert set(areas["admin_level"]) == {1} and set(areas["parent_pcode"]) == {"AFG"}
    assert set(areas["country_iso3"]) == {"AFG"}
    assert (areas.geom_type == "MultiPolygon").all() and areas.crs.to_epsg() == 4326
    assert "Badakhshan" in set(areas["name"])
    dtm = read_table(DATA / "dtm" / "dtm-api-admin0-2_AFG_TCD.csv").data
    dtm_admin1 = dtm.loc[(dtm["admin0Pcode"] == "AFG") & (dtm["admin1Pcode"] != ""), "admin1Pcode"]
    assert dtm_admin1.isin(set(areas["pcode"])).all()
    assert set(dtm_admin1) == set(areas["pcode"])


def _cod_frame(crs: str = "EPSG:3857") -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {
            "ADM0_PCODE": ["XD"] * 4,
            "ADM0_EN": ["Demoland"] * 4,
            "ADM1_PCODE": ["XD01", "XD01", "XD02", "XD02"],
            "ADM1_EN": ["North", "North", "South", "South"],
            "ADM2_PCODE": ["XD0101", "XD0102", "XD0201", "XD0202"],
            "ADM2_EN": ["Alpha", "Bowtie", "Gamma", "Delta"],
            "ADM2_FR": ["Alpha-fr", "Noeud", "Gamma-fr", "Delta-fr"],
        },
        geometry=[box(2, 2, 3, 3), BOWTIE, box(4, 4, 5, 5), box(5, 4, 6, 5)],
        crs="EPSG:4326",
    )
    return frame.to_crs(crs)


def _check_cod_result(result, *, source_crs: str) -> None:
    assert not result.problems, [str(p) for p in result.problems]
    areas = result.frame.set_index("pcode")
    assert list(areas.index) == ["XD0101", "XD0102", "XD0201", "XD0202"]
    assert areas.loc["XD0201", "parent_pcode"] == "XD02"
    assert areas.loc["XD0102", "name"] == "Bowtie"  # ADM2_EN wins over ADM2_FR
    assert set(areas["admin_level"]) == {2} and set(areas["country_iso3"]) == {"XDM"}
    assert result.frame.crs.to_epsg() == 4326
    assert areas.geometry.is_valid.all()
    assert (areas.geom_type == "MultiPolygon").all()
    bowtie = areas.geometry["XD0102"]
    assert len(bowtie.geoms) == 2 and bowtie.area == pytest.approx(0.5, rel=1e-6)
    # Back in degrees: the square 2..3 comes back where it was drawn.
    assert areas.geometry["XD0101"].bounds == pytest.approx((2, 2, 3, 3), abs=1e-6)
    assert any(
        "XD0102" in n and "make_valid" in n and "Self-intersection" in n for n in result.notes
    )
    assert any(f"reprojected from {source_crs}" in n for n in result.notes)
    assert result.meta["pcode_field"] == "ADM2_PCODE" and result.meta["admin_level"] == 2


def test_cod_geojson_in_web_mercator_with_a_bowtie(tmp_path: Path) -> None:
    path = tmp_path / "xd_adm2.geojson"
    _cod_frame().to_file(path, driver="GeoJSON")
    _check_cod_result(read_boundaries(path, country_iso3="XDM"), source_crs="EPSG:3857")


def test_zipped_shapefile(tmp_path: Path) -> None:
    shapefile = tmp_path / "shp" / "xd_adm2.shp"
    shapefile.parent.mkdir()
    _cod_frame().to_file(shapefile)
    archive = tmp_path / "xd_adm2_shp.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in shapefile.parent.iterdir():
            zipped.write(part, part.name)
    _check_cod_result(read_boundaries(archive, country_iso3="XDM"), source_crs="EPSG:3857")


def test_non_iso_country_code_without_override_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "xd.geojson"
    _cod_frame("EPSG:4326").to_file(path, driver="GeoJSON")
    result = read_boundaries(path)
    assert result.fatal and result.frame.empty
    (problem,) = result.problems
    assert problem.rule == "unknown_country"
    assert "'XD'" in problem.message and "country_iso3" in problem.message


def test_iso2_country_is_converted_and_a_coarser_level_can_be_chosen(tmp_path: Path) -> None:
    frame = _cod_frame("EPSG:4326")
    frame["ADM0_PCODE"] = "HT"
    path = tmp_path / "ht.geojson"
    frame.to_file(path, driver="GeoJSON")
    result = read_boundaries(path)
    assert set(result.frame["country_iso3"]) == {"HTI"}
    assert any("HT->HTI" in n for n in result.notes)
    coarse = read_boundaries(path, level=1)
    # The admin2 file repeats each province: one pcode on several features is refused.
    assert {p.rule for p in coarse.problems} == {"duplicate_pcode"}
    assert coarse.frame.empty and coarse.rows_quarantined == 4


def test_empty_geometry_missing_pcode_and_no_crs(tmp_path: Path) -> None:
    path = tmp_path / "plain.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "properties": {"code": "XD01", "label": "One"},'
        ' "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}},'
        '{"type": "Feature", "properties": {"code": "XD02", "label": "Two"}, "geometry": null},'
        '{"type": "Feature", "properties": {"code": "", "label": "Three"},'
        ' "geometry": {"type": "Polygon", "coordinates": [[[2,0],[3,0],[3,1],[2,0]]]}},'
        '{"type": "Feature", "properties": {"code": "XD04", "label": "Four"},'
        ' "geometry": {"type": "Point", "coordinates": [5, 5]}}]}'
    )
    refused = read_boundaries(path, pcode_field="code", country_iso3="XDM")
    assert refused.fatal and "level" in refused.problems[0].message
    result = read_boundaries(
        path, pcode_field="code", name_field="label", level=1, country_iso3="XDM"
    )
    assert {(p.row, p.rule) for p in result.problems} == {
        (2, "empty_geometry"),
        (3, "missing_pcode"),
        (4, "not_polygon"),
    }
    assert result.frame["pcode"].tolist() == ["XD01"]
    assert result.frame["parent_pcode"].tolist() == ["XDM"]
    assert result.frame["name"].tolist() == ["One"]
    assert result.rows_quarantined == 3


def test_geopackage_with_several_layers_needs_a_level(tmp_path: Path) -> None:
    path = tmp_path / "xd.gpkg"
    adm2 = _cod_frame("EPSG:4326")
    adm1 = gpd.GeoDataFrame(
        {"ADM0_PCODE": ["XD", "XD"], "ADM1_PCODE": ["XD01", "XD02"], "ADM1_EN": ["N", "S"]},
        geometry=[box(0, 0, 3, 3), box(4, 4, 6, 5)],
        crs="EPSG:4326",
    )
    adm1.to_file(path, layer="xd_adm1", driver="GPKG")
    adm2.to_file(path, layer="xd_adm2", driver="GPKG")
    refused = read_boundaries(path, country_iso3="XDM")
    assert refused.fatal and refused.problems[0].rule == "several_layers"
    result = read_boundaries(path, level=1, country_iso3="XDM")
    assert result.meta["layer"] == "xd_adm1"
    assert sorted(result.frame["pcode"]) == ["XD01", "XD02"]
    assert set(result.frame["parent_pcode"]) == {"XDM"}
    assert result.frame.geometry.contains(Point(2.5, 2.5)).any()
    assert all(isinstance(g, MultiPolygon) for g in result.frame.geometry)
