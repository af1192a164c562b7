"""IOM DTM API v3 rows (the API's CSV/XLSX export, HXL row optional) -> IDP observations.

The export has several rows per area and round, split by ``displacementReason`` and by origin;
they are summed per (area, reporting date, operation, assessment type, round), and never across
assessment types: a baseline (BA) and a site (SA) assessment of the same round count the same
people (CONTRACTS "Observations"). Variables: ``idps`` (``numPresentIdpInd``), ``idps_male``
(``numberMales``) and ``idps_female`` (``numberFemales``); the sex split only where every summed
row has it, since an empty cell is missing, not zero.

The area is the pcode of the row's ``adminLevel`` (``admin2Pcode``, ``admin1Pcode``, or for
country rows the ISO3 ``admin0Pcode``), kept as published. The period is the reporting date.
DTM publishes the same total at every level, so admin0 = sum(admin1) = sum(admin2) per round,
operation and assessment type is checked, and a mismatch is a non-fatal problem.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from riskwatch.sources.report import Problem, ReadResult
from riskwatch.sources.tabular import (
    TableRead,
    describe_field,
    find_columns,
    read_table,
    result_from_table,
    table_from_frame,
)
from riskwatch.sources.values import (
    RowChecks,
    missing_column,
    normalise_round,
    observation_frame,
    parse_date_column,
    parse_number_column,
)

#: Finest admin level a DTM row may carry (the API publishes 0-2; admin3 appears in some exports).
MAX_LEVEL = 3

# (header names, HXL tag patterns) per field; names first because they are the API's own.
_FIELDS: dict[str, tuple[list[str], list[str]]] = {
    "value": (["numPresentIdpInd"], ["#affected+idps-m-f-hh"]),
    "date": (["reportingDate"], ["#date+reported-year-month"]),
    "level": (["adminLevel"], ["#adm+level"]),
    "round": (["roundNumber"], ["#round+code"]),
    "operation": (["operation"], ["#operation+name"]),
    "assessment_type": (["assessmentType"], ["#assessment+type"]),
    "males": (["numberMales"], ["#affected+idps+m-hh"]),
    "females": (["numberFemales"], ["#affected+idps+f-hh"]),
    "admin0": (["admin0Pcode"], ["#country+code"]),
}
for _level in range(1, MAX_LEVEL + 1):
    _FIELDS[f"admin{_level}"] = ([f"admin{_level}Pcode"], [f"#adm{_level}+code-origin"])

#: The keys that identify one DTM figure; values are summed over everything else.
GROUP_KEYS = [
    "admin_level",
    "pcode",
    "country_iso3",
    "period",
    "operation",
    "assessment_type",
    "round",
]


def read_dtm_table(path: str | Path, *, sheet: str | int | None = None) -> ReadResult:
    """Read a DTM API export (CSV or XLSX) into IDP observations, validating every row.

    Row problems (the row is dropped): an admin level that is not a whole number 0-3, a missing
    pcode for the row's level, a country code that is not three letters, a missing, non-numeric
    or negative figure, a bad reporting date. Missing required columns (figure, reporting date,
    admin0 pcode) are fatal. ``meta`` lists the rounds (country, operation, assessment type,
    round, reporting date), the reporting dates, and the encoding.
    """
    return _read_dtm(read_table(path, sheet=sheet))


def read_dtm_frame(frame: pd.DataFrame) -> ReadResult:
    """Read DTM API rows already in memory (e.g. the API's JSON records) like an export.

    The frame has the export's columns (``numPresentIdpInd``, ``reportingDate``, ``admin0Pcode``,
    ...); cells may be numbers, text or missing. The rules are those of :func:`read_dtm_table`;
    problem rows count the records from 1.
    """
    return _read_dtm(table_from_frame(frame))


def _read_dtm(table: TableRead) -> ReadResult:
    """Validate and sum the rows of a DTM table (see :func:`read_dtm_table`)."""
    result = result_from_table(table, observation_frame(), hxl=table.hxl_row is not None)
    if table.fatal:
        return result
    columns = find_columns(table, _FIELDS)
    for key in ("value", "date", "admin0"):
        if columns[key] is None:
            result.problems.append(missing_column(key, describe_field(_FIELDS, key)))
    if result.fatal:
        return result
    for key in ("operation", "assessment_type", "round"):
        if columns[key] is None:
            result.notes.append(f"no {describe_field(_FIELDS, key)} column: {key} left empty")
    if columns["level"] is None:
        result.notes.append("no adminLevel column: each row's level is that of its finest pcode")

    data = table.data
    checks = RowChecks(table.row_numbers)
    level = _admin_levels(data, columns, checks)
    pcode = _pcodes(data, columns, level, checks)
    country = data[columns["admin0"]].str.upper()
    checks.flag(
        ~country.str.fullmatch(r"[A-Z]{3}").fillna(False).to_numpy(),
        rule="bad_country_code",
        message="admin0 pcode is not a three-letter ISO3 code",
        column=columns["admin0"],
        values=data[columns["admin0"]],
    )
    value = _counts(data, columns["value"], checks, required=True)
    males = _counts(data, columns["males"], checks, required=False)
    females = _counts(data, columns["females"], checks, required=False)
    dates, date_errors = parse_date_column(data[columns["date"]])
    checks.flag_errors(
        date_errors, rule="bad_date", column=columns["date"], values=data[columns["date"]]
    )
    checks.flag(
        [d is None and e is None for d, e in zip(dates, date_errors, strict=True)],
        rule="missing_date",
        message="reporting date is empty",
        column=columns["date"],
        values=data[columns["date"]],
    )

    rows = pd.DataFrame(
        {
            "admin_level": level,
            "pcode": pcode,
            "country_iso3": country.to_numpy(dtype=object),
            "period": pd.Series(dates, dtype=object),
            "operation": _optional_text(data, columns["operation"]),
            "assessment_type": _optional_text(data, columns["assessment_type"]),
            "round": _optional_text(data, columns["round"], normalise=normalise_round),
            "value": value,
            "males": males,
            "females": females,
        }
    )[~checks.bad]
    checks.report(result)
    if rows.empty:
        return result

    rows["admin_level"] = rows["admin_level"].astype("int64")
    summed = _sum_figures(rows, result)
    result.problems.extend(level_total_problems(summed))
    result.frame = _long(summed)
    result.meta.update(round_meta(summed))
    return result


def _admin_levels(data: pd.DataFrame, columns: dict, checks: RowChecks) -> np.ndarray:
    """The admin level of each row: the ``adminLevel`` column, else the finest pcode given."""
    if columns["level"] is None:
        level = np.zeros(len(data), dtype=float)
        for n in range(1, MAX_LEVEL + 1):
            if columns[f"admin{n}"] is not None:
                level[(data[columns[f"admin{n}"]] != "").to_numpy()] = n
        return level
    text = data[columns["level"]]
    parsed, _ = parse_number_column(text)
    ok = np.isfinite(parsed) & (parsed == np.round(parsed)) & (parsed >= 0) & (parsed <= MAX_LEVEL)
    checks.flag(
        ~ok,
        rule="bad_admin_level",
        message=f"admin level must be 0-{MAX_LEVEL}",
        column=columns["level"],
        values=text,
    )
    return np.where(ok, parsed, 0)


def _pcodes(data: pd.DataFrame, columns: dict, level: np.ndarray, checks: RowChecks) -> np.ndarray:
    """The pcode of each row's own level (the ISO3 code for admin0 rows), as published."""
    pcode = np.full(len(data), "", dtype=object)
    for n in range(MAX_LEVEL + 1):
        at_level = level == n
        if not at_level.any():
            continue
        column = columns[f"admin{n}"]
        if column is None:
            checks.flag(
                at_level,
                rule="missing_pcode",
                message=f"admin level {n} row but the file has no admin{n} pcode column",
                column=None,
            )
            continue
        text = data[column].to_numpy(dtype=object)
        pcode[at_level] = text[at_level]
        empty = at_level & (text == "")
        checks.flag(
            empty,
            rule="missing_pcode",
            message=f"admin level {n} row without a pcode",
            column=column,
            values=data[column],
        )
    return pcode


