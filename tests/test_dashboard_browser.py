"""The demo in a real browser: log in, the map, a hotspot district's page, exports (headless
Chromium).

Needs Debian's ``chromium`` and ``chromium-driver`` (installed by .ci/run); skips with a reason
elsewhere. Screenshots go to ``artifacts/screenshots`` in the working tree of the checkout.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from riskwatch.config import load_settings
from riskwatch.db.engine import make_engine
from riskwatch.demo_setup import run_demo
from tests.conftest import skip_or_fail

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo database served by the production server on a free loopback port."""
    from dashboards.serve import make_server
    from dashboards.testing import run_in_background

    data_dir = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{data_dir / 'demo.db'}"
    settings = load_settings(overrides={"database_url": url, "data_dir": str(data_dir)},
                             cwd=data_dir)
    run_demo(settings, make_engine(url), url, console=Console(quiet=True))
    server = make_server(settings, host="127.0.0.1", port=0)
    thread = run_in_background(server)
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (CHROMIUM and CHROMEDRIVER):
        skip_or_fail("headless Chromium not installed (Debian packages chromium, chromium-driver)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-quic", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_login_map_and_area_page_in_chromium(demo_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(demo_server + "/")
    wait.until(ec.url_contains("/login"))
    _screenshot(browser, "login")

    browser.find_element(By.NAME, "username").send_keys("coordinator")
    browser.find_element(By.NAME, "password").send_keys("wrong-password")
    browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait.until(ec.url_contains("/login"))
    assert "coordinator (coordinator)" not in browser.page_source

    browser.find_element(By.NAME, "username").clear()
    browser.find_element(By.NAME, "username").send_keys("coordinator")
    browser.find_element(By.NAME, "password").send_keys("demo-coordinator-pass")
    browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    # The map page (dashboards.map_page, tested in depth by test_dashboard_map_browser.py)
    # reports when it has drawn the demo's areas.
    wait.until(lambda d: d.execute_script("return !!(window.riskmap && window.riskmap.ready)"))
    page = browser.page_source
    assert "SYNTHETIC DEMO DATA" in page
    for link in ("nav-map", "nav-alerts", "nav-health", "nav-exports"):
        assert browser.find_elements(By.ID, link), link
    _screenshot(browser, "overview")

    # A district of the demo's surge cluster: very high risk, why, since when.
    browser.get(demo_server + "/area/XD0714")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#area-drivers .bars path"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#area-series .scatterlayer"))
    page = browser.page_source
    assert "Very high" in page and "Hotspot history" in page and "hot 99" in page
    assert "Data freshness and lineage" in page
    _screenshot(browser, "area")

    # The exports page offers the offline map of the coordinator's countries.
    browser.find_element(By.ID, "nav-exports").click()
    wait.until(lambda d: d.find_elements(By.ID, "export-quick-links"))
    hrefs = [a.get_attribute("href") for a in browser.find_elements(
        By.CSS_SELECTOR, "#export-quick-links a")]
    assert demo_server + "/download/scores?format=html" in hrefs

    browser.get(demo_server + "/logout")
    browser.get(demo_server + "/")
    wait.until(ec.url_contains("/login"))
