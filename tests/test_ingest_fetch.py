"""URL sources: a real HTTP server on 127.0.0.1; private addresses, size limit, errors, redirects.

Nothing here reaches beyond loopback: the server binds 127.0.0.1 and the only other address used
(127.0.0.2, also loopback) is refused before any connection is made.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from riskwatch import fetch
from riskwatch.db.models import IngestBatch, Observation
from riskwatch.fetch import FetchError, downloaded, redact_url
from tests.test_ingest_cli import batches, count, dtm_csv, ingest, migrate

ALLOW = {"RISKWATCH_ALLOW_PRIVATE_ADDRESSES": "true"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Files from the served folder, plus /redirect-* answers for the redirect tests."""

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        redirects = {
            "/redirect-local": f"http://127.0.0.1:{self.server.server_port}/figures.csv",
            "/redirect-other": f"http://127.0.0.2:{self.server.server_port}/figures.csv",
            "/redirect-file": "file:///etc/passwd",
        }
        if self.path in redirects:
            self.send_response(302)
            self.send_header("Location", redirects[self.path])
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder) of an HTTP server on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("served")
    handler = functools.partial(_Handler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", folder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def figures(server: tuple[str, Path]) -> str:
    """The URL of a small DTM export on the server."""
    base, folder = server
    dtm_csv(folder / "figures.csv", ["100", "200", "300"])
    return f"{base}/figures.csv"


def test_loopback_is_refused_by_default_naming_the_setting(figures: str) -> None:
    with pytest.raises(FetchError) as caught, downloaded(figures, timeout_seconds=5,
                                                         max_bytes=10_000):
        pass
    assert "loopback" in str(caught.value)
    assert "allow_private_addresses" in str(caught.value)
    assert "RISKWATCH_ALLOW_PRIVATE_ADDRESSES" in str(caught.value)


def test_served_when_allowed_and_the_size_limit_holds(figures: str) -> None:
    with downloaded(figures, timeout_seconds=5, max_bytes=10_000,
                    allow_private_addresses=True) as download:
        assert download.path.suffix == ".csv"
        assert "numPresentIdpInd" in download.path.read_text()
        folder = download.path.parent
    assert not folder.exists()  # the temporary file is removed afterwards
    with pytest.raises(FetchError, match="ingest.url_max_bytes"), downloaded(
        figures, timeout_seconds=5, max_bytes=50, allow_private_addresses=True
    ):
        pass


def test_redirects_are_checked_again(server: tuple[str, Path], figures: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    base, _ = server
    with downloaded(f"{base}/redirect-local", timeout_seconds=5, max_bytes=10_000,
                    allow_private_addresses=True) as download:
        assert download.path.read_text().startswith("operation,")
    # Pretend 127.0.0.1 were a public address: the redirect to 127.0.0.2 must still be refused.
    real = fetch._private_reason
    monkeypatch.setattr(fetch, "_private_reason",
                        lambda address: None if address == "127.0.0.1" else real(address))
    with pytest.raises(FetchError, match="127.0.0.2.*loopback"), downloaded(
        f"{base}/redirect-other", timeout_seconds=5, max_bytes=10_000
    ):
        pass
    with pytest.raises(FetchError, match="file"), downloaded(
        f"{base}/redirect-file", timeout_seconds=5, max_bytes=10_000, allow_private_addresses=True
    ):
        pass


def test_only_http_and_https_and_no_credentials_in_urls() -> None:
    for url, message in (("ftp://example.org/x.csv", "only http and https"),
                         ("file:///etc/passwd", "only http and https"),
                         ("https://user:secret@example.org/x.csv", "passwords inside URLs")):
        with pytest.raises(FetchError, match=message), downloaded(
            url, timeout_seconds=1, max_bytes=1
        ):
            pass
    assert redact_url("https://example.org/x.csv?api_key=abc&page=2") == (
        "https://example.org/x.csv?api_key=***&page=2"
    )


def test_url_ingest_through_the_cli(database_url: str, server: tuple[str, Path],
                                    figures: str) -> None:
    base, _ = server
    migrate(database_url)
    refused = ingest(database_url, "--file", figures, "--kind", "dtm", code=1)
    assert "allow_private_addresses" in refused.output
    assert count(database_url, IngestBatch) == 0  # an ad-hoc URL that was never read

    missing = ingest(database_url, "--file", f"{base}/missing.csv", "--kind", "dtm",
                     "--source-id", "afg-dtm", env=ALLOW, code=1)
    assert "HTTP 404" in missing.output
    failed = batches(database_url)[-1]  # an explicitly named source records the failure
    assert (failed.source_id, failed.status) == ("afg-dtm", "failed")

    too_big = ingest(database_url, "--file", figures, "--kind", "dtm", code=1,
                     env={**ALLOW, "RISKWATCH_INGEST__URL_MAX_BYTES": "40"})
    assert "ingest.url_max_bytes" in too_big.output

    ingest(database_url, "--file", figures, "--kind", "dtm", env=ALLOW)
    batch = batches(database_url)[-1]
    assert (batch.status, batch.source_id, batch.location) == (
        "succeeded", "url:figures.csv", figures
    )
    assert batch.content_hash and count(database_url, Observation) == 3

    # A declared source at a URL (./config/sources.toml of the working directory).
    config = Path("config")
    config.mkdir()
    (config / "sources.toml").write_text(
        f'[[source]]\nid = "served-dtm"\nkind = "dtm"\nlocation = "{figures}"\n'
    )
    ingest(database_url, "served-dtm", code=1)  # loopback refused by default
    assert batches(database_url)[-1].status == "failed"
    ingest(database_url, "served-dtm", env=ALLOW)
    declared = batches(database_url)[-1]
    assert (declared.source_id, declared.status, declared.location) == (
        "served-dtm", "unchanged", figures
    )
