"""Benchmark: the dashboard map in headless Chromium against a naive plotly map, same run.

Run explicitly, alone on the machine (benchmarks are not collected by default):

    .venv/bin/pytest tests/benchmarks/test_map_benchmark.py -q -s

Boundaries of real vertex density: Voronoi cells whose edges are densified with a small,
smooth jitter (~370 vertices and ~12 KB of GeoJSON per area, like a real COD-AB admin2 set),
shared edges identical on both sides (a valid coverage). Generated once and kept under the
system's temporary folder (``riskwatch-map-benchmark``) for later runs.

Measured, for 5,000 and 50,000 areas, with the production server (waitress) and a logged-in
coordinator, browser cache cleared and disabled:

- first complete render: navigation start to the map's ``riskmap-rendered`` mark (page, Dash,
  geometry, values and the canvas drawing all done), median of 3 loads; bytes transferred
  (Resource Timing ``transferSize`` of the page and everything it loaded);
- re-colouring after a period change through the period selector (Dash callback, values
  request, redraw), median of 3, and that no geometry was requested again;
- the server's one-off build of the level's geometry (simplification + quantisation, once
  per boundary version), for the record.

Baseline: a page with plotly's ``Choroplethmap`` carrying the full GeoJSON of the same 5,000
areas (what a naive Dash map sends), until MapLibre reports the map loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import shapely
from rich.console import Console
from scipy.spatial import Voronoi
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import insert

from dashboards.serve import make_server
from dashboards.testing import run_in_background
from riskwatch.config import load_settings
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import Area, AreaScore, Hotspot, ScoreRun
from riskwatch.users import create_user
from tests.conftest import skip_or_fail

BENCH_DIR = Path(tempfile.gettempdir()) / "riskwatch-map-benchmark"
# MAP_BENCHMARK_SIZES=5000 runs only the smaller size (while working on the map).
SIZES = tuple(int(size) for size in os.environ.get("MAP_BENCHMARK_SIZES", "5000,50000").split(","))
VERTICES_PER_AREA = 370
CELL_DEGREES = 0.05
PASSWORD = "benchmark-password"
P1, P2 = date(2025, 1, 31), date(2025, 4, 30)
LOADS = 3
TARGETS = {5_000: 1.5, 50_000: 3.0}
MAX_TRANSFER = 5 * 1024 * 1024
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
console = Console()


# Synthetic boundaries of real vertex density ------------------------------------------------
def dense_cells(n: int, seed: int = 0) -> list[Polygon]:
    """``n`` Voronoi cells densified to ~370 vertices each, shared edges identical."""
    rng = np.random.default_rng(seed)
    side = np.sqrt(n) * CELL_DEGREES
    points = rng.uniform(0, side, size=(n, 2))
    mirrored = np.vstack(
        [points, points * [-1, 1], points * [1, -1], [2 * side, 0] + points * [-1, 1],
         [0, 2 * side] + points * [1, -1]]
    )  # fmt: skip
    voronoi = Voronoi(mirrored)
    per_edge = max(2, VERTICES_PER_AREA // 6)
    t = np.linspace(0, 1, per_edge, endpoint=False)
    bump = np.sin(np.pi * t)
    edges: dict[tuple[int, int], np.ndarray] = {}
    cells = []
    origin = np.array([20.0, -10.0])
    for index in range(n):
        region = voronoi.regions[voronoi.point_region[index]]
        parts = []
        for a, b in zip(region, region[1:] + region[:1], strict=True):
            key = (a, b) if a < b else (b, a)
            segment = edges.get(key)
            if segment is None:
                p, q = voronoi.vertices[key[0]], voronoi.vertices[key[1]]
                d = q - p
                normal = np.array([-d[1], d[0]])
                jitter = np.random.default_rng(key[0] * 1_000_003 + key[1]).normal(
                    0, 0.01, per_edge
                )
                segment = p + np.outer(t, d) + np.outer(jitter * bump, normal)
                edges[key] = segment
            if a < b:
                parts.append(segment)
            else:
                parts.append(np.vstack([voronoi.vertices[key[1]][None], segment[:0:-1]]))
        cells.append(Polygon(np.vstack(parts) + origin))
    return cells


def cached_cells(n: int) -> list[Polygon]:
    """The cells of size ``n``, generated once and kept as WKB under BENCH_DIR."""
    path = BENCH_DIR / f"cells_{n}_v{VERTICES_PER_AREA}.npz"
    if path.exists():
        with np.load(path) as data:
            blob, offsets = data["blob"].tobytes(), data["offsets"]
        return [
            shapely.from_wkb(blob[offsets[i] : offsets[i + 1]]) for i in range(len(offsets) - 1)
        ]
    started = time.perf_counter()
    cells = dense_cells(n)
    wkbs = shapely.to_wkb(np.array(cells, dtype=object))
    offsets = np.concatenate([[0], np.cumsum([len(w) for w in wkbs])])
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(path, blob=np.frombuffer(b"".join(wkbs), dtype=np.uint8), offsets=offsets)
    console.print(f"generated {n:,} dense cells in {time.perf_counter() - started:.1f} s")
    return cells


def build_database(n: int, cells: list[Polygon]) -> str:
    """A SQLite store with the cells at admin level 2, two periods of scores and a user."""
    path = BENCH_DIR / f"map_{n}.db"
    url = f"sqlite:///{path}"
    if path.exists():
        return url
    temporary = path.with_suffix(".tmp.db")
    temporary.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{temporary}")
    upgrade(engine)
    rng = np.random.default_rng(1)
    pcodes = [f"XB{i:06d}" for i in range(n)]
    with session_scope(engine) as session:
        for start in range(0, n, 2000):
            session.execute(
                insert(Area),
                [
                    {"pcode": pcodes[i], "name": f"Area {i}", "admin_level": 2,
                     "country_iso3": "XBM", "geometry": MultiPolygon([cells[i]]),
                     "boundary_version": "bench", "updated_at": datetime(2025, 1, 1, tzinfo=UTC)}
                    for i in range(start, min(n, start + 2000))
                ],
            )  # fmt: skip
        run = ScoreRun(
            profile_hash="bench", params_hash="bench", status="succeeded",
            data_as_of=datetime(2025, 5, 1, tzinfo=UTC),
        )  # fmt: skip
        session.add(run)
        session.flush()
        classes = ("very_low", "low", "medium", "high", "very_high")
        rows = []
        for period in (P1, P2):
            risks = rng.uniform(0, 10, n)
            for i in range(n):
                risk = None if rng.random() < 0.03 else float(risks[i])
                risk_class = (
                    "insufficient_data" if risk is None
                    else classes[int(np.searchsorted([2, 3.5, 5, 6.5], risk, side="right"))]
                )  # fmt: skip
                rows.append({"run_id": run.id, "area_pcode": pcodes[i], "period": period,
                             "risk": risk, "risk_class": risk_class})  # fmt: skip
        for start in range(0, len(rows), 20000):
            session.execute(insert(AreaScore), rows[start : start + 20000])
        hot = rng.choice(n, size=max(1, n // 50), replace=False)
        session.execute(
            insert(Hotspot),
            [{"run_id": run.id, "area_pcode": pcodes[i], "period": P2, "variable": "risk",
              "hotspot_class": "hot_99", "temporal_class": "new"} for i in hot],
        )  # fmt: skip
        create_user(session, "bench", PASSWORD, "coordinator")
    engine.dispose()
    os.replace(temporary, path)
    return url


# Browser ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        skip_or_fail("headless Chromium not installed (Debian packages chromium, chromium-driver)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", "--window-size=1400,1000", "--enable-unsafe-swiftshader",
    ):  # fmt: skip
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(300)
    driver.set_script_timeout(300)
    try:
        yield driver
    finally:
        driver.quit()


TRANSFER_JS = """
const entries = [...performance.getEntriesByType('navigation'),
                 ...performance.getEntriesByType('resource')];
