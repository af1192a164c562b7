"""Mapping files: how the columns of a file become riskwatch variables, for every kind of source.

One TOML format serves ``--kind hxl``, ``table``, ``sites`` and ``events``; each kind uses the
keys that make sense for it (see :data:`KIND_KEYS`) and a reader refuses a mapping that carries
keys it would ignore, so a mistyped or misplaced key never goes unnoticed. A *column* is named
by its header text (``"individuals"``) or, when it starts with ``#``, by an HXL tag pattern
(``"#affected+idps"``; ``-attribute`` excludes). Indexes in messages count from 1.

Keys of every kind: ``country`` (ISO3, or ISO2, of every row when the file does not say),
``sheet`` (XLSX sheet name or 0-based index; default the first) and ``aggregate_columns`` (columns
declared aggregates, not personal data, for the personal-data guard of the ingest).

A table (``--kind hxl`` or ``--kind table``)::

    country = "HTI"
    pcode_column = "#adm2+code"       # the area pcode (default: the finest #admN+code tag)
    period = 2024-01-01               # the period of every row (an ISO date, quoted or not)
    aggregate_columns = ["Population", "Children (%)"]

    [variables]                       # column -> standard variable name
    "#population+total" = "population"
    "Children (%)" = "children_share:pct"   # ":pct": percentages 0-100, divided by 100

A table by area name (``--kind hxl`` or ``table``): ``name_column`` and ``[aliases]`` instead of
``pcode_column``, and ``period_column`` for a date per row::

    name_column = "District"          # names are matched ignoring case, accents and spaces;
    period_column = "#date+reported"  # every name not in [aliases] is reported

    [variables]
    "#affected+idps" = "idps"

    [aliases]                         # area name as written in the file -> pcode
    "Port-au-Prince" = "HT0111"
    "Pétion-Ville" = "HT0113"

Site or location assessments (``--kind sites``): points placed in the finest area polygons
(``latitude_column`` and ``longitude_column``), or rows with ``pcode_column`` or ``name_column``
and ``[aliases]``; the period is each row's ``date_column`` (else ``period``); one value per
area, period and rule::

    latitude_column = "latitude"
    longitude_column = "longitude"
    date_column = "reportingDate"
    id_column = "site_id"             # optional: a site repeated on one date is a problem

    [[rules]]
    variable = "idps_in_sites"
    rule = "sum"                      # sum of the column over the area's sites
    column = "individuals"

    [[rules]]
    variable = "civil_documentation_share"
    rule = "mean"                     # mean of the column (":pct" allowed on the variable)
    column = "civil_documentation_share"
    weight = "individuals"            # optional: a weighted mean

    [[rules]]
    variable = "ct_service_coverage"
    rule = "share"                    # share of the sites whose column equals `value`;
    column = "ct_service_available"   # sites with the column empty are left out
    value = "yes"                     # or a list; default ["yes", "true", "1"]

    [[rules]]
    variable = "site_overcrowding"
    rule = "ratio"                    # sum(numerator) / sum(denominator) over the sites
    numerator = "site_area_m2"
    denominator = "individuals"       # = m2 of site per person: LOWER means MORE crowded

Point events (``--kind events``), counted per area and month::

    latitude_column = "lat"
    longitude_column = "lon"
    date_column = "date"
    id_column = "incident_id"         # optional: an id seen before is dropped

    [[counts]]
    variable = "abduction_events"     # events whose column equals the value (any case);
    filter = { type = "abduction" }   # several columns: all must match; a list: any value

    [[counts]]
    variable = "conflict_fatalities"
    filter = { type = ["battle", "shelling"] }
    sum_column = "fatalities"         # sums this column instead of counting events

Why a ratio of sums and not a mean of ratios: the area's figure is then the one a person would
compute for the area as a whole (all m2 over all people), and one tiny site cannot swing it.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskwatch.sources.countries import to_iso3
from riskwatch.sources.report import Problem, ReadResult
from riskwatch.sources.tabular import (
    TableRead,
    find_column,
    read_table,
    result_from_table,
    tag_matches,
)
from riskwatch.sources.values import observation_frame

#: The site aggregation rules a ``[[rules]]`` entry may name.
RULES = ("sum", "mean", "share", "ratio")
#: What a ``share`` rule counts when it gives no ``value``.
DEFAULT_SHARE_VALUES = ("yes", "true", "1")

_COLUMN_KEYS = (
    "pcode_column",
    "name_column",
    "period_column",
    "latitude_column",
    "longitude_column",
    "date_column",
    "id_column",
)
_COMMON_KEYS = frozenset({"country", "sheet", "aggregate_columns"})

#: The keys each kind of source uses; a reader refuses a mapping with any other key.
KIND_KEYS: dict[str, frozenset[str]] = {
    "hxl": _COMMON_KEYS
    | {"variables", "pcode_column", "name_column", "aliases", "period", "period_column"},
    # A table by name: name_column and [aliases], matched against the known areas at ingest.
    "table": _COMMON_KEYS
    | {"variables", "pcode_column", "name_column", "aliases", "period", "period_column"},
    "sites": _COMMON_KEYS
    | {
        "rules",
        "latitude_column",
        "longitude_column",
        "pcode_column",
        "name_column",
        "aliases",
        "date_column",
        "period",
        "id_column",
    },
    "events": _COMMON_KEYS
    | {"counts", "latitude_column", "longitude_column", "date_column", "id_column"},
}
_ALL_KEYS = frozenset().union(*KIND_KEYS.values())
_RULE_KEYS = {
    "sum": {"variable", "rule", "column"},
    "mean": {"variable", "rule", "column", "weight"},
    "share": {"variable", "rule", "column", "value"},
    "ratio": {"variable", "rule", "numerator", "denominator"},
}
_COUNT_KEYS = {"variable", "filter", "sum_column"}
_VARIABLE_RE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_MAX_VARIABLE_LENGTH = 63


class MappingError(Exception):
    """A mapping file or table that cannot be used; the message names the file and the key."""


def validate_variable_name(name: str) -> str:
    """Return ``name`` when it is a valid variable name, else raise ValueError saying why.

    Variable names are lower_snake_case ASCII: a letter, then letters, digits and single
    underscores (``idps``, ``ipc_phase3plus_share``), at most 63 characters, so that they are
    safe as column names, file names and HXL attributes.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("a variable name must be a non-empty string")
    if len(name) > _MAX_VARIABLE_LENGTH:
        raise ValueError(f"variable name {name!r} is longer than {_MAX_VARIABLE_LENGTH} characters")
    if not _VARIABLE_RE.fullmatch(name):
        raise ValueError(
            f"variable name {name!r} is not lower_snake_case (a letter, then letters, digits "
            "and single underscores, e.g. 'idps_in_sites')"
        )
    return name