def _counts(data: pd.DataFrame, column: str | None, checks: RowChecks, *, required: bool):
    """A column of head counts as floats (NaN when empty); bad and negative numbers flagged."""
    if column is None:
        return np.full(len(data), np.nan)
    values, errors = parse_number_column(data[column])
    checks.flag_errors(errors, rule="bad_number", column=column, values=data[column])
    checks.flag(
        values < 0,
        rule="negative_value",
        message="a head count cannot be negative",
        column=column,
        values=data[column],
    )
    if required:
        empty = (data[column] == "").to_numpy()
        checks.flag(
            empty,
            rule="missing_value",
            message="the IDP figure is empty",
            column=column,
            values=data[column],
        )
    return values


def _optional_text(data: pd.DataFrame, column: str | None, normalise=None) -> pd.Series:
    if column is None:
        return pd.Series([None] * len(data), dtype=object)
    values = [(normalise(v) if normalise else v) or None for v in data[column].tolist()]
    return pd.Series(values, dtype=object)


def _sum_figures(rows: pd.DataFrame, result: ReadResult) -> pd.DataFrame:
    """Sum the rows of one figure (split by reason and origin); sex split only when complete."""
    grouped = rows.groupby(GROUP_KEYS, dropna=False, sort=True)
    summed = grouped.agg(
        value=("value", "sum"),
        rows=("value", "size"),
        males=("males", "sum"),
        males_n=("males", "count"),
        females=("females", "sum"),
        females_n=("females", "count"),
    ).reset_index()
    for sex in ("males", "females"):
        complete = summed[f"{sex}_n"] == summed["rows"]
        partial = (summed[f"{sex}_n"] > 0) & ~complete
        if partial.any():
            result.notes.append(
                f"{int(partial.sum())} figure(s) have {sex} on only some of their rows: "
                f"{sex} left missing for them"
            )
        summed[sex] = summed[sex].where(complete)
    if len(summed) < len(rows):
        result.notes.append(
            f"{len(rows)} rows summed into {len(summed)} figures (split by displacement reason "
            "and origin in the source)"
        )
    return summed