return entries.reduce((total, e) => total + (e.transferSize || 0), 0);
"""


def cold_cache(driver: Any) -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})


def wait_for(driver: Any, script: str, timeout: float = 300.0, *args: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(script, *args)
    )


def login(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/login")
    driver.find_element(By.NAME, "username").send_keys("bench")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait_for(driver, "return !!(window.riskmap && window.riskmap.ready)")


def first_render(driver: Any, base: str) -> tuple[float, int, int]:
    """Seconds to the map's first complete render, bytes transferred, areas drawn."""
    driver.get("about:blank")
    cold_cache(driver)
    driver.get(base + "/")
    wait_for(driver, "return !!(window.riskmap && window.riskmap.ready)")
    mark = driver.execute_script(
        "return performance.getEntriesByName('riskmap-rendered')[0].startTime;"
    )
    transferred = driver.execute_script(TRANSFER_JS)
    drawn = driver.execute_script("return window.riskmap.drawnAreas;")
    return mark / 1000.0, int(transferred), int(drawn)


def choose_option(driver: Any, dropdown_id: str, label: str) -> None:
    """Open a dcc.Dropdown and click the option showing ``label``, as a user does."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, dropdown_id).click()
    xpath = f"//*[@role='option'][.//span[normalize-space(text())='{label}']]"
    option = WebDriverWait(driver, 10).until(lambda d: d.find_element(By.XPATH, xpath))
    option.click()


def recolour(driver: Any, period: str) -> float:
    """Seconds from clicking ``period`` in the period selector to the redrawn map."""
    driver.execute_script(
        "window.__chosen = null; document.addEventListener('click', e => {"
        " if (window.__chosen === null && e.target.closest('[role=option]'))"
        " window.__chosen = performance.now(); }, {capture: true});"
    )
    choose_option(driver, "map-period", period)
    wait_for(
        driver,
        "const m = window.riskmap; return window.__chosen !== null && m.values &&"
        " m.state.period === arguments[0] && m.renderedAt > window.__chosen;",
        60,
        period,
    )
    return driver.execute_script("return (window.riskmap.renderedAt - window.__chosen) / 1000;")


# Baseline -----------------------------------------------------------------------------------
BASELINE_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<script src="plotly.min.js"></script></head><body>
<div id="map" style="width:1000px;height:560px"></div>
<script>
fetch("areas.json").then(r => r.json()).then(d => Plotly.newPlot("map", [{
  type: "choroplethmap", geojson: d.geojson, locations: d.ids, z: d.z, zmin: 0, zmax: 10,
  colorscale: "YlOrRd", marker: {line: {width: 0.5, color: "#444"}}}],
  {map: {style: "white-bg", center: d.center, zoom: d.zoom},
   margin: {l: 0, r: 0, t: 0, b: 0}})).then(gd => {
  const poll = () => {
    const m = gd._fullLayout.map._subplot.map;
    if (m.loaded() && m.areTilesLoaded()) { performance.mark("baseline-rendered"); }
    else { setTimeout(poll, 20); }
  };
  poll();
});
</script></body></html>
"""


