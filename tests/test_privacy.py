"""The privacy rules every view and export relies on (riskwatch.privacy)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from riskwatch.privacy import is_sensitive, redact, sensitivity_label, suppress_small_counts


@pytest.mark.parametrize(
    "variable", ["ct_cases", "ct_victims", "ct_referrals", "vot_identified", "ct_cases_female",
                 "ct_victims_children", "vot_returned"],
)
def test_counts_of_trafficking_cases_or_victims_are_sensitive(variable: str) -> None:
    assert is_sensitive(variable)


@pytest.mark.parametrize(
    "variable", ["idps", "population", "abduction_events", "sexual_violence_events",
                 "conflict_events", "ct_service_coverage", "ipc_phase3plus_share", ""],
)
def test_public_figures_are_not_sensitive(variable: str) -> None:
    assert not is_sensitive(variable)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "variable": ["ct_cases", "ct_cases", "ct_cases", "ct_cases", "ct_cases", "ct_cases",
                     "abduction_events", "idps"],
        "value": [0.0, 1.0, 4.0, 5.0, 7.0, math.nan, 3.0, 2.0],
    })


def test_small_sensitive_counts_are_blanked_zero_and_large_ones_kept() -> None:
    out = suppress_small_counts(_frame(), threshold=5)
    values = out["value"].tolist()
    assert values[0] == 0.0  # a zero reveals no case
    assert math.isnan(values[1]) and math.isnan(values[2])  # 1..4 could identify people
    assert values[3:5] == [5.0, 7.0]  # at and above the threshold
    assert math.isnan(values[5])  # missing stays missing
    assert values[6:] == [3.0, 2.0]  # public counts are never suppressed
    assert out["suppressed"].tolist() == [False, True, True, False, False, False, False, False]


def test_suppression_returns_a_copy() -> None:
    frame = _frame()
    suppress_small_counts(frame, threshold=5)
    assert frame["value"].tolist()[1] == 1.0
    assert "suppressed" not in frame.columns


def test_the_threshold_is_a_setting() -> None:
    values = suppress_small_counts(_frame(), threshold=2)["value"].tolist()
    assert math.isnan(values[1]) and values[2] == 4.0


def test_other_column_names() -> None:
    frame = pd.DataFrame({"indicator": ["ct_victims", "ct_victims"], "n": ["3", "12"]})
    out = suppress_small_counts(frame, 5, value_column="n", variable_column="indicator")
    assert math.isnan(out["n"].tolist()[0]) and out["n"].tolist()[1] == 12.0
    assert out["suppressed"].tolist() == [True, False]


def test_the_sensitivity_label() -> None:
    plain = sensitivity_label(["idps", "population"], 5)
    assert plain.startswith("Sensitivity: restricted humanitarian data.")
    assert "no personal data" in plain and "suppressed" not in plain
    assert sensitivity_label([], 5) == plain
    protected = sensitivity_label({"idps", "ct_cases"}, 5)
    assert protected.startswith(plain)
    assert "below 5 are suppressed" in protected
    assert "below 10 are suppressed" in sensitivity_label(["vot_identified"], 10)


def test_redact_hides_urls_and_addresses() -> None:
    text = redact("550 to ella@example.org via https://hooks.example/abc?token=s")
    assert "example" not in text and "token" not in text
    assert text == "550 to [address] via [url]"
