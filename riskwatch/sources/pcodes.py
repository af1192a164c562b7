"""Match the pcodes of a frame against the known areas (CONTRACTS "Areas and pcodes").

* An exact match passes. Country rows (an ISO3 code, or any three letters at admin level 0)
  always match: countries exist implicitly.
* Otherwise the pcode is normalised: surrounding spaces and case, the country prefix (ISO2 <->
  ISO3, so HAPI's ``TCD0704`` finds COD's ``TD0704`` and back), and zero padding of the number
  after the prefix (``NG02`` <-> ``NG002``). A normalised pcode is accepted only when exactly one
  known area (at the row's level, when the row has one) matches; each change goes in ``notes``
  and ``meta["pcode_changes"]``. Several matches are a problem (``ambiguous_pcode``).
* A pcode still unknown is a bad row (``unknown_pcode``: dropped, one problem per distinct pcode)
  unless its country has no known areas at its admin level at all: then the rows are set aside
  (``rows_set_aside``; one note per country and level), because such data cannot be used until
  that level's areas are loaded, and that is not the file's fault.

The frame may carry ``admin_level`` (readers add it; see ``values.OBSERVATION_EXTRA_COLUMNS``)
and ``country_iso3``; missing or empty, the country comes from the pcode's prefix (as in the known
pcodes, or as ISO2/ISO3) and the level from the pcode's length compared with the known pcodes of
that country (longer than all of them: one level below the finest known). A ``row`` column, when
present, gives the file row named in problems.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskwatch.sources.countries import is_iso3, iso2_to_iso3
from riskwatch.sources.report import Problem, ReadResult

_PREFIX_RE = re.compile(r"([A-Z]+)(.*)")


@dataclass(frozen=True)
class _Outcome:
    status: str  # "match", "quarantine", "set_aside"
    pcode: str | None = None
    admin_level: int | None = None
    country_iso3: str | None = None
    reason: str | None = None


class KnownAreas:
    """Lookups over the known areas (pcode, admin_level, country_iso3) used for matching."""

    def __init__(self, known: pd.DataFrame) -> None:
        self.by_pcode: dict[str, tuple[int, str]] = {}
        self.levels: dict[str, set[int]] = defaultdict(set)
        self.lengths: dict[str, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
        prefixes: dict[str, set[str]] = defaultdict(set)
        for pcode, level, country in zip(
            known["pcode"].astype(str),
            known["admin_level"].astype(int),
            known["country_iso3"].astype(str),
            strict=True,
        ):
            self.by_pcode[pcode] = (level, country)
            self.levels[country].add(level)
            self.lengths[country][level].add(len(pcode))
            if match := _PREFIX_RE.match(pcode.upper()):
                prefixes[match.group(1)].add(country)
        self.countries = set(self.levels)
        self.prefix_country = {p: next(iter(c)) for p, c in prefixes.items() if len(c) == 1}
        self.by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
        for pcode in self.by_pcode:
            key = self.key(pcode)
            if key is not None:
                self.by_key[key].append(pcode)

    def country_of_prefix(self, prefix: str) -> str | None:
        """The ISO3 country a pcode prefix stands for: a known country, a known prefix, ISO."""
        if prefix in self.countries:
            return prefix
        if prefix in self.prefix_country:
            return self.prefix_country[prefix]
        if len(prefix) == 3 and is_iso3(prefix):
            return prefix
        if len(prefix) == 2:
            return iso2_to_iso3(prefix)
        return None

    def key(self, pcode: str) -> tuple[str, str] | None:
        """(country, number without zero padding): equal keys differ only by prefix or padding."""
        match = _PREFIX_RE.fullmatch(pcode.strip().upper())
        if not match:
            return None
        country = self.country_of_prefix(match.group(1))
        tail = match.group(2)
        if country is None or not tail:
            return None
        return country, (tail.lstrip("0") or "0") if tail.isdigit() else tail

    def infer_level(self, pcode: str, country: str) -> int | None:
        """The admin level whose known pcodes of ``country`` have this pcode's length."""
        lengths = self.lengths.get(country)
        if not lengths:
            return None
        fitting = [level for level, sizes in lengths.items() if len(pcode) in sizes]
        if len(fitting) == 1:
            return fitting[0]
        if not fitting and len(pcode) > max(max(s) for s in lengths.values()):
            return max(lengths) + 1
        return None


