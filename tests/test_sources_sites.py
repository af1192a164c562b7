"""read_site_assessments: the demo's sites against an independent computation, hand-computed
rules on a tiny file, pcode and name locations, faults, and no site-level data in the output."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from riskwatch.demo import generate_scenario
from riskwatch.sources.boundaries import read_boundaries
from riskwatch.sources.mapping import mapping_from_toml
from riskwatch.sources.report import OBSERVATION_COLUMNS
from riskwatch.sources.sites import DEMO_SITE_RULES_TOML, read_site_assessments
from riskwatch.sources.values import OBSERVATION_EXTRA_COLUMNS
from tests.sources_helpers import demoland_areas

HEADER = "site_id,lat,lon,date,individuals,area_m2,ct,docs\n"
# Two 1x1 degree areas on the equator (XD01 west, XD02 east) and their country (admin0) around
# them: sites go to the finest level only. -0.5 is about 55 km south of the coast.
SITES = [
    "S1,0.5,0.5,2024-05-31,100,2000,yes,0.5",
    "S2,0.8,0.2,2024-05-31,300,3000,no,0.9",
    "S3,0.5,1.5,2024-05-31,50,1000,,",
    "S4,0.2,1.5,2024-05-31,150,,YES,0.3",
    "S5,abc,0.5,2024-05-31,10,10,yes,0.5",
    "S6,-0.5,0.5,2024-05-31,10,10,yes,0.5",
    "S1,0.5,0.5,2024-05-31,100,2000,yes,0.5",
    "S1,0.5,0.5,2024-06-30,120,2400,no,0.4",
]
RULES = """
latitude_column = "lat"
longitude_column = "lon"
date_column = "date"
id_column = "site_id"

[[rules]]
variable = "idps_in_sites"
rule = "sum"
column = "individuals"

[[rules]]
variable = "site_overcrowding"
rule = "ratio"
numerator = "area_m2"
denominator = "individuals"

[[rules]]
variable = "ct_service_coverage"
rule = "share"
column = "ct"
value = "yes"

