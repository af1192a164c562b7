"""Mapping files: the documented examples load, and every kind of mistake gets a precise message."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from riskwatch.sources import mapping as mapping_module
from riskwatch.sources.mapping import (
    MappingError,
    area_table_options,
    load_mapping,
    mapped_column,
    mapping_from_toml,
    mapping_problems,
    parse_mapping,
    resolve_aliases,
    validate_variable_name,
)
from riskwatch.sources.tabular import read_table


def _docstring_examples() -> list[str]:
    """The TOML blocks of the module docstring (each follows a line ending in '::')."""
    blocks = re.findall(r"::\n\n((?:    .*\n|\n)+)", mapping_module.__doc__ or "")
    return [re.sub(r"^    ", "", block, flags=re.M) for block in blocks]


def _write(tmp_path: Path, text: str, name: str = "mapping.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_documented_example_loads_and_fits_its_kind(tmp_path: Path) -> None:
    examples = _docstring_examples()
    assert len(examples) == 4
    kinds = ["hxl", "hxl", "sites", "events"]
    for text, kind in zip(examples, kinds, strict=True):
        loaded = load_mapping(_write(tmp_path, text))
        assert mapping_problems(loaded, kind) == []
    table, by_name, sites, events = (mapping_from_toml(t) for t in examples)
    assert table["period"] == dt.date(2024, 1, 1)
    assert table["variables"]["Children (%)"] == "children_share:pct"
    assert by_name["aliases"]["Pétion-Ville"] == "HT0113"
    assert [r["rule"] for r in sites["rules"]] == ["sum", "mean", "share", "ratio"]
    assert sites["rules"][2]["value"] == ["yes"]
    assert sites["rules"][1]["weight"] == "individuals"
    assert events["counts"][1] == {
        "variable": "conflict_fatalities",
        "filter": {"type": ["battle", "shelling"]},
        "sum_column": "fatalities",
    }


def test_normalised_mapping_is_accepted_again_unchanged() -> None:
    raw = {
        "country": "ht",
        "period": "2024-03-01",
        "rules": [{"variable": "ct_service_coverage", "rule": "share", "column": "ct"}],
        "counts": [{"variable": "x_events", "filter": {"fatalities": 0}}],
    }
    once = parse_mapping(raw)
    assert once["country"] == "HTI"
    assert once["period"] == dt.date(2024, 3, 1)
    assert once["rules"][0]["value"] == ["yes", "true", "1"]
    assert once["counts"][0]["filter"] == {"fatalities": ["0"]}
    assert parse_mapping(once) == once


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 'red'", "mapping.toml: unknown key 'colour'"),
        ("period = 'last year'", "mapping.toml: period: 'last year' is not an ISO date"),
        ("period = 2024-01-01T10:00:00", "mapping.toml: period: must be a date (2024-01-01)"),
        ("country = 'Haiti'", "mapping.toml: country: 'Haiti' is not an ISO3"),
        (
            "pcode_column = 3",
            "mapping.toml: pcode_column: must be a non-empty string, not a number",
        ),
        ("aggregate_columns = 'a'", "mapping.toml: aggregate_columns: must be a list of strings"),
        (
            "[variables]\nx = 'Population'",
            "mapping.toml: variables.'x': variable name 'Population'",
        ),
        (
            "[variables]\nx = 'idps:percent'",
            "mapping.toml: variables.'x': 'idps:percent' has an unknown",
        ),
        ("name_column = 'District'", "mapping.toml: name_column: needs an [aliases] table"),
        (
            "[[rules]]\nvariable = 'a'\nrule = 'median'\ncolumn = 'c'",
            "mapping.toml: rules[1].rule: unknown rule 'median' (known: sum, mean, share, ratio)",
        ),
        (
            "[[rules]]\nvariable = 'a'\nrule = 'sum'\ncolumn = 'c'\n"
            "[[rules]]\nvariable = 'b'\nrule = 'sum'\ncolumn = 'c'\nvalue = 'yes'",
            "mapping.toml: rules[2].value: only for rule = share",
        ),
        (
            "[[rules]]\nvariable = 'a'\nrule = 'ratio'\nnumerator = 'n'",
            "mapping.toml: rules[1].denominator: missing (rule = ratio needs it)",
        ),
        ("[[rules]]\nrule = 'sum'\ncolumn = 'c'", "mapping.toml: rules[1].variable: missing"),
        (
            "[[rules]]\nvariable = 'a'\nrule = 'share'\ncolumn = 'c'\nvalue = 1",
            "mapping.toml: rules[1].value: must be a non-empty string or list of strings",
        ),
        (
            "[[rules]]\nvariable = 'a:pct'\nrule = 'sum'\ncolumn = 'c'",
            "mapping.toml: rules[1].variable: 'a:pct' has an unknown suffix",
        ),
        ("rules = 5", "mapping.toml: rules: must be one or more [[rules]] tables"),
        (
            "[[counts]]\nvariable = 'a'\nfilter = { t = true }",
            "mapping.toml: counts[1].filter.'t': must be a string, a number or a list",
        ),
        ("[[counts]]\nvariable = 'a'\ncolour = 'x'", "mapping.toml: counts[1].colour: unknown key"),
        (
            "[variables]\nx = 'idps'\n[[rules]]\nvariable = 'idps'\nrule = 'sum'\ncolumn = 'c'",
            "mapping.toml: rules[1]: variable 'idps' is already produced by variables.'x'",
        ),
        (
            "[aliases]\n'Chocó' = 'CO27'\n'choco' = 'CO28'",
            "mapping.toml: aliases.'choco': the same name as 'Chocó'",
        ),
        ("period = ", "mapping.toml: not valid TOML"),
    ],
)
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        load_mapping(_write(tmp_path, text))
    assert str(caught.value).startswith(str(tmp_path / "mapping.toml")[: -len("mapping.toml")])
    assert message in str(caught.value)


def test_missing_file_is_a_mapping_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="absent.toml: cannot read the mapping file"):
        load_mapping(tmp_path / "absent.toml")


@pytest.mark.parametrize("name", ["idps", "ipc_phase3plus_share", "conflict_events_battles"])
def test_valid_variable_names(name: str) -> None:
    assert validate_variable_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "non-empty"),
        ("IDPs", "lower_snake_case"),
        ("3w_presence", "lower_snake_case"),
        ("idps__total", "lower_snake_case"),
        ("idps_", "lower_snake_case"),
        ("idps total", "lower_snake_case"),
        ("x" * 64, "longer than 63"),
    ],
)
def test_invalid_variable_names(name: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        validate_variable_name(name)


def test_mapping_problems_name_keys_the_kind_does_not_use() -> None:
    mapping = parse_mapping(
        {"counts": [{"variable": "a"}], "variables": {"x": "y"}, "latitude_column": "lat"}
    )
    problems = mapping_problems(mapping, "sites")
    assert [p.fatal for p in problems] == [True, True]
    assert "mapping key 'counts' is not used by --kind sites" in problems[0].message
    assert "mapping key 'variables' is not used by --kind sites" in problems[1].message
    assert mapping_problems(mapping, "events")[0].message.startswith(
        "mapping key 'variables' is not used by --kind events"
    )


def test_area_table_options_gives_read_area_table_arguments() -> None:
    mapping = parse_mapping(
        {"variables": {"pop": "population"}, "pcode_column": "P", "period": "2024-01-01"}
    )
    assert area_table_options(mapping) == {
        "mapping": {"pop": "population"},
        "pcode_column": "P",
        "period": dt.date(2024, 1, 1),
    }


def test_mapped_column_by_header_tag_and_ambiguity(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "Men,Women,Women,Place\n#targeted+m,#targeted+f,#targeted+f,#adm1+name\n1,2,3,A\n",
        encoding="utf-8",
    )
    table = read_table(path)
    assert mapped_column(table, "men", role="variables") == ("Men", None)
    assert mapped_column(table, "#targeted+m", role="variables") == ("Men", None)
    column, problem = mapped_column(table, "#targeted+f", role="variables")
    assert column is None and problem is not None and problem.rule == "ambiguous_column"
    assert "2 columns match '#targeted+f' ('Women', 'Women')" in problem.message
    _, by_header = mapped_column(table, "Women", role="variables")
    assert by_header is not None and by_header.rule == "ambiguous_column"
    _, missing = mapped_column(table, "#affected", role="rules[1].column")
    assert missing is not None and missing.rule == "missing_column"
    assert missing.message.startswith("rules[1].column: no column tagged #affected (tags: ")


def test_resolve_aliases_ignores_case_accents_and_spaces() -> None:
    names = pd.Series(["Choco", "  LOS  santos", "Amazonas", "", "Amazonas"])
    pcodes, unknown = resolve_aliases(names, {"Chocó": "CO27", "Los Santos": "PA07"})
    assert pcodes.tolist() == ["CO27", "PA07", "", "", ""]
    assert unknown == {"Amazonas": 2}
