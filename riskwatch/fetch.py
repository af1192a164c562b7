"""Download a URL source to a temporary file, safely: limits on size and time, no private targets.

A URL given to ``riskwatch ingest --file`` or as a source's ``location`` is downloaded with the
standard library (``urllib``), so that nothing but the bytes of the file reaches the readers:

* only ``http`` and ``https``, also after redirects;
* every address the host name resolves to must be a global (public) address, unless the setting
  ``allow_private_addresses`` is on. The check runs inside the connection itself, on the very
  addresses it then connects to, for the first request and for every redirect: a name that
  resolves differently between a check and a connect (DNS rebinding) cannot slip through;
* environment proxies are ignored, so that the checked address is the one connected to;
* ``ingest.url_max_bytes`` caps the size (the announced ``Content-Length`` and the bytes really
  received) and ``ingest.url_timeout_seconds`` caps each network wait and the whole download.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from riskwatch.errors import RiskwatchError

ALLOWED_SCHEMES = ("http", "https")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CHUNK = 1 << 16
# File name endings the readers decide by; anything else is saved without a suffix (read as CSV).
_KNOWN_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".json", ".geojson", ".gpkg", ".zip")
_CONTENT_TYPES = {
    "text/csv": ".csv",
    "application/csv": ".csv",
    "text/tab-separated-values": ".tsv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/geo+json": ".geojson",
    "application/json": ".json",
    "application/geopackage+sqlite3": ".gpkg",
    "application/zip": ".zip",
    "application/x-zip-compressed": ".zip",
}
# Query parameters that carry credentials; their values are never stored or printed.
_SECRET_PARAMETER = re.compile(r"key|token|secret|passw|sig|auth|credential", re.IGNORECASE)


class FetchError(RiskwatchError):
    """A URL could not be downloaded, or was refused (exit code 1)."""


@dataclass(frozen=True)
class Download:
    """A downloaded file: where it is on disk, where it came from, how big it is."""

    path: Path
    url: str  # the final URL after redirects, with credentials redacted
    size: int
    content_type: str | None


def is_url(text: str) -> bool:
    """True when ``text`` has a URL scheme (``https://...``), whatever the scheme."""
    return bool(_SCHEME_RE.match(text.strip()))


def redact_url(url: str) -> str:
    """The URL without user:password and with credential-like query values replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 literal
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    query = urlencode(
        [(k, "***" if _SECRET_PARAMETER.search(k) else v)
         for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def check_url(url: str) -> None:
    """Refuse anything but http and https, and credentials written into the URL.

    ``user:password@`` would be sent on to every host a redirect leads to, and would end up in
    the batch lineage; such sources are not supported.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise FetchError(
            f"{redact_url(url)}: only http and https URLs are downloaded (not {scheme or 'none'})"
        )
    if parts.username is not None or parts.password is not None:
        raise FetchError(
            f"{redact_url(url)}: user names and passwords inside URLs are not supported"
        )
    if not parts.hostname:
        raise FetchError(f"{redact_url(url)}: the URL has no host name")


def _private_reason(address: str) -> str | None:
    """Why an address may not be reached (None: a global address that may be)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for test, reason in (
        (ip.is_loopback, "loopback"),
        (ip.is_private, "private"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_unspecified, "unspecified"),
    ):
        if test:
            return reason
    return None if ip.is_global else "not global"


def resolve_allowed(host: str, port: int, *, allow_private_addresses: bool) -> list[Any]:
    """The address infos of ``host``, every one of them checked; FetchError when any is refused.

    All addresses are checked, not only the first: a name with one public and one private
    address could otherwise be made to connect to the private one.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise FetchError(f"cannot resolve host {host!r}: {error.strerror}") from None
    if not allow_private_addresses:
        for info in infos:
            address = str(info[4][0])
            reason = _private_reason(address)
            if reason is not None:
                raise FetchError(
                    f"refused to download from {host!r}: it resolves to {address}, a {reason} "
                    "address. Downloads from loopback, private, link-local and other non-global "
                    "addresses are refused unless the setting allow_private_addresses is on "
                    "(RISKWATCH_ALLOW_PRIVATE_ADDRESSES=true)."
                )
    return infos


def guarded_create_connection(
    address: tuple[str, int],
    timeout: float | None = None,
    source_address: tuple[str, int] | None = None,
    *,
    allow_private_addresses: bool,
    no_delay: bool = False,
) -> socket.socket:
    """``socket.create_connection`` that connects only to the addresses it has checked.

    Checked at every connect (not once per URL), so a name that resolves to a private address
    later is still refused. ``no_delay`` sets TCP_NODELAY (small requests on a kept-alive
    connection, e.g. webhooks).
    """
    host, port = address
    last_error: OSError | None = None
    for family, kind, protocol, _, sockaddr in resolve_allowed(
        host, port, allow_private_addresses=allow_private_addresses
    ):
        sock = socket.socket(family, kind, protocol)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address is not None:
                sock.bind(source_address)
            if no_delay:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect(sockaddr)
            return sock
        except OSError as error:
            last_error = error
            sock.close()
    raise last_error or OSError(f"no address to connect to for {host}")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, allow_private_addresses: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = partial(  # type: ignore[method-assign]
            guarded_create_connection, allow_private_addresses=allow_private_addresses
        )


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, allow_private_addresses: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = partial(  # type: ignore[method-assign]
            guarded_create_connection, allow_private_addresses=allow_private_addresses
        )


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allow_private_addresses: bool) -> None:
        super().__init__()
        self._allow = allow_private_addresses

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(
            partial(_GuardedHTTPConnection, allow_private_addresses=self._allow), req
        )


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allow_private_addresses: bool) -> None:
        super().__init__()
        self._allow = allow_private_addresses

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        # No context argument: HTTPSConnection then verifies certificates and host names with
        # the system's default context.
        return self.do_open(
            partial(_GuardedHTTPSConnection, allow_private_addresses=self._allow), req
        )


