"""Privacy rules in one place: sensitive variables, small-count suppression, sensitivity labels.

Trafficking data can endanger survivors and responders. riskwatch keeps admin-area aggregates
only; counts of trafficking cases or victims are *sensitive*: wherever they are shown or exported,
a count below the configured threshold (``privacy.small_count_threshold``) is suppressed.
Public event counts (e.g. ``abduction_events``) are not. The UI, the exports and the alerts all
call these functions; none re-implements them.
"""

from __future__ import annotations

import re

import pandas as pd

# Variables that count trafficking cases or victims (CONTRACTS.md: e.g. ``ct_cases``). A mapping
# may add its own with a name matching SENSITIVE_PATTERN.
SENSITIVE_VARIABLES = frozenset({"ct_cases", "ct_victims", "ct_referrals", "vot_identified"})
SENSITIVE_PATTERN = re.compile(r"^(ct_(cases|victims)|vot)_?")


def is_sensitive(variable: str) -> bool:
    """True for variables that count trafficking cases or victims."""
    return variable in SENSITIVE_VARIABLES or bool(SENSITIVE_PATTERN.match(variable))


def suppress_small_counts(
    frame: pd.DataFrame,
    threshold: int,
    *,
    value_column: str = "value",
    variable_column: str = "variable",
) -> pd.DataFrame:
    """A copy with small counts of sensitive variables blanked (zero stays zero).

    A zero is shown: it reveals no case. 1..threshold-1 cases could identify people and are
    replaced by an empty value; the ``suppressed`` column says which rows were blanked.
    """
    out = frame.copy()
    sensitive = out[variable_column].astype(str).map(is_sensitive)
    values = pd.to_numeric(out[value_column], errors="coerce")
    small = sensitive & values.gt(0) & values.lt(threshold)
    out[value_column] = values.where(~small)
    out["suppressed"] = small
    return out


def sensitivity_label(variables: list[str] | set[str], threshold: int) -> str:
    """The label every export carries, naming what was protected and how."""
    base = ("Sensitivity: restricted humanitarian data. Admin-area aggregates only; no personal "
            "data. Share only with organisations working on protection in this response.")
    if any(is_sensitive(v) for v in variables):
        return base + (f" Counts of trafficking cases or victims below {threshold} are "
                       "suppressed.")
    return base
