"""The dashboard under waitress, over real HTTP on a loopback port."""

from __future__ import annotations

import http.client
import io
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dashboards import serve as serve_module
from dashboards.app import create_app
from dashboards.serve import listening_urls, make_server, serve, server_url
from dashboards.testing import build_sample_database, run_in_background
from riskwatch.config import Settings, load_settings
from riskwatch.db.engine import make_engine
from riskwatch.db.migrate import SchemaError

pytestmark = pytest.mark.db


def _settings(database_url: str, data_dir: Path) -> Settings:
    return load_settings(
        overrides={"database_url": database_url, "data_dir": str(data_dir)}, cwd=data_dir
    )


def _get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_waitress_serves_the_dashboard_over_http(tmp_path: Path) -> None:
    settings = _settings(build_sample_database(tmp_path / "t.db"), tmp_path)
    server = make_server(settings, "127.0.0.1", 0, app=create_app(settings))
    thread = run_in_background(server)
    try:
        port = server.effective_port
        assert listening_urls(server) == [f"http://127.0.0.1:{port}/"]
        status, headers, body = _get(port, "/healthz")
        assert status == 200
        assert json.loads(body) == {"status": "ok", "database": "ok"}
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Server"] == "riskwatch"
        status, headers, _ = _get(port, "/")
        assert status == 302 and headers["Location"] == "/login"
        status, _, body = _get(port, "/_dash-layout")
        assert status == 401 and json.loads(body) == {"error": "authentication required"}
    finally:
        server.close()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_serve_prints_the_url_it_listens_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(build_sample_database(tmp_path / "t.db"), tmp_path)
    servers: list[Any] = []

    def recording_make_server(*args: Any, **kwargs: Any) -> Any:
        servers.append(make_server(*args, **kwargs))
        return servers[-1]

    monkeypatch.setattr(serve_module, "make_server", recording_make_server)
    out = io.StringIO()
    thread = threading.Thread(
        target=serve, args=(settings, "127.0.0.1", 0), kwargs={"out": out}, daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while "Ctrl+C" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        match = re.search(r"riskwatch dashboard: http://127\.0\.0\.1:(\d+)/", out.getvalue())
        assert match is not None, out.getvalue()
        status, _, body = _get(int(match.group(1)), "/healthz")
        assert status == 200 and json.loads(body)["database"] == "ok"
    finally:
        for server in servers:
            server.close()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_serve_refuses_a_database_without_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    make_engine(url).dispose()
    out = io.StringIO()
    with pytest.raises(SchemaError, match="db upgrade"):
        serve(_settings(url, tmp_path), "127.0.0.1", 0, out=out)
    assert out.getvalue() == ""


def test_server_url() -> None:
    assert server_url("127.0.0.1", 8050) == "http://127.0.0.1:8050/"
    assert server_url("::1", 8050) == "http://[::1]:8050/"
