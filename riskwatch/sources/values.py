"""Numbers and dates as humanitarian files write them, row checks, and the output frame shapes.

Parsing rules (kept deliberately small, so a reviewer can predict every outcome):

* Numbers: surrounding spaces and spaces inside (``"1 234"``) are ignored; commas followed by
  groups of exactly three digits are thousands separators (``"1,234,567"``); otherwise a single
  comma is a decimal comma (``"0,45"``). ``"1.234,5"`` (dot thousands, comma decimals) is accepted.
  A trailing ``%`` is accepted only for a column declared as percent, whose values are divided by
  100; elsewhere it is a problem, so that ``45%`` never silently becomes 45. NaN and infinities are
  problems. An empty cell is missing, never zero.
* Dates: ISO 8601 (``2022-12-31``, ``2022-12-31T00:00:00``, with or without a zone; the date part
  is kept), ``2022/12/31``, ``2022-12`` (first of the month), and English month names
  (``1 March 2015``, ``31-Mar-2015``, ``March 31, 2015``). All-number day/month forms such as
  ``03/04/2015`` are problems: they are ambiguous between countries' conventions.
  :func:`parse_date_unambiguous` (for tables that mix formats) also accepts the all-number
  forms that can be read only one way (``19/3/15``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from riskwatch.sources.report import AREA_COLUMNS, OBSERVATION_COLUMNS, Problem, ReadResult

#: Columns that readers add after OBSERVATION_COLUMNS: the admin level of the pcode (0 for a
#: country) and the ISO3 country when known (else None). ``match_pcodes`` uses them; an ingest
#: that only wants OBSERVATION_COLUMNS can select those.
OBSERVATION_EXTRA_COLUMNS = ["admin_level", "country_iso3"]

_SPACES = re.compile(r"[\s\u00a0\u2009\u202f]+")
_THOUSANDS_COMMA = re.compile(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?")
_THOUSANDS_DOT = re.compile(r"[-+]?\d{1,3}(\.\d{3})+(,\d+)?")
_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+")
_ISO_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?"
)
_ISO_MONTH = re.compile(r"(\d{4})-(\d{2})")
_SLASH_YMD = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_NUMERIC_DMY = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}")
_NAMED_FORMATS = [
    "%d %B %Y",
    "%d %b %Y",
    "%d-%b-%Y",
    "%d-%B-%Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%B %d %Y",
    "%b %d %Y",
    "%d %b. %Y",
]


def parse_number(text: str, *, percent: bool = False) -> float | None:
    """Parse one number; None for an empty cell; ValueError (with the reason) when it is not one.

    With ``percent`` the column holds percentages: the value (with or without ``%``) is divided
    by 100 to give a fraction.
    """
    compact = _SPACES.sub("", text)
    if not compact:
        return None
    has_percent = compact.endswith("%")
    if has_percent:
        if not percent:
            raise ValueError("has a % sign but the column is not declared as percent")
        compact = compact[:-1]
    if _THOUSANDS_COMMA.fullmatch(compact):
        compact = compact.replace(",", "")
    elif _THOUSANDS_DOT.fullmatch(compact):
        compact = compact.replace(".", "").replace(",", ".")
    elif _DECIMAL_COMMA.fullmatch(compact):
        compact = compact.replace(",", ".")
    try:
        value = float(compact)
    except ValueError:
        raise ValueError("not a number") from None
    if not np.isfinite(value):
        raise ValueError("not a finite number")
    return value / 100.0 if percent else value


def parse_date(text: str) -> dt.date | None:
    """Parse one date; None for an empty cell; ValueError (with the reason) when it is not one."""
    text = text.strip()
    if not text:
        return None
    try:
        if match := _ISO_DATE.fullmatch(text):
            return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        if match := _ISO_MONTH.fullmatch(text):
            return dt.date(int(match.group(1)), int(match.group(2)), 1)
        if match := _SLASH_YMD.fullmatch(text):
            return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise ValueError("not a calendar date") from None
    if _NUMERIC_DMY.fullmatch(text):
        raise ValueError("ambiguous day/month order; write dates as YYYY-MM-DD")
    for pattern in _NAMED_FORMATS:
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValueError("not a date (expected YYYY-MM-DD)")


_NUMERIC_DAY_MONTH = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})")


def parse_date_unambiguous(text: str) -> dt.date | None:
    """:func:`parse_date`, also accepting all-number dates whose day/month order is certain.

    ``19/3/15`` and ``03-18-14`` can be read only one way (19 and 18 are not months), and
    ``05/05/2015`` gives the same date either way: those are accepted. ``03/04/2015`` stays a
    problem. A two-digit year is taken as 20YY. Meant for tables that mix date formats (HXL
    feeds assembled from several organisations); strict readers keep :func:`parse_date`.
    """
    try:
        return parse_date(text)
    except ValueError as error:
        match = _NUMERIC_DAY_MONTH.fullmatch(text.strip())
        if not match:
            raise
        first, second, year_text = match.groups()
        year = int(year_text) + (2000 if len(year_text) == 2 else 0)
        readings = set()
        for day, month in ((int(first), int(second)), (int(second), int(first))):
            try:
                readings.add(dt.date(year, month, day))
            except ValueError:
                continue
        if len(readings) == 1:
            return readings.pop()
        if not readings:
            raise ValueError("not a calendar date") from None
        raise error


def _parse_column(
    series: pd.Series, parse: Callable[[str], object]
) -> tuple[list[object], list[str | None]]:
    """Apply ``parse`` to each distinct text once: (values, error message per row or None)."""
    cache: dict[str, tuple[object, str | None]] = {}
    values: list[object] = []
    errors: list[str | None] = []
    for text in series.tolist():
        if text not in cache:
            try:
                cache[text] = (parse(text), None)
            except ValueError as error:
                cache[text] = (None, str(error))
        value, error = cache[text]
        values.append(value)
        errors.append(error)
    return values, errors


def parse_number_column(
    series: pd.Series, *, percent: bool = False
) -> tuple[np.ndarray, list[str | None]]:
    """Parse a text column: (float array, NaN for empty or bad; error message per row or None)."""
    text = series.astype(str).str.strip()
    # A writable copy: under copy-on-write, to_numpy() may hand back a read-only view.
    fast = np.array(pd.to_numeric(text.where(text != ""), errors="coerce"), dtype=float)
    # Plain numbers take the vectorised path; only odd cells go through the careful parser.
    slow = (text != "").to_numpy() & ~np.isfinite(fast)
    errors: list[str | None] = [None] * len(text)
    if percent:
        fast = fast / 100.0
    if slow.any():
        parsed, slow_errors = _parse_column(text[slow], lambda t: parse_number(t, percent=percent))
        fast[slow] = [np.nan if v is None else v for v in parsed]
        for position, error in zip(np.flatnonzero(slow), slow_errors, strict=True):
            errors[position] = error
    return fast, errors


def parse_date_column(series: pd.Series) -> tuple[list[dt.date | None], list[str | None]]:
    """Parse a text column of dates: (date or None per row, error message per row or None)."""
    values, errors = _parse_column(series.astype(str), parse_date)
    return values, errors  # type: ignore[return-value]


def normalise_round(text: str) -> str:
    """Round codes as text: ``"16.0"`` (from a spreadsheet) and ``" 16"`` both become ``"16"``."""
    text = text.strip()
    if re.fullmatch(r"\d+\.0+", text):
        return text.split(".")[0]
    return text


class RowChecks:
    """Collects row problems while validating a whole table, and which rows are bad.

    ``row_numbers`` are the file row numbers (see ``TableRead.row_numbers``); a row flagged by any
    check is dropped from the output, and every check's problem is kept, so a data manager sees
    everything wrong with the file in one pass.
    """

    def __init__(self, row_numbers: np.ndarray) -> None:
        self.row_numbers = np.asarray(row_numbers, dtype=int)
        self.bad = np.zeros(len(self.row_numbers), dtype=bool)
        self.problems: list[Problem] = []

    def flag(
        self,
        mask: np.ndarray | pd.Series,
        *,
        rule: str,
        message: str | list[str | None],
        column: str | None,
        values: pd.Series | list[str] | None = None,
    ) -> None:
        """Mark the rows in ``mask`` bad, with one problem each (per-row messages allowed)."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        self.bad |= mask
        value_list = None if values is None else list(values)
        for position in np.flatnonzero(mask):
            text = message if isinstance(message, str) else message[position]
            self.problems.append(
                Problem(
                    rule=rule,
                    message=text or rule,
                    row=int(self.row_numbers[position]),
                    column=column,
                    value=None if value_list is None else str(value_list[position]),
                )
            )

    def flag_errors(self, errors: list[str | None], *, rule: str, column: str, values) -> None:
        """Flag rows whose parse error is not None, with the parser's message."""
        mask = np.array([e is not None for e in errors], dtype=bool)
        self.flag(mask, rule=rule, message=errors, column=column, values=values)

    def flag_shares(
        self,
        shares: np.ndarray,
        *,
        variable: str,
        column: str,
        fix: str,
        values: pd.Series | None = None,
    ) -> None:
        """Flag ``share_out_of_range`` on rows whose share lies outside 0-1.

        ``fix`` ends the message: how to declare a column that holds percentages instead.
        """
        self.flag(
            (shares < 0) | (shares > 1),
            rule="share_out_of_range",
            message=f"{variable} must lie between 0 and 1; if the column holds percentages, {fix}",
            column=column,
            values=values,
        )

    def report(self, result: ReadResult) -> None:
        """Hand the row problems and the count of dropped rows to the reader's ``result``."""
        result.problems.extend(self.problems)
        result.rows_quarantined = self.quarantined

    @property
    def quarantined(self) -> int:
        return int(self.bad.sum())


