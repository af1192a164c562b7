"""`riskwatch export scores --format html|png`: the offline map and the server-side image.

The HTML map is opened in headless Chromium with every network request sent to a dead proxy
(loopback port 9), so it must draw its areas from what is inside the file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner, Result
from PIL import Image
from shapely.geometry import box

from dashboards.testing import SAMPLE_EXPECTED, build_sample_database, populate_sample_database
from riskwatch.cli import cli
from riskwatch.map_png import render_map_png
from riskwatch.map_style import RISK_CLASS_COLOURS, legend_entries
from riskwatch.offline_map import external_references
from tests.browser import headless_chromium, save_screenshot

pytestmark = pytest.mark.db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SENSITIVITY = "Sensitivity: restricted humanitarian data"


@pytest.fixture(scope="module")
def sample_url(module_database_url: str) -> str:
    return populate_sample_database(module_database_url, demo=True)


def export(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["export", *args], env={"RISKWATCH_DATABASE_URL": url})


def test_html_export_is_a_standalone_map(sample_url: str, tmp_path: Path) -> None:
    out = tmp_path / "risk.html"
    result = export(sample_url, "scores", "--format", "html", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert external_references(page) == []
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"<link[^>]+href=", page)
    assert "Leaflet 1.9.4" in page and "BSD" in page  # inlined library and its licence
    assert SENSITIVITY in page
    assert "Test displacement tracking" in page and "CC BY-IGO" in page  # attribution, licence
    assert "SYNTHETIC DEMO DATA" in page
    for entry in legend_entries():
        assert entry.label in page
    # One feature per scored area with a boundary, coloured by its class.
    assert page.count('"risk_class": "very_high"') == 1
    assert "North-West" in page and RISK_CLASS_COLOURS["very_high"] in page


def test_html_export_to_standard_output(sample_url: str) -> None:
    result = export(sample_url, "scores", "--format", "html")
    assert result.exit_code == 0
    assert result.stdout.lstrip().startswith("<!DOCTYPE html>")


def test_png_export_carries_its_label(sample_url: str, tmp_path: Path) -> None:
    out = tmp_path / "risk.png"
    result = export(sample_url, "scores", "--format", "png", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.size == (1200, 900)
    assert image.text["Sensitivity"].startswith(SENSITIVITY)
    assert "Test boundary office" in image.text["Attribution"]
    assert "CC BY-IGO" in image.text["Licence"]
    assert image.text["Note"].startswith("SYNTHETIC DEMO DATA")
    assert "admin level 2" in image.text["Title"]
    # The very-high area is drawn in its class colour.
    colours = {colour for _count, colour in image.convert("RGB").getcolors(1_000_000)}
    very_high = tuple(int(RISK_CLASS_COLOURS["very_high"][i:i + 2], 16) for i in (1, 3, 5))
    assert very_high in colours


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["areas", "--format", "html"], 2, "maps of risk classes"),
        (["scores", "--format", "png"], 2, "binary format"),
        (["scores", "--format", "html", "--country", "NOP"], 1, "no areas for country NOP"),
    ],
)
def test_map_export_refusals(sample_url: str, args: list[str], code: int, message: str) -> None:
    result = export(sample_url, *args)
    assert result.exit_code == code
    assert message in result.stderr


def test_country_filter_limits_the_map(sample_url: str, tmp_path: Path) -> None:
    out = tmp_path / "xyz.html"
    assert export(sample_url, "scores", "--format", "html", "--country", "XYZ", "--out",
                  str(out)).exit_code == 0
    page = out.read_text(encoding="utf-8")
    assert "Elsewhere" in page and "North-West" not in page


# --- render_map_png on its own ------------------------------------------------------------------
def _areas(classes: list[str | None]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"pcode": [f"A{i}" for i in range(len(classes))],
         "name": [f"Area {i}" for i in range(len(classes))], "risk_class": classes},
        geometry=[box(i, 0, i + 1, 1) for i in range(len(classes))], crs="EPSG:4326")


def test_render_map_png_sizes_highlight_and_metadata() -> None:
    data = render_map_png(_areas(["high", None, "insufficient_data"]), highlight={"A0"},
                          title="Alert", footer="Attribution: test. " + SENSITIVITY,
                          width_px=400, height_px=300, metadata={"Sensitivity": SENSITIVITY})
    image = Image.open(io.BytesIO(data))
    assert image.size == (400, 300)
    assert image.text["Title"] == "Alert" and image.text["Sensitivity"] == SENSITIVITY
    assert SENSITIVITY in image.text["Description"]
    # A missing class is drawn as insufficient data (grey), never as a risk colour.
    counts = {colour: count for count, colour in image.convert("RGB").getcolors(1_000_000)}
    assert counts.get((0xbd, 0xbd, 0xbd), 0) > 2000  # two areas' worth of grey
    # very_low's colour appears only in its small legend swatch, not on the map.
    assert counts.get((0xff, 0xff, 0xb2), 0) < 300


def test_render_map_png_without_areas() -> None:
    data = render_map_png(_areas([]), title="Empty", footer="none")
    assert data.startswith(PNG_SIGNATURE)


# --- the offline map in a browser without network ----------------------------------------------
@pytest.fixture(scope="module")
def offline_browser() -> Iterator[object]:
    # Every request that is not a file goes to a proxy that is not there: no network at all.
    with headless_chromium(
        "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", window_size="1200,900"
    ) as driver:
        yield driver


def test_offline_map_draws_in_chromium_without_network(
    tmp_path: Path, offline_browser
) -> None:  # type: ignore[no-untyped-def]
    # The page does not depend on the backend: one SQLite sample database is enough here.
    sample_url = build_sample_database(tmp_path / "sample.db", demo=True)
    out = tmp_path / "risk.html"
    assert export(sample_url, "scores", "--format", "html", "--out", str(out)).exit_code == 0
    driver = offline_browser
    driver.get(out.as_uri())
    layers = driver.execute_script(
        "return window.riskwatchAreas ? window.riskwatchAreas.getLayers().length : -1")
    with_boundary = [p for p in SAMPLE_EXPECTED["risk_classes"]]  # all four have a boundary
    assert layers == len(with_boundary)
    fills = driver.execute_script(
        "return Array.from(document.querySelectorAll('path.leaflet-interactive'))"
        ".map(p => p.getAttribute('fill'))")
    assert sorted(fills) == sorted([RISK_CLASS_COLOURS["very_high"], RISK_CLASS_COLOURS["medium"],
                                    RISK_CLASS_COLOURS["low"], "url(#rw-hatch)"])
    # Nothing was fetched from outside the file.
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name)")
    assert [r for r in resources if not r.startswith(("file:", "data:", "blob:"))] == []
    save_screenshot(driver, "export-offline-html-map")
