"""read_point_events: mapped counts per area and month, offshore points, filters, faults."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pytest

from riskwatch.sources.mapping import mapping_from_toml
from riskwatch.sources.point_events import read_point_events
from tests.sources_helpers import demoland_areas

HEADER = "incident_id,date,lat,lon,type,actor,killed\n"
# Two 1x1 degree areas on the equator; the sea lies south of latitude 0. One degree of
# latitude is about 110.6 km, so -0.05 is ~5.5 km offshore and -0.5 ~55 km.
EVENTS = [
    "E1,2024-01-05,0.5,0.5,abduction,unknown,0",
    "E2,2024-01-20,0.6,0.4,Battle,State,3",
    "E3,2024-02-02,0.5,1.5,shelling,State,2",
    "E4,2024-02-03,0.5,1.5,protest,civilians,0",
    "E5,2024-02-04,-0.05,0.5,battle,rebels,1",
    "E6,2024-02-05,-0.5,0.5,battle,rebels,4",
    "E7,05/02/2024,0.5,0.5,battle,rebels,1",
    "E8,2024-03-05,0.2,1.8, ABDUCTION ,unknown,",
    "E8,2024-03-05,0.2,1.8,abduction,unknown,0",
    "E9,2024-03-06,0.2,1.8,battle,State,x",
]
MAPPING = """
latitude_column = "lat"
longitude_column = "lon"
date_column = "date"
id_column = "incident_id"
country = "XDM"

[[counts]]
variable = "abduction_events"
filter = { type = "abduction" }

[[counts]]
variable = "conflict_events"
filter = { type = ["battle", "shelling"] }

[[counts]]
variable = "conflict_fatalities"
filter = { type = ["battle", "shelling"] }
sum_column = "killed"

[[counts]]
variable = "state_battles"
filter = { type = "battle", actor = "state" }

[[counts]]
variable = "all_incidents"
"""


@pytest.fixture
def areas() -> gpd.GeoDataFrame:
    return demoland_areas()


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "incidents.csv"
    path.write_text(HEADER + "\n".join(EVENTS) + "\n", encoding="utf-8")
    return path


def _values(result) -> dict[tuple[str, dt.date, str], float]:
    return {(r.pcode, r.period, r.variable): r.value for r in result.frame.itertuples()}


def test_counts_per_area_and_month(export: Path, areas) -> None:
    result = read_point_events(export, mapping=mapping_from_toml(MAPPING), areas=areas)
    assert not result.fatal
    jan, feb, mar = dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)
    expected = {
        ("XD01", jan): (1, 1, 3, 1, 2),  # abductions, conflict, fatalities, state battles, all
        ("XD01", feb): (0, 1, 1, 0, 1),  # E5, placed ~5.5 km offshore
        ("XD02", feb): (0, 1, 2, 0, 2),  # shelling and a protest
        ("XD02", mar): (1, 0, 0, 0, 1),  # " ABDUCTION " matches; its copy is dropped
    }
    names = [
        "abduction_events",
        "conflict_events",
        "conflict_fatalities",
        "state_battles",
        "all_incidents",
    ]
    assert _values(result) == {
        (pcode, month, name): float(value)
        for (pcode, month), values in expected.items()
        for name, value in zip(names, values, strict=True)
    }
    assert set(result.frame["admin_level"]) == {1}
    assert result.meta["variables"] == names
    assert result.meta["offshore_assigned"] == 1
    assert result.meta["coverage"]["countries"] == ["XDM"]
    assert result.meta["coverage"]["months"] == [jan, feb, mar]


def test_row_problems_without_coordinates(export: Path, areas) -> None:
    result = read_point_events(export, mapping=mapping_from_toml(MAPPING), areas=areas)
    assert [(p.rule, p.row) for p in result.problems] == [
        ("bad_date", 8),
        ("bad_number", 11),
        ("duplicate_event", 10),
        ("outside_areas", 7),
    ]
    assert result.rows_read == 10 and result.rows_quarantined == 4
    # An incident list may locate people: coordinates stay out of the problems.
    assert all("-0.5" not in str(p) and "0.5, 0.5" not in str(p) for p in result.problems)


def test_fill_zeros_covers_every_area_and_month(export: Path, areas) -> None:
    result = read_point_events(
        export, mapping=mapping_from_toml(MAPPING), areas=areas, fill_zeros=True
    )
    assert len(result.frame) == 2 * 3 * 5
    assert _values(result)[("XD01", dt.date(2024, 3, 1), "all_incidents")] == 0.0


def test_offshore_limit_is_respected(export: Path, areas) -> None:
    result = read_point_events(
        export, mapping=mapping_from_toml(MAPPING), areas=areas, max_offshore_km=1.0
    )
    outside = [p.row for p in result.problems if p.rule == "outside_areas"]
    assert outside == [6, 7]


@pytest.mark.parametrize(
    ("mapping", "rule", "message"),
    [
        (
            {"latitude_column": "lat", "longitude_column": "lon", "date_column": "date"},
            "bad_mapping",
            "the events mapping needs counts",
        ),
        (
            {
                "latitude_column": "lat",
                "longitude_column": "lon",
                "date_column": "date",
                "counts": [{"variable": "x_events", "filter": {"kind": "a"}}],
            },
            "missing_column",
            "counts[1].filter: no column headed 'kind'",
        ),
        (
            {
                "latitude_column": "lat",
                "longitude_column": "lon",
                "date_column": "date",
                "period": "2024-01-01",
                "counts": [{"variable": "x_events"}],
            },
            "bad_mapping",
            "mapping key 'period' is not used by --kind events",
        ),
        (
            {"latitude_column": "lat", "counts": [{"variable": "X"}]},
            "bad_mapping",
            "mapping: counts[1].variable: variable name 'X' is not lower_snake_case",
        ),
    ],
)
def test_unusable_mappings_are_fatal(
    export: Path, areas, mapping: dict, rule: str, message: str
) -> None:
    result = read_point_events(export, mapping=mapping, areas=areas)
    fatal = [p for p in result.problems if p.fatal]
    assert fatal and {p.rule for p in fatal} == {rule}
    assert any(message in p.message for p in fatal)
    assert result.frame.empty


def test_no_polygons_is_fatal(export: Path) -> None:
    empty = gpd.GeoDataFrame(
        {"pcode": [], "admin_level": [], "country_iso3": []}, geometry=[], crs="EPSG:4326"
    )
    result = read_point_events(export, mapping=mapping_from_toml(MAPPING), areas=empty)
    assert [p.rule for p in result.problems] == ["no_area_geometry"]
