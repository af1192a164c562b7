"""Any HXL-tagged table (CSV or XLSX) -> observations of the variables its tags stand for.

The hashtag row is found wherever it is in the first rows, below junk rows and the header
(:func:`riskwatch.sources.tabular.read_table`). A table without one is refused: add a hashtag row,
or read the file with ``--kind table --mapping FILE``.

Built-in tags (:data:`BUILTIN_VARIABLES`), matched exactly (attributes in any order; ``+ind``
is the default unit and ``+pcode`` the same as ``+code``):

==============================  ======================
tag                             variable
==============================  ======================
``#affected+idps``              ``idps``
``#affected+idps+m`` / ``+f``   ``idps_male`` / ``idps_female``
``#population``                 ``population``
``#population+total``           ``population``
``#population+children+pct``    ``children_share``
``#population+f+pct``           ``women_share``
==============================  ======================

The table is kept small on purpose: a tag with more attributes (``#affected+idps+conflict``) or
a generic count (``#event+num``, which does not say of what) is not guessed at; a table whose tags
map to nothing is refused with the list of its tags, and ``[variables]`` in a mapping file
(:mod:`riskwatch.sources.mapping`) maps any column (by tag pattern or header) and overrides the
built-in table. Shares must lie in 0-1: HXL's ``+pct`` is used over fractions and over 0-100
alike, so a column of percentages is mapped explicitly as ``"variable:pct"``.

The area of a row is its finest pcode among ``#adm5+code`` ... ``#adm1+code`` (``+pcode``
accepted) and ``#country+code``, with ``admin_level`` set accordingly (origin and parent codes
are not the row's area), else ``#adm+code`` (level left to pcode matching); or the mapping's
``pcode_column``; or its ``name_column`` turned into
pcodes by ``[aliases]`` (every name not found is reported). The period is the mapping's
``period``, else each row's ``period_column``, else the first of ``#date+reported``,
``#date+start`` and ``#date``; dates in mixed formats are read when they can be read one way only
(:func:`riskwatch.sources.values.parse_date_unambiguous`; a bare year is 1 January). The round
comes from ``#round+code`` or ``#round``, the operation from ``#operation+name``, the assessment
type from ``#assessment+type``.

libhxl was measured for this reader and not used: ``read_table`` already finds the hashtag row
(also below junk rows) and reads Windows-1252 files that libhxl garbles, libhxl's date
normaliser silently reads ``03/04/2015`` as 3 April, and libhxl 5.2.2 needs the undeclared
``six`` package and logs to stdout.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskwatch.sources.countries import to_iso3
from riskwatch.sources.mapping import (
    mapped_column,
    read_mapped_table,
    resolve_aliases,
)
from riskwatch.sources.report import Problem, ReadResult
from riskwatch.sources.tabular import (
    TableRead,
    find_column,
    tag_matches,
)
from riskwatch.sources.values import (
    RowChecks,
    finish_wide_rows,
    normalise_round,
    parse_date_unambiguous,
    parse_number_column,
)

#: HXL tag -> standard variable, applied to columns whose tag matches exactly.
BUILTIN_VARIABLES: dict[str, str] = {
    "#affected+idps": "idps",
    "#affected+idps+m": "idps_male",
    "#affected+idps+f": "idps_female",
    "#population": "population",
    "#population+total": "population",
    "#population+children+pct": "children_share",
    "#population+f+pct": "women_share",
}
#: Variables that count people: a negative value is an error, not a figure.
_COUNTS = frozenset({"idps", "idps_male", "idps_female", "population"})
MAX_LEVEL = 5
_DATE_TAGS = ["#date+reported", "#date+start", "#date"]
_LEVEL_RE = re.compile(r"adm(?:in)?(\d)", re.IGNORECASE)


def read_hxl_table(path: str | Path, *, mapping: dict | None = None) -> ReadResult:
    """Read an HXL-tagged table into observations, validating every row.

    Fatal: no hashtag row, a bad mapping, a mapped column missing or ambiguous, no column that
    maps to a variable, no area column, no period. Row problems (the row is dropped): no area,
    an area name not in ``[aliases]``, a bad or empty date, a value that is not a number, a
    negative count, a share outside 0-1, two rows for the same area, period, operation and
    assessment type (every copy). Empty cells are missing values, neither zero nor problems.
    """
    options, table, result = read_mapped_table(path, mapping or {}, "hxl")
    result.meta["hxl_row"] = table.hxl_row
    if result.fatal:
        return result
    if table.hxl_row is None:
        return _refuse(result, "no_hxl_row", _no_hxl_message(table, Path(path).name))

    targets = _targets(table, options, result)
    area = _area_columns(table, options, result)
    period_column = _period_column(table, options, result)
    if result.fatal:
        return result

    data = table.data
    checks = RowChecks(table.row_numbers)
    pcodes, levels = _areas(data, area, options, checks, result)
    country = _countries(data, table, options)
    periods = _periods(data, period_column, options, checks)
    extra_columns = {
        key: find_column(table, tags=tags)
        for key, tags in (
            ("round", ["#round+code", "#round"]),
            ("operation", ["#operation+name"]),
            ("assessment_type", ["#assessment+type"]),
        )
    }
    extras = {key: _optional_text(data, column) for key, column in extra_columns.items()}
    extras["round"] = [normalise_round(r) if r else None for r in extras["round"]]
    _flag_duplicates(pcodes, periods, extras, checks, result)

    parts = []
    for column, (variable, percent) in targets.items():
        values = _values(data, column, variable, percent, checks)
        parts.append(
            pd.DataFrame(
                {
                    "pcode": pcodes,
                    "variable": variable,
                    "period": pd.Series(periods, dtype=object),
                    "value": values,
                    "operation": extras["operation"],
                    "assessment_type": extras["assessment_type"],
                    "round": extras["round"],
                    "admin_level": levels,
                    "country_iso3": country,
                    "position": np.arange(len(data)),
                }
            )
        )
    finish_wide_rows(result, parts, checks)
    used = {*targets, period_column, *extra_columns.values(), *area.get("levels", {}).values()}
    used.add(area["column"])
    unused = [t for c, t in zip(table.columns, table.tags, strict=True) if t and c not in used]
    if unused:
        result.notes.append(f"tagged columns not read: {', '.join(unused)}")
    result.meta.update(
        {
            "variables": {v: _label(table, c) for c, (v, _) in targets.items()},
            "periods": sorted({p for p in periods if p is not None}),
        }
    )
    return result


def _refuse(result: ReadResult, rule: str, message: str) -> ReadResult:
    result.problems.append(Problem(rule=rule, message=message, fatal=True))
    return result


def _no_hxl_message(table: TableRead, name: str) -> str:
    malformed = next((p for p in table.problems if p.rule == "invalid_hxl_row"), None)
    where = (
        f"its row {malformed.row} looks like tags but they do not start with '#'; fix them, "
        if malformed is not None
        else "add one under the header (e.g. #adm2+code, #affected+idps, #date+reported), "
    )
    return f"{name} has no HXL hashtag row: {where}or read it with --kind table --mapping FILE"


def _label(table: TableRead, column: str) -> str:
    """How a column is named in notes: its tag, else its header."""
    return table.tag_of(column) or table.headers[table.columns.index(column)]


def _targets(
    table: TableRead, options: dict[str, Any], result: ReadResult
) -> dict[str, tuple[str, bool]]:
    """Data column -> (variable, percent): the mapping's ``[variables]``, then built-in tags."""
    targets: dict[str, tuple[str, bool]] = {}
    for key, target in options.get("variables", {}).items():
        column, problem = mapped_column(table, key, role="variables")
        if problem is not None:
            result.problems.append(problem)
            continue
        variable, _, unit = target.partition(":")
        targets[column] = (variable, unit == "pct")
    mapped = {variable for variable, _ in targets.values()}
    builtin: dict[str, list[str]] = {}
    for column, tag in zip(table.columns, table.tags, strict=True):
        if column in targets or tag is None:
            continue
        for pattern, variable in BUILTIN_VARIABLES.items():
            if variable not in mapped and tag_matches(pattern, tag) == 0:
                builtin.setdefault(variable, []).append(column)
    for variable, columns in builtin.items():
        if len(columns) > 1:
            labels = ", ".join(
                f"{_label(table, c)} ({table.headers[table.columns.index(c)]!r})" for c in columns
            )
            result.problems.append(
                Problem(
                    rule="ambiguous_column",
                    fatal=True,
                    message=(
                        f"columns {labels} would all give {variable}: map the right one in "
                        "[variables] of a --mapping file"
                    ),
                )
            )
            continue
        targets[columns[0]] = (variable, False)
    if not targets and not result.fatal:
        tags = ", ".join(t for t in table.tags if t) or "none"
        result.problems.append(
            Problem(
                rule="no_mapped_columns",
                fatal=True,
                message=(
                    f"no column's HXL tag maps to a riskwatch variable (tags: {tags}; built-in: "
                    f"{', '.join(BUILTIN_VARIABLES)}): map columns in [variables] of a "
                    '--mapping file, e.g. "#targeted+f" = "women_targeted"'
                ),
            )
        )
    return targets


