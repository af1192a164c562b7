"""match_pcodes: exact matches, reported normalisations, unknown rows and set-aside levels."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from riskwatch.sources.dtm import read_dtm_table
from riskwatch.sources.gazetteer import read_gazetteer
from riskwatch.sources.hapi import read_hapi_table
from riskwatch.sources.pcodes import match_pcodes

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="shared test data not available")


def _known(rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["pcode", "admin_level", "country_iso3"])


COD_CHAD = _known(
    [("TD07", 1, "TCD"), ("TD0701", 2, "TCD"), ("TD0703", 2, "TCD"), ("TD0704", 2, "TCD")]
)


@needs_data
def test_hapi_iso3_prefixed_pcodes_map_to_cod_pcodes_and_are_reported() -> None:
    hapi = read_hapi_table(DATA / "dtm" / "hapi-idps_AFG_TCD.csv").frame
    chad = hapi[hapi["country_iso3"] == "TCD"]
    result = match_pcodes(chad, COD_CHAD)
    assert result.rows_quarantined == 0 and result.rows_set_aside == 0
    assert set(result.frame["pcode"]) == {"TCD", "TD07", "TD0701", "TD0703", "TD0704"}
    assert result.meta["pcode_changes"] == {
        "TCD07": "TD07",
        "TCD0701": "TD0701",
        "TCD0703": "TD0703",
        "TCD0704": "TD0704",
    }
    assert any("'TCD07' -> 'TD07'" in n and "country prefix TCD->TD" in n for n in result.notes)
    # Values are untouched by the renaming.
    assert result.frame["value"].sum() == chad["value"].sum()


@needs_data
def test_dtm_against_the_gazetteer_sets_aside_what_has_no_areas() -> None:
    dtm = read_dtm_table(DATA / "dtm" / "dtm-api-admin0-2_AFG_TCD.csv").frame
    areas = read_gazetteer(DATA / "pcodes" / "global-pcodes-adm-1-2.csv").frame
    known = areas[
        (areas["country_iso3"] == "AFG")
        | ((areas["country_iso3"] == "TCD") & (areas["admin_level"] == 1))
    ]
    result = match_pcodes(dtm, known[["pcode", "admin_level", "country_iso3"]])
    assert not result.problems
    assert result.meta["pcode_changes"] == {"TD07": "TCD07"}
    assert result.meta["set_aside"] == [{"country_iso3": "TCD", "admin_level": 2, "rows": 129}]
    assert result.rows_set_aside == 129
    assert len(result.frame) + result.rows_set_aside == len(dtm)
    assert set(result.frame.loc[result.frame["country_iso3"] == "AFG", "pcode"]) == set(
        dtm.loc[dtm["country_iso3"] == "AFG", "pcode"]
    )


def test_unique_normalisation_unknown_pcode_and_set_aside_level() -> None:
    known = _known(
        [("TD07", 1, "TCD"), ("TD0701", 2, "TCD"), ("NG002", 1, "NGA"), ("AF01", 1, "AFG")]
    )
    frame = pd.DataFrame(
        {
            "pcode": [
                "TCD07",
                "TCD0701",
                "NG02",
                "TD99",
                "AF0101",
                "AF0102",
                "TCD",
                "AFG",
                "HT0111",
            ],
            "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
            "row": [3, 4, 5, 6, 7, 8, 9, 10, 11],
        }
    )
    result = match_pcodes(frame, known)
    matched = result.frame.set_index("value")
    assert matched.loc[1.0, "pcode"] == "TD07" and matched.loc[1.0, "admin_level"] == 1
    assert matched.loc[2.0, "pcode"] == "TD0701" and matched.loc[2.0, "admin_level"] == 2
    assert matched.loc[3.0, "pcode"] == "NG002"  # zero padding
    assert any("'NG02' -> 'NG002'" in n and "zero padding" in n for n in result.notes)
    assert matched.loc[7.0, "admin_level"] == 0 and matched.loc[8.0, "country_iso3"] == "AFG"
    (problem,) = result.problems
    assert (problem.rule, problem.value, problem.row) == ("unknown_pcode", "TD99", 6)
    # AFG has no admin2 areas (length 6 > every known AFG pcode); HTI has no areas at all.
    assert result.rows_set_aside == 3
    assert {(s["country_iso3"], s["admin_level"]) for s in result.meta["set_aside"]} == {
        ("AFG", 2),
        ("HTI", None),
    }
    assert sum("set aside" in n for n in result.notes) == 2
    assert result.rows_quarantined == 1 and len(result.frame) == 5


def test_normalisation_is_refused_when_several_areas_match() -> None:
    known = _known([("XY0101", 2, "XYZ"), ("XY101", 2, "XYZ"), ("XY01", 1, "XYZ")])
    frame = pd.DataFrame({"pcode": ["XY00101", "XY0101"], "admin_level": [2, 2]})
    result = match_pcodes(frame, known)
    assert [p.rule for p in result.problems] == ["ambiguous_pcode"]
    assert "XY0101" in result.problems[0].message and "XY101" in result.problems[0].message
    assert result.frame["pcode"].tolist() == ["XY0101"]


def test_row_level_decides_between_levels_and_unknown_at_known_level() -> None:
    known = _known([("XD01", 1, "XDM"), ("XD0101", 2, "XDM")])
    frame = pd.DataFrame(
        {
            "pcode": ["XD01", "XD0199", "XD010101", "XDM", "XD"],
            "admin_level": [1, 2, 3, 0, 0],
            "country_iso3": [None, None, None, None, "XDM"],
        }
    )
    result = match_pcodes(frame, known)
    assert result.frame["pcode"].tolist() == ["XD01", "XDM", "XDM"]
    assert [(p.rule, p.value) for p in result.problems] == [("unknown_pcode", "XD0199")]
    assert result.meta["set_aside"] == [{"country_iso3": "XDM", "admin_level": 3, "rows": 1}]
