"""A pcode list without geometry (OCHA's global p-codes and the like) -> areas.

The OCHA layout is ``Location, Admin Level, P-Code, Name, Parent P-Code, Valid from date`` with the
HXL row ``#country+code, #geo+admin_level, #adm+code, #adm+name, #adm+code+parent, #date+start``;
columns are found by either. Areas keep their pcodes as published; geometry is None. Level 0 rows
are skipped (countries exist implicitly from ISO3 codes); an admin1 area's parent is its country.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from riskwatch.sources.countries import to_iso3
from riskwatch.sources.report import Problem, ReadResult
from riskwatch.sources.tabular import describe_field, find_columns, read_table, result_from_table
from riskwatch.sources.values import RowChecks, area_frame, missing_column, parse_number_column

_FIELDS: dict[str, tuple[list[str], list[str]]] = {
    "pcode": (["P-Code", "pcode"], ["#adm+code-parent"]),
    "level": (["Admin Level", "admin_level"], ["#geo+admin_level", "#adm+level"]),
    "name": (["Name", "name"], ["#adm+name"]),
    "parent": (["Parent P-Code", "parent_pcode"], ["#adm+code+parent"]),
    "country": (["Location", "country_iso3", "iso3"], ["#country+code"]),
    "valid_from": (["Valid from date", "valid_from"], ["#date+start"]),
}


def read_gazetteer(path: str | Path, *, country_iso3: str | None = None) -> ReadResult:
    """Read a pcode list into areas without geometry, for one country when ``country_iso3``.

    Rows of other countries are skipped before validation (noted), so a global list gives
    problems only for the country asked for. Row problems: empty pcode, an admin level that is
    not a whole number, a country code that is neither three letters nor ISO2, a pcode listed
    twice (every copy is dropped: which one is right cannot be told). Level 0 rows are skipped
    (noted). A level >= 2 area without a parent keeps ``parent_pcode`` None (noted).
    """
    table = read_table(path)
    result = result_from_table(table, area_frame())
    if table.fatal:
        return result
    columns = find_columns(table, _FIELDS)
    for key in ("pcode", "level", "country"):
        if columns[key] is None:
            result.problems.append(missing_column(key, describe_field(_FIELDS, key)))
    if result.fatal:
        return result

    data = table.data
    row_numbers = table.row_numbers
    wanted = country_iso3.strip().upper() if country_iso3 else None
    if wanted:
        in_country = (data[columns["country"]].str.strip().str.upper() == wanted).to_numpy()
        if not in_country.any():
            result.problems.append(
                Problem(rule="no_rows", message=f"the list has no areas of {wanted}", fatal=True)
            )
            return result
        if not in_country.all():
            result.notes.append(f"{int((~in_country).sum())} rows of other countries skipped")
        data = data[in_country].reset_index(drop=True)
        row_numbers = row_numbers[in_country]

    checks = RowChecks(row_numbers)
    pcode = data[columns["pcode"]]
    checks.flag(
        (pcode == "").to_numpy(),
        rule="missing_pcode",
        message="empty pcode",
        column=columns["pcode"],
        values=pcode,
    )
    level_text = data[columns["level"]]
    level, _ = parse_number_column(level_text)
    ok_level = np.isfinite(level) & (level == np.round(level)) & (level >= 0)
    checks.flag(
        ~ok_level,
        rule="bad_admin_level",
        message="admin level must be a whole number",
        column=columns["level"],
        values=level_text,
    )
    country_text = data[columns["country"]]
    # Any three letters pass (riskwatch keys countries by ISO3-shaped codes, and a synthetic
    # country such as XDM is legitimate); two letters must be an ISO2 code to convert.
    country = np.array(
        [
            to_iso3(c) or (c.upper() if re.fullmatch(r"[A-Za-z]{3}", c) else None)
            for c in country_text.tolist()
        ],
        dtype=object,
    )
    checks.flag(
        pd.isna(country),
        rule="bad_country_code",
        message="not a three-letter country code nor an ISO2 code",
        column=columns["country"],
        values=country_text,
    )
    duplicated = (pcode.duplicated(keep=False) & (pcode != "")).to_numpy()
    checks.flag(
        duplicated,
        rule="duplicate_pcode",
        message="pcode listed more than once; every copy is dropped",
        column=columns["pcode"],
        values=pcode,
    )

    level = np.where(ok_level, level, -1).astype(int)
    country_rows = ~checks.bad & (level == 0)
    if country_rows.any():
        result.notes.append(
            f"{int(country_rows.sum())} admin level 0 rows skipped: countries "
            "exist implicitly from their ISO3 codes"
        )
    keep = ~checks.bad & (level >= 1)
    parent = (
        data[columns["parent"]].to_numpy(dtype=object)
        if columns["parent"]
        else np.full(len(data), "", dtype=object)
    )
    # An admin1 area hangs under its country, whatever the list writes there (ISO2 or empty).
    parent = np.where(level == 1, country, parent)
    orphans = keep & (level >= 2) & (parent == "")
    if orphans.any():
        result.notes.append(f"{int(orphans.sum())} areas of level 2 or finer have no parent pcode")
    names = data[columns["name"]].to_numpy(dtype=object) if columns["name"] else None
    frame = pd.DataFrame(
        {
            "pcode": pcode.to_numpy(dtype=object),
            "name": names if names is not None else [None] * len(data),
            "admin_level": level,
            "parent_pcode": [p or None for p in parent],
            "country_iso3": country,
        }
    )[keep]
    frame["name"] = [n or None for n in frame["name"]]
    result.frame = area_frame(frame)
    checks.report(result)
    result.meta.update(
        {
            "countries": sorted(set(result.frame["country_iso3"])),
            "levels": sorted({int(v) for v in result.frame["admin_level"]}),
        }
    )
    if columns["valid_from"]:
        dates = sorted(set(data.loc[keep, columns["valid_from"]]) - {""})
        result.meta["valid_from"] = dates
    return result
