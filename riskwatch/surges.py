"""Surges: sudden increases of displacement (or conflict events) per area, and their roll-up.

A value surges when it rises past a reference by at least ``min_absolute`` and by the factor
``min_ratio``. The references, after the logic of OCHA's HDX Signals ("levels not seen in the
past one or three years", gated by a minimum size), are:

* ``"previous_round"``: the area's value in the round just before;
* a number of days D: the highest value of the area in the D days before the round.

An area needs a value in the previous round to surge at all. Its first appearance in the data,
or its return after a gap, is coverage growth (enumerators reaching it), not displacement: a
province entering DTM coverage with 300,000 IDPs is not a surge of 300,000.

The same machinery serves conflict events (monthly counts, a smaller ``min_absolute``): inside
an event source's coverage a month without events is a zero, which is a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

PREVIOUS_ROUND = "previous_round"
#: The round before, and the highest value over one and over three years.
DEFAULT_WINDOWS: tuple[str | int, ...] = (PREVIOUS_ROUND, 365, 3 * 365)
#: IDPs; HDX Signals uses the same floor for conflict-driven displacement.
DEFAULT_MIN_ABSOLUTE = 5000.0
#: At least a quarter above the reference: +5,000 on a province of a million IDPs is noise.
DEFAULT_MIN_RATIO = 1.25
#: ``reason`` of a value that could not surge because the area had no value the round before.
NO_PREVIOUS_VALUE = "no_previous_value"

SURGE_COLUMNS = ["pcode", "period", "value", "surge", "surge_size", "reason"]


def detect_surges(
    series: pd.DataFrame,
    *,
    min_absolute: float = DEFAULT_MIN_ABSOLUTE,
    min_ratio: float = DEFAULT_MIN_RATIO,
    windows: Sequence[str | int | timedelta] = DEFAULT_WINDOWS,
    by: Sequence[str] = (),
) -> pd.DataFrame:
    """Surge flags for every value of ``series`` (columns ``pcode``, ``period``, ``value``).

    The rounds are the distinct periods of the data (per group of the ``by`` columns, e.g.
    country and operation, when several calendars share one frame), so pass a whole country's
    series: "the round before" is the previous period in which any of its areas has a value.
    One value per pcode and period (and group). A window fires when
    ``value - reference >= min_absolute`` and ``value >= min_ratio * reference``; ``windows``
    holds ``"previous_round"`` and/or day counts (``int`` or ``timedelta``).

    Returns one row per value (missing values dropped), sorted by group, pcode and period, with
    the ``by`` columns and: pcode, period, value, surge (bool), surge_size (the increase over
    the reference of the first window, in ``windows`` order, that fired; NaN when no surge),
    reason (the windows that fired joined by ``;``, e.g. ``previous_round;max_365d``;
    ``no_previous_value`` when the area had no value in the previous round; else empty).
    """
    keys = list(by)
    _check_columns(series, ["pcode", "period", "value", *keys])
    if min_absolute <= 0 or min_ratio < 1:
        raise ValueError("min_absolute must be positive and min_ratio at least 1")
    spans = [_window(w) for w in windows]
    if not spans:
        raise ValueError("at least one window is needed")
    data = series[[*keys, "pcode", "period", "value"]].copy()
    data["value"] = pd.to_numeric(data["value"], errors="coerce")
    data = data[data["value"].notna()]
    duplicated = data.duplicated([*keys, "pcode", "period"])
    if duplicated.any():
        first = data.loc[duplicated].iloc[0]
        raise ValueError(
            f"more than one value for pcode {first['pcode']} in period {first['period']}: "
            "pick one assessment type / operation before detecting surges"
        )
    if data.empty:
        return _empty(keys)
    data["_time"] = pd.to_datetime(data["period"])
    parts = [
        _group_surges(group, spans, min_absolute, min_ratio)
        for _, group in (data.groupby(keys, sort=True, dropna=False) if keys else [((), data)])
    ]
    result = pd.concat(parts, ignore_index=True)
    result = result.sort_values([*keys, "pcode", "_time"], kind="stable", ignore_index=True)
    return result[[*keys, *SURGE_COLUMNS]]


def aggregate_surges(surges: pd.DataFrame, parents: Mapping[str, str] | pd.Series) -> pd.DataFrame:
    """Roll area surges up to their parents (admin1, or the country: any pcode -> parent).

    ``surges`` is the result of :func:`detect_surges` for areas of one level; ``parents`` maps
    each of their pcodes to its parent pcode (``Area.parent_pcode`` for admin1, the country's
    ISO3 for the country). A parent surges in a period when any of its areas does; its
    ``surge_size`` is the sum of its areas' surge sizes (so first appearances never count).

    Returns pcode (the parent), period, surge, surge_size (NaN when no surge), areas (its areas
    with a value in the period), areas_surging, and the surging areas' pcodes joined by ``;``.
    Raises ``ValueError`` when a pcode has no parent, rather than dropping its surge silently.
    """
    _check_columns(surges, ["pcode", "period", "surge", "surge_size"])
    mapping = pd.Series(parents, dtype=object)
    parent = surges["pcode"].map(mapping)
    if parent.isna().any():
        orphans = sorted(set(surges.loc[parent.isna(), "pcode"].astype(str)))
        raise ValueError(f"no parent for: {', '.join(orphans[:10])}")
    frame = surges.assign(
        parent=parent,
        _size=surges["surge_size"].where(surges["surge"], 0.0),
        _surging=surges["pcode"].where(surges["surge"]),
    )
    grouped = frame.groupby(["parent", "period"], sort=True)
    result = grouped.agg(
        areas=("pcode", "size"),
        areas_surging=("surge", "sum"),
        surge_size=("_size", "sum"),
        surging_pcodes=("_surging", lambda codes: ";".join(sorted(codes.dropna()))),
    ).reset_index()
    result["surge"] = result["areas_surging"] > 0
    result["surge_size"] = result["surge_size"].where(result["surge"])
    result = result.rename(columns={"parent": "pcode"})
    columns = ["pcode", "period", "surge", "surge_size", "areas", "areas_surging"]
    return result[[*columns, "surging_pcodes"]]


def _window(window: str | int | timedelta) -> tuple[str, pd.Timedelta | None]:
    """(name for ``reason``, span; None for the previous round)."""
    if window == PREVIOUS_ROUND:
        return PREVIOUS_ROUND, None
    if isinstance(window, bool) or not isinstance(window, int | timedelta):
        raise ValueError(f"a window is {PREVIOUS_ROUND!r} or a number of days: {window!r}")
    span = pd.Timedelta(days=window) if isinstance(window, int) else pd.Timedelta(window)
    if span <= pd.Timedelta(0):
        raise ValueError(f"a window must be positive: {window!r}")
    return f"max_{span.days}d", span


def _group_surges(
    data: pd.DataFrame,
    spans: list[tuple[str, pd.Timedelta | None]],
    min_absolute: float,
    min_ratio: float,
) -> pd.DataFrame:
    """Surges of one round calendar, on an areas x rounds table (NaN: no value that round)."""
    wide = data.pivot(index="pcode", columns="_time", values="value").sort_index(axis=1)
    values = wide.to_numpy(dtype=np.float64)
    previous = np.full_like(values, np.nan)
    previous[:, 1:] = values[:, :-1]
    covered_before = ~np.isnan(previous)
    size = np.full_like(values, np.nan)
    reason = np.full(values.shape, "", dtype=object)
    for name, span in spans:
        reference = previous if span is None else _rolling_max(wide, span)
        increase = values - reference
        with np.errstate(invalid="ignore"):
            fired = (
                covered_before
                & (increase >= min_absolute)  # False where either side is NaN
                & (values >= min_ratio * reference)
            )
        # The size reported is that of the first window, in the order given, that fired.
        size = np.where(np.isnan(size) & fired, increase, size)
        reason = np.where(fired, np.where(reason == "", name, reason + ";" + name), reason)
    reason = np.where(~np.isnan(values) & ~covered_before, NO_PREVIOUS_VALUE, reason)

    rows = wide.index.get_indexer(data["pcode"])
    columns = wide.columns.get_indexer(data["_time"])
    out = data.copy()
    out["surge_size"] = size[rows, columns]
    out["surge"] = ~np.isnan(out["surge_size"].to_numpy())
    out["reason"] = reason[rows, columns]
    return out


def _rolling_max(wide: pd.DataFrame, span: pd.Timedelta) -> np.ndarray:
    """Per area and round, the highest value in the ``span`` before it (the round excluded)."""
    rounds = wide.columns
    values = wide.to_numpy(dtype=np.float64)
    maxima = np.full_like(values, np.nan)
    for column, time in enumerate(rounds):
        inside = (rounds >= time - span) & (rounds < time)
        if inside.any():
            # pandas' max skips NaN and gives NaN for an area without any value in the span.
            maxima[:, column] = wide.loc[:, inside].max(axis=1).to_numpy()
    return maxima


def _check_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")


def _empty(keys: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype=object) for column in [*keys, *SURGE_COLUMNS]})
    frame["value"] = frame["value"].astype(np.float64)
    frame["surge"] = frame["surge"].astype(bool)
    frame["surge_size"] = frame["surge_size"].astype(np.float64)
    return frame
