"""read_dtm_table on the real DTM API export (AFG, TCD) and on small files with faults."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from riskwatch.sources.dtm import read_dtm_table
from riskwatch.sources.report import OBSERVATION_COLUMNS
from riskwatch.sources.tabular import read_table

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DTM_FILE = DATA / "dtm" / "dtm-api-admin0-2_AFG_TCD.csv"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="shared test data not available")


@pytest.fixture(scope="module")
def dtm():
    return read_dtm_table(DTM_FILE)


def _idps(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["variable"] == "idps"]


@needs_data
def test_afg_levels_agree_in_every_round(dtm) -> None:
    assert not dtm.fatal
    assert dtm.rows_quarantined == 0
    assert not [p for p in dtm.problems if p.rule == "level_totals_mismatch"]
    afg = _idps(dtm.frame)
    afg = afg[afg["country_iso3"] == "AFG"]
    totals = afg.groupby(["round", "admin_level"])["value"].sum().unstack()
    assert sorted(totals.index, key=int) == [str(n) for n in range(1, 17)]
    assert (totals[0] == totals[1]).all() and (totals[0] == totals[2]).all()
    assert totals.loc["16", 0] == 6_557_855
    # One figure per area and round: the split by reason and origin has been summed.
    assert not afg.duplicated(["pcode", "round", "assessment_type"]).any()


@needs_data
def test_afg_top_provinces_in_the_last_round(dtm) -> None:
    table = read_table(DTM_FILE)
    pcode_of = dict(zip(table.data["admin1Name"], table.data["admin1Pcode"], strict=True))
    last = _idps(dtm.frame)
    last = last[(last["admin_level"] == 1) & (last["period"] == dt.date(2022, 12, 31))]
    by_pcode = last.set_index("pcode")["value"]
    assert by_pcode[pcode_of["Hirat"]] == pytest.approx(1.18e6, rel=0.01)
    assert by_pcode[pcode_of["Kabul"]] == pytest.approx(1.06e6, rel=0.01)
    assert list(by_pcode.sort_values(ascending=False).index[:2]) == [
        pcode_of["Hirat"],
        pcode_of["Kabul"],
    ]
    assert len(by_pcode) == 34


@needs_data
def test_tcd_baseline_and_site_assessments_are_kept_apart(dtm) -> None:
    chad = _idps(dtm.frame)
    chad = chad[(chad["country_iso3"] == "TCD") & (chad["admin_level"] == 0)]
    round_1 = chad[chad["round"] == "1"].set_index("assessment_type")["value"]
    assert round_1.to_dict() == {"BA": 147_032, "SA": 147_032}  # not 294,064
    assert set(chad["assessment_type"]) == {"BA", "SA"}
    assert not [p for p in dtm.problems if p.rule == "level_totals_mismatch"]


@needs_data
def test_frame_shape_types_and_meta(dtm) -> None:
    frame = dtm.frame
    assert list(frame.columns[: len(OBSERVATION_COLUMNS)]) == OBSERVATION_COLUMNS
    assert all(isinstance(p, dt.date) for p in frame["period"].head(50))
    assert frame["round"].map(type).eq(str).all()
    assert set(frame["variable"]) == {"idps", "idps_male", "idps_female"}
    # The sex split exists only for TCD from round 18; it is never filled with zeros.
    sexed = frame[frame["variable"] == "idps_male"]
    assert set(sexed["country_iso3"]) == {"TCD"} and (sexed["value"] > 0).all()
    assert dtm.meta["reporting_dates"][-1] == dt.date(2025, 1, 31)
    assert {
        "country_iso3": "AFG",
        "operation": "Returns and displacement in Afghanistan",
        "assessment_type": "BA",
        "round": "16",
        "reporting_date": dt.date(2022, 12, 31),
    } in dtm.meta["rounds"]


HEADER = (
    "admin0Pcode,admin1Pcode,admin2Pcode,adminLevel,numPresentIdpInd,reportingDate,"
    "roundNumber,displacementReason,numberMales,numberFemales,assessmentType,operation\n"
)
HXL = (
    "#country+code,#adm1+code,#adm2+code,#adm+level,#affected+idps,#date+reported,"
    "#round+code,#cause+type,#affected+idps+m,#affected+idps+f,#assessment+type,"
    "#operation+name\n"
)


def _write(tmp_path: Path, rows: list[str], *, hxl: bool = True) -> Path:
    path = tmp_path / "dtm.csv"
    path.write_text(HEADER + (HXL if hxl else "") + "".join(r + "\n" for r in rows))
    return path


def test_rows_are_summed_and_sex_split_only_when_complete(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            "XDM,,,0,100,2024-01-31,3,Conflict,40,60,BA,Op",
            "XDM,,,0,50,2024-01-31,3,Disaster,,,BA,Op",
            "XDM,XD01,,1,150,2024-01-31,3,Conflict,70,80,BA,Op",
        ],
    )
    result = read_dtm_table(path)
    assert not result.problems
    frame = result.frame.set_index(["pcode", "variable"])["value"]
    assert frame[("XDM", "idps")] == 150
    assert ("XDM", "idps_male") not in frame.index  # one of its two rows has no split
    assert frame[("XD01", "idps_female")] == 80
    assert any("males on only some" in n for n in result.notes)


def test_bad_rows_are_quarantined_with_row_numbers(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            "XDM,,,0,100,2024-01-31,3,Conflict,,,BA,Op",
            "XDM,XD01,,1,abc,2024-01-31,3,Conflict,,,BA,Op",
            "XDM,,,2,5,2024-01-31,3,Conflict,,,BA,Op",
            "XDM,XD01,,1,7,31/01/2024,3,Conflict,,,BA,Op",
            "XDM,XD01,,1,-3,2024-01-31,3,Conflict,,,BA,Op",
            "XDM,XD01,,x,3,2024-01-31,3,Conflict,,,BA,Op",
        ],
    )
    result = read_dtm_table(path)
    rules = {(p.row, p.rule) for p in result.problems}
    assert {
        (4, "bad_number"),
        (5, "missing_pcode"),
        (6, "bad_date"),
        (7, "negative_value"),
        (8, "bad_admin_level"),
    } <= rules
    assert result.rows_read == 6 and result.rows_quarantined == 5
    assert result.frame["value"].tolist() == [100]


def test_level_totals_mismatch_names_the_round_and_totals(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            "XDM,,,0,100,2024-01-31,7,Conflict,,,BA,Op",
            "XDM,XD01,,1,60,2024-01-31,7,Conflict,,,BA,Op",
            "XDM,XD02,,1,30,2024-01-31,7,Conflict,,,BA,Op",
            "XDM,,,0,100,2024-01-31,7,Conflict,,,SA,Op",
            "XDM,XD01,,1,100,2024-01-31,7,Conflict,,,SA,Op",
        ],
        hxl=False,
    )
    result = read_dtm_table(path)
    (problem,) = result.problems
    assert problem.rule == "level_totals_mismatch" and not problem.fatal
    assert "round 7" in problem.message and "BA" in problem.message
    assert "admin0 total 100" in problem.message and "sum of admin1 90" in problem.message
    assert len(result.frame) == 5  # a mismatch is reported, the figures are kept


def test_columns_found_by_hxl_tags_alone(tmp_path: Path) -> None:
    path = tmp_path / "renamed.csv"
    path.write_text(
        "Pays,Région,Niveau,PDI,Date,Cycle,Type\n"
        "#country+code,#adm1+pcode,#adm+level,#affected+idps+ind,#date+reported,"
        "#round+code,#assessment+type\n"
        "XDM,XD01,1,12,2024-05-31,2,BA\n"
    )
    result = read_dtm_table(path)
    assert not result.problems
    row = result.frame.iloc[0]
    assert (row["pcode"], row["value"], row["round"], row["period"]) == (
        "XD01",
        12,
        "2",
        dt.date(2024, 5, 31),
    )


def test_missing_required_column_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "no_figure.csv"
    path.write_text("admin0Pcode,adminLevel,reportingDate\nXDM,0,2024-01-31\n")
    result = read_dtm_table(path)
    assert result.fatal and result.frame.empty
    assert [p.rule for p in result.problems] == ["missing_column"]
    assert "numPresentIdpInd" in result.problems[0].message


def test_xlsx_export_reads_like_the_csv(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER.strip().split(","))
    sheet.append(HXL.strip().split(","))
    sheet.append(
        [
            "XDM",
            None,
            None,
            0,
            1500,
            dt.datetime(2024, 1, 31),
            4.0,
            "Conflict",
            None,
            None,
            "BA",
            "Op",
        ]
    )
    path = tmp_path / "dtm.xlsx"
    book.save(path)
    result = read_dtm_table(path)
    assert not result.problems
    row = result.frame.iloc[0]
    assert (row["pcode"], row["value"], row["round"]) == ("XDM", 1500, "4")