def missing_column(column: str, wanted: str) -> Problem:
    """The fatal problem for a required column that is absent."""
    return Problem(
        rule="missing_column",
        message=f"required column {column} not found (looked for {wanted})",
        column=column,
        fatal=True,
    )


def observation_frame(data: pd.DataFrame | dict | None = None) -> pd.DataFrame:
    """A frame with OBSERVATION_COLUMNS + OBSERVATION_EXTRA_COLUMNS and their documented types.

    Text columns are object dtype holding ``str`` or ``None`` (not pandas' string dtype, whose
    missing value is NaN), ``period`` holds ``datetime.date``, ``value`` is float and
    ``admin_level`` int.
    """
    frame = pd.DataFrame(data if data is not None else {})
    columns = OBSERVATION_COLUMNS + OBSERVATION_EXTRA_COLUMNS
    out = pd.DataFrame(index=range(len(frame)))
    for column in columns:
        if column in frame:
            series = frame[column].reset_index(drop=True)
        else:
            series = pd.Series([None] * len(frame), dtype=object)
        if column == "value":
            out[column] = series.astype(float)
        elif column == "admin_level":
            # Nullable: a table keyed by a bare "pcode" column does not say its level.
            out[column] = pd.array(_none_for_missing(series), dtype="Int64")
        else:
            out[column] = pd.Series(_none_for_missing(series), dtype=object)
    return out


