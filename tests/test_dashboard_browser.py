"""The demo in a real browser: log in, the map, a hotspot district's page, exports (headless
Chromium).

Needs Debian's ``chromium`` and ``chromium-driver`` (installed by .ci/run); skips with a reason
elsewhere. Screenshots go to ``artifacts/screenshots`` in the working tree of the checkout.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser import headless_chromium, save_screenshot, served_demo


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo database served by the production server on a free loopback port."""
    with served_demo(tmp_path_factory.mktemp("browser")) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with headless_chromium() as driver:
        yield driver


def test_login_map_and_area_page_in_chromium(demo_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(demo_server + "/")
    wait.until(ec.url_contains("/login"))
    save_screenshot(browser, "login")

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
    save_screenshot(browser, "overview")

    # A district of the demo's surge cluster: very high risk, why, since when.
    browser.get(demo_server + "/area/XD0714")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#area-drivers .bars path"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#area-series .scatterlayer"))
    page = browser.page_source
    assert "Very high" in page and "Hotspot history" in page and "hot 99" in page
    assert "Data freshness and lineage" in page
    save_screenshot(browser, "area")

    # The exports page offers the offline map of the coordinator's countries.
    browser.find_element(By.ID, "nav-exports").click()
    wait.until(lambda d: d.find_elements(By.ID, "export-quick-links"))
    hrefs = [a.get_attribute("href") for a in browser.find_elements(
        By.CSS_SELECTOR, "#export-quick-links a")]
    assert demo_server + "/download/scores?format=html" in hrefs

    browser.get(demo_server + "/logout")
    browser.get(demo_server + "/")
    wait.until(ec.url_contains("/login"))