def _resolve(pcode: str, level: int | None, country: str | None, areas: KnownAreas) -> _Outcome:
    """Decide one distinct (pcode, level, country) of the frame."""
    text = pcode.strip().upper()
    if pcode in areas.by_pcode and (level is None or areas.by_pcode[pcode][0] == level):
        known_level, known_country = areas.by_pcode[pcode]
        return _Outcome("match", pcode, known_level, known_country)
    if level in (None, 0) and (text in areas.countries or is_iso3(text)):
        return _Outcome("match", text, 0, text, None if text == pcode else "case/spaces")
    if level == 0:
        # A country row: its code, an ISO2 code, or any three letters (a non-ISO demo country).
        iso3 = iso2_to_iso3(text) if len(text) == 2 else (text if len(text) == 3 else None)
        iso3 = iso3 or country
        if iso3 is not None:
            return _Outcome("match", iso3, 0, iso3, None if iso3 == pcode else "country code")
    if text in areas.by_pcode and (level is None or areas.by_pcode[text][0] == level):
        known_level, known_country = areas.by_pcode[text]
        return _Outcome("match", text, known_level, known_country, "case/spaces")
    key = areas.key(text)
    if key is not None:
        candidates = [
            p for p in areas.by_key.get(key, []) if level is None or areas.by_pcode[p][0] == level
        ]
        if len(candidates) == 1:
            found = candidates[0]
            known_level, known_country = areas.by_pcode[found]
            return _Outcome("match", found, known_level, known_country, _reason(text, found))
        if len(candidates) > 1:
            return _Outcome("quarantine", reason="ambiguous:" + ", ".join(sorted(candidates)))
    match = _PREFIX_RE.match(text)
    country = country or (areas.country_of_prefix(match.group(1)) if match else None)
    if country is None:
        return _Outcome("quarantine", reason="its country cannot be told from the pcode")
    if level is None:
        level = areas.infer_level(text, country)
    if level is not None and level not in areas.levels.get(country, set()):
        return _Outcome("set_aside", pcode, level, country)
    if level is None and country not in areas.countries:
        return _Outcome("set_aside", pcode, None, country)
    where = f"admin level {level}" if level is not None else "any admin level"
    return _Outcome(
        "quarantine",
        admin_level=level,
        country_iso3=country,
        reason=f"not a known area of {country} at {where}",
    )


def _reason(old: str, new: str) -> str:
    old_prefix = _PREFIX_RE.match(old).group(1)  # type: ignore[union-attr]
    new_prefix = _PREFIX_RE.match(new).group(1)  # type: ignore[union-attr]
    reasons = []
    if old_prefix != new_prefix:
        reasons.append(f"country prefix {old_prefix}->{new_prefix}")
    if old[len(old_prefix) :] != new[len(new_prefix) :]:
        reasons.append("zero padding")
    return " and ".join(reasons) or "case/spaces"


def _column(frame: pd.DataFrame, name: str) -> list:
    if name not in frame:
        return [None] * len(frame)
    return [
        None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v == "" else v
        for v in frame[name].tolist()
    ]


