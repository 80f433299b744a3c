"""Headless Chromium for the browser tests: Debian's ``chromium`` driven through its
``chromedriver`` by selenium, both from the system (never downloaded at run time)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from orchestrator.runtime.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: Where the tests leave what the pages looked like (the README shows copies in docs/images/).
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (path.exists() and os.access(path, os.X_OK)):
            return f"{path} is missing: run 'make tools' as root (Debian's chromium and chromium-driver)"
    return None


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A headless Chromium window (1280 x 1200). Outside CI a machine without Chromium skips the
    test; in CI (``CI`` set) that is a failure."""
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {missing}")
        pytest.skip(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1200", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def save_screenshot(driver: WebDriver, name: str) -> Path:
    """Save the window as ``var/screenshots/<name>.png``; return the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"the screenshot {path} could not be written"
    return path