def level_total_problems(
    summed: pd.DataFrame, *, keys: list[str] | None = None, tolerance: float = 0.5
) -> list[Problem]:
    """Non-fatal problems where admin0 != sum(admin1) != sum(admin2) for one round.

    ``summed`` has admin_level, value and the ``keys`` (default: country, operation, assessment
    type, round, period). Only levels present in a round are compared.
    """
    keys = keys or ["country_iso3", "operation", "assessment_type", "round", "period"]
    totals = (
        summed.groupby(keys + ["admin_level"], dropna=False)["value"].sum().unstack("admin_level")
    )
    problems = []
    for key, row in totals.iterrows():
        present = row.dropna()
        if len(present) < 2 or present.max() - present.min() <= tolerance:
            continue
        where = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        parts = [
            f"{'admin0 total' if level == 0 else f'sum of admin{level}'} {total:,.0f}"
            for level, total in present.items()
        ]
        problems.append(
            Problem(
                rule="level_totals_mismatch",
                message=(
                    f"{where.get('country_iso3')} {where.get('operation')} "
                    f"{where.get('assessment_type')} round {where.get('round')} "
                    f"({where.get('period')}): " + ", ".join(parts)
                ),
                value=None if where.get("round") is None else str(where["round"]),
            )
        )
    return problems


def round_meta(summed: pd.DataFrame) -> dict:
    """The rounds and reporting dates seen, for the ingest batch and the report."""
    rounds = (
        summed[["country_iso3", "operation", "assessment_type", "round", "period"]]
        .drop_duplicates()
        .rename(columns={"period": "reporting_date"})
    )
    records = sorted(
        rounds.to_dict("records"),
        key=lambda r: (
            str(r["country_iso3"]),
            str(r["operation"]),
            str(r["assessment_type"]),
            r["reporting_date"],
            _round_key(r["round"]),
        ),
    )
    return {
        "rounds": records,
        "round_codes": sorted({r["round"] for r in records if r["round"]}, key=_round_key),
        "reporting_dates": sorted({r["reporting_date"] for r in records}),
        "countries": sorted({r["country_iso3"] for r in records}),
        "assessment_types": sorted({r["assessment_type"] for r in records if r["assessment_type"]}),
    }


def _round_key(code: object) -> tuple:
    text = "" if code is None else str(code)
    return (0, int(text), "") if re.fullmatch(r"\d+", text) else (1, 0, text)


def _long(summed: pd.DataFrame) -> pd.DataFrame:
    """One row per (figure, variable): idps always, the sex split where present."""
    keys = list(GROUP_KEYS)
    parts = []
    for source, variable in (("value", "idps"), ("males", "idps_male"), ("females", "idps_female")):
        part = summed.loc[summed[source].notna(), keys + [source]].rename(columns={source: "value"})
        part["variable"] = variable
        parts.append(part)
    return observation_frame(pd.concat(parts, ignore_index=True))
