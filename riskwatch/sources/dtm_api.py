"""IOM DTM API v3 -> IDP observations, through IOM's own client (the ``dtmapi`` package).

The API answers with the rows of the DTM export (``numPresentIdpInd``, ``reportingDate``,
``admin0Pcode``... one row per area, round, displacement reason and origin), so the records go
through the export's reader (:func:`riskwatch.sources.dtm.read_dtm_frame`): same validation,
same sums, never across assessment types. The rows do not say their admin level; it is the level
of the endpoint that returned them (as HDX's DTM scraper does).

``query`` keys (anything else is a usage error):

* ``country``: a country name (``"Chad"``) or an ISO3 code (``"TCD"``), and/or ``operation``
  (the DTM operation's name): at least one of them;
* ``admin_level``: 0, 1, 2 or a list of them (default ``[0, 1, 2]``: one request per level,
  so that admin0 = sum(admin1) = sum(admin2) can be checked);
* ``from_round`` / ``to_round`` (whole numbers), ``from_date`` / ``to_date`` (ISO dates).

The subscription key is the ``subscription_key`` argument, else the ``DTMAPI_SUBSCRIPTION_KEY``
environment variable. Without one, or when the API refuses it (401/403), the call raises
:class:`riskwatch.errors.RiskwatchError` with :data:`KEY_MESSAGE`, which names that variable;
the key itself is never shown.
dtmapi sends it in the ``Ocp-Apim-Subscription-Key`` header and retries timeouts, 429 and 5xx
answers with exponential backoff.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from riskwatch.errors import RiskwatchError, UsageError
from riskwatch.sources.countries import is_iso3
from riskwatch.sources.dtm import read_dtm_frame
from riskwatch.sources.report import ReadResult
from riskwatch.sources.values import observation_frame

#: The environment variable holding the DTM API subscription key.
KEY_VARIABLE = "DTMAPI_SUBSCRIPTION_KEY"
QUERY_KEYS = (
    "operation",
    "country",
    "admin_level",
    "from_round",
    "to_round",
    "from_date",
    "to_date",
)
_LEVELS = (0, 1, 2)
#: Requests dtmapi retries after a timeout, 429 or 5xx answer, and its first back-off (seconds).
MAX_RETRIES = 3
RETRY_DELAY_SECONDS = 1.0
TIMEOUT_SECONDS = 60
# One message for both a missing and a refused key: the remedy is the same.
KEY_MESSAGE = (
    "no valid DTM API subscription key: set " + KEY_VARIABLE + " to your key (from "
    "https://dtm.iom.int/data-and-analysis/dtm-api)"
)


def read_dtm_api(query: Mapping[str, Any], *, subscription_key: str | None) -> ReadResult:
    """Fetch DTM IDP figures for ``query`` and read them like a DTM export.

    Raises :class:`~riskwatch.errors.UsageError` for a bad query and
    :class:`~riskwatch.errors.RiskwatchError` for a missing or refused key, an error answer or an
    unreachable API. ``meta["query"]`` holds the normalised query and ``meta["api_rows"]`` the
    rows returned per admin level; an empty answer is a note, not an error.
    """
    params, levels = normalise_query(query)
    key = subscription_key or os.environ.get(KEY_VARIABLE)
    if not key:
        raise RiskwatchError(KEY_MESSAGE + "; none was given")
    client = _client(key)
    frames = []
    rows_per_level = {}
    for level in levels:
        records = _fetch(client, level, params)
        rows_per_level[level] = len(records)
        if records:
            frame = pd.DataFrame.from_records(records)
            frame["adminLevel"] = level
            frames.append(frame)
    described = {**params, "admin_level": list(levels)}
    if not frames:
        result = ReadResult(frame=observation_frame())
        result.notes.append(f"the DTM API returned no rows for {_describe(described)}")
    else:
        result = read_dtm_frame(pd.concat(frames, ignore_index=True))
    result.meta["query"] = described
    result.meta["api_rows"] = rows_per_level
    return result


def normalise_query(query: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[int, ...]]:
    """The dtmapi keyword arguments for ``query`` and the admin levels to fetch."""
    unknown = sorted(set(query) - set(QUERY_KEYS))
    if unknown:
        raise UsageError(
            f"DTM API query: unknown key {unknown[0]!r} (known: {', '.join(QUERY_KEYS)})"
        )
    params: dict[str, Any] = {}
    if query.get("operation"):
        params["Operation"] = _text(query["operation"], "operation")
    if query.get("country"):
        country = _text(query["country"], "country")
        if len(country) == 3 and is_iso3(country):
            params["Admin0Pcode"] = country.upper()
        else:
            params["CountryName"] = country
    if not params:
        raise UsageError("DTM API query: give country (name or ISO3) or operation")
    for key, name in (("from_round", "FromRoundNumber"), ("to_round", "ToRoundNumber")):
        if query.get(key) is not None:
            params[name] = _whole(query[key], key)
    for key, name in (("from_date", "FromReportingDate"), ("to_date", "ToReportingDate")):
        if query.get(key) is not None:
            params[name] = _date(query[key], key)
    levels = query.get("admin_level", list(_LEVELS))
    levels = levels if isinstance(levels, list | tuple) else [levels]
    if not levels or any(isinstance(v, bool) or v not in _LEVELS for v in levels):
        raise UsageError(
            f"DTM API query: admin_level must be 0, 1, 2 or a list of them, not {levels!r}"
        )
    return params, tuple(sorted(set(levels)))


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"DTM API query: {key} must be a non-empty text")
    return value.strip()


def _whole(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise UsageError(f"DTM API query: {key} must be a whole number, not {value!r}")
    return int(value)


def _date(value: object, key: str) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()[:10]
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise UsageError(f"DTM API query: {key} must be an ISO date, not {value!r}") from None


def _describe(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _client(key: str):
    try:
        from dtmapi import DTMApi
    except ImportError as error:  # a declared dependency; this only guards a broken install
        raise RiskwatchError("the DTM API needs the dtmapi package: pip install dtmapi") from error
    return DTMApi(
        subscription_key=key,
        timeout=TIMEOUT_SECONDS,
        max_retries=MAX_RETRIES,
        retry_delay=RETRY_DELAY_SECONDS,
    )


def _fetch(client, level: int, params: dict[str, Any]) -> list[dict]:
    """The records of one admin level; dtmapi's failures become messages a user can act on."""
    from dtmapi import (
        DTMApiError,
        DTMApiRequestError,
        DTMApiResponseError,
        DTMApiTimeoutError,
        DTMAuthenticationError,
        ValidationError,
    )

    fetch = getattr(client, f"get_idp_admin{level}_data")
    try:
        records = fetch(**params, to_pandas=False)
    except DTMAuthenticationError:
        raise RiskwatchError(KEY_MESSAGE + "; the API refused the one given") from None
    except ValidationError as error:
        raise UsageError(f"DTM API query: {error}") from None
    except DTMApiResponseError as error:
        raise RiskwatchError(f"the DTM API answered with an error: {error}") from None
    except (DTMApiTimeoutError, DTMApiRequestError) as error:
        raise RiskwatchError(f"the DTM API could not be reached: {error}") from None
    except DTMApiError as error:
        raise RiskwatchError(f"the DTM API failed: {error}") from None
    if records is None:
        return []
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise RiskwatchError("the DTM API answered with something other than a list of rows")
    return records
