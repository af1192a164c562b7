"""read_gazetteer on OCHA's global pcode list and on a small list with faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskwatch.sources.gazetteer import read_gazetteer
from riskwatch.sources.report import AREA_COLUMNS
from riskwatch.sources.tabular import read_table

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PCODES = DATA / "pcodes" / "global-pcodes-adm-1-2.csv"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="shared test data not available")


@needs_data
def test_afg_admin2_pcodes_cover_every_dtm_admin2_pcode() -> None:
    result = read_gazetteer(PCODES, country_iso3="AFG")
    assert not result.problems
    areas = result.frame
    assert list(areas.columns) == AREA_COLUMNS
    assert areas["geometry"].isna().all()
    assert set(areas["country_iso3"]) == {"AFG"}
    admin2 = areas[areas["admin_level"] == 2]
    assert len(admin2) == 401 and len(areas[areas["admin_level"] == 1]) == 34
    kabul = areas.set_index("pcode").loc["AF0101"]
    assert (kabul["name"], kabul["parent_pcode"]) == ("Kabul", "AF01")
    assert areas.set_index("pcode").loc["AF01", "parent_pcode"] == "AFG"
    assert any("rows of other countries skipped" in n for n in result.notes)
    dtm = read_table(DATA / "dtm" / "dtm-api-admin0-2_AFG_TCD.csv").data
    dtm_admin2 = set(
        dtm.loc[(dtm["admin0Pcode"] == "AFG") & (dtm["admin2Pcode"] != ""), "admin2Pcode"]
    )
    assert len(dtm_admin2) == 401
    assert dtm_admin2 <= set(admin2["pcode"])


@needs_data
def test_whole_list_reads_without_problems() -> None:
    result = read_gazetteer(PCODES)
    assert not result.problems
    assert result.rows_read == len(result.frame) == 33_363
    assert {"AFG", "TCD"} <= set(result.meta["countries"])
    assert result.meta["levels"] == [1, 2]


def test_faulty_rows_and_an_absent_country(tmp_path: Path) -> None:
    path = tmp_path / "pcodes.csv"
    path.write_text(
        "Location,Admin Level,P-Code,Name,Parent P-Code,Valid from date\n"
        "#country+code,#geo+admin_level,#adm+code,#adm+name,#adm+code+parent,#date+start\n"
        "XDM,1,XD01,North,XDM,2024-01-01\n"
        "XDM,2,XD0101,Alpha,XD01,2024-01-01\n"
        "XDM,2,XD0101,Alpha again,XD01,2024-01-01\n"
        "XDM,two,XD0102,Beta,XD01,2024-01-01\n"
        "XDM,2,,Nameless,XD01,2024-01-01\n"
        "HT,1,HT01,Ouest,,2024-01-01\n"
        "XDM,2,XD0103,,,2024-01-01\n"
    )
    result = read_gazetteer(path)
    assert {(p.row, p.rule) for p in result.problems} == {
        (4, "duplicate_pcode"),
        (5, "duplicate_pcode"),
        (6, "bad_admin_level"),
        (7, "missing_pcode"),
    }
    areas = result.frame.set_index("pcode")
    assert list(areas.index) == ["XD01", "HT01", "XD0103"]
    assert areas.loc["HT01", "country_iso3"] == "HTI"  # ISO2 converted
    assert areas.loc["HT01", "parent_pcode"] == "HTI"
    assert areas.loc["XD0103", "parent_pcode"] is None and areas.loc["XD0103", "name"] is None
    missing = read_gazetteer(path, country_iso3="AFG")
    assert missing.fatal and "AFG" in missing.problems[0].message
