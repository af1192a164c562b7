"""The map page in a real browser (headless Chromium) with the demo data.

Log in; the map draws every demo area with the legend's five classes; changing the round
re-colours the map without a second geometry request; clicking an area opens its page.
Screenshots go to ``artifacts/screenshots``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser import headless_chromium, save_screenshot, served_demo

DEMO_AREAS = 200  # admin2 areas of the synthetic demo country


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo database served by the production server on a free loopback port."""
    with served_demo(tmp_path_factory.mktemp("map-browser")) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with headless_chromium(window_size="1400,1100") as driver:
        yield driver


def _choose(driver, dropdown_id: str, label: str | None) -> str:  # type: ignore[no-untyped-def]
    """Open a dcc.Dropdown and click the option showing ``label`` (None: the last one)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, dropdown_id).click()
    options = WebDriverWait(driver, 10).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "[role=option]")
    )
    option = options[-1] if label is None else next(o for o in options if o.text == label)
    text = option.text
    option.click()
    return text


def test_map_renders_recolours_and_opens_areas(demo_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(demo_server + "/")
    wait.until(ec.url_contains("/login"))
    browser.find_element(By.NAME, "username").send_keys("coordinator")
    browser.find_element(By.NAME, "password").send_keys("demo-coordinator-pass")
    browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()

    wait.until(lambda d: d.execute_script("return !!(window.riskmap && window.riskmap.ready)"))
    stats = browser.execute_script(
        "const m = window.riskmap; return {areas: m.areaCount, drawn: m.drawnAreas,"
        " geometry: m.geometryRequests, values: m.valuesRequests, error: m.error};"
    )
    assert stats["error"] is None
    assert stats["areas"] == DEMO_AREAS
    assert stats["drawn"] == DEMO_AREAS  # the whole level fits the first view
    assert stats["geometry"] == 1
    legend = [
        element.get_attribute("data-class")
        for element in browser.find_elements(By.CSS_SELECTOR, ".riskmap-legend-entry")
    ]
    assert legend == ["very_low", "low", "medium", "high", "very_high", "insufficient_data"]
    assert browser.find_element(By.CSS_SELECTOR, ".riskmap-demo-label").text == (
        "SYNTHETIC DEMO DATA"
    )
    assert "Sources:" in browser.find_element(By.CSS_SELECTOR, ".riskmap-attribution").text
    # What the canvas shows at an area's label point is the colour of its class.
    colour = browser.execute_script(
        "const p = window.riskmap.pointOf('XD0806'); return window.riskmap.pixelAt(p.x, p.y);"
    )
    assert colour[3] == 255
    save_screenshot(browser, "map")

    # Another round: new classes arrive, the geometry is not requested again.
    before = browser.execute_script("return window.riskmap.values.classes.slice();")
    periods = browser.execute_script("return window.riskmap.values.period_names;")
    renders = browser.execute_script("return window.riskmap.renders;")
    oldest = browser.execute_script("return window.riskmap.state.period;")
    assert oldest == "latest" and periods
    earliest = _choose(browser, "map-period", None)  # the last option: the earliest round
    wait.until(
        lambda d: d.execute_script(
            "return window.riskmap.valuesRequests >= 2 && window.riskmap.renders > arguments[0]"
            " && window.riskmap.state.period !== 'latest';",
            renders,
        )
    )
    after = browser.execute_script("return window.riskmap.values.classes.slice();")
    assert after != before
    assert browser.execute_script("return window.riskmap.geometryRequests;") == 1
    assert browser.execute_script("return window.riskmap.state.period;") == earliest
    save_screenshot(browser, "map-earlier-round")

    # Another dimension: new values again, still the same geometry.
    values_before = browser.execute_script("return window.riskmap.valuesRequests;")
    _choose(browser, "map-variable", "Exposure (0-10)")
    wait.until(lambda d: d.execute_script(
        "return window.riskmap.state.variable === 'exposure'"
        " && window.riskmap.valuesRequests > arguments[0] && window.riskmap.values"
        " && window.riskmap.values.variable === 'exposure';", values_before
    ))  # fmt: skip
    assert browser.execute_script("return window.riskmap.geometryRequests;") == 1

    # Zooming in loads finer outlines per tile (levels of detail), still no full geometry.
    assert browser.execute_script("return window.riskmap.focus('XD0806', 11);")
    wait.until(lambda d: d.execute_script(
        "const m = window.riskmap; return m.tileRequests > 0 && m.tilesPending() === 0"
        " && m.lod > m.baseLod();"
    ))  # fmt: skip
    zoomed = browser.execute_script(
        "const m = window.riskmap; return {drawn: m.drawnAreas, geometry: m.geometryRequests,"
        " error: m.error};"
    )
    assert zoomed["error"] is None and zoomed["geometry"] == 1
    assert 0 < zoomed["drawn"] < DEMO_AREAS
    save_screenshot(browser, "map-zoomed")

    # Clicking an area opens its page.
    point = browser.execute_script("return window.riskmap.pointOf('XD0806');")
    container = browser.find_element(By.ID, "riskmap")
    size = container.size
    ActionChains(browser).move_to_element_with_offset(
        container, int(point["x"] - size["width"] / 2), int(point["y"] - size["height"] / 2)
    ).click().perform()
    wait.until(ec.url_contains("/area/XD0806"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "page-content"), "XD0806"))
    save_screenshot(browser, "map-area-click")

    # Back on the map, another admin level: its own geometry, fitted to the view.
    browser.back()
    wait.until(lambda d: d.find_elements(By.ID, "map-level"))
    wait.until(lambda d: d.execute_script("return window.riskmap.areaCount === 200;"))
    _choose(browser, "map-level", "Admin 1")
    wait.until(lambda d: d.execute_script(
        "return window.riskmap.state.level === 1 && window.riskmap.areaCount === 15"
        " && window.riskmap.drawnAreas === 15;"
    ))  # fmt: skip
    save_screenshot(browser, "map-admin1")
