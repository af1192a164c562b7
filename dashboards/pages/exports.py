"""The exports page: the downloads of ``riskwatch export``, limited to the user's countries.

The links point at :mod:`dashboards.downloads`, which checks role and scope again on every
request; the page only offers what the user may have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dash import dcc, html
from sqlmodel import Session, select

from dashboards.auth import CurrentUser
from dashboards.downloads import DownloadRefused, check_download, download_href
from riskwatch.db.models import Area
from riskwatch.exports import EXPORT_NAMES, FORMATS, MAP_EXPORTS, MAP_FORMATS

FORMAT_LABELS = {
    "csv": "CSV with HXL hashtags",
    "geojson": "GeoJSON",
    "gpkg": "GeoPackage",
    "html": "Offline HTML map (opens without internet)",
    "png": "PNG map image",
}
ALL_COUNTRIES = ""


@dataclass(frozen=True)
class ExportsPageData:
    """The choices the exports page offers a user."""

    countries: list[str]
    levels: list[int]
    scoped: bool


def exports_page_data(session: Session, user: CurrentUser) -> ExportsPageData:
    """Countries (the user's scope, else all loaded) and admin levels to choose from."""
    loaded = sorted({str(c) for c in session.exec(select(Area.country_iso3).distinct()).all()})
    countries = [c for c in loaded if c in user.countries] if user.countries else loaded
    levels = sorted(
        {int(level) for level in session.exec(select(Area.admin_level).distinct()).all()}
    )
    return ExportsPageData(countries=countries, levels=levels, scoped=bool(user.countries))


def formats_for(what: str | None) -> list[str]:
    """The formats an export comes in (maps only for scores)."""
    return [f for f in FORMATS if f not in MAP_FORMATS or what in MAP_EXPORTS]


def export_link(
    user: CurrentUser, what: str | None, export_format: str | None, country: str | None, level: Any
) -> tuple[str | None, str]:
    """The download link for the form's choices and its text, or (None, why not).

    Applies the download route's own checks, so the page never offers a refused link.
    """
    if not what or not export_format:
        return None, "Choose what to export and a format."
    if export_format not in formats_for(what):
        return None, f"{FORMAT_LABELS.get(export_format, export_format)} is for scores only."
    level_value = int(level) if level not in (None, "") else None
    args = {
        "format": export_format,
        "country": country or "",
        "level": "" if level_value is None else str(level_value),
    }
    try:
        check_download(user, what, args)
    except DownloadRefused as exc:
        return None, f"Not available: {exc}"
    href = download_href(what, export_format, country=country or None, level=level_value)
    where = country or "all your countries"
    return href, f"Download {what} as {FORMAT_LABELS[export_format]} ({where})"


def exports_page(user: CurrentUser, data: ExportsPageData) -> list[Any]:
    """The exports form, the link it builds, and quick links for briefings."""
    default_country = data.countries[0] if data.scoped and len(data.countries) == 1 else None
    country_options = [] if data.scoped else [{"label": "All countries", "value": ALL_COUNTRIES}]
    country_options += [{"label": c, "value": c} for c in data.countries]
    quick: list[Any] = []
    country = default_country or (data.countries[0] if data.scoped and data.countries else None)
    for what, export_format in (
        ("scores", "html"),
        ("scores", "png"),
        ("scores", "csv"),
        ("hotspots", "csv"),
        ("areas", "geojson"),
    ):
        href, text = export_link(user, what, export_format, country, None)
        if href:
            quick.append(html.Li(html.A(text, href=href, className="download-link")))
            if export_format == "csv":
                quick.append(
                    html.Li(
                        html.A(
                            f"About the {what} CSV (sources, licences, sensitivity)",
                            href=download_href(what, "csv", country=country, about=True),
                            className="download-link",
                        )
                    )
                )
    return [
        html.H1("Exports"),
        html.P(
            "The same files as `riskwatch export`. Every file carries its sources' "
            "attribution, licence notes and a sensitivity label: share them only with "
            "organisations working on protection in this response.",
            className="muted",
        ),
        html.H2("For a briefing"),
        html.Ul(quick, id="export-quick-links"),
        html.H2("Choose an export"),
        html.Section(
            className="form-section",
            children=[
                html.Label("What", htmlFor="export-what"),
                dcc.Dropdown(
                    id="export-what",
                    value="scores",
                    clearable=False,
                    options=[{"label": name, "value": name} for name in EXPORT_NAMES],
                ),
                html.Label("Format", htmlFor="export-format"),
                dcc.Dropdown(
                    id="export-format",
                    value="csv",
                    clearable=False,
                    options=[{"label": FORMAT_LABELS[f], "value": f} for f in FORMATS],
                ),
                html.Label("Country", htmlFor="export-country"),
                dcc.Dropdown(
                    id="export-country",
                    options=country_options,
                    clearable=False,
                    value=default_country or (ALL_COUNTRIES if not data.scoped else None),
                ),
                html.Label("Admin level (default: the finest)", htmlFor="export-level"),
                dcc.Dropdown(
                    id="export-level", options=[{"label": str(n), "value": n} for n in data.levels]
                ),
                html.A("Choose an export", id="export-link", href="", className="button"),
            ],
        ),
    ]
