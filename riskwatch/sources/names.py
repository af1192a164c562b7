"""Area names -> pcodes, for tables whose publisher gives names instead of pcodes.

Pure: takes the names and the known areas (a frame with ``pcode``, ``name``, ``admin_level``,
``country_iso3``) and says, for each name, the one area it stands for, or why there is none.

A name is compared with :func:`riskwatch.sources.mapping.name_key` (ignoring case, accents and
repeated spaces). The mapping's ``[aliases]`` (name as written -> pcode) are tried first; then
the names of the known areas, restricted to ``country_iso3`` and ``level`` when given. Countries
(admin level 0, named by their ISO3 code) are candidates only when ``level`` is 0. A name shared
by several candidate areas is *ambiguous* (give an alias or ``--level``); a name of no candidate
area is *unknown*.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskwatch.sources.mapping import name_key

#: Outcomes of one name.
MATCHED, ALIAS, UNKNOWN, AMBIGUOUS, EMPTY = "matched", "alias", "unknown", "ambiguous", "empty"


@dataclass
class NameMatch:
    """Per input name: the pcode (``""`` when none), its level and country, and the outcome."""

    pcodes: np.ndarray
    admin_levels: np.ndarray  # float, NaN when unmatched or unknown (an alias to an unknown pcode)
    countries: np.ndarray
    outcomes: np.ndarray  # MATCHED, ALIAS, UNKNOWN, AMBIGUOUS or EMPTY
    candidates: dict[str, list[str]] = field(default_factory=dict)  # ambiguous key -> pcodes

    def message(self, position: int, name: str) -> str | None:
        """What is wrong with the name at ``position`` (None when it matched)."""
        outcome = self.outcomes[position]
        if outcome == UNKNOWN:
            return (f"unknown area name {name!r}: no known area has this name; add it to the "
                    "mapping's [aliases] (name = pcode) or load the areas first")
        if outcome == AMBIGUOUS:
            pcodes = ", ".join(self.candidates.get(name_key(name), []))
            return (f"ambiguous area name {name!r}: several known areas have this name "
                    f"({pcodes}); add it to the mapping's [aliases] or give --level")
        return None


def match_area_names(
    names: Sequence[str] | pd.Series,
    areas: pd.DataFrame,
    *,
    aliases: Mapping[str, str] | None = None,
    country_iso3: str | None = None,
    level: int | None = None,
) -> NameMatch:
    """Match each name to one known area: aliases first, then the areas' own names.

    ``areas`` has ``pcode``, ``name``, ``admin_level`` and ``country_iso3``. An empty name gets
    the outcome ``EMPTY`` (callers report it as a missing area).
    """
    values = [("" if v is None else str(v)) for v in list(names)]
    count = len(values)
    pcodes = np.full(count, "", dtype=object)
    admin_levels = np.full(count, np.nan)
    countries = np.full(count, None, dtype=object)
    outcomes = np.full(count, UNKNOWN, dtype=object)

    known = {
        str(p): (int(lv), str(c))
        for p, lv, c in zip(areas["pcode"], areas["admin_level"], areas["country_iso3"],
                            strict=True)
    }
    alias_lookup = {name_key(k): str(v) for k, v in (aliases or {}).items()}
    by_name: dict[str, list[str]] = defaultdict(list)
    for pcode, name, area_level, country in zip(
        areas["pcode"], areas["name"], areas["admin_level"], areas["country_iso3"], strict=True
    ):
        if name is None or (isinstance(name, float) and np.isnan(name)):
            continue
        if country_iso3 and str(country) != country_iso3:
            continue
        if level is not None and int(area_level) != level:
            continue
        if level is None and int(area_level) == 0:
            continue
        by_name[name_key(str(name))].append(str(pcode))

    candidates: dict[str, list[str]] = {}
    decided: dict[str, tuple[str, str]] = {}
    for position, name in enumerate(values):
        if not name.strip():
            outcomes[position] = EMPTY
            continue
        key = name_key(name)
        if key not in decided:
            if key in alias_lookup:
                decided[key] = (ALIAS, alias_lookup[key])
            else:
                found = by_name.get(key, [])
                if len(found) == 1:
                    decided[key] = (MATCHED, found[0])
                elif found:
                    decided[key] = (AMBIGUOUS, "")
                    candidates[key] = sorted(found)
                else:
                    decided[key] = (UNKNOWN, "")
        outcome, pcode = decided[key]
        outcomes[position] = outcome
        pcodes[position] = pcode
        if pcode in known:
            admin_levels[position], countries[position] = known[pcode]
    return NameMatch(pcodes, admin_levels, countries, outcomes, candidates)
