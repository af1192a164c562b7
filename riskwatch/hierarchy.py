"""Values across admin levels: counts are summed up the hierarchy, shares inherited down it.

Sources publish at different levels: DTM at admin 0, 1 and 2, ACLED events at the finest level,
IPC often by admin1 only, population sometimes by admin2 only. Scoring every level needs:

* **up** (:func:`aggregate_up`, on observations): an additive variable (a count) that a parent
  area lacks for a period is the sum of its children's values - for plain counts only when every
  child has one (a partial sum would understate), for event counts whenever any child has one
  (inside an event source's coverage a child without a row had no event). Published parent
  values are never replaced.
* **down** (:func:`inherit_down`, on the scoring grid): an intensive variable (a share, a
  distance) that an area lacks at a period is its nearest ancestor's, marked inherited, so that
  reliability can discount it. Counts are never inherited: a province's IDPs are not a
  district's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from riskwatch.catalog import VariableKind
from riskwatch.transforms import DAY_SPAN, Grid, Reason


@dataclass(frozen=True)
class Hierarchy:
    """Parents and levels of the areas being scored (indices into the sorted area list)."""

    parent_of_area: np.ndarray  # int64, -1 for areas without a known parent
    level_of_area: np.ndarray  # int64 admin levels

    @property
    def n_areas(self) -> int:
        return len(self.parent_of_area)

    def children_counts(self) -> np.ndarray:
        """How many child areas each area has."""
        parents = self.parent_of_area[self.parent_of_area >= 0]
        return np.bincount(parents, minlength=self.n_areas).astype(np.int64)

    def unit_parents(self, grid: Grid) -> np.ndarray:
        """The parent's unit of each unit (same period), -1 where there is none."""
        return grid.unit_of(self.parent_of_area[grid.area_of_unit], grid.day_of_unit)

    def units_by_level(self, grid: Grid) -> list[np.ndarray]:
        """Units of areas that have a parent, one array per admin level, coarsest first."""
        level = self.level_of_area[grid.area_of_unit]
        has_parent = self.parent_of_area[grid.area_of_unit] >= 0
        return [np.flatnonzero(has_parent & (level == value))
                for value in np.unique(self.level_of_area)]


@dataclass(frozen=True)
class Rows:
    """Observations as flat arrays: area index, variable code, day, value, inherited flag."""

    area: np.ndarray
    variable: np.ndarray
    day: np.ndarray
    value: np.ndarray
    inherited: np.ndarray

    def keys(self, n_areas: int) -> np.ndarray:
        """One int64 per (variable, area, day)."""
        return ((self.variable.astype(np.int64) * n_areas + self.area) * DAY_SPAN
                + self.day.astype(np.int64))

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(self.area[mask], self.variable[mask], self.day[mask], self.value[mask],
                    self.inherited[mask])

    def split_by_variable(self, n_variables: int) -> list[Rows]:
        """One Rows per variable code 0..n-1 (a stable sort by code, then slices)."""
        # Few codes: a stable sort of 16-bit keys is a radix sort, linear in the rows.
        order = np.argsort(self.variable.astype(np.int16), kind="stable")
        bounds = np.searchsorted(self.variable[order], np.arange(n_variables + 1))
        # Gather only what differs per row (the biggest cost for millions of rows).
        area, day, value = self.area[order], self.day[order], self.value[order]
        inherited = (self.inherited[order] if self.inherited.any()
                     else np.zeros(len(order), dtype=bool))
        return [Rows(area[start:end], np.full(end - start, code, dtype=np.int64),
                     day[start:end], value[start:end], inherited[start:end])
                for code, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))]

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        return Rows(*(np.concatenate([getattr(p, name) for p in parts])
                      for name in ("area", "variable", "day", "value", "inherited")))


def aggregate_up(rows: Rows, hierarchy: Hierarchy, kinds: Mapping[int, VariableKind]) -> Rows:
    """Add parent rows for additive variables the parents lack (see the module docstring)."""
    additive = np.array([code for code, kind in kinds.items()
                         if kind in (VariableKind.COUNT, VariableKind.EVENT_COUNT)])
    events = np.array([code for code, kind in kinds.items() if kind == VariableKind.EVENT_COUNT])
    has_parent = hierarchy.parent_of_area >= 0
    if not len(rows.area) or not len(additive) or not has_parent.any():
        return rows
    n_areas = hierarchy.n_areas
    children = hierarchy.children_counts()
    # Only parents' own rows can block a sum, and only rows of areas with a parent are summed.
    known = rows.keys(n_areas)[children[rows.area] > 0]
    parts = [rows]
    current = rows.take(np.isin(rows.variable, additive) & has_parent[rows.area])
    for level in sorted(np.unique(hierarchy.level_of_area), reverse=True):
        at_level = current.take(hierarchy.level_of_area[current.area] == level)
        parent = hierarchy.parent_of_area[at_level.area]
        at_level = Rows(parent, at_level.variable, at_level.day, at_level.value,
                        at_level.inherited).take(parent >= 0)
        if not len(at_level.area):
            continue
        keys = at_level.keys(n_areas)
        # Summing in value order makes the float sum independent of row and pcode order.
        order = np.lexsort((at_level.value, keys))
        keys, values = keys[order], at_level.value[order]
        group_keys, starts = np.unique(keys, return_index=True)
        sums = np.add.reduceat(values, starts)
        counts = np.diff(np.append(starts, len(keys)))
        inherited = np.logical_or.reduceat(at_level.inherited[order], starts)
        day = group_keys % DAY_SPAN
        area = (group_keys // DAY_SPAN) % n_areas
        variable = (group_keys // DAY_SPAN) // n_areas
        complete = counts == children[area]
        keep = (complete | np.isin(variable, events)) & ~np.isin(group_keys, known)
        if not keep.any():
            continue
        new = Rows(area[keep], variable[keep], day[keep], sums[keep], inherited[keep])
        known = np.concatenate([known, group_keys[keep]])
        parts.append(new)
        current = Rows.concat([current, new])
    return Rows.concat(parts) if len(parts) > 1 else rows


def inherit_down(
    value: np.ndarray,
    reason: np.ndarray,
    age: np.ndarray,
    inherited: np.ndarray,
    *,
    unit_parents: np.ndarray,
    units_by_level: list[np.ndarray],
) -> None:
    """Fill, in place, units without a value from their nearest ancestor that has one.

    Coarsest levels first, so a district inherits what its province has (its own or its
    country's). Filled units are marked inherited and take the ancestor's age.
    """
    for units in units_by_level:
        parents = unit_parents[units]
        units, parents = units[parents >= 0], parents[parents >= 0]
        take = (reason[units] != Reason.OK) & (reason[parents] == Reason.OK)
        if not take.any():
            continue
        target, source = units[take], parents[take]
        value[target] = value[source]
        age[target] = age[source]
        reason[target] = Reason.OK
        inherited[target] = True
