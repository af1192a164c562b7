"""The common result of every source reader: normalised rows plus every problem found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: Columns of an observations frame returned by a reader (long format, one value per row).
OBSERVATION_COLUMNS = [
    "pcode",  # area pcode as published (e.g. "AF0101"); country rows use the ISO3 code
    "variable",  # standard variable name, e.g. "idps", "conflict_events"
    "period",  # datetime.date: DTM reporting date; monthly data dated on the 1st
    "value",  # float
    "operation",  # DTM operation name or None
    "assessment_type",  # DTM assessment type (BA, SA, ETT) or None
    "round",  # round code as text, or None
]

#: Columns of an areas (Geo)DataFrame returned by a boundaries or gazetteer reader.
AREA_COLUMNS = ["pcode", "name", "admin_level", "parent_pcode", "country_iso3", "geometry"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is, what it is, which rule it breaks."""

    rule: str  # short machine name, e.g. "missing_column", "unknown_pcode", "bad_number"
    message: str  # one sentence a data manager understands
    row: int | None = None  # 1-based data row number in the file (after header/HXL rows)
    column: str | None = None
    value: str | None = None
    fatal: bool = False  # a fatal problem refuses the whole input

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column!r}")
        if self.value is not None:
            where.append(f"value {self.value!r}")
        prefix = ", ".join(where)
        text = f"{self.message} [{self.rule}]"
        return f"{prefix}: {text}" if prefix else text


@dataclass
class ReadResult:
    """What a reader returns: the good rows, the problems, and facts about the input."""

    frame: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    rows_read: int = 0
    rows_quarantined: int = 0
    rows_set_aside: int = 0
    notes: list[str] = field(default_factory=list)  # informational: repairs, normalisations
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. reporting dates, rounds, encoding

    @property
    def fatal(self) -> bool:
        return any(p.fatal for p in self.problems)