@pytest.fixture(scope="module")
def baseline_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import plotly

    folder = tmp_path_factory.mktemp("baseline")
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", folder)
    (folder / "index.html").write_text(BASELINE_PAGE, encoding="utf-8")
    cells = cached_cells(SIZES[0])
    rng = np.random.default_rng(2)
    features = [
        {"type": "Feature", "id": f"XB{i:06d}", "properties": {},
         "geometry": shapely.geometry.mapping(MultiPolygon([cell]))}
        for i, cell in enumerate(cells)
    ]  # fmt: skip
    bounds = shapely.total_bounds(np.array(cells, dtype=object))
    payload = {
        "geojson": {"type": "FeatureCollection", "features": features},
        "ids": [feature["id"] for feature in features],
        "z": rng.uniform(0, 10, len(cells)).round(2).tolist(),
        "center": {"lon": (bounds[0] + bounds[2]) / 2, "lat": (bounds[1] + bounds[3]) / 2},
        "zoom": 7.5,
    }
    (folder / "areas.json").write_text(json.dumps(payload), encoding="utf-8")
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def baseline_render(driver: Any, site: str) -> tuple[float, int]:
    driver.get("about:blank")
    cold_cache(driver)
    driver.get(site + "/index.html")
    wait_for(driver, "return performance.getEntriesByName('baseline-rendered').length > 0;", 600)
    mark = driver.execute_script(
        "return performance.getEntriesByName('baseline-rendered')[0].startTime;"
    )
    return mark / 1000.0, int(driver.execute_script(TRANSFER_JS))


