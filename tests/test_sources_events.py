"""read_acled_events: point-in-polygon, offshore events, monthly counts per area."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from riskwatch.sources.boundaries import read_boundaries
from riskwatch.sources.events import read_acled_events

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="shared test data not available")

HEADER = (
    "event_id_cnty,event_date,year,disorder_type,event_type,sub_event_type,iso,country,"
    "admin1,latitude,longitude,fatalities\n"
)

# Two 1x1 degree areas on the equator; the sea lies south of latitude 0.
# One degree of latitude is about 110.6 km, so -0.05 is ~5.5 km offshore and -0.5 ~55 km.
EVENTS = [
    "XD1,2024-01-05,2024,Political violence,Battles,Armed clash,0,Demoland,N,0.5,0.5,3",
    "XD2,2024-01-20,2024,Political violence,Violence against civilians,"
    "Abduction/forced disappearance,0,Demoland,N,0.6,0.4,0",
    "XD3,2024-02-02,2024,Political violence,Violence against civilians,Sexual violence,0,"
    "Demoland,S,0.5,1.5,1",
    "XD4,2024-02-03,2024,Demonstrations,Protests,Peaceful protest,0,Demoland,S,0.5,1.5,0",
    "XD5,2024-02-04,2024,Political violence,Battles,Armed clash,0,Demoland,N,-0.05,0.5,2",
    "XD6,2024-02-05,2024,Political violence,Battles,Armed clash,0,Demoland,N,-0.5,0.5,4",
    "XD7,05/02/2024,2024,Political violence,Battles,Armed clash,0,Demoland,N,0.5,0.5,1",
    "XD8,2024-03-05,2024,Political violence,Battles,Armed clash,0,Demoland,N,95,0.5,1",
    "XD9,2024-03-09,2024,Political violence,Violence against civilians,"
    "Abduction/forced disappearance,0,Demoland,S,0.2,1.8,0",
    "XD9,2024-03-09,2024,Political violence,Violence against civilians,"
    "Abduction/forced disappearance,0,Demoland,S,0.2,1.8,0",
]


@pytest.fixture
def areas() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "pcode": ["XD01", "XD02"],
            "name": ["West", "East"],
            "admin_level": [1, 1],
            "parent_pcode": ["XDM", "XDM"],
            "country_iso3": ["XDM", "XDM"],
        },
        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)],
        crs="EPSG:4326",
    )


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "acled.csv"
    path.write_text(HEADER + "".join(row + "\n" for row in EVENTS))
    return path


def test_events_are_placed_counted_per_month_and_faults_quarantined(export, areas) -> None:
    result = read_acled_events(export, areas)
    problems = {(p.row, p.rule) for p in result.problems}
    assert problems == {
        (7, "outside_areas"),
        (8, "bad_date"),
        (9, "bad_coordinates"),
        (11, "duplicate_event"),
    }
    assert result.rows_read == 10 and result.rows_quarantined == 4
    assert result.meta["outside_areas"] == 1 and result.meta["offshore_assigned"] == 1
    assert any("placed in the nearest area" in n for n in result.notes)
    values = result.frame.set_index(["pcode", "period", "variable"])["value"]
    jan, feb, mar = dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)
    assert values[("XD01", jan, "conflict_events")] == 2
    assert values[("XD01", jan, "conflict_fatalities")] == 3
    assert values[("XD01", jan, "abduction_events")] == 1
    assert values[("XD01", jan, "sexual_violence_events")] == 0
    # The event 5.5 km offshore belongs to the nearest area; the one 55 km out does not count.
    assert values[("XD01", feb, "conflict_events")] == 1
    assert values[("XD01", feb, "conflict_fatalities")] == 2
    # A protest is not a conflict event.
    assert values[("XD02", feb, "conflict_events")] == 1
    assert values[("XD02", feb, "sexual_violence_events")] == 1
    assert values[("XD02", mar, "abduction_events")] == 1
    assert ("XD01", mar, "conflict_events") not in values.index
    coverage = result.meta["coverage"]
    assert coverage["countries"] == ["XDM"] and coverage["months"] == [jan, feb, mar]


def test_offshore_limit_is_in_kilometres(export, areas) -> None:
    near_only = read_acled_events(export, areas, max_offshore_km=5.0)
    assert near_only.meta["outside_areas"] == 2  # 5.5 km is now too far
    far = read_acled_events(export, areas, max_offshore_km=60.0)
    assert far.meta["outside_areas"] == 0 and far.meta["offshore_assigned"] == 2


def test_zeros_filled_for_every_area_and_month_of_the_coverage(export, areas) -> None:
    result = read_acled_events(export, areas, fill_zeros=True)
    assert len(result.frame) == 2 * 3 * 4  # areas x months x variables
    values = result.frame.set_index(["pcode", "period", "variable"])["value"]
    assert values[("XD01", dt.date(2024, 3, 1), "conflict_events")] == 0


def test_missing_column_and_missing_areas_are_fatal(tmp_path: Path, areas) -> None:
    path = tmp_path / "short.csv"
    path.write_text("event_date,latitude,longitude\n2024-01-01,0.5,0.5\n")
    result = read_acled_events(path, areas)
    assert result.fatal
    assert {p.column for p in result.problems} == {"event_type", "sub_event_type", "fatalities"}
    no_polygons = read_acled_events(path, areas.iloc[0:0])
    assert any(p.rule == "no_area_geometry" for p in no_polygons.problems)


@needs_data
def test_events_on_real_afghan_provinces(tmp_path: Path) -> None:
    provinces = read_boundaries(DATA / "boundaries" / "afg_adm1_geoboundaries_pcodes.geojson")
    path = tmp_path / "afg.csv"
    path.write_text(
        HEADER
        + "AFG1,2024-05-01,2024,Political violence,Explosions/Remote violence,Air/drone strike,"
        "4,Afghanistan,Kabul,34.5553,69.2075,5\n"  # Kabul city
         + "AFG2,2024-05-02,2024,Political violence,Violence against civilians,"
        "Abduction/forced disappearance,4,Afghanistan,Hirat,34.3482,62.1997,0\n"  # Herat city
    )
    result = read_acled_events(path, provinces.frame)
    assert not result.problems
    values = result.frame.set_index(["pcode", "variable"])["value"]
    assert values[("AF01", "conflict_fatalities")] == 5
    assert values[("AF32", "abduction_events")] == 1
    assert result.meta["coverage"]["countries"] == ["AFG"]
