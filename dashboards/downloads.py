"""``/download/<what>``: the exports of ``riskwatch export``, gated by role and country scope.

The same loader and writers as the CLI (:mod:`riskwatch.exports`,
:mod:`riskwatch.export_writers`), so a download holds exactly what the command writes: CSV with
its HXL row (its about text at ``?format=csv&part=about``), GeoJSON, GeoPackage, the offline
HTML map and the PNG map, each with attribution, licence notes and the sensitivity label.

Checks, on the server, before anything is read: a session (the gate, 401), a role that may
export (403), and a country inside the user's scope (403). A user limited to one country gets
that country by default; one limited to several must choose. Every download is recorded as an
audit event (who, what, which filters), since exports leave the system.
"""

from __future__ import annotations

import io
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, request
from sqlmodel import Session

from dashboards.auth import DOWNLOAD_ROLES, CurrentUser, current_user, web_context
from riskwatch.db.engine import session_scope
from riskwatch.db.models import AuditEvent
from riskwatch.errors import RiskwatchError
from riskwatch.export_writers import png_bytes, write_csv, write_geojson, write_gpkg, write_html
from riskwatch.exports import EXPORT_NAMES, FORMATS, MAP_EXPORTS, MAP_FORMATS, ExportRequest
from riskwatch.exports import build_export as load_export

DOWNLOAD_PREFIX = "/download/"
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "html": "text/html; charset=utf-8",
    "png": "image/png",
    "about": "text/plain; charset=utf-8",
}
_ISO3 = re.compile(r"[A-Za-z]{3}")


class DownloadRefused(Exception):
    """A download the user may not have (status 403) or cannot be made (400)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DownloadRequest:
    """A checked download: the export request and whether the csv's about text is wanted."""

    export: ExportRequest
    about: bool


def download_href(
    what: str,
    export_format: str,
    *,
    country: str | None = None,
    level: int | None = None,
    about: bool = False,
) -> str:
    """The download URL of an export (the exports page builds its links with this)."""
    query: dict[str, str] = {"format": export_format}
    if country:
        query["country"] = country
    if level is not None:
        query["level"] = str(level)
    if about:
        query["part"] = "about"
    return f"{DOWNLOAD_PREFIX}{what}?{urlencode(query)}"


def check_download(user: CurrentUser, what: str, args: dict[str, str]) -> DownloadRequest:
    """The export a user asked for, or DownloadRefused (role, scope, malformed options)."""
    if user.role not in DOWNLOAD_ROLES:
        raise DownloadRefused(f"the {user.role} role cannot download exports")
    if what not in EXPORT_NAMES:
        raise DownloadRefused(f"unknown export {what!r}", 404)
    export_format = args.get("format", "csv")
    if export_format not in FORMATS:
        raise DownloadRefused(f"unknown format {export_format!r}", 400)
    if export_format in MAP_FORMATS and what not in MAP_EXPORTS:
        raise DownloadRefused(f"{export_format} maps are made of scores", 400)
    about = args.get("part") == "about"
    if about and export_format != "csv":
        raise DownloadRefused("the about text goes with csv exports", 400)
    country = (args.get("country") or "").strip().upper() or None
    if country is not None and not _ISO3.fullmatch(country):
        raise DownloadRefused("country takes an ISO3 code", 400)
    if user.countries:
        if country is None:
            if len(user.countries) != 1:
                raise DownloadRefused("choose one of your countries: " + ", ".join(user.countries))
            country = user.countries[0]
        elif country not in user.countries:
            raise DownloadRefused(f"country {country} is outside your scope")
    level: int | None = None
    if args.get("level"):
        try:
            level = int(args["level"])
        except ValueError:
            raise DownloadRefused("level takes a number", 400) from None
    period: date | None = None
    if args.get("period"):
        try:
            period = date.fromisoformat(args["period"])
        except ValueError:
            raise DownloadRefused("period takes a date YYYY-MM-DD", 400) from None
    variable = args.get("variable") or None
    return DownloadRequest(
        ExportRequest(
            what=what,
            format=export_format,
            level=level,
            period=period,
            country=country,
            variable=variable,
        ),
        about,
    )


def render_download(session: Session, checked: DownloadRequest, threshold: int) -> bytes:
    """The bytes of the download (the CLI's writers), raising RiskwatchError when refused."""
    request_ = checked.export
    table = load_export(session, request_, threshold=threshold)
    if checked.about:
        return table.about.as_text("csv").encode("utf-8")
    if request_.format == "png":
        return png_bytes(table)
    if request_.format == "gpkg":
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{request_.what}.gpkg"
            write_gpkg(table, path)
            return path.read_bytes()
    writer = {"csv": write_csv, "geojson": write_geojson, "html": write_html}[request_.format]
    stream = io.StringIO(newline="")
    writer(table, stream)
    return stream.getvalue().encode("utf-8")


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def download_view(what: str) -> Response:
    """``GET /download/<what>?format=...&level=...&country=...&period=...``."""
    user = current_user()
    if user is None:  # the gate has answered 401 already; defence in depth
        return _error(401, "authentication required")
    try:
        checked = check_download(user, what, request.args.to_dict())
    except DownloadRefused as exc:
        return _error(exc.status, str(exc))
    context = web_context()
    threshold = context.settings.privacy.small_count_threshold
    try:
        with Session(context.engine) as session:
            body = render_download(session, checked, threshold)
    except RiskwatchError as exc:
        return _error(404 if "nothing to export" in str(exc) else 400, str(exc))
    export = checked.export
    with session_scope(context.engine) as session:
        session.add(
            AuditEvent(
                actor=user.username,
                action="export.download",
                object_type="export",
                object_id=export.what,
                detail={
                    "format": "about" if checked.about else export.format,
                    "country": export.country,
                    "level": export.level,
                    "bytes": len(body),
                },
            )
        )
    extension = "csv.about.txt" if checked.about else export.format
    name = f"riskwatch-{export.what}-{(export.country or 'all').lower()}.{extension}"
    response = Response(
        body, mimetype=None, content_type=MEDIA_TYPES["about" if checked.about else export.format]
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def install_downloads(server: Flask) -> None:
    """Register the download route (behind the gate like every non-public route)."""
    server.add_url_rule(DOWNLOAD_PREFIX + "<what>", "download", download_view, methods=["GET"])
