"""read_hxl_table: every libhxl test input, the built-in tag table, mappings, dates, faults."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from riskwatch.demo import generate_scenario
from riskwatch.sources.hxl_table import read_hxl_table
from riskwatch.sources.report import OBSERVATION_COLUMNS

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HXL = DATA / "hxl"
needs_data = pytest.mark.skipif(not HXL.exists(), reason="shared test data not available")

# The libhxl inputs name areas (#adm1) without pcodes; these invented pcodes stand in for them.
SPANISH_MAPPING = {
    "period": "2015-03-01",
    "variables": {"#targeted+f": "women_targeted", "#targeted+m": "men_targeted"},
    "name_column": "#adm1",
    "aliases": {"Los Santos": "PA07", "Cauca": "CO19", "Chocó": "CO27", "Amazonas": "VE02"},
}


def _fatal_rules(result) -> list[str]:
    return [p.rule for p in result.problems if p.fatal]


def _values(result) -> dict[tuple[str, str], float]:
    return {(r.pcode, r.variable): r.value for r in result.frame.itertuples()}


def _csv(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the libhxl test inputs, each with its exact outcome ----------------------------------------


@needs_data
@pytest.mark.parametrize("name", ["input-valid.csv", "input-valid-latin1.csv"])
def test_valid_inputs_have_no_mapped_tags_and_say_which_tags_they_have(name: str) -> None:
    result = read_hxl_table(HXL / name)
    assert _fatal_rules(result) == ["no_mapped_columns", "missing_column"]
    unmapped, no_area = [p.message for p in result.problems if p.fatal]
    assert unmapped.startswith(
        "no column's HXL tag maps to a riskwatch variable (tags: #sector+es, #subsector+es, "
        "#org+es, #targeted+f, #targeted+m, #country, #adm1, #date+reported; built-in: "
    )
    assert "it names areas (#adm1) but has no pcodes: give name_column and [aliases]" in no_area
    assert result.frame.empty


@needs_data
@pytest.mark.parametrize("name", ["input-valid.csv", "input-valid-latin1.csv"])
def test_valid_inputs_read_with_a_mapping(name: str) -> None:
    result = read_hxl_table(HXL / name, mapping=SPANISH_MAPPING)
    assert not result.fatal and result.problems == []
    assert result.rows_read == 4 and result.rows_quarantined == 0
    # Cauca's row has empty figures: missing, not zero.
    assert _values(result) == {
        ("PA07", "women_targeted"): 100.0,
        ("PA07", "men_targeted"): 100.0,
        ("CO27", "women_targeted"): 250.0,
        ("CO27", "men_targeted"): 300.0,
        ("VE02", "women_targeted"): 80.0,
        ("VE02", "men_targeted"): 95.0,
    }
    assert set(result.frame["period"]) == {dt.date(2015, 3, 1)}
    assert list(result.frame.columns[: len(OBSERVATION_COLUMNS)]) == OBSERVATION_COLUMNS
    assert "tagged columns not read: #sector+es, #subsector+es, #org+es, #country, " in "".join(
        result.notes
    )


@needs_data
def test_latin1_input_is_decoded_and_noted() -> None:
    result = read_hxl_table(HXL / "input-valid-latin1.csv", mapping=SPANISH_MAPPING)
    assert result.meta["encoding"] == "cp1252"
    assert "input-valid-latin1.csv: not valid UTF-8, decoded as cp1252" in result.notes
    # "Chocó" decoded right is what lets the alias match.
    assert ("CO27", "women_targeted") in _values(result)


@needs_data
def test_unmatched_names_are_each_reported() -> None:
    mapping = dict(SPANISH_MAPPING, aliases={"Los Santos": "PA07"})
    result = read_hxl_table(HXL / "input-valid.csv", mapping=mapping)
    unknown = [(p.row, p.value) for p in result.problems if p.rule == "unknown_area_name"]
    assert unknown == [(5, "Cauca"), (6, "Chocó"), (7, "Amazonas")]
    assert result.rows_quarantined == 3
    assert set(_values(result)) == {("PA07", "women_targeted"), ("PA07", "men_targeted")}


@needs_data
def test_untagged_input_is_refused_with_what_to_do() -> None:
    result = read_hxl_table(HXL / "input-untagged.csv")
    assert _fatal_rules(result) == ["no_hxl_row"]
    assert result.problems[-1].message == (
        "input-untagged.csv has no HXL hashtag row: add one under the header (e.g. #adm2+code, "
        "#affected+idps, #date+reported), or read it with --kind table --mapping FILE"
    )


@needs_data
def test_invalid_tags_are_refused_pointing_at_the_tag_row() -> None:
    result = read_hxl_table(HXL / "input-invalid.csv", mapping=SPANISH_MAPPING)
    assert [p.rule for p in result.problems] == ["invalid_hxl_row", "no_hxl_row"]
    assert result.problems[0].row == 3 and result.problems[0].value == "sector+es"
    assert result.problems[1].message == (
        "input-invalid.csv has no HXL hashtag row: its row 3 looks like tags but they do not "
        "start with '#'; fix them, or read it with --kind table --mapping FILE"
    )


@needs_data
def test_fuzzy_tags_two_columns_with_one_tag_cannot_be_mapped_by_tag() -> None:
    result = read_hxl_table(HXL / "input-fuzzy.csv", mapping=SPANISH_MAPPING)
    rules = [p.rule for p in result.problems]
    assert rules[:2] == ["invalid_hxl_tag", "invalid_hxl_tag"]  # 'country', 'adm1' without '#'
    assert [p.value for p in result.problems[:2]] == ["country", "adm1"]
    assert _fatal_rules(result) == ["ambiguous_column", "missing_column", "missing_column"]
    ambiguous = next(p for p in result.problems if p.rule == "ambiguous_column")
    assert "2 columns match '#targeted+f' ('Hombres', 'Mujeres')" in ambiguous.message
    # '#targeted+m' is absent, and the untagged 'adm1' column cannot be found by tag.
    missing = [p.message for p in result.problems if p.rule == "missing_column"]
    assert missing[0].startswith("variables: no column tagged #targeted+m")
    assert missing[1].startswith("name_column: no column tagged #adm1")


@needs_data
def test_fuzzy_tags_read_when_mapped_by_header() -> None:
    mapping = {
        "period": "2015-03-01",
        "variables": {"Hombres": "men_targeted", "Mujeres": "women_targeted"},
        "name_column": "Departamento/Provincia/Estado",
        "aliases": SPANISH_MAPPING["aliases"],
    }
    result = read_hxl_table(HXL / "input-fuzzy.csv", mapping=mapping)
    assert not result.fatal
    assert _values(result)[("CO27", "women_targeted")] == 300.0
    assert _values(result)[("CO27", "men_targeted")] == 250.0
    assert len(result.frame) == 6


@needs_data
def test_multiple_headers_junk_row_skipped_and_mapped() -> None:
    assert _fatal_rules(read_hxl_table(HXL / "input-multiple-headers.csv")) == [
        "no_mapped_columns",
        "missing_column",
        "missing_period",
    ]
    mapping = {
        "period": "2024-01-01",
        "variables": {"#affected": "people_affected"},
        "name_column": "#adm1",
        "aliases": {"Coast": "XD01", "Mountains": "XD02"},
    }
    result = read_hxl_table(HXL / "input-multiple-headers.csv", mapping=mapping)
    assert not result.fatal
    assert _values(result) == {
        ("XD01", "people_affected"): 100.0,
        ("XD02", "people_affected"): 200.0,
    }
    assert "input-multiple-headers.csv: skipped 1 row(s) above the header (row 1)" in result.notes


@needs_data
def test_mixed_date_formats() -> None:
    refused = read_hxl_table(HXL / "input-date.csv")
    assert _fatal_rules(refused) == ["no_mapped_columns", "missing_column"]
    assert "(tags: #date+reported, #sector, #subsector, #org, #population+sex, #targeted, " in (
        refused.problems[0].message
    )
    mapping = {key: value for key, value in SPANISH_MAPPING.items() if key != "period"}
    mapping["variables"] = {"#targeted": "people_targeted"}
    result = read_hxl_table(HXL / "input-date.csv", mapping=mapping)
    assert not result.fatal and result.problems == []
    periods = sorted(result.frame["period"])
    # "03-18-14" and "19/3/15" can be read one way only; the rest are ISO or month names.
    assert periods == [
        dt.date(2014, 3, 18),
        dt.date(2015, 3, 1),
        dt.date(2015, 3, 10),
        dt.date(2015, 3, 11),
        dt.date(2015, 3, 19),
        dt.date(2015, 3, 31),
    ]
    assert len(result.frame) == 6  # two Cauca rows have no figure
    assert result.meta["periods"][0] == dt.date(2014, 3, 18)


def test_ambiguous_and_bad_dates_are_row_problems(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "pcode,date,idps\n#adm1+code,#date+reported,#affected+idps\n"
        "XD01,03/04/2015,10\nXD02,2015-02-30,20\nXD03,,30\nXD04,2015,40\n",
    )
    result = read_hxl_table(path)
    problems = [(p.rule, p.row, p.message) for p in result.problems]
    assert problems == [
        ("bad_date", 3, "ambiguous day/month order; write dates as YYYY-MM-DD"),
        ("bad_date", 4, "not a calendar date"),
        ("missing_date", 5, "the date is empty"),
    ]
    assert _values(result) == {("XD04", "idps"): 40.0}
    assert result.frame["period"].tolist() == [dt.date(2015, 1, 1)]


# --- built-in table, areas, mapping overrides ---------------------------------------------------


def test_builtin_tags_levels_and_extras(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "Country,Region,District,Date,Round,Type,IDPs,Men,Women,Origin\n"
        "#country+code,#adm1+pcode,#adm2+code,#date+reported,#round+code,#assessment+type,"
        "#affected+idps+ind,#affected+m+idps,#affected+idps+f,#adm1+code+origin\n"
        "XDM,,,2024-03-31,3.0,BA,300,140,160,XD02\n"
        "XDM,XD01,,2024-03-31,3.0,BA,300,,,XD02\n"
        "XDM,XD01,XD0101,2024-03-31,3.0,BA,120,60,60,XD02\n"
        "XDM,XD01,XD0102,2024-03-31,3.0,BA,180,80,100,XD02\n",
    )
    result = read_hxl_table(path)
    assert not result.fatal and result.problems == []
    frame = result.frame
    idps = frame[frame["variable"] == "idps"].set_index("pcode")
    assert idps["value"].to_dict() == {
        "XDM": 300.0,
        "XD01": 300.0,
        "XD0101": 120.0,
        "XD0102": 180.0,
    }
    assert idps["admin_level"].to_dict() == {"XDM": 0, "XD01": 1, "XD0101": 2, "XD0102": 2}
    assert set(frame["round"]) == {"3"} and set(frame["assessment_type"]) == {"BA"}
    assert set(frame["country_iso3"]) == {"XDM"}
    assert sorted(frame["variable"].unique()) == ["idps", "idps_female", "idps_male"]
    assert len(frame[frame["variable"] == "idps_male"]) == 3  # admin1 row: sex split empty
    assert result.meta["variables"]["idps_male"] == "#affected+idps+m"
    # The origin pcode is not the row's area: it is left out, and said so.
    assert "tagged columns not read: #adm1+code+origin" in result.notes


def test_demo_population_table_needs_a_period_then_reads(tmp_path: Path) -> None:
    files = generate_scenario(tmp_path)
    refused = read_hxl_table(files.population)
    assert _fatal_rules(refused) == ["missing_period"]
    assert "give period = 2024-01-01" in refused.problems[-1].message
    result = read_hxl_table(files.population, mapping={"period": dt.date(2024, 1, 1)})
    assert not result.fatal and result.problems == []
    population = pd.read_csv(files.population, skiprows=[1], dtype={"ADM2_PCODE": str})
    assert result.meta["variables"] == {
        "population": "#population+total",
        "children_share": "#population+children+pct",
        "women_share": "#population+f+pct",
    }
    values = result.frame.pivot(index="pcode", columns="variable", values="value")
    expected = population.set_index("ADM2_PCODE")
    assert (values["population"] == expected["population"]).all()
    assert (values["children_share"] == expected["children_share"]).all()
    assert set(result.frame["admin_level"]) == {2}


def test_mapping_overrides_builtin_and_percent(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "pcode,pop,children,events\n#adm2+code,#population,#population+children+pct,#event+num\n"
        "XD0101,1000,45,3\n",
    )
    refused = read_hxl_table(path, mapping={"period": "2024-01-01"})
    share = next(p for p in refused.problems if p.rule == "share_out_of_range")
    assert "if the column holds percentages, map it as 'children_share:pct'" in share.message
    assert refused.frame.empty and refused.rows_quarantined == 1
    mapping = {
        "period": "2024-01-01",
        "variables": {
            "#population+children+pct": "children_share:pct",
            "#event+num": "conflict_events",
            "pop": "residents",
        },
    }
    result = read_hxl_table(path, mapping=mapping)
    assert _values(result) == {
        ("XD0101", "children_share"): 0.45,
        ("XD0101", "conflict_events"): 3.0,
        ("XD0101", "residents"): 1000.0,
    }


def test_two_columns_for_one_builtin_variable_are_refused(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "pcode,a,b\n#adm1+code,#population,#population+total\nXD01,1,2\n",
    )
    result = read_hxl_table(path, mapping={"period": "2024-01-01"})
    assert _fatal_rules(result) == ["ambiguous_column"]
    assert "would all give population" in result.problems[-1].message
    chosen = read_hxl_table(
        path, mapping={"period": "2024-01-01", "variables": {"b": "population"}}
    )
    assert _values(chosen) == {("XD01", "population"): 2.0}


def test_bad_numbers_negative_counts_and_duplicates(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "pcode,date,idps\n#adm1+code,#date,#affected+idps\n"
        "XD01,2024-01-01,12x\nXD02,2024-01-01,-5\nXD03,2024-01-01,1\nXD03,2024-01-01,2\n"
        ',2024-01-01,7\nXD04,2024-01-01,"1,234"\n',
    )
    result = read_hxl_table(path)
    assert [(p.rule, p.row) for p in result.problems] == [
        ("missing_pcode", 7),
        ("duplicate_area", 5),
        ("duplicate_area", 6),
        ("bad_number", 3),
        ("negative_value", 4),
    ]
    assert result.rows_quarantined == 5
    assert _values(result) == {("XD04", "idps"): 1234.0}
    assert any("--kind dtm" in note for note in result.notes)


def test_bad_mapping_is_a_fatal_problem(tmp_path: Path) -> None:
    path = _csv(tmp_path, "pcode,idps\n#adm1+code,#affected+idps\nXD01,1\n")
    result = read_hxl_table(path, mapping={"period": "2024", "rules": []})
    assert _fatal_rules(result) == ["bad_mapping"]
    wrong_kind = read_hxl_table(path, mapping={"period": "2024-01-01", "latitude_column": "y"})
    assert _fatal_rules(wrong_kind) == ["bad_mapping"]
    assert (
        "mapping key 'latitude_column' is not used by --kind hxl" in wrong_kind.problems[0].message
    )


def test_pcode_column_from_mapping_sets_level_and_country(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "code,other,idps\n#meta+code,#adm2+code,#affected+idps\nXD0101,XD9999,5\n",
    )
    mapping = {"period": "2024-01-01", "pcode_column": "code", "country": "XDM"}
    result = read_hxl_table(path, mapping=mapping)
    assert _values(result) == {("XD0101", "idps"): 5.0}
    assert result.frame["admin_level"].isna().all()  # neither tag nor header says the level
    assert result.frame["country_iso3"].tolist() == ["XDM"]


def test_xlsx_with_junk_rows_above_the_header(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    for row in (
        ["Displacement figures (synthetic)"],
        [],
        ["District", "IDPs", "As of"],
        ["#adm2+code", "#affected+idps", "#date+reported"],
        ["XD0101", 1200, dt.datetime(2024, 6, 30)],
        ["XD0102", 30.0, dt.datetime(2024, 6, 30)],
    ):
        sheet.append(row)
    path = tmp_path / "idps.xlsx"
    book.save(path)
    result = read_hxl_table(path)
    assert not result.fatal and result.problems == []
    assert _values(result) == {("XD0101", "idps"): 1200.0, ("XD0102", "idps"): 30.0}
    assert set(result.frame["period"]) == {dt.date(2024, 6, 30)}
    assert result.meta["hxl_row"] == 4


def test_generic_adm_code_leaves_the_level_to_pcode_matching(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "pcode,parent,pop,year\n#adm+code,#adm+code+parent,#population,#date\nXD0101,XD01,50,2023\n",
    )
    result = read_hxl_table(path)
    assert _values(result) == {("XD0101", "population"): 50.0}
    assert result.frame["admin_level"].isna().all()
    assert result.frame["period"].tolist() == [dt.date(2023, 1, 1)]  # a bare year