def _area_columns(table: TableRead, options: dict[str, Any], result: ReadResult) -> dict:
    """Where each row's area comes from: a mapped pcode or name column, or the pcode tags."""
    for key, kind in (("pcode_column", "pcode"), ("name_column", "name")):
        if key in options:
            column, problem = mapped_column(table, options[key], role=key)
            if problem is not None:
                result.problems.append(problem)
                return {"kind": kind, "column": None}
            header = table.headers[table.columns.index(column)]
            level = None
            if kind == "pcode":
                found = _LEVEL_RE.search(table.tag_of(column) or header)
                level = int(found.group(1)) if found else None
            return {"kind": kind, "column": column, "level": level}
    levels = {}
    for level in range(MAX_LEVEL, 0, -1):
        column = find_column(table, tags=[f"#adm{level}+code-parent-origin"])
        if column is not None:
            levels[level] = column
    country = find_column(table, tags=["#country+code-origin"])
    if country is not None:
        levels[0] = country
    generic = find_column(table, tags=["#adm+code-parent-origin"])
    if not levels and generic is not None:
        # A pcode of unstated level (gazetteers, riskwatch's own exports): matching infers it.
        return {"kind": "pcode", "column": generic, "level": None}
    if not levels:
        names = [t for t in table.tags if t and re.match(r"#adm\d", t)]
        hint = (
            f"it names areas ({', '.join(names)}) but has no pcodes: give name_column and "
            "[aliases] in a --mapping file"
            if names
            else "add a pcode column tagged #adm1+code or #adm2+code, or give pcode_column in "
            "a --mapping file"
        )
        result.problems.append(
            Problem(
                rule="missing_column",
                fatal=True,
                column="pcode",
                message=f"no area pcode column (#admN+code, #country+code): {hint}",
            )
        )
    return {"kind": "tags", "column": next(iter(levels.values()), None), "levels": levels}


