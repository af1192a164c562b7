"""read_table, find_column and the value parsers, on the libhxl test inputs and small files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskwatch.sources.tabular import find_column, normalise_hxl_tag, read_table, tag_matches
from riskwatch.sources.values import parse_date, parse_number, parse_number_column

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="shared test data not available")

# What each libhxl test input must give: the hashtag row, a tag or two, and any precise problem.
HXL_EXPECTED = {
    "input-valid.csv": {"hxl_row": 3, "tags": {"País": "#country"}, "rules": set()},
    "input-valid-latin1.csv": {"hxl_row": 3, "tags": {"País": "#country"}, "rules": set()},
    "input-date.csv": {"hxl_row": 2, "tags": {"Date": "#date+reported"}, "rules": set()},
    "input-multiple-headers.csv": {"hxl_row": 3, "tags": {"Province": "#adm1"}, "rules": set()},
    "input-fuzzy.csv": {
        "hxl_row": 3,
        "tags": {"Subsector": "#subsector+es"},
        "rules": {"invalid_hxl_tag"},
    },
    "input-invalid.csv": {"hxl_row": None, "tags": {}, "rules": {"invalid_hxl_row"}},
    "input-untagged.csv": {"hxl_row": None, "tags": {}, "rules": set()},
}


@needs_data
@pytest.mark.parametrize("path", sorted((DATA / "hxl").glob("*.csv")), ids=lambda p: p.name)
def test_every_libhxl_input_reads_or_gives_a_precise_problem(path: Path) -> None:
    table = read_table(path)
    assert not table.fatal
    expected = HXL_EXPECTED.get(path.name)
    assert expected is not None, f"new test input {path.name}: add its expectations"
    assert table.hxl_row == expected["hxl_row"]
    for header, tag in expected["tags"].items():
        assert table.tag_of(find_column(table, names=[header])) == tag
    assert {p.rule for p in table.problems} == expected["rules"]
    for problem in table.problems:
        assert problem.row is not None and problem.value


@needs_data
def test_latin1_file_is_decoded_with_its_accents() -> None:
    table = read_table(DATA / "hxl" / "input-valid-latin1.csv")
    assert table.encoding == "cp1252"
    assert any("decoded as cp1252" in note for note in table.notes)
    assert "Organización" in table.headers
    assert "Panamá" in set(table.data[find_column(table, tags=["#country"])])
    assert "Formación de enseñadores" in set(table.data[find_column(table, tags=["#subsector"])])


@needs_data
def test_malformed_hashtag_row_is_named_precisely_and_not_read_as_data() -> None:
    table = read_table(DATA / "hxl" / "input-invalid.csv")
    (problem,) = table.problems
    assert (problem.rule, problem.row, problem.value) == ("invalid_hxl_row", 3, "sector+es")
    assert table.row_numbers[0] == 4
    assert table.data.iloc[0, 0] == "001"  # leading zeros kept


@needs_data
def test_fuzzy_tags_are_problems_for_their_columns_only() -> None:
    table = read_table(DATA / "hxl" / "input-fuzzy.csv")
    bad = {(p.column, p.value) for p in table.problems}
    assert bad == {("País", "country"), ("Departamento/Provincia/Estado", "adm1")}
    assert table.tag_of("País") is None


@needs_data
def test_junk_rows_above_the_header_are_skipped_and_noted() -> None:
    table = read_table(DATA / "hxl" / "input-multiple-headers.csv")
    assert table.header_row == 2
    assert table.headers == ["Org", "No hashtag", "Province", "Number affected"]
    assert list(table.row_numbers) == [4, 5]
    assert table.data["Number affected"].tolist() == ["100", "200"]
    assert any("skipped 1 row(s) above the header" in n for n in table.notes)


def test_utf8_bom_is_removed_and_pcodes_keep_leading_zeros(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(
        "\ufeffpcode,name,value\n#adm2+pcode,#adm2+name,#population\n01,Zoé,1\n".encode()
    )
    table = read_table(path)
    assert table.encoding == "utf-8-sig"
    assert table.headers[0] == "pcode"
    assert table.data.loc[0, "pcode"] == "01"
    assert table.data.loc[0, "name"] == "Zoé"
    assert table.tags == ["#adm2+pcode", "#adm2+name", "#population"]


def test_semicolon_file_without_tags_finds_header_after_junk(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_bytes(
        "Exported 2024-01-01;;\n\nADM2_PCODE;Name;Pop\nAB0101;Tête;1 234\nAB0102;Île;56\n".encode(
            "cp1252"
        )
    )
    table = read_table(path)
    assert table.encoding == "cp1252"
    assert table.header_row == 3 and table.hxl_row is None
    assert table.data["Name"].tolist() == ["Tête", "Île"]
    assert list(table.row_numbers) == [4, 5]


def test_missing_file_is_a_fatal_problem(tmp_path: Path) -> None:
    table = read_table(tmp_path / "nope.csv")
    assert table.fatal and table.problems[0].rule == "unreadable_file"


def test_xlsx_with_hxl_row_reads_as_text(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["A title line"])
    sheet.append(["pcode", "idps", "date"])
    sheet.append(["#adm1+code", "#affected+idps+ind", "#date+reported"])
    sheet.append(["01", 1200, dt.datetime(2024, 3, 31)])
    sheet.append(["02", 12.5, dt.datetime(2024, 3, 31, 12, 0)])
    path = tmp_path / "table.xlsx"
    book.save(path)
    table = read_table(path)
    assert table.encoding is None
    assert table.header_row == 2 and table.hxl_row == 3
    assert table.data["pcode"].tolist() == ["01", "02"]
    assert table.data["idps"].tolist() == ["1200", "12.5"]
    assert table.data["date"].tolist() == ["2024-03-31", "2024-03-31T12:00:00"]
    assert list(table.row_numbers) == [4, 5]


def test_hxl_tag_normalisation_and_both_tag_families(tmp_path: Path) -> None:
    assert normalise_hxl_tag(" #Adm2 +PCode +name ") == "#adm2+name+pcode"
    assert normalise_hxl_tag("adm2+code") is None
    assert tag_matches("#adm2+code", "#adm2+pcode") == 0
    assert tag_matches("#affected+idps+ind", "#affected+idps") == 0
    assert tag_matches("#affected+idps", "#affected+idps+m") == 1
    assert tag_matches("#affected+idps-m", "#affected+idps+m") is None
    path = tmp_path / "t.csv"
    path.write_text(
        "M,Total,Code,Round\n#affected+idps+m,#affected+idps+ind,#adm2+pcode,"
        "#round+code\n1,2,AB01,3\n"
    )
    table = read_table(path)
    assert find_column(table, tags=["#affected+idps"]) == "Total"  # fewest extra attributes
    assert find_column(table, tags=["#adm2+code"]) == "Code"
    assert find_column(table, names=["round"]) == "Round"
    assert find_column(table, names=["missing"], tags=["#date+reported"]) is None


def test_number_parsing_rules() -> None:
    assert parse_number("1,234,567") == 1234567
    assert parse_number("1 234,5") == 1234.5
    assert parse_number("0,45") == 0.45
    assert parse_number("45%", percent=True) == pytest.approx(0.45)
    assert parse_number("") is None
    for bad in ("45%", "abc", "nan", "inf"):
        with pytest.raises(ValueError):
            parse_number(bad)
    values, errors = parse_number_column(pd.Series(["1", "", "x", "2,000"]))
    assert np.isnan(values[1]) and np.isnan(values[2])
    assert values[0] == 1 and values[3] == 2000
    assert errors == [None, None, "not a number", None]


def test_date_parsing_rules() -> None:
    assert parse_date("2022-12-31T00:00:00") == dt.date(2022, 12, 31)
    assert parse_date("1 March 2015") == dt.date(2015, 3, 1)
    assert parse_date("March 31, 2015") == dt.date(2015, 3, 31)
    assert parse_date("2024-02") == dt.date(2024, 2, 1)
    with pytest.raises(ValueError, match="ambiguous"):
        parse_date("03-18-14")
    with pytest.raises(ValueError):
        parse_date("2022-02-30")


def test_a_late_row_wider_than_the_header_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    lines = ["pcode,value"] + [f"XD{n:03d},{n}" for n in range(300)] + ["XD999,1,extra"]
    path.write_text("\n".join(lines) + "\n")
    table = read_table(path)
    assert len(table.data) == 301 and table.row_numbers[-1] == 302
    assert table.headers == ["pcode", "value", "column_3"]
    assert table.data["column_3"].tolist()[-2:] == ["", "extra"]
    assert table.data["pcode"].iloc[0] == "XD000"


def test_header_of_years_is_still_the_header(tmp_path: Path) -> None:
    path = tmp_path / "years.csv"
    path.write_text("pcode,2021,2022,2023\nXD01,1,2,3\nXD02,4,5,6\n")
    table = read_table(path)
    assert table.header_row == 1
    assert table.headers == ["pcode", "2021", "2022", "2023"]
