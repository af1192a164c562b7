"""The pages in headless Chromium: log in, the area page's drivers chart, an expert
acknowledges an alert with feedback, the alerts, data health, exports and experts pages, an
acknowledgement link; a screenshot of each page goes to ``artifacts/screenshots``.

One server (waitress, the sample store) and one browser for the whole module.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlmodel import Session, select

from dashboards.testing import populate_sample_database
from riskwatch import users
from riskwatch.ack_tokens import make_ack_token
from riskwatch.config import Settings, load_settings
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.models import Acknowledgement, Alert, Expert
from riskwatch.timeutil import utcnow
from tests.browser import headless_chromium, require_chromium, save_screenshot, serving

pytestmark = pytest.mark.db

PASSWORD = "browser-test-pass"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings, str]]:
    """The sample store served by waitress on a free loopback port: (base URL, settings, db)."""
    require_chromium()
    folder = tmp_path_factory.mktemp("pages-browser")
    url = populate_sample_database(f"sqlite:///{folder / 'pages.db'}", demo=True)
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    engine = make_engine(url)
    with pytest.MonkeyPatch.context() as patch, session_scope(engine) as session:
        patch.setattr(users, "_hasher", cheap)
        ella = session.exec(select(Expert).where(Expert.name == "Ella")).one()
        users.create_user(session, "carla", PASSWORD, "coordinator")
        users.create_user(session, "ella", PASSWORD, "expert", expert_id=ella.id)
        users.create_user(session, "adam", PASSWORD, "admin")
    engine.dispose()
    settings = load_settings(overrides={"database_url": url, "data_dir": str(folder)}, cwd=folder)
    with serving(settings) as base:
        yield base, settings, url


@pytest.fixture(scope="module")
def browser(site: tuple[str, Settings, str]) -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


def _wait(driver: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 30)


def _login(driver: Any, base: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/logout")
    driver.get(base + "/login")
    driver.find_element(By.NAME, "username").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    _wait(driver).until(lambda d: "/login" not in d.current_url)


def _open(driver: Any, base: str, path: str, marker: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + path)
    _wait(driver).until(lambda d: d.find_elements(By.ID, marker))


def test_area_page_shows_the_drivers_chart(site: tuple[str, Settings, str], browser: Any) -> None:
    base, _, _ = site
    _login(browser, base, "carla")
    _open(browser, base, "/area/TST0101", "area-drivers")
    _wait(browser).until(lambda d: d.find_elements("css selector", "#area-drivers .bars path"))
    bars = browser.execute_script(
        "const gd = document.querySelector('#area-drivers .js-plotly-plot');"
        "return gd && gd.data ? gd.data[0].x.length : -1;"
    )
    assert bars == 3
    _wait(browser).until(lambda d: d.find_elements("css selector", "#area-series .scatterlayer"))
    page = browser.page_source
    for expected in (
        "Very high",
        "Hotspot history",
        "Data freshness and lineage",
        "Risk is high in TST0101",
        "SYNTHETIC DEMO DATA",
    ):
        assert expected in page, expected
    assert (
        browser.execute_script(
            "return document.querySelector('#area-series .js-plotly-plot').data.length"
        )
        == 2
    )
    save_screenshot(browser, "area-page", scroll_top=True)


def test_health_exports_and_alerts_pages(site: tuple[str, Settings, str], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    base, _, _ = site
    _login(browser, base, "carla")
    _open(browser, base, "/health", "health-sources")
    assert "Test DTM" in browser.page_source and "capture:/tmp/" in browser.page_source
    save_screenshot(browser, "health-page", scroll_top=True)
    _open(browser, base, "/exports", "export-quick-links")
    # The form's callback builds a download link from the choices.
    _wait(browser).until(
        lambda d: (d.find_element(By.ID, "export-link").get_attribute("href") or "").endswith(
            "/download/scores?format=csv"
        )
    )
    links = [
        a.get_attribute("href")
        for a in browser.find_elements(By.CSS_SELECTOR, "#export-quick-links a")
    ]
    assert base + "/download/scores?format=html" in links
    save_screenshot(browser, "exports-page", scroll_top=True)
    _open(browser, base, "/alerts", "alerts-list")
    assert "XYZ0101" in browser.page_source  # a coordinator without scope sees every country
    save_screenshot(browser, "alerts-page-coordinator", scroll_top=True)
    # The users page is for admins: the coordinator gets the refusal page.
    browser.get(base + "/users")
    assert "Your role cannot open /users" in browser.page_source
    assert not browser.find_elements(By.ID, "nav-users")


def test_an_expert_acknowledges_an_alert_with_feedback(
    site: tuple[str, Settings, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    base, _, url = site
    _login(browser, base, "ella")
    _open(browser, base, "/alerts", "ack-alert")
    assert "XYZ0101" not in browser.page_source  # outside her deployment
    browser.find_element(By.ID, "ack-alert").click()
    option = _wait(browser).until(
        lambda d: next(
            (
                o
                for o in d.find_elements(By.CSS_SELECTOR, "[role=option]")
                if "North-West" in o.text
            ),
            None,
        )
    )
    option.click()
    browser.find_element(By.XPATH, "//label[contains(., 'False alarm')]").click()
    browser.find_element(By.ID, "ack-comment").send_keys("Team checked: a wedding convoy")
    browser.find_element(By.ID, "ack-submit").click()
    _wait(browser).until(lambda d: "acknowledged" in d.find_element(By.ID, "ack-result").text)
    assert "False alarm" in browser.find_element(By.ID, "ack-result").text
    save_screenshot(browser, "alerts-page-expert-acknowledged", scroll_top=True)
    engine = make_engine(url)
    with Session(engine) as session:
        ack = session.exec(select(Acknowledgement).where(Acknowledgement.via == "dashboard")).one()
        alert = session.get(Alert, ack.alert_id)
    engine.dispose()
    assert alert is not None and alert.area_pcode == "TST0101"
    assert (ack.feedback, ack.comment) == ("false_alarm", "Team checked: a wedding convoy")


def test_admin_sees_the_users_page(site: tuple[str, Settings, str], browser: Any) -> None:
    base, _, _ = site
    _login(browser, base, "adam")
    _open(browser, base, "/users", "users-table")
    assert "carla" in browser.page_source and "ella" in browser.page_source
    assert "$argon2" not in browser.page_source  # never a password hash
    _open(browser, base, "/alerts", "silence-submit")
    save_screenshot(browser, "users-page-admin", scroll_top=True)


def test_admin_sees_the_experts_page(site: tuple[str, Settings, str], browser: Any) -> None:
    base, _, _ = site
    _login(browser, base, "adam")
    _open(browser, base, "/experts", "experts-table")
    page = browser.page_source
    assert "Ella" in page and "capture:/tmp/" in page and "North" in page
    assert "deploy-submit" in page and "nav-experts" in page
    save_screenshot(browser, "experts-page", scroll_top=True)


def test_an_acknowledgement_link_without_logging_in(
    site: tuple[str, Settings, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    base, settings, url = site
    engine = make_engine(url)
    with Session(engine) as session:
        ella = session.exec(select(Expert).where(Expert.name == "Ella")).one()
        target = session.exec(select(Alert.id).where(Alert.area_pcode == "TST0102")).one()
    engine.dispose()
    token = make_ack_token(settings, [target], ella.id, utcnow() + timedelta(days=2))
    browser.get(base + "/logout")
    browser.get(f"{base}/ack/{token}")
    assert "North-East" in browser.page_source
    save_screenshot(browser, "ack-link", scroll_top=True)
    browser.find_element(By.CSS_SELECTOR, "button[value=useful]").click()
    _wait(browser).until(lambda d: "Recorded: 1 alert(s) acknowledged" in d.page_source)
    browser.get(f"{base}/ack/{token}")
    assert "already acknowledged" in browser.page_source
    browser.get(f"{base}/ack/{token[:-3]}xyz")
    assert "Link not valid" in browser.page_source