def match_pcodes(frame: pd.DataFrame, known: pd.DataFrame) -> ReadResult:
    """Match ``frame["pcode"]`` against ``known`` (pcode, admin_level, country_iso3).

    Returns the matched rows with pcode, admin_level and country_iso3 set from the known area
    (other columns untouched), the problems, ``rows_quarantined``, ``rows_set_aside``, notes on
    every normalisation and set-aside, and ``meta`` with ``pcode_changes`` (old -> new),
    ``set_aside`` (country, level, rows) and ``unknown_pcodes``.
    """
    areas = KnownAreas(known)
    pcodes = [str(p) if p is not None else "" for p in _column(frame, "pcode")]
    levels = [None if v is None else int(v) for v in _column(frame, "admin_level")]
    countries = [None if v is None else str(v).upper() for v in _column(frame, "country_iso3")]
    row_numbers = _column(frame, "row")

    decided: dict[tuple, _Outcome] = {}
    outcomes = []
    for item in zip(pcodes, levels, countries, strict=True):
        if item not in decided:
            decided[item] = (
                _resolve(*item, areas)
                if item[0].strip()
                else _Outcome("quarantine", reason="empty pcode")
            )
        outcomes.append(decided[item])

    result = ReadResult(frame=frame.iloc[0:0].copy(), rows_read=len(frame))
    status = np.array([o.status for o in outcomes], dtype=object)
    changes: Counter[tuple[str, str, str]] = Counter()
    set_aside: Counter[tuple[str, int | None]] = Counter()
    unknown: dict[str, list[int]] = defaultdict(list)
    for position, (pcode, outcome) in enumerate(zip(pcodes, outcomes, strict=True)):
        if outcome.status == "match" and outcome.reason:
            changes[(pcode, outcome.pcode, outcome.reason)] += 1  # type: ignore[arg-type]
        elif outcome.status == "set_aside":
            set_aside[(outcome.country_iso3, outcome.admin_level)] += 1  # type: ignore[index]
        elif outcome.status == "quarantine":
            unknown[(pcode, outcome.reason)].append(position)  # type: ignore[index]

    for (old, new, reason), count in sorted(changes.items()):
        result.notes.append(f"pcode {old!r} -> {new!r} ({reason}; {count} row(s))")
    for (country, level), count in sorted(
        set_aside.items(), key=lambda i: (i[0][0], i[0][1] or 99)
    ):
        where = f"admin level {level}" if level is not None else "any admin level"
        result.notes.append(
            f"{country} {where}: {count} row(s) set aside: no known areas of {country} at "
            f"{where}; load its boundaries or gazetteer first"
        )
    for (pcode, reason), positions in unknown.items():
        ambiguous = reason.startswith("ambiguous:")
        first_row = row_numbers[positions[0]]
        result.problems.append(
            Problem(
                rule="ambiguous_pcode" if ambiguous else "unknown_pcode",
                message=(
                    f"pcode matches several known areas ({reason.split(':', 1)[1]}) "
                    if ambiguous
                    else f"unknown pcode: {reason} "
                )
                + f"({len(positions)} row(s))",
                row=None if first_row is None else int(first_row),
                column="pcode",
                value=pcode,
            )
        )

    keep = status == "match"
    matched = frame[keep].copy()
    kept = [o for o in outcomes if o.status == "match"]
    matched["pcode"] = pd.Series([o.pcode for o in kept], index=matched.index, dtype=object)
    matched["admin_level"] = pd.Series(
        [o.admin_level for o in kept], index=matched.index, dtype="Int64"
    )
    matched["country_iso3"] = pd.Series(
        [o.country_iso3 for o in kept], index=matched.index, dtype=object
    )
    result.frame = matched.reset_index(drop=True)
    result.rows_quarantined = int((status == "quarantine").sum())
    result.rows_set_aside = int((status == "set_aside").sum())
    result.meta = {
        "pcode_changes": {old: new for (old, new, _), _n in changes.items()},
        "set_aside": [
            {"country_iso3": c, "admin_level": lvl, "rows": n} for (c, lvl), n in set_aside.items()
        ],
        "unknown_pcodes": sorted({p for p, _ in unknown}),
    }
    return result