[[rules]]
variable = "civil_documentation_share"
rule = "mean"
column = "docs"
weight = "individuals"
"""


@pytest.fixture
def areas() -> gpd.GeoDataFrame:
    return demoland_areas()


def _file(tmp_path: Path, header: str, rows: list[str]) -> Path:
    path = tmp_path / "sites.csv"
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _values(result) -> dict[tuple[str, str, dt.date], float]:
    return {(r.pcode, r.variable, r.period): r.value for r in result.frame.itertuples()}


def test_rules_by_hand_on_a_tiny_file(tmp_path: Path, areas) -> None:
    result = read_site_assessments(
        _file(tmp_path, HEADER, SITES), mapping=mapping_from_toml(RULES), areas=areas
    )
    assert not result.fatal
    may, june = dt.date(2024, 5, 31), dt.date(2024, 6, 30)
    assert _values(result) == pytest.approx(
        {
            ("XD01", "idps_in_sites", may): 400.0,
            ("XD01", "site_overcrowding", may): 5000 / 400,
            ("XD01", "ct_service_coverage", may): 0.5,
            ("XD01", "civil_documentation_share", may): (0.5 * 100 + 0.9 * 300) / 400,
            # S3 has no ct or docs answer and S4 no area: each is left out of that rule only.
            ("XD02", "idps_in_sites", may): 200.0,
            ("XD02", "site_overcrowding", may): 1000 / 50,
            ("XD02", "ct_service_coverage", may): 1.0,
            ("XD02", "civil_documentation_share", may): 0.3,
            ("XD01", "idps_in_sites", june): 120.0,
            ("XD01", "site_overcrowding", june): 20.0,
            ("XD01", "ct_service_coverage", june): 0.0,
            ("XD01", "civil_documentation_share", june): 0.4,
        }
    )
    assert set(result.frame["admin_level"]) == {1}
    assert [(p.rule, p.row) for p in result.problems] == [
        ("duplicate_site", 8),
        ("bad_coordinates", 6),
        ("outside_areas", 7),
    ]
    assert result.rows_read == 8 and result.rows_quarantined == 3
    assert result.meta["sites_used"] == 5 and result.meta["areas"] == 2


def test_no_site_level_data_leaves_the_reader(tmp_path: Path, areas) -> None:
    result = read_site_assessments(
        _file(tmp_path, HEADER, SITES), mapping=mapping_from_toml(RULES), areas=areas
    )
    assert list(result.frame.columns) == OBSERVATION_COLUMNS + OBSERVATION_EXTRA_COLUMNS
    text = " ".join([str(p) for p in result.problems] + result.notes + [repr(result.meta)])
    for secret in ("0.5, 0.5", "-0.5", "abc", "S1", "S6"):
        assert secret not in text
    assert "1 of 3 area value set(s) rest on a single site" in " ".join(result.notes)


def test_demo_sites_match_an_independent_computation(tmp_path: Path) -> None:
    files = generate_scenario(tmp_path)
    areas = read_boundaries(files.boundaries_adm2, country_iso3="XDM").frame
    result = read_site_assessments(
        files.sites, mapping=mapping_from_toml(DEMO_SITE_RULES_TOML), areas=areas
    )
    assert not result.fatal and result.problems == []
    assert result.rows_quarantined == 0 and result.meta["offshore_assigned"] == 0

    # The demo writes each site's own admin2 pcode: grouping by it must give the same figures
    # as placing the points in the polygons.
    sites = pd.read_csv(files.sites, dtype={"admin2Pcode": str})
    grouped = sites.assign(
        docs_people=sites["civil_documentation_share"] * sites["individuals"],
        ct=(sites["ct_service_available"] == "yes").astype(float),
    ).groupby("admin2Pcode")
    expected = pd.DataFrame(
        {
            "idps_in_sites": grouped["individuals"].sum(),
            "site_area_per_person_m2": grouped["site_area_m2"].sum()
            / grouped["individuals"].sum(),
            "ct_service_coverage": grouped["ct"].mean(),
            "civil_documentation_share": grouped["docs_people"].sum()
            / grouped["individuals"].sum(),
        }
    )
    got = result.frame.pivot(index="pcode", columns="variable", values="value")
    got = got.loc[expected.index, expected.columns]
    assert np.allclose(got.to_numpy(), expected.to_numpy())
    assert set(result.frame["period"]) == {dt.date(2026, 4, 30)}
    assert result.frame["pcode"].nunique() == sites["admin2Pcode"].nunique()
    # The planted surge cluster has crowded sites and few CT services.
    cluster = got.index.isin(files.surge_cluster)
    assert (
        got.loc[cluster, "site_area_per_person_m2"].median()
        < got.loc[~cluster, "site_area_per_person_m2"].median()
    )


def test_sites_by_pcode_column(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "admin2Pcode,individuals\n",
        ["XD0101,10", "XD0101,15", "XD0102,7", ",3", "XD0103,-1"],
    )
    mapping = {
        "pcode_column": "admin2Pcode",
        "period": "2024-01-31",
        "country": "XDM",
        "rules": [{"variable": "idps_in_sites", "rule": "sum", "column": "individuals"}],
    }
    result = read_site_assessments(path, mapping=mapping, areas=gpd.GeoDataFrame())
    assert _values(result) == {
        ("XD0101", "idps_in_sites", dt.date(2024, 1, 31)): 25.0,
        ("XD0102", "idps_in_sites", dt.date(2024, 1, 31)): 7.0,
    }
    assert set(result.frame["admin_level"]) == {2}  # from the header "admin2Pcode"
    assert set(result.frame["country_iso3"]) == {"XDM"}
    assert [(p.rule, p.row) for p in result.problems] == [
        ("negative_value", 6),
        ("missing_pcode", 5),
    ]


def test_sites_by_name_report_every_unknown_name(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "camp,district,date,people,mean_pct\n",
        [
            "A,Nord,2024-02-29,10,50",
            "B,nord ,2024-02-29,30,10",
            "C,Sud,2024-02-29,5,20",
            "D,Est,2024-02-29,5,20",
        ],
    )
    mapping = {
        "name_column": "district",
        "aliases": {"Nord": "XD01"},
        "date_column": "date",
        "rules": [
            {"variable": "people_in_sites", "rule": "sum", "column": "people"},
            {"variable": "documentation_share:pct", "rule": "mean", "column": "mean_pct"},
        ],
    }
    result = read_site_assessments(path, mapping=mapping, areas=gpd.GeoDataFrame())
    day = dt.date(2024, 2, 29)
    assert _values(result) == pytest.approx(
        {("XD01", "people_in_sites", day): 40.0, ("XD01", "documentation_share", day): 0.3}
    )
    unknown = [(p.rule, p.row, p.value) for p in result.problems]
    assert unknown == [("unknown_area_name", 4, "Sud"), ("unknown_area_name", 5, "Est")]
    assert result.rows_quarantined == 2


def test_share_out_of_range_and_zero_denominator(tmp_path: Path, areas) -> None:
    path = _file(
        tmp_path,
        "lat,lon,people,area,docs\n",
        ["0.5,0.5,0,100,0.5", "0.5,1.5,10,100,45"],
    )
    mapping = {
        "latitude_column": "lat",
        "longitude_column": "lon",
        "period": "2024-01-01",
        "rules": [
            {
                "variable": "site_overcrowding",
                "rule": "ratio",
                "numerator": "area",
                "denominator": "people",
            },
            {"variable": "civil_documentation_share", "rule": "mean", "column": "docs"},
        ],
    }
    result = read_site_assessments(path, mapping=mapping, areas=areas)
    share = [p for p in result.problems if p.rule == "share_out_of_range"]
    assert [p.row for p in share] == [3]
    assert "name the variable 'civil_documentation_share:pct'" in share[0].message
    assert _values(result) == {
        ("XD01", "civil_documentation_share", dt.date(2024, 1, 1)): 0.5,
    }
    assert any("site_overcrowding: 1 area value(s) left out" in n for n in result.notes)


@pytest.mark.parametrize(
    ("mapping", "rule", "message"),
    [
        (
            {"latitude_column": "lat", "longitude_column": "lon", "period": "2024-01-01"},
            "bad_mapping",
            "the sites mapping needs [[rules]]",
        ),
        (
            {"period": "2024-01-01", "rules": [{"variable": "a", "rule": "sum", "column": "x"}]},
            "bad_mapping",
            "the sites mapping must say where each site is",
        ),
        (
            {"pcode_column": "p", "rules": [{"variable": "a", "rule": "sum", "column": "x"}]},
            "missing_period",
            "the sites mapping must say when: date_column",
        ),
        (
            {
                "latitude_column": "lat",
                "period": "2024-01-01",
                "rules": [{"variable": "a", "rule": "sum", "column": "x"}],
            },
            "bad_mapping",
            "give both latitude_column and longitude_column",
        ),
        (
            {
                "pcode_column": "p",
                "period": "2024-01-01",
                "counts": [{"variable": "a"}],
                "rules": [{"variable": "a_sites", "rule": "sum", "column": "x"}],
            },
            "bad_mapping",
            "mapping key 'counts' is not used by --kind sites",
        ),
        (
            {
                "pcode_column": "p",
                "period": "2024-01-01",
                "rules": [{"variable": "a", "rule": "median", "column": "x"}],
            },
            "bad_mapping",
            "mapping: rules[1].rule: unknown rule 'median'",
        ),
        (
            {
                "pcode_column": "p",
                "period": "2024-01-01",
                "rules": [{"variable": "a", "rule": "sum", "column": "households"}],
            },
            "missing_column",
            "rules[1].column: no column headed 'households'",
        ),
    ],
)
def test_unusable_mappings_are_fatal(
    tmp_path: Path, areas, mapping: dict, rule: str, message: str
) -> None:
    path = _file(tmp_path, "p,x,lat,lon\n", ["XD01,1,0.5,0.5"])
    result = read_site_assessments(path, mapping=mapping, areas=areas)
    fatal = [p for p in result.problems if p.fatal]
    assert [p.rule for p in fatal] == [rule]
    assert message in fatal[0].message
    assert result.frame.empty


def test_points_need_area_polygons(tmp_path: Path) -> None:
    path = _file(tmp_path, HEADER, SITES[:1])
    result = read_site_assessments(
        path,
        mapping=mapping_from_toml(RULES),
        areas=gpd.GeoDataFrame(
            {"pcode": [], "admin_level": [], "country_iso3": []}, geometry=[], crs="EPSG:4326"
        ),
    )
    assert [p.rule for p in result.problems] == ["no_area_geometry"]
    assert "no area polygons to place the sites in" in result.problems[0].message