def area_frame(data: pd.DataFrame | dict | None = None, *, crs: str = "EPSG:4326"):
    """A GeoDataFrame with AREA_COLUMNS: text columns object (``str``/None), admin_level int."""
    import geopandas as gpd

    frame = pd.DataFrame(data if data is not None else {})
    columns = {}
    for column in AREA_COLUMNS:
        if column == "geometry":
            continue
        series = frame[column] if column in frame else pd.Series([None] * len(frame))
        series = series.reset_index(drop=True)
        if column == "admin_level":
            columns[column] = (
                series.astype("int64") if len(series) else pd.Series([], dtype="int64")
            )
        else:
            columns[column] = pd.Series(_none_for_missing(series), dtype=object)
    geometry = (
        frame["geometry"].reset_index(drop=True).tolist()
        if "geometry" in frame
        else [None] * len(frame)
    )
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geometry, crs=crs), crs=crs)[
        AREA_COLUMNS
    ]


def _none_for_missing(series: pd.Series) -> list[object]:
    return [None if _is_missing(v) else v for v in series.tolist()]


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and np.isnan(value)


def finish_wide_rows(result: ReadResult, parts: list[pd.DataFrame], checks: RowChecks) -> None:
    """Set a wide table's observations (one part per mapped column) and its row problems.

    Each part carries the file row's ``position``; a row with one bad cell loses all its values,
    because half a row is easy to misread later.
    """
    checks.report(result)
    long = pd.concat(parts, ignore_index=True)
    good = ~checks.bad[long["position"].to_numpy()] & np.isfinite(long["value"].to_numpy())
    result.frame = observation_frame(long[good].drop(columns="position"))
