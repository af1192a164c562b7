"""The indicator catalog: the default files, every check, and the `indicators` commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from riskwatch.catalog import (
    DIMENSIONS,
    CatalogError,
    ScoringModel,
    check_catalog,
    load_catalog,
    variable_kind,
)
from riskwatch.cli import cli
from riskwatch.config import packaged_path

REPO_CATALOG = Path(__file__).resolve().parents[1] / "indicators"

GOOD_INDICATOR = """\
id = "{id}"
name = "Test indicator"
description = "A test indicator."
dimension = "{dimension}"
weight = {weight}
direction = "higher_is_riskier"
inputs = {inputs}
missing = "unavailable"

[rationale]
text = "Why the factor raises the risk, at least twenty characters."
references = ["A reference (2020). A title. A publisher."]

[[transform]]
op = "{op}"
variable = "{variable}"

[normalisation]
method = "goalposts"
lower = 0
upper = 1
"""

GOOD_PROFILE = """\
name = "default"
title = "Test profile"
description = "A profile for the tests."
aggregation = "geometric"

[[dimensions]]
id = "exposure"
name = "Exposure"

[[dimensions]]
id = "vulnerability"
name = "Vulnerability"

[classes]
thresholds = [2.0, 3.5, 5.0, 6.5]
"""


def write_indicator(folder: Path, indicator_id: str, *, dimension: str = "exposure",
                    weight: str = "1", inputs: str = '["idps"]', op: str = "value",
                    variable: str = "idps", file_name: str | None = None) -> Path:
    path = folder / (file_name or f"{indicator_id}.toml")
    path.write_text(GOOD_INDICATOR.format(id=indicator_id, dimension=dimension, weight=weight,
                                          inputs=inputs, op=op, variable=variable))
    return path


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    """A minimal valid catalog: two indicators in two dimensions and one profile."""
    folder = tmp_path / "catalog"
    (folder / "profiles").mkdir(parents=True)
    write_indicator(folder, "alpha")
    write_indicator(folder, "beta", dimension="vulnerability", inputs='["children_share"]',
                    variable="children_share")
    (folder / "profiles" / "default.toml").write_text(GOOD_PROFILE)
    return folder


def messages(folder: Path, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(p) for p in check_catalog(folder, **kwargs)]


# --- the default catalog ---------------------------------------------------------------------


def test_default_catalog_is_clean_and_covers_the_three_dimensions() -> None:
    catalog = load_catalog(REPO_CATALOG)
    model = catalog.model("default")
    assert {i.dimension for i in model.indicators} == set(DIMENSIONS)
    assert len(model.indicators) >= 12
    assert abs(sum(model.global_weights().values()) - 1.0) < 1e-12
    for indicator in model.indicators:
        assert indicator.rationale.references, indicator.id
        assert "http" not in " ".join(indicator.rationale.references)  # cited, not linked
    assert catalog.model("arithmetic").profile.aggregation == "arithmetic"


def test_packaged_catalog_is_identical_to_the_repository_catalog() -> None:
    packaged = packaged_path("indicators")
    repo_files = sorted(p.relative_to(REPO_CATALOG) for p in REPO_CATALOG.rglob("*")
                        if p.is_file())
    packaged_files = sorted(p.relative_to(packaged) for p in packaged.rglob("*") if p.is_file())
    assert repo_files == packaged_files
    for relative in repo_files:
        assert (REPO_CATALOG / relative).read_bytes() == (packaged / relative).read_bytes(), (
            f"{relative} differs: copy indicators/ to riskwatch/defaults/indicators/"
        )


def test_content_hash_is_stable_and_survives_a_round_trip() -> None:
    model = load_catalog(REPO_CATALOG).model("default")
    again = load_catalog(REPO_CATALOG).model("default")
    assert model.content_hash() == again.content_hash()
    rebuilt = ScoringModel.from_content(model.content())
    assert rebuilt.content_hash() == model.content_hash()
    assert [i.id for i in rebuilt.indicators] == [i.id for i in model.indicators]


def test_known_variables_include_standard_reader_and_declared_ones() -> None:
    for name in ("population", "idps", "idps_in_sites", "site_overcrowding",
                 "conflict_events_political_violence", "conflict_fatalities_civilian_targeting",
                 "ipc_phase4_share", "ipc_phase3plus_share", "abduction_events"):
        assert variable_kind(name) is not None, name
    assert variable_kind("ct_cases") is None
    assert variable_kind("ct_cases", ["ct_cases"]) is not None


# --- each check names the file and the key ---------------------------------------------------


def test_minimal_catalog_has_no_problems(catalog_dir: Path) -> None:
    assert messages(catalog_dir) == []


def test_unknown_transform_names_file_and_key(catalog_dir: Path) -> None:
    path = write_indicator(catalog_dir, "gamma", op="moving_average")
    assert messages(catalog_dir) == [
        f"{path}: transform[0].op: unknown transform 'moving_average'; known transforms: "
        "value, per_capita, share, change, ratio_to_rolling_max, sum_over_period, log1p, "
        "winsorise"
    ]


def test_unknown_input_variable(catalog_dir: Path) -> None:
    path = write_indicator(catalog_dir, "gamma", inputs='["ct_cases"]', variable="ct_cases")
    found = messages(catalog_dir)
    assert len(found) == 1
    assert found[0].startswith(f"{path}: inputs[0]: unknown variable 'ct_cases'")
    # A variable a configured mapping declares is accepted (the extra_variables hook).
    assert messages(catalog_dir, extra_variables=["ct_cases"]) == []


@pytest.mark.parametrize("weight", ["0", "-1", '"heavy"', "true", "inf"])
def test_bad_weights(catalog_dir: Path, weight: str) -> None:
    path = write_indicator(catalog_dir, "gamma", weight=weight)
    found = messages(catalog_dir)
    assert len(found) == 1 and found[0].startswith(f"{path}: weight: "), found


def test_duplicate_ids(catalog_dir: Path) -> None:
    write_indicator(catalog_dir, "alpha", file_name="zeta.toml")
    found = messages(catalog_dir)
    assert f"{catalog_dir / 'zeta.toml'}: id: duplicate id 'alpha', also in " \
           f"{catalog_dir / 'alpha.toml'}" in found


def test_unknown_dimension(catalog_dir: Path) -> None:
    path = write_indicator(catalog_dir, "gamma", dimension="hazard")
    assert messages(catalog_dir) == [
        f"{path}: dimension: unknown dimension 'hazard'; known: exposure, vulnerability, "
        "lack_of_capacity"
    ]


def test_step_and_input_consistency(catalog_dir: Path) -> None:
    path = write_indicator(catalog_dir, "gamma", inputs='["idps", "population"]')
    assert messages(catalog_dir) == [
        f"{path}: inputs[1]: input 'population' is not used by any transform step"
    ]
    path.unlink()
    path = write_indicator(catalog_dir, "gamma", inputs='["population"]', variable="idps")
    found = messages(catalog_dir)
    assert f"{path}: transform[0].variable: 'idps' is not listed in inputs (population)" in found


def test_step_order_and_policy_checks(catalog_dir: Path) -> None:
    path = catalog_dir / "gamma.toml"
    text = GOOD_INDICATOR.format(id="gamma", dimension="exposure", weight="1",
                                 inputs='["idps"]', op="change", variable="idps")
    text = text.replace('missing = "unavailable"', 'missing = "zero_in_coverage"')
    text = text.replace('[[transform]]\nop = "change"', '[[transform]]\nop = "log1p"\n\n'
                        '[[transform]]\nop = "change"')
    path.write_text(text)
    found = messages(catalog_dir)
    assert f"{path}: transform[0].op: a transform starts with a step that reads a variable " \
           "(value, sum_over_period, change, ratio_to_rolling_max), not 'log1p'" in found
    assert f"{path}: transform[1].op: 'change' reads a variable and can only be the first " \
           "step" in found
    assert any(m.startswith(f"{path}: missing: zero_in_coverage needs") for m in found)


def test_file_name_must_match_id_and_toml_errors_are_reported(catalog_dir: Path) -> None:
    write_indicator(catalog_dir, "gamma", file_name="other.toml")
    (catalog_dir / "broken.toml").write_text("id = \n")
    found = messages(catalog_dir)
    assert f"{catalog_dir / 'other.toml'}: id: the id 'gamma' differs from the file name " \
           "'other.toml' (name the file gamma.toml)" in found
    broken = f"{catalog_dir / 'broken.toml'}: (file): not valid TOML"
    assert any(m.startswith(broken) for m in found)


def test_missing_and_unknown_keys(catalog_dir: Path) -> None:
    path = catalog_dir / "alpha.toml"
    text = path.read_text().replace('name = "Test indicator"\n', "").replace(
        'weight = 1\n', 'weight = 1\nwieght = 2\n')
    path.write_text(text)
    found = messages(catalog_dir)
    assert f"{path}: name: required key is missing" in found
    assert f"{path}: wieght: unknown key" in found


def test_profile_checks(catalog_dir: Path) -> None:
    profile = catalog_dir / "profiles" / "default.toml"
    profile.write_text(GOOD_PROFILE.replace("[2.0, 3.5, 5.0, 6.5]", "[2.0, 5.0, 3.5, 6.5]")
                       + "\n[weights]\nalpha = 2\nomega = 1\n")
    found = messages(catalog_dir)
    assert f"{profile}: classes.thresholds: thresholds must increase strictly" in found
    profile.write_text(GOOD_PROFILE + "\n[weights]\nalpha = 0\nomega = 1\n")
    found = messages(catalog_dir)
    assert any(m.startswith(f"{profile}: weights.alpha: ") for m in found)
    profile.write_text(GOOD_PROFILE + "\n[weights]\nomega = 1\n")
    assert messages(catalog_dir) == [
        f"{profile}: weights.omega: weight for an unknown indicator 'omega'"
    ]
    profile.write_text(GOOD_PROFILE.replace('id = "vulnerability"', 'id = "lack_of_capacity"'))
    found = messages(catalog_dir)
    assert f"{profile}: dimensions: indicator 'beta' is in dimension 'vulnerability', which " \
           "the profile does not list" in found
    assert f"{profile}: dimensions[1]: no included indicator is in dimension " \
           "'lack_of_capacity'" in found


def test_load_catalog_refuses_a_catalog_with_problems(catalog_dir: Path) -> None:
    write_indicator(catalog_dir, "gamma", op="moving_average")
    with pytest.raises(CatalogError) as caught:
        load_catalog(catalog_dir)
    assert "transform[0].op" in str(caught.value)


def test_missing_folder_is_a_problem(tmp_path: Path) -> None:
    assert messages(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: (file): catalog folder "
                                              "not found"]


# --- commands ---------------------------------------------------------------------------------


def test_check_command_exit_codes(catalog_dir: Path) -> None:
    runner = CliRunner()
    clean = runner.invoke(cli, ["indicators", "check", str(catalog_dir)])
    assert clean.exit_code == 0, clean.output
    assert "2 indicators and 1 profile(s) (default), no problems" in clean.output

    write_indicator(catalog_dir, "gamma", op="moving_average")
    bad = runner.invoke(cli, ["indicators", "check", str(catalog_dir)])
    assert bad.exit_code == 1
    assert f"{catalog_dir / 'gamma.toml'}: transform[0].op: unknown transform" in bad.output
    assert "Traceback" not in bad.output


def test_check_command_defaults_to_the_configured_catalog(tmp_path: Path) -> None:
    shutil.copytree(REPO_CATALOG, tmp_path / "indicators")  # ./indicators wins over the package
    result = CliRunner().invoke(cli, ["indicators", "check"])
    assert result.exit_code == 0, result.output
    assert "indicators and 2 profile(s) (arithmetic, default), no problems" in result.output


def test_list_and_show_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKWATCH_INDICATORS_DIR", str(REPO_CATALOG))
    runner = CliRunner()
    listed = runner.invoke(cli, ["indicators", "list"])
    assert listed.exit_code == 0, listed.output
    for indicator_id in ("abduction_events_rate", "displacement_surge", "ct_service_coverage"):
        assert indicator_id in listed.output
    assert "Profile default: geometric mean" in listed.output

    shown = runner.invoke(cli, ["indicators", "show", "abduction_events_rate"])
    assert shown.exit_code == 0, shown.output
    assert "Global Report on Trafficking in Persons 2018" in shown.output
    assert "sum_over_period(abduction_events, 92 d)" in shown.output

    unknown = runner.invoke(cli, ["indicators", "show", "no_such_indicator"])
    assert unknown.exit_code == 1
    assert "unknown indicator 'no_such_indicator'" in unknown.output
