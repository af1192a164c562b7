"""Shared helpers for the tests that drive headless Chromium: the browser, screenshots, and a
production server on a free loopback port.

Needs Debian's ``chromium`` and ``chromium-driver`` (installed by .ci/run); without them the
tests skip with a reason (or fail when RISKWATCH_TEST_REQUIRE_SERVICES is set). Screenshots go
to ``artifacts/screenshots`` in the working tree of the checkout.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from riskwatch.config import Settings, load_settings
from riskwatch.db.engine import make_engine
from riskwatch.demo_setup import run_demo
from tests.conftest import skip_or_fail

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

COMMON_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)


def require_chromium() -> None:
    """Skip (fail when services are required) unless Chromium and its driver are installed."""
    if not (CHROMIUM and CHROMEDRIVER):
        skip_or_fail("headless Chromium not installed (Debian packages chromium, chromium-driver)")


@contextmanager
def headless_chromium(*extra_arguments: str, window_size: str = "1400,1000") -> Iterator[Any]:
    """A headless Chromium WebDriver with the common flags plus ``extra_arguments``."""
    require_chromium()
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for argument in (*COMMON_ARGUMENTS, *extra_arguments, f"--window-size={window_size}"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()


def save_screenshot(driver: Any, name: str, *, scroll_top: bool = False) -> None:
    """Save ``artifacts/screenshots/<name>.png`` (scrolled to the top first if asked)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if scroll_top:
        driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The production server for ``settings`` on a free loopback port: its base URL."""
    from dashboards.serve import make_server
    from dashboards.testing import run_in_background

    server = make_server(settings, host="127.0.0.1", port=0)
    thread = run_in_background(server)
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=10)


@contextmanager
def served_demo(folder: Path) -> Iterator[str]:
    """The demo database, built in ``folder``, served on a free loopback port: its base URL."""
    url = f"sqlite:///{folder / 'demo.db'}"
    settings = load_settings(overrides={"database_url": url, "data_dir": str(folder)}, cwd=folder)
    run_demo(settings, make_engine(url), url, console=Console(quiet=True))
    with serving(settings) as base:
        yield base