# The benchmark ------------------------------------------------------------------------------
def serve(url: str, data_dir: Path) -> tuple[Any, threading.Thread, str]:
    settings = load_settings(
        overrides={"database_url": url, "data_dir": str(data_dir)}, cwd=data_dir
    )
    server = make_server(settings, host="127.0.0.1", port=0)
    thread = run_in_background(server)
    return server, thread, f"http://127.0.0.1:{server.effective_port}"


def warm_server(base: str) -> tuple[float, float]:
    """Log in with requests, fetch the level's geometry and values once: the one-off geometry
    build (per boundary version) and the first values of a score run, timed."""
    session = requests.Session()
    page = session.get(base + "/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    session.post(
        base + "/login",
        data={"csrf_token": token.group(1), "username": "bench", "password": PASSWORD},
    )
    started = time.perf_counter()
    response = session.get(base + "/map/geometry?level=2&countries=all")
    response.raise_for_status()
    geometry_seconds = time.perf_counter() - started
    started = time.perf_counter()
    session.get(base + "/map/values?level=2&countries=all").raise_for_status()
    return geometry_seconds, time.perf_counter() - started


def test_map_first_render_recolour_and_transfer(browser: Any, baseline_site: str) -> None:
    results: dict[str, Any] = {"load_average": os.getloadavg()}
    console.print(f"load average before: {results['load_average']}")
    for n in SIZES:
        cells = cached_cells(n)
        started = time.perf_counter()
        url = build_database(n, cells)
        console.print(f"{n:,} areas: database ready in {time.perf_counter() - started:.1f} s")
        del cells
        data_dir = Path(tempfile.mkdtemp(prefix=f"map-bench-{n}-"))
        server, thread, base = serve(url, data_dir)
        try:
            build_seconds, values_seconds = warm_server(base)
            login(browser, base)
            renders = [first_render(browser, base) for _ in range(LOADS)]
            seconds = statistics.median(r[0] for r in renders)
            transferred = max(r[1] for r in renders)
            assert all(r[2] > 0 for r in renders)
            geometry_requests = browser.execute_script("return window.riskmap.geometryRequests;")
            recolours = [
                recolour(browser, period)
                for period in (P1.isoformat(), P2.isoformat(), P1.isoformat())
            ]
            assert (
                browser.execute_script("return window.riskmap.geometryRequests;")
                == geometry_requests
            ), "re-colouring requested geometry again"
            browser.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
            results[str(n)] = {
                "first_render_s": round(seconds, 3),
                "first_render_all_s": [round(r[0], 3) for r in renders],
                "transfer_bytes": transferred,
                "drawn_areas": renders[0][2],
                "recolour_s": round(statistics.median(recolours), 3),
                "recolour_all_s": [round(r, 3) for r in recolours],
                "server_geometry_build_s": round(build_seconds, 2),
                "server_values_first_s": round(values_seconds, 3),
            }
            console.print(f"{n:,} areas: {results[str(n)]}")
        finally:
            server.close()
            thread.join(timeout=10)
            shutil.rmtree(data_dir, ignore_errors=True)
    baseline = [baseline_render(browser, baseline_site) for _ in range(2)]
    results["baseline_5000"] = {
        "first_render_s": round(statistics.median(b[0] for b in baseline), 3),
        "transfer_bytes": max(b[1] for b in baseline),
    }
    results["load_average_after"] = os.getloadavg()
    console.print(json.dumps(results, indent=2))
    out = Path(__file__).resolve().parents[2] / "artifacts" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / "map_benchmark.json").write_text(json.dumps(results, indent=2), encoding="utf-8")

    for n in SIZES:
        measured = results[str(n)]
        assert measured["drawn_areas"] == n, (n, measured)
        assert measured["first_render_s"] <= TARGETS[n], (n, measured)
        assert measured["transfer_bytes"] <= MAX_TRANSFER, (n, measured)
    assert results["5000"]["recolour_s"] <= 0.5
    ratio = results["baseline_5000"]["first_render_s"] / results["5000"]["first_render_s"]
    console.print(f"baseline / riskwatch at 5,000 areas: {ratio:.1f}x")
    assert ratio >= 5
