"""read_area_table: mapped variables from a table keyed by pcode."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from riskwatch.sources.area_table import read_area_table

# The layout of the demo population table (and of many HDX population tables).
POPULATION = (
    "ADM2_PCODE,ADM2_EN,ADM1_PCODE,Population,Children,Women\n"
    "#adm2+code,#adm2+name,#adm1+code,#population+total,#population+children+pct,"
    "#population+f+pct\n"
    'XD0101,Alpha,XD01,"12,345",48.5,51%\n'
    "XD0102,Beta,XD01,1000,,50\n"
    "XD0103,Gamma,XD01,abc,40,50\n"
    "XD0104,Delta,XD01,700,140,50\n"
    "XD0105,Eps,XD01,900,45,49\n"
    "XD0105,Eps again,XD01,901,45,49\n"
)
MAPPING = {
    "#population+total": "population",
    "#population+children+pct": "children_share:pct",
    "Women": "women_share:pct",
}


@pytest.fixture
def population(tmp_path: Path) -> Path:
    path = tmp_path / "population.csv"
    path.write_text(POPULATION)
    return path


def test_population_table_with_hxl_tags(population: Path) -> None:
    result = read_area_table(population, mapping=MAPPING, period=dt.date(2024, 1, 1))
    assert {(p.row, p.rule) for p in result.problems} == {
        (5, "bad_number"),
        (6, "out_of_range"),
        (7, "duplicate_area"),
        (8, "duplicate_area"),
    }
    assert result.rows_read == 6 and result.rows_quarantined == 4
    values = result.frame.set_index(["pcode", "variable"])["value"]
    assert values[("XD0101", "population")] == 12_345
    assert values[("XD0101", "children_share")] == pytest.approx(0.485)
    assert values[("XD0101", "women_share")] == pytest.approx(0.51)
    assert ("XD0102", "children_share") not in values.index  # empty is missing, not zero
    assert set(result.frame["pcode"]) == {"XD0101", "XD0102"}  # bad rows lose every value
    assert set(result.frame["admin_level"]) == {2}
    assert set(result.frame["period"]) == {dt.date(2024, 1, 1)}
    assert result.meta["pcode_column"] == "ADM2_PCODE"


def test_percent_sign_needs_a_percent_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("pcode,coverage,year\nXD01,45%,2023\nXD02,0.5,2023\n")
    plain = read_area_table(path, mapping={"coverage": "ct_service_coverage"})
    (problem,) = plain.problems
    assert (problem.row, problem.rule, problem.value) == (2, "bad_number", "45%")
    assert "percent" in problem.message
    declared = read_area_table(path, mapping={"coverage": "ct_service_coverage:pct"})
    values = declared.frame.set_index("pcode")["value"]
    assert values["XD01"] == pytest.approx(0.45) and values["XD02"] == pytest.approx(0.005)
    assert set(declared.frame["period"]) == {dt.date(2023, 1, 1)}  # the year column
    assert declared.frame["admin_level"].isna().all()  # a bare "pcode" does not say its level


def test_period_is_required_and_the_problem_says_how_to_give_it(population: Path) -> None:
    result = read_area_table(population, mapping=MAPPING)
    assert result.fatal and result.frame.empty
    (problem,) = result.problems
    assert problem.rule == "missing_period"
    assert "period=" in problem.message and "period_column=" in problem.message


def test_mapping_errors_are_fatal(population: Path) -> None:
    result = read_area_table(
        population, mapping={"Nope": "population", "Women": "Bad Name"}, period=dt.date(2024, 1, 1)
    )
    assert result.fatal
    assert {p.rule for p in result.problems} == {"missing_column", "bad_mapping"}


def test_period_column_and_explicit_pcode_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Code,When,Value\nXD01,2024-03-31,5\nXD01,2024-06-30,6\nXD02,soon,7\n")
    result = read_area_table(
        path, mapping={"Value": "ct_cases"}, pcode_column="Code", period_column="When"
    )
    assert [(p.row, p.rule) for p in result.problems] == [(4, "bad_date")]
    assert result.frame.set_index("period")["value"].to_dict() == {
        dt.date(2024, 3, 31): 5,
        dt.date(2024, 6, 30): 6,
    }


def test_a_pct_tag_alone_does_not_rescale_fractions(tmp_path: Path) -> None:
    # The demo population table writes fractions under #population+children+pct.
    path = tmp_path / "fractions.csv"
    path.write_text(
        "ADM2_PCODE,children_share\n#adm2+code,#population+children+pct\n"
        "XD0101,0.415\nXD0102,41.5\n"
    )
    result = read_area_table(
        path, mapping={"#population+children+pct": "children_share"}, period=dt.date(2024, 1, 1)
    )
    assert result.frame.set_index("pcode")["value"].to_dict() == {"XD0101": 0.415}
    (problem,) = result.problems
    assert (problem.row, problem.rule) == (4, "out_of_range")
    assert "children_share:pct" in problem.message
