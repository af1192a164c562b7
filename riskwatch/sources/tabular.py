"""Read a CSV or XLSX table as humanitarian files really are: odd encodings, junk rows, HXL tags.

:func:`read_table` returns every cell as text (so pcodes such as ``"01"`` keep their zeros and
nothing is guessed as a number or NA), the header names, the HXL hashtag of each column when the
file has a hashtag row, and the 1-based row number in the file of every data row (the number a
data manager sees in a spreadsheet; it is what readers put in :class:`Problem.row`).

:func:`find_column` finds a column by HXL tag pattern or by header name, so that readers work on
files with or without a hashtag row and on either family of tags (``#adm2+code`` and
``#adm2+pcode``, ``#affected+idps`` and ``#affected+idps+ind``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd

from riskwatch.sources.report import Problem, ReadResult

#: How many rows from the top are searched for the HXL hashtag row and the header.
HXL_SEARCH_ROWS = 25

_TAG_RE = re.compile(r"#([a-z][a-z0-9_]*)((?:\+[a-z][a-z0-9_]*)*)")
_PATTERN_RE = re.compile(r"#([a-z][a-z0-9_]*)((?:[+-][a-z][a-z0-9_]*)*)")
# A hashtag row someone typed without the "#": words joined by "+", e.g. "sector+es".
_BARE_TAG_RE = re.compile(r"[a-z][a-z0-9_]*(\+[a-z][a-z0-9_]*)+")
_NUMBER_RE = re.compile(r"[-+]?[\d.,\s]+%?")

# Attribute spellings that mean the same thing in the two tag families in use: COD-style files
# write "+pcode", HXL core writes "+code"; "+ind" (individuals) is the default unit of a count.
_ATTRIBUTE_ALIASES = {"pcode": "code"}
_NEUTRAL_ATTRIBUTES = frozenset({"ind"})

_DELIMITERS = [",", ";", "\t", "|"]


@dataclass
class TableRead:
    """A table read as text, with where each row came from and what was wrong with the layout."""

    data: pd.DataFrame  # one column per header (unique names), every cell a str, "" when empty
    headers: list[str]  # header text as written (empty cells named ``column_N``)
    tags: list[str | None]  # normalised HXL tag per column, None when untagged or invalid
    row_numbers: np.ndarray  # 1-based row number in the file of each data row
    encoding: str | None  # text encoding used (None for XLSX)
    header_row: int | None = None  # 1-based file row of the header, None when there is none
    hxl_row: int | None = None  # 1-based file row of the hashtag row, None when there is none
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def fatal(self) -> bool:
        return any(p.fatal for p in self.problems)

    @property
    def columns(self) -> list[str]:
        return list(self.data.columns)

    def tag_of(self, column: str) -> str | None:
        """The normalised HXL tag of ``column`` (a name in :attr:`data`), or None."""
        return self.tags[self.columns.index(column)]


def normalise_hxl_tag(text: str) -> str | None:
    """``"#Adm2 +PCode"`` -> ``"#adm2+pcode"``: lower case, no spaces, attributes sorted and unique.

    Returns None when ``text`` is not a valid HXL hashtag with attributes.
    """
    compact = re.sub(r"\s+", "", text).lower()
    match = _TAG_RE.fullmatch(compact)
    if not match:
        return None
    attributes = sorted({a for a in match.group(2).split("+") if a})
    return "#" + match.group(1) + "".join("+" + a for a in attributes)


def _tag_parts(tag: str) -> tuple[str, frozenset[str]]:
    """A normalised tag as (hashtag, attributes), with aliases folded and neutral ones dropped."""
    name, *attributes = tag.lstrip("#").split("+")
    folded = {_ATTRIBUTE_ALIASES.get(a, a) for a in attributes} - _NEUTRAL_ATTRIBUTES
    return name, frozenset(folded)


def tag_matches(pattern: str, tag: str | None) -> int | None:
    """How well a column tag matches an HXL tag pattern, or None when it does not match.

    A pattern is a hashtag with required ``+attributes`` and excluded ``-attributes``, as in HXL
    tag patterns (``#affected+idps-m-f``). The result is the number of attributes the column has
    beyond those required: 0 is an exact match, and callers prefer the smallest.
    """
    if tag is None:
        return None
    match = _PATTERN_RE.fullmatch(re.sub(r"\s+", "", pattern).lower())
    if not match:
        raise ValueError(f"not an HXL tag pattern: {pattern!r}")
    parts = re.findall(r"([+-])([a-z][a-z0-9_]*)", match.group(2))
    required = {_ATTRIBUTE_ALIASES.get(a, a) for sign, a in parts if sign == "+"}
    required -= _NEUTRAL_ATTRIBUTES
    excluded = {_ATTRIBUTE_ALIASES.get(a, a) for sign, a in parts if sign == "-"}
    name, attributes = _tag_parts(tag)
    if name != match.group(1) or not required <= attributes or excluded & attributes:
        return None
    return len(attributes - required)


def _name_key(name: str) -> str:
    # "P-Code", "p_code" and "PCODE" are the same header to a person reading the file.
    return re.sub(r"[^a-z0-9]", "", name.lower())


def find_column(
    table: TableRead, *, tags: Iterable[str] = (), names: Iterable[str] = ()
) -> str | None:
    """The data column for the first of ``tags`` (HXL patterns) or ``names`` (headers) present.

    Header names are tried first, exactly and then ignoring case and punctuation, because a named
    export (such as the DTM API's) is the most specific; then each tag pattern in order, choosing
    the column with the fewest extra attributes. Returns None when nothing matches.
    """
    columns = table.columns
    for wanted in names:
        for column, header in zip(columns, table.headers, strict=True):
            if header.strip() == wanted:
                return column
        for column, header in zip(columns, table.headers, strict=True):
            if _name_key(header) == _name_key(wanted):
                return column
    for pattern in tags:
        best: tuple[int, str] | None = None
        for column, tag in zip(columns, table.tags, strict=True):
            extra = tag_matches(pattern, tag)
            if extra is not None and (best is None or extra < best[0]):
                best = (extra, column)
        if best is not None:
            return best[1]
    return None


def find_columns(
    table: TableRead, fields: dict[str, tuple[Sequence[str], Sequence[str]]]
) -> dict[str, str | None]:
    """:func:`find_column` for each field of ``{field: (header names, HXL tag patterns)}``."""
    return {
        key: find_column(table, names=names, tags=tags) for key, (names, tags) in fields.items()
    }


def describe_field(fields: dict[str, tuple[Sequence[str], Sequence[str]]], key: str) -> str:
    """What was looked for (``"numPresentIdpInd or #affected+idps"``), for a problem message."""
    names, tags = fields[key]
    return " or ".join([*names, *tags])


# --- reading raw rows ------------------------------------------------------------------------


def _decode(raw: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8 (BOM or not) or UTF-16 with BOM, else Windows-1252, else Latin-1."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "utf-16"
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Windows-1252 is what "Latin-1" files from Excel really are (curly quotes, euro sign); it
    # leaves five bytes undefined, and true ISO-8859-1 decodes everything.
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def _sniff_delimiter(text: str) -> str:
    """The delimiter giving the most fields per line in the first lines (comma on a tie)."""
    sample = "\n".join(text.splitlines()[:HXL_SEARCH_ROWS])
    best, best_width = ",", 0.0
    for delimiter in _DELIMITERS:
        widths = [len(r) for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if any(r)]
        width = float(np.median(widths)) if widths else 0.0
        if width > best_width:
            best, best_width = delimiter, width
    return best


def _csv_grid(path: Path) -> tuple[pd.DataFrame, str, list[str]]:
    """Every record of a CSV file as text cells (positional columns), its encoding and notes."""
    text, encoding = _decode(path.read_bytes())
    notes = []
    if encoding in ("cp1252", "latin-1"):
        notes.append(f"{path.name}: not valid UTF-8, decoded as {encoding}")
    delimiter = _sniff_delimiter(text)
    if delimiter != ",":
        notes.append(f"{path.name}: fields separated by {delimiter!r}")
    top = list(islice(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 200))
    width = max((len(r) for r in top), default=1) or 1
    try:
        # pandas' C parser keeps large exports (ACLED, DTM) fast and compact; it refuses rows
        # wider than the first ones, and then the csv module reads the ragged file instead.
        grid = pd.read_csv(
            io.StringIO(text, newline=""),
            sep=delimiter,
            header=None,
            names=range(width),
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            index_col=False,
            engine="c",
        )
    except pd.errors.ParserError:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        grid = _grid_from_rows(rows)
    return grid, encoding, notes


def _grid_from_rows(rows: list[list[str]]) -> pd.DataFrame:
    width = max((len(r) for r in rows), default=0)
    return pd.DataFrame(
        [r + [""] * (width - len(r)) for r in rows], columns=range(width), dtype=str
    )


def _cell_text(value: object) -> str:
    """An XLSX cell as the text a person sees, without float noise or midnight times."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def _xlsx_grid(path: Path, sheet: str | int | None) -> pd.DataFrame:
    try:
        import openpyxl
    except ImportError as error:  # optional dependency: only XLSX needs it
        raise RuntimeError("reading XLSX files needs the openpyxl package") from error
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is None:
            worksheet = book.worksheets[0]
        elif isinstance(sheet, int):
            worksheet = book.worksheets[sheet]
        else:
            worksheet = book[sheet]
        # Files written by other tools often carry a wrong stored dimension ("A1").
        worksheet.reset_dimensions()
        rows = [[_cell_text(v) for v in row] for row in worksheet.iter_rows(values_only=True)]
        return _grid_from_rows(rows)
    finally:
        book.close()


# --- finding the header and the hashtag row --------------------------------------------------


def _is_hxl_row(row: Sequence[str]) -> bool:
    cells = [c.strip() for c in row if c.strip()]
    valid = sum(1 for c in cells if c.startswith("#") and normalise_hxl_tag(c))
    return valid > 0 and valid * 2 > len(cells)


def _is_bare_tag_row(row: Sequence[str]) -> bool:
    cells = [c.strip().lower() for c in row if c.strip()]
    bare = sum(1 for c in cells if _BARE_TAG_RE.fullmatch(c))
    return len(cells) >= 2 and bare * 2 >= len(cells)


def _is_wide(row: Sequence[str], widest: int) -> bool:
    filled = sum(1 for c in row if c.strip())
    return filled > 0 and filled >= 0.8 * widest


def _is_mostly_text(row: Sequence[str]) -> bool:
    cells = [c.strip() for c in row if c.strip()]
    return sum(1 for c in cells if _NUMBER_RE.fullmatch(c)) * 2 < len(cells)


def _locate_header(rows: list[list[str]]) -> tuple[int | None, int | None, int | None]:
    """0-based indexes of (header row, hashtag row, malformed hashtag row) in the first rows."""
    top = rows[:HXL_SEARCH_ROWS]
    for index, row in enumerate(top):
        if _is_hxl_row(row):
            above = [i for i in range(index) if any(c.strip() for c in rows[i])]
            return (above[-1] if above else None), index, None
    malformed = next((i for i, row in enumerate(top) if _is_bare_tag_row(row)), None)
    if malformed is not None:
        above = [i for i in range(malformed) if any(c.strip() for c in rows[i])]
        return (above[-1] if above else None), None, malformed
    # Junk above a header (titles, export dates) is narrower than the table; the header is the
    # first row about as wide as the table that is mostly words, else (years as column names)
    # simply the first wide row.
    widest = max((sum(1 for c in r if c.strip()) for r in top), default=0)
    wide = [i for i, row in enumerate(top) if _is_wide(row, widest)]
    header = next((i for i in wide if _is_mostly_text(top[i])), wide[0] if wide else None)
    return header, None, None


def _unique_names(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for header in headers:
        name = header
        if name in seen:
            seen[name] += 1
            name = f"{header}.{seen[header]}"
        seen.setdefault(name, 0)
        names.append(name)
    return names


def _failed(path: Path, message: str, encoding: str | None = None) -> TableRead:
    problem = Problem(rule="unreadable_file", message=f"{path.name}: {message}", fatal=True)
    return TableRead(
        data=pd.DataFrame(),
        headers=[],
        tags=[],
        row_numbers=np.array([], dtype=int),
        encoding=encoding,
        problems=[problem],
    )


def read_table(
    path: str | Path, *, sheet: str | int | None = None, header_row: int | None = None
) -> TableRead:
    """Read a CSV (any common delimiter and encoding) or XLSX file as a table of text.

    The header is the row above the HXL hashtag row when the first rows hold one, else the first
    row that is about as wide as the table and mostly not numbers (rows above it are junk, noted),
    unless ``header_row`` (1-based) says where it is. Fully empty rows are dropped (noted). Cells
    are stripped of surrounding spaces. A row that looks like hashtags typed without ``#`` is a
    problem; a cell of the hashtag row that is not a valid tag is a problem for that column only.
    """
    path = Path(path)
    if not path.is_file():
        return _failed(path, "file not found")
    encoding: str | None = None
    notes: list[str] = []
    if path.suffix.lower() == ".xls":
        return _failed(path, "old Excel .xls files are not read: save it as .xlsx or CSV")
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            grid = _xlsx_grid(path, sheet)
        else:
            grid, encoding, notes = _csv_grid(path)
    except Exception as error:  # a corrupt file must become a problem, not a traceback
        return _failed(path, f"cannot be read as a table ({error})", encoding)
    for column in grid.columns:
        grid[column] = grid[column].str.strip()
    top = grid.iloc[:HXL_SEARCH_ROWS].to_numpy(dtype=object).tolist()

    problems: list[Problem] = []
    hxl_index: int | None = None
    malformed: int | None = None
    if header_row is not None:
        header_index: int | None = header_row - 1
        if header_index + 1 < len(grid) and _is_hxl_row(grid.iloc[header_index + 1].tolist()):
            hxl_index = header_index + 1
    else:
        header_index, hxl_index, malformed = _locate_header(top)
    if header_index is None and hxl_index is None:
        return _failed(path, "no header row found in the first rows", encoding)
    if malformed is not None:
        example = next(c for c in top[malformed] if _BARE_TAG_RE.fullmatch(c.lower()))
        problems.append(
            Problem(
                rule="invalid_hxl_row",
                message=(
                    "looks like an HXL hashtag row but its tags do not start with '#' "
                    f"(e.g. {example!r}); the table is read without HXL tags"
                ),
                row=malformed + 1,
                value=example,
            )
        )

    start = max(i for i in (header_index, hxl_index, malformed) if i is not None) + 1
    labels = [i for i in (header_index, hxl_index) if i is not None]
    used = (grid.iloc[start:] != "").any(axis=0) | (grid.iloc[labels] != "").any(axis=0)
    width = int(np.flatnonzero(used.to_numpy())[-1]) + 1 if used.any() else 0
    header_cells = grid.iloc[labels[0]].tolist()
    headers = [header_cells[i] or f"column_{i + 1}" for i in range(width)]
    tags: list[str | None] = [None] * width
    if hxl_index is not None:
        tag_cells = grid.iloc[hxl_index].tolist()
        for i in range(width):
            cell = tag_cells[i]
            tags[i] = normalise_hxl_tag(cell) if cell.startswith("#") else None
            if cell and tags[i] is None:
                problems.append(
                    Problem(
                        rule="invalid_hxl_tag",
                        message="not a valid HXL hashtag; the column is read without a tag",
                        row=hxl_index + 1,
                        column=headers[i],
                        value=cell,
                    )
                )
    junk = [i for i in range(labels[0]) if any(top[i])]
    if junk:
        where = f"row {junk[0] + 1}" if len(junk) == 1 else f"rows {junk[0] + 1}-{junk[-1] + 1}"
        notes.append(f"{path.name}: skipped {len(junk)} row(s) above the header ({where})")

    body = grid.iloc[start:, :width]
    filled = (body != "").any(axis=1).to_numpy() if width else np.zeros(len(body), dtype=bool)
    if (~filled).any():
        notes.append(f"{path.name}: skipped {int((~filled).sum())} empty row(s)")
    data = body[filled].reset_index(drop=True)
    data.columns = _unique_names(headers)
    numbers = np.arange(start + 1, len(grid) + 1)[filled]
    return TableRead(
        data=data,
        headers=headers,
        tags=tags,
        row_numbers=numbers.astype(int),
        encoding=encoding,
        header_row=None if header_index is None else header_index + 1,
        hxl_row=None if hxl_index is None else hxl_index + 1,
        problems=problems,
        notes=notes,
    )


# --- tables already in memory ----------------------------------------------------------------


def _value_text(value: object) -> str:
    """A cell of an in-memory frame as text, as :func:`read_table` would have read it."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and np.isnan(value):
        return ""
    if isinstance(value, np.generic):  # numpy scalars from a typed column
        value = value.item()
    return _cell_text(value)


def table_from_frame(frame: pd.DataFrame) -> TableRead:
    """A :class:`TableRead` over rows already in memory, such as an API response.

    Every cell becomes text the way :func:`read_table` reads a file (missing values ``""``,
    whole floats without ``.0``, dates as ISO), so the same readers validate both. There is no
    hashtag row; ``row_numbers`` count the records from 1.
    """
    headers = [str(c) for c in frame.columns]
    data = pd.DataFrame(
        {
            name: pd.Series([_value_text(v) for v in frame.iloc[:, i].tolist()], dtype=object)
            for i, name in enumerate(_unique_names(headers))
        },
        index=range(len(frame)),
    )
    return TableRead(
        data=data,
        headers=headers,
        tags=[None] * len(headers),
        row_numbers=np.arange(1, len(frame) + 1, dtype=int),
        encoding=None,
    )


def result_from_table(table: TableRead, frame: pd.DataFrame, **meta: object) -> ReadResult:
    """The result every table reader starts from: no rows yet, the table's problems and notes.

    ``frame`` is the empty frame of the reader's output (observations or areas); ``meta`` adds
    reader-specific facts to the encoding.
    """
    return ReadResult(
        frame=frame,
        problems=list(table.problems),
        rows_read=len(table.data),
        notes=list(table.notes),
        meta={"encoding": table.encoding, **meta},
    )
