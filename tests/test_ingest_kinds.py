"""The kinds with mappings (hxl, sites, events) through `riskwatch ingest`, on small files."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import select

from riskwatch.db.models import Observation
from tests.test_ingest_cli import batches, ingest, migrate, query


def squares(path: Path) -> Path:
    """Two admin1 provinces of AFG: AF01 on [0,1]x[0,1] and AF02 on [1,2]x[0,1] (COD fields)."""
    features = [
        {
            "type": "Feature",
            "properties": {"ADM0_PCODE": "AF", "ADM1_PCODE": pcode, "ADM1_EN": name},
            "geometry": {"type": "Polygon", "coordinates": [[
                [x, 0.0], [x + 1, 0.0], [x + 1, 1.0], [x, 1.0], [x, 0.0]
            ]]},
        }
        for x, pcode, name in ((0.0, "AF01", "West"), (1.0, "AF02", "East"))
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_hxl_sites_and_events_are_mapped_placed_and_stored(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url)
    ingest(database_url, "--file", str(squares(tmp_path / "adm1.geojson")),
           "--kind", "boundaries", "--level", "1")

    hxl = tmp_path / "idps.csv"
    hxl.write_text("Province,IDPs,Date\n#adm1+code,#affected+idps,#date+reported\n"
                   "AF01,1200,2024-03-31\nAF02,800,2024-03-31\n")
    ingest(database_url, "--file", str(hxl), "--kind", "hxl")

    # Site coordinates are not personal data: sites are places, not people or their shelters.
    sites = tmp_path / "sites.csv"
    sites.write_text("site_id,Site Name,latitude,longitude,assessed,individuals,shelter_type\n"
                     "S1,Camp one,0.5,0.5,2024-03-31,300,tent\n"
                     "S2,Camp two,0.6,0.4,2024-03-31,200,tent\n"
                     "S3,Camp three,0.5,1.5,2024-03-31,50,collective\n")
    site_mapping = tmp_path / "sites.toml"
    site_mapping.write_text(
        'latitude_column = "latitude"\nlongitude_column = "longitude"\n'
        'date_column = "assessed"\nid_column = "site_id"\n'
        '[[rules]]\nvariable = "idps_in_sites"\nrule = "sum"\ncolumn = "individuals"\n'
    )
    ingest(database_url, "--file", str(sites), "--kind", "sites", "--mapping", str(site_mapping))

    events = tmp_path / "incidents.csv"
    events.write_text("date,lat,lon,type\n2024-03-02,0.5,0.5,abduction\n"
                      "2024-03-09,0.2,0.7,abduction\n2024-03-10,0.5,1.5,theft\n")
    event_mapping = tmp_path / "events.toml"
    event_mapping.write_text(
        'latitude_column = "lat"\nlongitude_column = "lon"\ndate_column = "date"\n'
        '[[counts]]\nvariable = "abduction_events"\nfilter = { type = "abduction" }\n'
    )
    ingest(database_url, "--file", str(events), "--kind", "events",
           "--mapping", str(event_mapping))

    assert [b.status for b in batches(database_url)] == ["succeeded"] * 4
    stored = {
        (o.area_pcode, o.variable, o.period.isoformat()): o.value
        for o in query(database_url, select(Observation))
    }
    assert stored == {
        ("AF01", "idps", "2024-03-31"): 1200.0,
        ("AF02", "idps", "2024-03-31"): 800.0,
        ("AF01", "idps_in_sites", "2024-03-31"): 500.0,
        ("AF02", "idps_in_sites", "2024-03-31"): 50.0,
        ("AF01", "abduction_events", "2024-03-01"): 2.0,
        ("AF02", "abduction_events", "2024-03-01"): 0.0,  # a month with a theft, no abduction
    }


def test_an_incident_list_about_victims_with_coordinates_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url)
    events = tmp_path / "cases.csv"
    events.write_text("case_id,date,lat,lon,type\nC1,2024-03-02,0.5,0.5,abduction\n")
    mapping = tmp_path / "events.toml"
    mapping.write_text(
        'latitude_column = "lat"\nlongitude_column = "lon"\ndate_column = "date"\n'
        '[[counts]]\nvariable = "abduction_events"\nfilter = { type = "abduction" }\n'
    )
    result = ingest(database_url, "--file", str(events), "--kind", "events",
                    "--mapping", str(mapping), code=1)
    assert "'case_id'" in result.output and "'lat'" in result.output
    assert "can locate individual people" in result.output
    assert batches(database_url)[-1].status == "refused"