def load_mapping(path: str | Path) -> dict:
    """Read and validate a TOML mapping file; return the normalised mapping (see the module).

    Raises :class:`MappingError` naming the file and the key for a file that cannot be read, is
    not TOML, has an unknown key, a value of the wrong type, an unknown rule, a bad variable name
    or a variable defined twice.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(f"{path}: cannot read the mapping file ({error})") from None
    return mapping_from_toml(text, source=str(path))


def mapping_from_toml(text: str, *, source: str = "<mapping>") -> dict:
    """Validate mapping text in TOML (e.g. a constant shipped with riskwatch)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise MappingError(f"{source}: not valid TOML ({error})") from None
    return parse_mapping(data, source=source)


def parse_mapping(data: Mapping[str, Any], *, source: str = "<mapping>") -> dict:
    """Validate a mapping already parsed into a dict and return it normalised.

    Normalised means: ``period`` a ``datetime.date``, ``country`` upper-case ISO3 (or the three
    letters given), ``variables`` values as written (``"x:pct"`` kept), every ``[[rules]]`` entry
    complete (``weight``/``value`` present, ``value`` a list of lower-case texts), every
    ``filter`` value a list of texts. Passing a normalised mapping again returns it unchanged, so
    readers call this on whatever dict they are given.
    """
    if not isinstance(data, Mapping):
        raise MappingError(f"{source}: a mapping must be a table of keys, not {_type(data)}")
    unknown = sorted(set(data) - _ALL_KEYS)
    if unknown:
        raise MappingError(
            f"{source}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(_ALL_KEYS))})"
        )
    out: dict[str, Any] = {}
    for key in _COLUMN_KEYS:
        if key in data:
            out[key] = _text(data[key], source, key)
    if "sheet" in data:
        sheet = data["sheet"]
        if isinstance(sheet, bool) or not isinstance(sheet, str | int):
            raise MappingError(f"{source}: sheet: must be a sheet name or a 0-based index")
        out["sheet"] = sheet
    if "country" in data:
        out["country"] = _country(data["country"], source)
    if "period" in data:
        out["period"] = _period(data["period"], source)
    if "aggregate_columns" in data:
        out["aggregate_columns"] = _text_list(
            data["aggregate_columns"], source, "aggregate_columns"
        )
    if "variables" in data:
        out["variables"] = _variables(data["variables"], source)
    if "aliases" in data:
        out["aliases"] = _aliases(data["aliases"], source)
    if "rules" in data:
        out["rules"] = [
            _rule(rule, source, f"rules[{i}]")
            for i, rule in enumerate(_tables(data, "rules", source), 1)
        ]
    if "counts" in data:
        out["counts"] = [
            _count(count, source, f"counts[{i}]")
            for i, count in enumerate(_tables(data, "counts", source), 1)
        ]
    if "name_column" in out and "aliases" not in out:
        raise MappingError(f"{source}: name_column: needs an [aliases] table (name -> pcode)")
    _check_unique_variables(out, source)
    return out


