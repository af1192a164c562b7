"""An area table keyed by pcode (population, shares, service coverage) -> observations.

``mapping`` maps a source column (header name, or HXL tag pattern when it starts with ``#``) to a
standard variable name. A target ending in ``:pct`` (``"children_share:pct"``) declares the column
as percent: its values, with or without a ``%`` sign, are divided by 100. Only the mapping decides:
HXL's ``+pct`` attribute is written over 0-100 percentages and over 0-1 fractions alike (the demo
population table holds fractions under ``#population+children+pct``), so it is not trusted to.
Anywhere else a ``%`` sign is a problem rather than a guess. Variables ending in ``_share`` must
lie between 0 and 1; a share column over 1 gets a problem suggesting ``:pct``.

The pcode column is ``pcode_column`` or, failing that, the finest ``#admN+code``/``+pcode`` tag,
else a typical header (``ADM2_PCODE``, ``admin2Pcode``, ``pcode``, ``P-Code``...); its level,
when the tag or name says it, becomes ``admin_level``. The period is ``period``, or each row's
``period_column``, or a column tagged ``#date`` or headed ``date``/``period``/``year`` (a bare
year means 1 January). With none of them the table is refused, saying which option to give.

A table by area name instead (``name_column``, with the mapping's ``aliases``): each name is
matched to one known area (``areas``, within ``country_iso3`` and ``level`` when given) by
``sources.names.match_area_names``, aliases first; a name of no known area is a row problem
``unknown_name``, a name shared by several areas ``ambiguous_name`` (both quarantined).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd

from riskwatch.sources.names import AMBIGUOUS, UNKNOWN, match_area_names
from riskwatch.sources.report import Problem, ReadResult
from riskwatch.sources.tabular import TableRead, find_column, read_table, result_from_table
from riskwatch.sources.values import (
    RowChecks,
    finish_wide_rows,
    missing_column,
    observation_frame,
    parse_date,
    parse_number_column,
)

MAX_LEVEL = 5
_VARIABLE_RE = re.compile(r"[a-z][a-z0-9_]*")
_PCODE_NAMES = ["pcode", "p_code", "P-Code", "adm_pcode", "location_code"]
_PERIOD_NAMES = ["date", "period", "reference_period_start", "year"]


def _refuse(result: ReadResult, rule: str, message: str, column: str | None = None) -> ReadResult:
    result.problems.append(Problem(rule=rule, message=message, column=column, fatal=True))
    return result


def _find(table: TableRead, key: str) -> str | None:
    """A column by tag pattern (``#...``) or by header name."""
    return (
        find_column(table, tags=[key]) if key.startswith("#") else find_column(table, names=[key])
    )


def find_pcode_column(table: TableRead) -> tuple[str | None, int | None]:
    """The finest pcode column (by HXL tag, then typical names) and the level it states."""
    for level in range(MAX_LEVEL, 0, -1):
        column = find_column(table, tags=[f"#adm{level}+code-parent-origin"])
        if column:
            return column, level
    for level in range(MAX_LEVEL, 0, -1):
        column = find_column(
            table,
            names=[
                f"ADM{level}_PCODE",
                f"admin{level}Pcode",
                f"adm{level}_code",
                f"admin{level}_code",
            ],
        )
        if column:
            return column, level
    column = find_column(table, tags=["#adm+code-parent-origin"], names=_PCODE_NAMES)
    return column, None


def _level_of(name: str, tag: str | None) -> int | None:
    for text in filter(None, (tag, name)):
        if match := re.search(r"adm(?:in)?(\d)", text, re.I):
            return int(match.group(1))
    return None


def _parse_period(text: str) -> dt.date | None:
    # Population tables are often dated by year alone.
    if re.fullmatch(r"\d{4}", text.strip()):
        return dt.date(int(text.strip()), 1, 1)
    return parse_date(text)


def read_area_table(
    path: str | Path,
    *,
    mapping: dict[str, str],
    pcode_column: str | None = None,
    period: dt.date | None = None,
    period_column: str | None = None,
    sheet: str | int | None = None,
    name_column: str | None = None,
    aliases: dict[str, str] | None = None,
    areas: pd.DataFrame | None = None,
    country_iso3: str | None = None,
    level: int | None = None,
) -> ReadResult:
    """Read an area table into observations of the mapped variables, validating every row.

    With ``name_column`` the rows name their areas: ``areas`` (pcode, name, admin_level,
    country_iso3) are the known areas the names are matched against (see the module docstring).

    Row problems (the row is dropped): an empty pcode, a value that is not a number, a share out
    of 0-1, a bad date in the period column, two rows for the same pcode and period (every copy
    dropped). Empty cells are missing values, not zeros and not problems.
    """
    table = read_table(path, sheet=sheet)
    result = result_from_table(table, observation_frame())
    if table.fatal:
        return result
    if not mapping:
        return _refuse(result, "bad_mapping", "the mapping is empty: map at least one column")

    targets: dict[str, tuple[str, bool]] = {}  # data column -> (variable, percent)
    for source, target in mapping.items():
        variable, _, unit = target.partition(":")
        if not _VARIABLE_RE.fullmatch(variable) or unit not in ("", "pct"):
            _refuse(
                result,
                "bad_mapping",
                f"mapping target {target!r} is not a variable name (lower_snake_case, "
                "optionally followed by ':pct')",
                column=source,
            )
            continue
        column = _find(table, source)
        if column is None:
            result.problems.append(missing_column(source, source))
            continue
        targets[column] = (variable, unit == "pct")

    names: pd.Series | None = None
    if name_column is not None:
        pcode_col, level = _find(table, name_column), level
        if pcode_col is None:
            result.problems.append(missing_column("area name", name_column))
        elif areas is None:
            _refuse(result, "missing_areas", "matching area names needs the known areas")
    elif pcode_column is not None:
        pcode_col, level = _find(table, pcode_column), None
        if pcode_col is not None:
            level = _level_of(
                table.headers[table.columns.index(pcode_col)], table.tag_of(pcode_col)
            )
    else:
        pcode_col, level = find_pcode_column(table)
    if pcode_col is None and name_column is None:
        result.problems.append(
            missing_column(
                "pcode", pcode_column or "an #admN+code tag or a pcode header (give pcode_column)"
            )
        )

    date_col = None
    if period is None:
        date_col = (
            _find(table, period_column)
            if period_column
            else find_column(table, tags=["#date"], names=_PERIOD_NAMES)
        )
        if period_column and date_col is None:
            result.problems.append(missing_column(period_column, period_column))
        elif date_col is None:
            _refuse(
                result,
                "missing_period",
                "the table has no date column: give the period it describes (period=, e.g. "
                "--period 2024-01-01) or the column holding it (period_column=)",
            )
    if result.fatal:
        return result

    data = table.data
    checks = RowChecks(table.row_numbers)
    pcodes = data[pcode_col]
    row_levels: object = level
    row_countries: object = None
    if name_column is not None:
        assert areas is not None  # refused above
        names = pcodes
        found = match_area_names(names, areas, aliases=aliases, country_iso3=country_iso3,
                                 level=level)
        messages = [found.message(i, n) for i, n in enumerate(names.tolist())]
        for outcome, rule in ((UNKNOWN, "unknown_name"), (AMBIGUOUS, "ambiguous_name")):
            checks.flag(found.outcomes == outcome, rule=rule, message=messages,
                        column=pcode_col, values=names)
        pcodes = pd.Series(found.pcodes, index=names.index, dtype=object)
        row_levels = pd.Series(found.admin_levels).astype("Int64")
        row_countries = pd.Series(found.countries, dtype=object)
        result.meta["area_names"] = int((found.outcomes != "empty").sum())
    checks.flag(
        ((names if names is not None else pcodes) == "").to_numpy(),
        rule="missing_pcode" if names is None else "missing_name",
        message="empty pcode" if names is None else "empty area name",
        column=pcode_col,
        values=pcodes,
    )
    if date_col is not None:
        periods, errors = [], []
        for text in data[date_col].tolist():
            try:
                value = _parse_period(text)
                periods.append(value)
                errors.append(None if value is not None else "the period is empty")
            except ValueError as error:
                periods.append(None)
                errors.append(str(error))
        checks.flag_errors(errors, rule="bad_date", column=date_col, values=data[date_col])
    else:
        periods = [period] * len(data)
    duplicated = pd.DataFrame({"p": pcodes, "d": periods}).duplicated(keep=False).to_numpy()
    checks.flag(
        duplicated & (pcodes != "").to_numpy(),
        rule="duplicate_area",
        message="more than one row for this pcode and period; every copy is dropped",
        column=pcode_col,
        values=pcodes,
    )

    parts = []
    for column, (variable, percent) in targets.items():
        values, errors = parse_number_column(data[column], percent=percent)
        checks.flag_errors(errors, rule="bad_number", column=column, values=data[column])
        if variable.endswith("_share"):
            checks.flag(
                (values < 0) | (values > 1),
                rule="out_of_range",
                message=f"{variable} must be a fraction between 0 and 1"
                + (
                    " (after dividing the percentage by 100)"
                    if percent
                    else f"; if the column holds percentages, map it as '{variable}:pct'"
                ),
                column=column,
                values=data[column],
            )
        finite = values[np.isfinite(values)]
        if percent and len(finite) and finite.max() <= 0.01:
            result.notes.append(
                f"column {column!r} is read as percent but all its values are at "
                "most 1%: check whether it already holds fractions"
            )
        parts.append(
            pd.DataFrame(
                {
                    "pcode": pcodes.to_numpy(dtype=object),
                    "variable": variable,
                    "period": pd.Series(periods, dtype=object),
                    "value": values,
                    "admin_level": row_levels,
                    "country_iso3": row_countries,
                    "position": np.arange(len(data)),
                }
            )
        )
    finish_wide_rows(result, parts, checks)
    result.meta.update(
        {
            "variables": sorted({v for v, _ in targets.values()}),
            "pcode_column": pcode_col,
            "admin_level": level,
            "periods": sorted({p for p in periods if p is not None}),
        }
    )
    return result