def _areas(
    data: pd.DataFrame, area: dict, options: dict[str, Any], checks: RowChecks, result: ReadResult
) -> tuple[np.ndarray, list[int | None]]:
    """The pcode and admin level of each row; rows without an area flagged."""
    if area["kind"] == "tags":
        pcodes = np.full(len(data), "", dtype=object)
        levels: list[int | None] = [None] * len(data)
        # Coarsest first, so that the finest non-empty pcode of a row is the one kept.
        for level in sorted(area["levels"]):
            text = data[area["levels"][level]].to_numpy(dtype=object)
            if level == 0:
                text = np.array([to_iso3(t) or t.upper() for t in text], dtype=object)
            has = text != ""
            pcodes[has] = text[has]
            for position in np.flatnonzero(has):
                levels[position] = level
        checks.flag(
            pcodes == "",
            rule="missing_pcode",
            message="the row has no area pcode",
            column=area["column"],
            values=None,
        )
        return pcodes, levels
    column = area["column"]
    text = data[column]
    if area["kind"] == "pcode":
        pcodes = text.to_numpy(dtype=object)
    else:
        pcodes, unknown = resolve_aliases(text, options["aliases"])
        numbers = checks.row_numbers
        for name, count in unknown.items():
            first = int(numbers[np.flatnonzero((text == name).to_numpy())[0]])
            result.problems.append(
                Problem(
                    rule="unknown_area_name",
                    message=f"area name not in the mapping's [aliases] ({count} row(s))",
                    row=first,
                    column=column,
                    value=name,
                )
            )
        checks.bad |= (text != "").to_numpy() & (pcodes == "")
    checks.flag(
        (text == "").to_numpy(),
        rule="missing_pcode",
        message="the area is empty",
        column=column,
        values=None,
    )
    return pcodes, [area["level"]] * len(data)


