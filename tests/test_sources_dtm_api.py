"""read_dtm_api through the real dtmapi client against a local HTTP server replaying recorded
(synthetic) DTM API v3 answers: headers, parameters, sums, key failures. Loopback only."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dtmapi.api
import numpy as np
import pandas as pd
import pytest

from riskwatch.errors import RiskwatchError, UsageError
from riskwatch.sources import dtm_api
from riskwatch.sources.dtm import read_dtm_frame, read_dtm_table
from riskwatch.sources.dtm_api import normalise_query, read_dtm_api
from riskwatch.sources.tabular import table_from_frame

FIXTURES = Path(__file__).parent / "fixtures" / "dtm_api"
KEY = "test-subscription-key-0123"
ENDPOINTS = {
    "IDP_ADMIN_0_API": "admin0",
    "IDP_ADMIN_1_API": "admin1",
    "IDP_ADMIN_2_API": "admin2",
}


class _Recorder:
    """What the server saw, and what it answers."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answer_with: str | None = None  # a fixture name to answer every request with
        self.answer_body: str | None = None  # or a body


class _Handler(BaseHTTPRequestHandler):
    recorder: _Recorder

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        url = urlsplit(self.path)
        self.recorder.requests.append(
            {"path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers)}
        )
        if self.headers.get("Ocp-Apim-Subscription-Key") != KEY:
            self._send(401, "unauthorized.json")
            return
        if self.recorder.answer_body is not None:
            self._send(200, body=self.recorder.answer_body.encode())
            return
        name = self.recorder.answer_with or url.path.rsplit("/", 1)[-1] + ".json"
        self._send(200 if (FIXTURES / name).is_file() else 404, name)

    def _send(self, status: int, fixture: str = "error.json", body: bytes | None = None) -> None:
        if body is None:
            path = FIXTURES / fixture
            body = path.read_bytes() if path.is_file() else b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        return


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt beyond 127.0.0.1 fails the test instead of reaching the network."""
    connect = socket.socket.connect

    def guarded(self: socket.socket, address) -> None:  # type: ignore[no-untyped-def]
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"test tried to reach {address[0]}")
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Recorder]:
    """A DTM API stand-in on 127.0.0.1; dtmapi's endpoint URLs point at it."""
    recorder = _Recorder()
    handler = type("Handler", (_Handler,), {"recorder": recorder})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/v3/displacement"
    for attribute, name in ENDPOINTS.items():
        monkeypatch.setattr(dtmapi.api, attribute, f"{base}/{name}")
    monkeypatch.delenv(dtm_api.KEY_VARIABLE, raising=False)
    try:
        yield recorder
    finally:
        httpd.shutdown()
        httpd.server_close()


def _values(result) -> dict[tuple[str, str, str], float]:
    return {(r.pcode, r.assessment_type, r.variable): r.value for r in result.frame.itertuples()}


def test_rows_are_fetched_with_the_key_and_summed(server: _Recorder) -> None:
    query = {"country": "Demoland", "from_round": 3, "to_date": dt.date(2025, 12, 31)}
    result = read_dtm_api(query, subscription_key=KEY)

    assert [r["path"] for r in server.requests] == [
        "/v3/displacement/admin0",
        "/v3/displacement/admin1",
        "/v3/displacement/admin2",
    ]
    for request in server.requests:
        assert request["headers"]["Ocp-Apim-Subscription-Key"] == KEY
        assert request["query"] == {
            "CountryName": ["Demoland"],
            "FromRoundNumber": ["3"],
            "ToReportingDate": ["2025-12-31"],
        }
    assert not result.fatal and result.problems == []
    values = _values(result)
    # Rows split by displacement reason are summed; BA and SA are never added together.
    assert values[("XDM", "BA", "idps")] == 500.0
    assert values[("XDM", "SA", "idps")] == 70.0
    assert values[("XD01", "BA", "idps")] == 420.0
    assert values[("XD0101", "BA", "idps")] == 120.0
    assert values[("XD0201", "BA", "idps")] == 80.0
    assert values[("XD0201", "SA", "idps")] == 70.0
    # The sex split only where every summed row has it.
    assert values[("XD0102", "BA", "idps_female")] == 160.0
    assert ("XD0101", "BA", "idps_male") not in values
    levels = result.frame.drop_duplicates("pcode").set_index("pcode")["admin_level"]
    assert levels.to_dict() == {
        "XD01": 1, "XD0101": 2, "XD0102": 2, "XD02": 1, "XD0201": 2, "XDM": 0
    }  # fmt: skip
    assert set(result.frame["period"]) == {dt.date(2025, 6, 30)}
    assert set(result.frame["round"]) == {"3"}
    assert set(result.frame["operation"]) == {"Demoland displacement (synthetic)"}
    assert result.meta["api_rows"] == {0: 3, 1: 4, 2: 5}
    assert result.meta["query"]["CountryName"] == "Demoland"
    assert result.meta["round_codes"] == ["3"]


def test_one_level_and_an_iso3_country(server: _Recorder) -> None:
    result = read_dtm_api(
        {"country": "tcd", "admin_level": 2, "operation": "Demoland displacement (synthetic)"},
        subscription_key=KEY,
    )
    assert [r["path"] for r in server.requests] == ["/v3/displacement/admin2"]
    assert server.requests[0]["query"] == {
        "Admin0Pcode": ["TCD"],
        "Operation": ["Demoland displacement (synthetic)"],
    }
    assert set(result.frame["admin_level"]) == {2}
    assert len(result.frame) == 4 + 2 + 2  # idps of 4 figures, the sex split of 2


def test_refused_key_names_the_variable_and_hides_the_key(server: _Recorder) -> None:
    with pytest.raises(RiskwatchError) as caught:
        read_dtm_api({"country": "Demoland"}, subscription_key="wrong-key-987")
    message = str(caught.value)
    assert "DTMAPI_SUBSCRIPTION_KEY" in message and message.startswith(dtm_api.KEY_MESSAGE)
    assert "the API refused the one given" in message
    assert "wrong-key-987" not in message
    assert len(server.requests) == 1  # a 401 is not retried
    assert server.requests[0]["headers"]["Ocp-Apim-Subscription-Key"] == "wrong-key-987"


def test_missing_key_names_the_variable_without_a_request(server: _Recorder) -> None:
    with pytest.raises(RiskwatchError) as caught:
        read_dtm_api({"country": "Demoland"}, subscription_key=None)
    assert str(caught.value).startswith(dtm_api.KEY_MESSAGE)
    assert "DTMAPI_SUBSCRIPTION_KEY" in str(caught.value)
    assert server.requests == []


def test_key_from_the_environment(server: _Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTMAPI_SUBSCRIPTION_KEY", KEY)
    result = read_dtm_api({"country": "Demoland", "admin_level": [0]}, subscription_key=None)
    assert _values(result)[("XDM", "BA", "idps")] == 500.0


def test_error_answer(server: _Recorder) -> None:
    server.answer_with = "error.json"
    with pytest.raises(RiskwatchError, match="the DTM API answered with an error: No data found"):
        read_dtm_api({"country": "Nowhere", "admin_level": 0}, subscription_key=KEY)


def test_empty_answer_is_a_note(server: _Recorder) -> None:
    server.answer_body = json.dumps({"isSuccess": True, "errorMessages": [], "result": []})
    result = read_dtm_api({"country": "Demoland", "admin_level": 0}, subscription_key=KEY)
    assert result.frame.empty and not result.problems
    assert result.notes == [
        "the DTM API returned no rows for CountryName=Demoland, admin_level=[0]"
    ]


def test_unreachable_api(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(dtmapi.api, "IDP_ADMIN_0_API", f"http://127.0.0.1:{port}/admin0")
    monkeypatch.setattr(dtm_api, "MAX_RETRIES", 0)
    with pytest.raises(RiskwatchError, match="the DTM API could not be reached"):
        read_dtm_api({"country": "Demoland", "admin_level": 0}, subscription_key=KEY)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"country": "Chad", "round": 3}, "unknown key 'round'"),
        ({"admin_level": 1}, "give country (name or ISO3) or operation"),
        ({"country": "Chad", "admin_level": 3}, "admin_level must be 0, 1, 2"),
        ({"country": "Chad", "from_round": "three"}, "from_round must be a whole number"),
        ({"country": "Chad", "from_date": "30/06/2025"}, "from_date must be an ISO date"),
        ({"country": "Chad", "from_round": 5, "to_round": 2}, "FromRoundNumber (5) must be <="),
    ],
)
def test_bad_queries_are_usage_errors(server: _Recorder, query: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_dtm_api(query, subscription_key=KEY)
    assert server.requests == []


def test_normalise_query() -> None:
    params, levels = normalise_query(
        {"country": "Chad", "admin_level": [2, 0, 2], "from_date": "2024-01-01", "to_round": "7"}
    )
    assert params == {"CountryName": "Chad", "FromReportingDate": "2024-01-01", "ToRoundNumber": 7}
    assert levels == (0, 2)
    assert normalise_query({"country": "AFG"}) == ({"Admin0Pcode": "AFG"}, (0, 1, 2))


DTM_EXPORT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dtm"
DTM_EXPORT = DTM_EXPORT / "dtm-api-admin0-2_AFG_TCD.csv"


@pytest.mark.skipif(not DTM_EXPORT.exists(), reason="shared test data not available")
def test_api_records_and_the_export_give_the_same_observations() -> None:
    # Typed records, as JSON gives them (numbers, NaN for null), against the text export.
    records = pd.read_csv(DTM_EXPORT, skiprows=[1])
    from_records = read_dtm_frame(records)
    from_file = read_dtm_table(DTM_EXPORT)
    assert not from_records.problems and from_records.rows_quarantined == 0
    pd.testing.assert_frame_equal(from_records.frame, from_file.frame)
    assert from_records.meta["round_codes"] == from_file.meta["round_codes"]


def test_table_from_frame_writes_cells_as_a_file_would() -> None:
    frame = pd.DataFrame(
        {"n": [3.0, np.nan, 2.5], "i": np.array([1, 2, 3], dtype="int64"), "t": ["a ", None, "c"]}
    )
    table = table_from_frame(frame)
    assert table.data.to_dict("list") == {
        "n": ["3", "", "2.5"],
        "i": ["1", "2", "3"],
        "t": ["a", "", "c"],
    }
    assert table.row_numbers.tolist() == [1, 2, 3] and table.hxl_row is None