class _SchemeCheckingRedirectHandler(urllib.request.HTTPRedirectHandler):
    def redirect_request(  # type: ignore[override]
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def guarded_opener(allow_private_addresses: bool) -> urllib.request.OpenerDirector:
    # An empty ProxyHandler: a proxy would be the address connected to, not the checked one.
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        _GuardedHTTPHandler(allow_private_addresses),
        _GuardedHTTPSHandler(allow_private_addresses),
        _SchemeCheckingRedirectHandler(),
    )


def _suffix(urls: list[str], response: Any) -> str:
    """The file ending the readers need (``.xlsx``, ``.zip``...), from the URL or the headers."""
    filename = response.headers.get_filename()
    candidates = ([filename] if filename else []) + [urlsplit(u).path for u in urls]
    for candidate in candidates:
        suffix = PurePosixPath(candidate).suffix.lower()
        if suffix in _KNOWN_SUFFIXES:
            return suffix
    content_type = (response.headers.get_content_type() or "").lower()
    return _CONTENT_TYPES.get(content_type, "")


def _name(url: str) -> str:
    path = PurePosixPath(urlsplit(url).path)
    return re.sub(r"[^A-Za-z0-9._-]", "_", path.stem or "download")[:80] or "download"


@contextmanager
def downloaded(
    url: str,
    *,
    timeout_seconds: float,
    max_bytes: int,
    allow_private_addresses: bool = False,
) -> Iterator[Download]:
    """Download ``url`` to a temporary file that is deleted when the block ends.

    Raises FetchError (exit code 1) naming the URL (credentials redacted) and the reason: a
    refused scheme or address, an HTTP error status, a file over ``max_bytes``, a download
    longer than ``timeout_seconds``, or a network failure.
    """
    check_url(url)
    shown = redact_url(url)
    deadline = time.monotonic() + timeout_seconds
    request = urllib.request.Request(url, headers={"User-Agent": "riskwatch"})
    folder = Path(tempfile.mkdtemp(prefix="riskwatch-download-"))
    try:
        try:
            opener = guarded_opener(allow_private_addresses)
            response = opener.open(request, timeout=timeout_seconds)
        except urllib.error.HTTPError as error:
            raise FetchError(
                f"{shown}: the server answered HTTP {error.code} {error.reason}"
            ) from None
        except urllib.error.URLError as error:
            raise FetchError(f"cannot download {shown}: {error.reason}") from None
        except (TimeoutError, OSError) as error:
            raise FetchError(f"cannot download {shown}: {error}") from None
        with response:
            final_url = response.geturl()
            announced = response.headers.get("Content-Length")
            if announced and announced.isdigit() and int(announced) > max_bytes:
                raise FetchError(
                    f"{shown}: the file is {int(announced):,} bytes, more than the limit of "
                    f"{max_bytes:,} (setting ingest.url_max_bytes)"
                )
            path = folder / (_name(final_url) + _suffix([final_url, url], response))
            size = _copy_limited(response, path, shown, max_bytes, deadline, timeout_seconds)
            content_type = response.headers.get_content_type()
        yield Download(path=path, url=redact_url(final_url), size=size, content_type=content_type)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _copy_limited(
    response: Any, path: Path, shown: str, max_bytes: int, deadline: float, timeout: float
) -> int:
    """Copy the body to ``path``; FetchError past the size limit or the deadline."""
    size = 0
    try:
        with path.open("wb") as handle:
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(
                        f"{shown}: the file is larger than the limit of {max_bytes:,} bytes "
                        "(setting ingest.url_max_bytes); download stopped"
                    )
                if time.monotonic() > deadline:
                    raise FetchError(
                        f"{shown}: the download took longer than {timeout:g} s "
                        "(setting ingest.url_timeout_seconds); stopped"
                    )
                handle.write(chunk)
    except (TimeoutError, OSError, http.client.HTTPException) as error:
        raise FetchError(f"{shown}: the download failed: {error}") from None
    return size
