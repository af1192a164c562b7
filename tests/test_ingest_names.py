"""`riskwatch ingest --kind table` by area name: names matched to known areas, aliases first."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import select

from riskwatch.db.models import Observation
from riskwatch.sources.names import ALIAS, AMBIGUOUS, EMPTY, MATCHED, UNKNOWN, match_area_names
from tests.test_ingest_cli import batches, count, ingest, migrate, query

GAZETTEER = (
    "Location,Admin Level,P-Code,Name,Parent P-Code\n"
    "HTI,1,HT01,Ouest,HTI\n"
    "HTI,1,HT02,Nord,HTI\n"
    "HTI,2,HT0111,Port-au-Prince,HT01\n"
    "HTI,2,HT0113,Pétion-Ville,HT01\n"
    "HTI,2,HT0121,Léogâne,HT01\n"
    "HTI,2,HT0201,Cap-Haïtien,HT02\n"
    "HTI,2,HT0221,Nord,HT02\n"
    "HTI,2,HT0231,Limbé,HT02\n"
    "HTI,2,HT0232,Limbé,HT02\n"
    "DOM,2,DO0101,Santiago,DO01\n"
)
TABLE = (
    "District,Population\n"
    "  PORT-AU-PRINCE ,1000\n"  # case and spaces
    "Petion-Ville,2000\n"  # accents
    "leogane,3000\n"
    "Cap Haitien,4000\n"  # by alias only
    "Nord,7000\n"  # admin1 and admin2: only --level 2 tells
    "Limbé,5000\n"  # two admin2 areas: ambiguous
    "Atlantis,6000\n"  # unknown
    "Santiago,8000\n"  # a DOM area: unknown within HTI
)
MAPPING = (
    'country = "HTI"\n'
    'name_column = "District"\n'
    "period = 2024-01-01\n"
    "[variables]\n"
    'Population = "population"\n'
    "[aliases]\n"
    '"Cap Haitien" = "HT0201"\n'
)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    gazetteer, table, mapping = (tmp_path / n for n in ("pcodes.csv", "t.csv", "m.toml"))
    gazetteer.write_text(GAZETTEER, encoding="utf-8")
    table.write_text(TABLE, encoding="utf-8")
    mapping.write_text(MAPPING, encoding="utf-8")
    return gazetteer, table, mapping


@pytest.mark.db
def test_table_by_name_through_the_cli(database_url: str, files: tuple[Path, Path, Path]) -> None:
    gazetteer, table, mapping = files
    migrate(database_url)
    ingest(database_url, "--file", str(gazetteer), "--kind", "gazetteer")
    env = {"RISKWATCH_INGEST__MAX_BAD_ROW_SHARE": "0.5"}
    ingest(database_url, "--file", str(table), "--kind", "table", "--mapping", str(mapping),
           "--level", "2", env=env)
    stored = {(o.area_pcode, o.value) for o in query(database_url, select(Observation))}
    assert stored == {("HT0111", 1000), ("HT0113", 2000), ("HT0121", 3000), ("HT0201", 4000),
                      ("HT0221", 7000)}
    batch = batches(database_url)[-1]
    assert batch.rows_read == 8 and batch.rows_quarantined == 3
    problems = {(p["rule"], p["value"], p["row"]) for p in batch.report["problems"]}
    assert problems == {("ambiguous_name", "Limbé", 7), ("unknown_name", "Atlantis", 8),
                        ("unknown_name", "Santiago", 9)}
    assert "HT0231" in next(p["message"] for p in batch.report["problems"]
                            if p["rule"] == "ambiguous_name")


@pytest.mark.db
def test_unknown_names_count_against_the_file(
    database_url: str, files: tuple[Path, Path, Path]
) -> None:
    """Three bad rows of eight are over the default 5%: refused, nothing written."""
    gazetteer, table, mapping = files
    migrate(database_url)
    ingest(database_url, "--file", str(gazetteer), "--kind", "gazetteer")
    result = ingest(database_url, "--file", str(table), "--kind", "table", "--mapping",
                    str(mapping), "--level", "2", code=1)
    assert "3 of 8 file rows are bad" in result.output
    assert count(database_url, Observation) == 0
    assert batches(database_url)[-1].status == "refused"


def test_match_area_names_without_level_or_country() -> None:
    areas = pd.DataFrame(
        {
            "pcode": ["HTI", "HT02", "HT0221", "HT0111", "DO0101"],
            "name": ["HTI", "Nord", "Nord", "Port-au-Prince", "Santiago"],
            "admin_level": [0, 1, 2, 2, 2],
            "country_iso3": ["HTI", "HTI", "HTI", "HTI", "DOM"],
        }
    )
    names = ["nord", "port au prince", "PORT-AU-PRINCE", "Santiago", "", "hti", "Gonaïves"]
    found = match_area_names(names, areas, aliases={"Gonaives": "HT0301"})
    assert list(found.outcomes) == [AMBIGUOUS, UNKNOWN, MATCHED, MATCHED, EMPTY, UNKNOWN, ALIAS]
    assert list(found.pcodes) == ["", "", "HT0111", "DO0101", "", "", "HT0301"]
    assert found.candidates == {"nord": ["HT02", "HT0221"]}
    assert found.admin_levels[2] == 2 and found.countries[3] == "DOM"
    within = match_area_names(["Santiago", "Nord"], areas, country_iso3="HTI", level=1)
    assert list(within.outcomes) == [UNKNOWN, MATCHED] and within.pcodes[1] == "HT02"