def _countries(data: pd.DataFrame, table: TableRead, options: dict[str, Any]) -> list:
    if "country" in options:
        return [options["country"]] * len(data)
    column = find_column(table, tags=["#country+code-origin"])
    if column is None:
        return [None] * len(data)
    return [(to_iso3(t) or t.upper()) if t else None for t in data[column].tolist()]


def _period_column(table: TableRead, options: dict[str, Any], result: ReadResult) -> str | None:
    if "period" in options:
        return None
    if "period_column" in options:
        column, problem = mapped_column(table, options["period_column"], role="period_column")
        if problem is not None:
            result.problems.append(problem)
        return column
    for tag in _DATE_TAGS:
        hits = [
            c for c, t in zip(table.columns, table.tags, strict=True) if tag_matches(tag, t) == 0
        ]
        if hits:
            return hits[0]
    result.problems.append(
        Problem(
            rule="missing_period",
            fatal=True,
            message=(
                "the table has no date column (#date+reported, #date+start or #date): give "
                "period = 2024-01-01 (the date it describes) or period_column in a --mapping file"
            ),
        )
    )
    return None


def _parse_period(text: str) -> dt.date | None:
    # Population and service tables are often dated by the year alone.
    if re.fullmatch(r"\d{4}", text.strip()):
        return dt.date(int(text.strip()), 1, 1)
    return parse_date_unambiguous(text)


def _periods(
    data: pd.DataFrame, column: str | None, options: dict[str, Any], checks: RowChecks
) -> list[dt.date | None]:
    if column is None:
        return [options["period"]] * len(data)
    periods: list[dt.date | None] = []
    errors: list[str | None] = []
    cache: dict[str, tuple[dt.date | None, str | None]] = {}
    for text in data[column].tolist():
        if text not in cache:
            try:
                value = _parse_period(text)
                cache[text] = (value, None if value is not None else "the date is empty")
            except ValueError as error:
                cache[text] = (None, str(error))
        periods.append(cache[text][0])
        errors.append(cache[text][1])
    rules = ["missing_date" if e == "the date is empty" else "bad_date" for e in errors]
    for rule in ("bad_date", "missing_date"):
        checks.flag(
            [e is not None and r == rule for e, r in zip(errors, rules, strict=True)],
            rule=rule,
            message=errors,
            column=column,
            values=data[column],
        )
    return periods


def _optional_text(data: pd.DataFrame, column: str | None) -> list[str | None]:
    if column is None:
        return [None] * len(data)
    return [v or None for v in data[column].tolist()]


def _flag_duplicates(
    pcodes: np.ndarray,
    periods: list,
    extras: dict[str, list],
    checks: RowChecks,
    result: ReadResult,
) -> None:
    keys = pd.DataFrame(
        {
            "pcode": pcodes,
            "period": pd.Series(periods, dtype=object),
            "operation": extras["operation"],
            "assessment_type": extras["assessment_type"],
        }
    )
    duplicated = keys.duplicated(keep=False).to_numpy() & (pcodes != "")
    if duplicated.any():
        checks.flag(
            duplicated,
            rule="duplicate_area",
            message="more than one row for this area and period; every copy is dropped",
            column="pcode",
            values=list(pcodes),
        )
        result.notes.append(
            "rows repeat an area and period: if they are parts of one figure (a DTM export "
            "split by displacement reason), read the file with --kind dtm"
        )


def _values(
    data: pd.DataFrame, column: str, variable: str, percent: bool, checks: RowChecks
) -> np.ndarray:
    text = data[column]
    values, errors = parse_number_column(text, percent=percent)
    checks.flag_errors(errors, rule="bad_number", column=column, values=text)
    if variable in _COUNTS:
        checks.flag(
            values < 0,
            rule="negative_value",
            message=f"{variable} cannot be negative",
            column=column,
            values=text,
        )
    if variable.endswith("_share"):
        checks.flag_shares(
            values, variable=variable, column=column, fix=f"map it as '{variable}:pct'", values=text
        )
    return values