def mapping_problems(mapping: Mapping[str, Any], kind: str) -> list[Problem]:
    """Fatal problems for keys of ``mapping`` that ``kind`` does not use (one per key)."""
    allowed = KIND_KEYS[kind]
    return [
        Problem(
            rule="bad_mapping",
            fatal=True,
            message=(
                f"mapping key {key!r} is not used by --kind {kind} (its keys: "
                f"{', '.join(sorted(allowed))})"
            ),
        )
        for key in sorted(set(mapping) - allowed)
    ]


def area_table_options(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``area_table.read_area_table`` for a ``--kind table`` mapping."""
    options: dict[str, Any] = {"mapping": dict(mapping.get("variables", {}))}
    for key in ("pcode_column", "name_column", "aliases", "period", "period_column", "sheet"):
        if key in mapping:
            options[key] = mapping[key]
    return options


# --- applying a mapping to a table -------------------------------------------------------------


def mapped_column(table: TableRead, key: str, *, role: str) -> tuple[str | None, Problem | None]:
    """The data column a mapping names (header text, or HXL tag pattern when it starts with ``#``).

    Returns ``(column, None)``, or ``(None, problem)`` when no column matches (``missing_column``)
    or when several match equally well (``ambiguous_column``: two columns carry the same tag or
    header, so the mapping cannot tell them apart). ``role`` says what the column is for, in the
    problem (e.g. ``"variables"`` or ``"rules[2].column"``).
    """
    if key.startswith("#"):
        try:
            scores = [tag_matches(key, tag) for tag in table.tags]
        except ValueError:
            return None, _column_problem(
                "bad_mapping", f"{role}: {key!r} is not an HXL tag pattern", key
            )
        found = [s for s in scores if s is not None]
        if found:
            best = min(found)
            hits = [c for c, s in zip(table.columns, scores, strict=True) if s == best]
            if len(hits) > 1:
                return None, _ambiguous(role, key, hits, table)
            return hits[0], None
        return None, _column_problem(
            "missing_column", f"{role}: no column tagged {key} (tags: {_tag_list(table)})", key
        )
    same = [c for c, h in zip(table.columns, table.headers, strict=True) if h.strip() == key]
    if len(same) > 1:
        return None, _ambiguous(role, key, same, table)
    column = find_column(table, names=[key])
    if column is None:
        headers = ", ".join(repr(h) for h in table.headers)
        return None, _column_problem(
            "missing_column", f"{role}: no column headed {key!r} (headers: {headers})", key
        )
    return column, None


def name_key(name: str) -> str:
    """An area name as compared: no accents, case or repeated spaces (``"Chocó"``: ``"choco"``)."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def resolve_aliases(
    names: pd.Series, aliases: Mapping[str, str]
) -> tuple[np.ndarray, dict[str, int]]:
    """The pcode of each area name (``""`` when unknown) and the unknown names with their counts.

    Names match the ``aliases`` keys ignoring case, accents and extra spaces; an empty name is
    left ``""`` and not counted as unknown (callers report it as a missing area).
    """
    lookup = {name_key(name): pcode for name, pcode in aliases.items()}
    pcodes = np.full(len(names), "", dtype=object)
    unknown: dict[str, int] = {}
    for position, name in enumerate(names.tolist()):
        if not name:
            continue
        pcode = lookup.get(name_key(name))
        if pcode is None:
            unknown[name] = unknown.get(name, 0) + 1
        else:
            pcodes[position] = pcode
    return pcodes, unknown


# --- validation details -----------------------------------------------------------------------


def _type(value: object) -> str:
    return {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _text(value: object, source: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"{source}: {key}: must be a non-empty string, not {_type(value)}")
    return value.strip()


def _text_list(value: object, source: str, key: str) -> list[str]:
    if not isinstance(value, list):
        raise MappingError(f"{source}: {key}: must be a list of strings, not {_type(value)}")
    return [_text(item, source, f"{key}[{i}]") for i, item in enumerate(value, 1)]


def _country(value: object, source: str) -> str:
    text = _text(value, source, "country").upper()
    # A three-letter code that is not ISO (a synthetic demo country) is taken as given.
    iso3 = to_iso3(text) or (text if re.fullmatch(r"[A-Z]{3}", text) else None)
    if iso3 is None:
        raise MappingError(f"{source}: country: {value!r} is not an ISO3 (or ISO2) country code")
    return iso3


def iso_date(value: object) -> dt.date | None:
    """A date given as a date (a datetime gives its date) or an ISO text (2024-01-01); else None."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _period(value: object, source: str) -> dt.date:
    if isinstance(value, dt.datetime):
        raise MappingError(f"{source}: period: must be a date (2024-01-01), not a date and time")
    period = iso_date(value)
    if period is None:
        raise MappingError(f"{source}: period: {value!r} is not an ISO date such as 2024-01-01")
    return period


def _variable(value: object, source: str, key: str, *, pct: bool) -> str:
    if not isinstance(value, str):
        raise MappingError(f"{source}: {key}: must be a variable name, not {_type(value)}")
    name, colon, unit = value.partition(":")
    if colon and (not pct or unit != "pct"):
        allowed = "the only suffix allowed is ':pct'" if pct else "no suffix is allowed here"
        raise MappingError(f"{source}: {key}: {value!r} has an unknown suffix ({allowed})")
    try:
        validate_variable_name(name)
    except ValueError as error:
        raise MappingError(f"{source}: {key}: {error}") from None
    return value


def _variables(value: object, source: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise MappingError(f"{source}: variables: must be a table (column = variable)")
    out = {}
    for column, variable in value.items():
        if not isinstance(column, str) or not column.strip():
            raise MappingError(f"{source}: variables: a column name is empty or not text")
        out[column.strip()] = _variable(variable, source, f"variables.{column!r}", pct=True)
    return out


def _aliases(value: object, source: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise MappingError(f"{source}: aliases: must be a table (area name = pcode)")
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, pcode in value.items():
        key = f"aliases.{name!r}"
        if not isinstance(name, str) or not name.strip():
            raise MappingError(f"{source}: {key}: an area name must be non-empty text")
        pcode_text = _text(pcode, source, key)
        if name_key(name) in seen and seen[name_key(name)] != name:
            raise MappingError(
                f"{source}: {key}: the same name as {seen[name_key(name)]!r} (names match "
                "ignoring case, accents and spaces)"
            )
        seen[name_key(name)] = name
        out[name] = pcode_text
    return out


def _tables(data: Mapping[str, Any], key: str, source: str) -> list[Mapping[str, Any]]:
    value = data[key]
    if not isinstance(value, list) or not value:
        raise MappingError(f"{source}: {key}: must be one or more [[{key}]] tables")
    for i, item in enumerate(value, 1):
        if not isinstance(item, Mapping):
            raise MappingError(f"{source}: {key}[{i}]: must be a table, not {_type(item)}")
    return value


def _rule(rule: Mapping[str, Any], source: str, where: str) -> dict[str, Any]:
    for required in ("variable", "rule"):
        if required not in rule:
            raise MappingError(f"{source}: {where}.{required}: missing")
    kind = rule["rule"]
    if kind not in RULES:
        raise MappingError(
            f"{source}: {where}.rule: unknown rule {kind!r} (known: {', '.join(RULES)})"
        )
    allowed = _RULE_KEYS[kind]
    for key in rule:
        if key not in allowed:
            which = [r for r, keys in _RULE_KEYS.items() if key in keys]
            hint = f"only for rule = {' or '.join(which)}" if which else "unknown key"
            raise MappingError(f"{source}: {where}.{key}: {hint}")
    out: dict[str, Any] = {
        "variable": _variable(rule["variable"], source, f"{where}.variable", pct=kind == "mean"),
        "rule": kind,
    }
    needed = ("numerator", "denominator") if kind == "ratio" else ("column",)
    for key in needed:
        if key not in rule:
            raise MappingError(f"{source}: {where}.{key}: missing (rule = {kind} needs it)")
        out[key] = _text(rule[key], source, f"{where}.{key}")
    if kind == "mean":
        weight = rule.get("weight")
        out["weight"] = None if weight is None else _text(weight, source, f"{where}.weight")
    if kind == "share":
        value = rule.get("value", list(DEFAULT_SHARE_VALUES))
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise MappingError(
                f"{source}: {where}.value: must be a non-empty string or list of strings"
            )
        out["value"] = [v.strip().lower() for v in values]
    return out


def _count(count: Mapping[str, Any], source: str, where: str) -> dict[str, Any]:
    for key in count:
        if key not in _COUNT_KEYS:
            raise MappingError(
                f"{source}: {where}.{key}: unknown key (known: {', '.join(sorted(_COUNT_KEYS))})"
            )
    if "variable" not in count:
        raise MappingError(f"{source}: {where}.variable: missing")
    out: dict[str, Any] = {
        "variable": _variable(count["variable"], source, f"{where}.variable", pct=False),
        "filter": {},
        "sum_column": None,
    }
    raw_filter = count.get("filter", {})
    if not isinstance(raw_filter, Mapping):
        raise MappingError(f"{source}: {where}.filter: must be a table (column = value)")
    for column, value in raw_filter.items():
        key = f"{where}.filter.{column!r}"
        values = value if isinstance(value, list) else [value]
        texts = []
        for item in values:
            # Numbers are allowed because TOML users write `fatalities = 0`; cells are text.
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise MappingError(f"{source}: {key}: must be a string, a number or a list of them")
            texts.append(str(item).strip().lower())
        if not texts:
            raise MappingError(f"{source}: {key}: the list of values is empty")
        out["filter"][column.strip()] = texts
    if count.get("sum_column") is not None:
        out["sum_column"] = _text(count["sum_column"], source, f"{where}.sum_column")
    return out


def _check_unique_variables(mapping: Mapping[str, Any], source: str) -> None:
    seen: dict[str, str] = {}
    entries = [
        (f"variables.{column!r}", target.partition(":")[0])
        for column, target in mapping.get("variables", {}).items()
    ]
    entries += [
        (f"rules[{i}]", r["variable"].partition(":")[0])
        for i, r in enumerate(mapping.get("rules", []), 1)
    ]
    entries += [(f"counts[{i}]", c["variable"]) for i, c in enumerate(mapping.get("counts", []), 1)]
    for key, variable in entries:
        if variable in seen:
            raise MappingError(
                f"{source}: {key}: variable {variable!r} is already produced by {seen[variable]}"
            )
        seen[variable] = key


def _column_problem(rule: str, message: str, key: str) -> Problem:
    return Problem(rule=rule, message=message, column=key, fatal=True)


def _ambiguous(role: str, key: str, columns: list[str], table: TableRead) -> Problem:
    headers = [table.headers[table.columns.index(c)] for c in columns]
    return _column_problem(
        "ambiguous_column",
        f"{role}: {len(columns)} columns match {key!r} ({', '.join(map(repr, headers))}): the "
        "mapping cannot tell them apart; name the column by its header, or give each its own tag",
        key,
    )


def _tag_list(table: TableRead) -> str:
    tags = [t for t in table.tags if t]
    return ", ".join(tags) if tags else "none"


def parse_mapping_or_error(mapping: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The parsed mapping and no error, or an empty mapping and the error's message.

    Readers read the table first (its problems count too) and refuse with the mapping error
    after, so one run reports everything that is wrong with the input.
    """
    try:
        return parse_mapping(mapping, source="mapping"), None
    except MappingError as error:
        return {}, str(error)


def read_mapped_table(
    path: str | Path,
    mapping: dict[str, Any],
    kind: str,
    check_options: Callable[[dict[str, Any], ReadResult], None] | None = None,
) -> tuple[dict[str, Any], TableRead, ReadResult]:
    """The parsed mapping, the table it reads (its ``sheet``) and the reader's result so far.

    The table is read first, so that its problems count even when the mapping is bad. The
    result is fatal when the table cannot be read, the mapping is bad (``bad_mapping``) or has
    keys ``kind`` does not use, or ``check_options`` (the reader's own checks, run on a mapping
    that parsed) adds a fatal problem; the reader then returns the result as it is.
    """
    options, mapping_error = parse_mapping_or_error(mapping)
    table = read_table(path, sheet=options.get("sheet"))
    result = result_from_table(table, observation_frame())
    if table.fatal:
        return options, table, result
    if mapping_error is not None:
        result.problems.append(Problem(rule="bad_mapping", message=mapping_error, fatal=True))
        return options, table, result
    result.problems.extend(mapping_problems(options, kind))
    if check_options is not None:
        check_options(options, result)
    return options, table, result


def mapped_columns(
    table: TableRead, wanted: list[tuple[str, str]], problems: list[Problem]
) -> dict[str, str]:
    """Each mapping key -> its data column, for ``(role, key)`` pairs; problems appended.

    A key asked for by several roles is looked up once; a missing or ambiguous column adds the
    problem naming the first role that asked for it.
    """
    found: dict[str, str] = {}
    for role, key in wanted:
        if key in found:
            continue
        column, problem = mapped_column(table, key, role=role)
        if problem is not None:
            problems.append(problem)
        elif column is not None:
            found[key] = column
    return found
