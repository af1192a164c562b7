"""OCHA HDX HAPI tables (CSV/XLSX downloads of the API) -> observations.

The table is recognised by its columns:

* IDPs (``population``, ``reporting_round``, ``assessment_type``, ``operation``) -> ``idps``, per
  operation, assessment type and round, period = ``reference_period_start`` (DTM's reporting
  date); levels are checked like the DTM export (admin0 = sum(admin1) = sum(admin2)).
* Conflict events (``event_type``, ``events``, ``fatalities``) -> ``conflict_events_<event_type>``
  and ``conflict_fatalities_<event_type>`` (an empty fatalities cell is missing, not zero).
* Food security (``ipc_phase``, ``ipc_type``, ``population_fraction_in_phase``) ->
  ``ipc_phase<N>_share`` and ``ipc_phase3plus_share``. Per area and period the ``current``
  analysis is used; a projection only where no current analysis exists for that area and period
  (counted in ``meta["ipc_types_used"]``).

The area is ``admin2_code``, ``admin1_code`` or ``location_code`` (ISO3) by ``admin_level``, as
published. HAPI's own ``error`` column quarantines the row with that message; its ``warning``
values (often pcode repairs such as ``TD07->TCD07``) are summarised in ``notes``. Rows of the same
area and period are summed for counts (IDPs, events); for shares they cannot be, so duplicates are
problems.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from riskwatch.sources.dtm import level_total_problems, round_meta
from riskwatch.sources.report import Problem, ReadResult
from riskwatch.sources.tabular import read_table, result_from_table
from riskwatch.sources.values import (
    RowChecks,
    missing_column,
    normalise_round,
    observation_frame,
    parse_date_column,
    parse_number_column,
)

_COMMON = ["location_code", "admin1_code", "admin2_code", "admin_level", "reference_period_start"]
#: Columns that identify each kind of HAPI table.
TABLE_KINDS: dict[str, list[str]] = {
    "idps": ["population", "reporting_round", "assessment_type", "operation"],
    "conflict_events": ["event_type", "events", "fatalities"],
    "food_security": ["ipc_phase", "ipc_type", "population_fraction_in_phase"],
}
_IPC_TYPE_ORDER = {"current": 0, "first projection": 1, "second projection": 2}
_KEYS = ["admin_level", "pcode", "country_iso3", "period"]


def recognise_hapi_table(columns: list[str]) -> str | None:
    """Which HAPI table these column names are ("idps", "conflict_events", "food_security")."""
    present = {c.strip().lower() for c in columns}
    for kind, needed in TABLE_KINDS.items():
        if set(needed) <= present:
            return kind
    return None


def read_hapi_table(path: str | Path, *, sheet: str | int | None = None) -> ReadResult:
    """Read an HDX HAPI IDP, conflict-event or food-security table into observations."""
    table = read_table(path, sheet=sheet)
    result = result_from_table(table, observation_frame())
    if table.fatal:
        return result
    columns = {h.strip().lower(): c for h, c in zip(table.headers, table.columns, strict=True)}
    kind = recognise_hapi_table(table.headers)
    if kind is None:
        expected = "; ".join(f"{k}: {', '.join(v)}" for k, v in TABLE_KINDS.items())
        result.problems.append(
            Problem(
                rule="unrecognised_table",
                message=(
                    f"not an HDX HAPI IDP, conflict or food-security table (columns {expected})"
                ),
                fatal=True,
            )
        )
        return result
    result.meta["hapi_table"] = kind
    for name in _COMMON:
        if name not in columns:
            result.problems.append(missing_column(name, name))
    if result.fatal:
        return result

    data = table.data.rename(columns={c: h for h, c in columns.items()})
    checks = RowChecks(table.row_numbers)
    _source_errors(data, checks, result)
    # A row HAPI itself rejected (e.g. an "urban pattern" area without a pcode) is reported once,
    # with HAPI's message, not again for the missing pcode that follows from it.
    base = _areas_and_periods(data, checks, ~checks.bad.copy())
    readers = {"idps": _idps, "conflict_events": _conflict, "food_security": _food}
    long = readers[kind](data, base, checks, result)
    checks.report(result)
    result.frame = observation_frame(long)
    return result


def _source_errors(data: pd.DataFrame, checks: RowChecks, result: ReadResult) -> None:
    """Quarantine rows HAPI marked with an error; summarise its warnings in the notes."""
    if "error" in data:
        error = data["error"]
        checks.flag(
            (error != "").to_numpy(),
            rule="source_error",
            message=error.tolist(),
            column="error",
            values=error,
        )
    if "warning" in data:
        warned = data.loc[data["warning"] != "", "warning"]
        rows = pd.Series(checks.row_numbers, index=data.index)[warned.index]
        for warning, group in rows.groupby(warned, sort=True):
            result.notes.append(
                f"HAPI warning on {len(group)} row(s) (first row {int(group.min())}): {warning}"
            )


def _areas_and_periods(data: pd.DataFrame, checks: RowChecks, check: np.ndarray) -> pd.DataFrame:
    """admin_level, pcode (by level), country and period of every row, problems flagged."""
    level_text = data["admin_level"]
    level, _ = parse_number_column(level_text)
    ok_level = np.isin(level, [0, 1, 2])
    checks.flag(
        ~ok_level,
        rule="bad_admin_level",
        message="admin_level must be 0, 1 or 2",
        column="admin_level",
        values=level_text,
    )
    level = np.where(ok_level, level, 0).astype(int)
    by_level = {0: "location_code", 1: "admin1_code", 2: "admin2_code"}
    pcode = np.select(
        [level == n for n in by_level],
        [data[c].to_numpy(dtype=object) for c in by_level.values()],
        default="",
    )
    for n, column in by_level.items():
        checks.flag(
            check & ok_level & (level == n) & (pcode == ""),
            rule="missing_pcode",
            message=f"admin level {n} row without {column}",
            column=column,
            values=data[column],
        )
    dates, errors = parse_date_column(data["reference_period_start"])
    checks.flag_errors(
        errors,
        rule="bad_date",
        column="reference_period_start",
        values=data["reference_period_start"],
    )
    checks.flag(
        [d is None and e is None for d, e in zip(dates, errors, strict=True)],
        rule="missing_date",
        message="reference_period_start is empty",
        column="reference_period_start",
        values=data["reference_period_start"],
    )
    country = data["location_code"].str.upper().to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "admin_level": level,
            "pcode": pcode,
            "country_iso3": country,
            "period": pd.Series(dates, dtype=object),
        }
    )


def _number(data, column, checks, *, required: bool, negative_ok: bool = False) -> np.ndarray:
    values, errors = parse_number_column(data[column])
    checks.flag_errors(errors, rule="bad_number", column=column, values=data[column])
    if not negative_ok:
        checks.flag(
            values < 0,
            rule="negative_value",
            message="cannot be negative",
            column=column,
            values=data[column],
        )
    if required:
        checks.flag(
            (data[column] == "").to_numpy(),
            rule="missing_value",
            message=f"{column} is empty",
            column=column,
            values=data[column],
        )
    return values


def _text(data: pd.DataFrame, column: str, normalise=None) -> pd.Series:
    values = [(normalise(v) if normalise else v) or None for v in data[column].tolist()]
    return pd.Series(values, dtype=object)


def _idps(data, base, checks, result) -> pd.DataFrame:
    rows = base.assign(
        operation=_text(data, "operation"),
        assessment_type=_text(data, "assessment_type"),
        round=_text(data, "reporting_round", normalise_round),
        value=_number(data, "population", checks, required=True),
    )[~checks.bad]
    keys = _KEYS + ["operation", "assessment_type", "round"]
    summed = rows.groupby(keys, dropna=False, sort=True)["value"].sum().reset_index()
    if summed.empty:
        return summed
    result.problems.extend(level_total_problems(summed))
    result.meta.update(round_meta(summed))
    return summed.assign(variable="idps")


def _variable_suffix(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


def _conflict(data, base, checks, result) -> pd.DataFrame:
    suffix = data["event_type"].map(_variable_suffix)
    checks.flag(
        (suffix == "").to_numpy(),
        rule="missing_value",
        message="event_type is empty",
        column="event_type",
        values=data["event_type"],
    )
    rows = base.assign(
        event_type=suffix.to_numpy(dtype=object),
        events=_number(data, "events", checks, required=True),
        fatalities=_number(data, "fatalities", checks, required=False),
    )[~checks.bad]
    parts = []
    for measure in ("events", "fatalities"):
        present = rows[rows[measure].notna()]
        summed = (
            present.groupby(_KEYS + ["event_type"], dropna=False, sort=True)[measure]
            .sum()
            .reset_index()
        )
        summed["variable"] = f"conflict_{measure}_" + summed["event_type"].astype(str)
        parts.append(summed.rename(columns={measure: "value"}).drop(columns="event_type"))
    long = pd.concat(parts, ignore_index=True)
    if not long.empty:
        result.meta["event_types"] = sorted(set(rows["event_type"]))
        result.meta["periods"] = sorted(set(long["period"]))
        result.meta["countries"] = sorted(set(long["country_iso3"]))
    return long


def _ipc_variable(phase: str) -> str | None:
    phase = phase.strip().lower()
    if phase in ("1", "2", "3", "4", "5"):
        return f"ipc_phase{phase}_share"
    if phase == "3+":
        return "ipc_phase3plus_share"
    return None  # "all" is the analysed population itself, share 1


def _food(data, base, checks, result) -> pd.DataFrame:
    phase = data["ipc_phase"].str.strip().str.lower()
    variable = phase.map(_ipc_variable)
    unknown = variable.isna() & (phase != "all")
    checks.flag(
        unknown.to_numpy(),
        rule="bad_ipc_phase",
        message="ipc_phase must be 1-5, 3+ or all",
        column="ipc_phase",
        values=data["ipc_phase"],
    )
    share = _number(data, "population_fraction_in_phase", checks, required=True)
    checks.flag(
        share > 1,
        rule="out_of_range",
        message="a population fraction cannot exceed 1",
        column="population_fraction_in_phase",
        values=data["population_fraction_in_phase"],
    )
    ipc_type = data["ipc_type"].str.strip().str.lower()
    rows = base.assign(
        variable=variable.to_numpy(dtype=object),
        ipc_type=ipc_type.to_numpy(dtype=object),
        value=share,
    )
    keep = ~checks.bad & variable.notna().to_numpy()
    rows = rows[keep]

    # Shares of different areas or analyses cannot be added: several rows for one cell is an error.
    duplicated = rows.duplicated(_KEYS + ["ipc_type", "variable"], keep=False).to_numpy()
    if duplicated.any():
        positions = np.flatnonzero(keep)[duplicated]
        mask = np.zeros(len(checks.bad), dtype=bool)
        mask[positions] = True
        checks.flag(
            mask,
            rule="duplicate_area",
            message="several rows for the same area, period, analysis and phase "
            "(shares cannot be added)",
            column="population_fraction_in_phase",
            values=data["population_fraction_in_phase"],
        )
        rows = rows[~duplicated]
    if rows.empty:
        return rows

    # Prefer the current analysis; a projection stands in only where there is none.
    rank = rows["ipc_type"].map(lambda t: _IPC_TYPE_ORDER.get(t, len(_IPC_TYPE_ORDER)))
    best = rank.groupby([rows[k] for k in _KEYS], dropna=False).transform("min")
    chosen = rows[rank == best]
    dropped = len(rows) - len(chosen)
    if dropped:
        result.notes.append(
            f"{dropped} projection row(s) not used: a current analysis exists for the same area "
            "and period"
        )
    result.meta["ipc_types_used"] = chosen["ipc_type"].value_counts().to_dict()
    result.meta["periods"] = sorted(set(chosen["period"]))
    return chosen.drop(columns="ipc_type")
