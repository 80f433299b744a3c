"""The demo website in headless Chromium, served by a real ``orchestrator demo`` (its own worker,
the real broker): a person clicks through self-service pages and sees the "Log in" prompt
arrive with its latency; after logging in, a direct link."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from orchestrator.runtime.settings import PROJECT_ROOT, Settings
from tests.e2e.browser import browser, save_screenshot
from tests.e2e.conftest import free_port

__all__ = ["browser"]  # the fixture


@pytest.fixture
def demo_site(e2e_settings: tuple[Settings, dict[str, str]], tmp_path: Path) -> Iterator[str]:
    """``orchestrator demo`` on this test's topics with a little background traffic; the URL of
    its website once it printed it."""
    settings, env = e2e_settings
    page_port = free_port()
    command = [sys.executable, "-m", "orchestrator", "demo", "--rate", "2", "--malformed", "0",
               "--duration", "300", "--web-port", str(settings.web_port), "--page-port", str(page_port)]
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, **env,
                                            "ORCHESTRATOR_DATA_DIR": str(tmp_path / "data")})
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            output.append(line)
            lines.put(line)
        lines.put("")  # the demo ended

    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            try:
                line = lines.get(timeout=180)
            except queue.Empty:
                line = ""
            if not line:
                pytest.fail("the demo printed no website address:\n" + "".join(output))
            found = re.search(r"demo website: (http://\S+)", line)
            if found:
                break
        yield found.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "worker stopped" in "".join(output)


def prompts(driver: WebDriver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#prompts .prompt'), e => e.dataset.action)")


def test_clicking_through_self_service_pages_shows_the_login_prompt_with_its_latency(
        demo_site: str, browser: WebDriver) -> None:
    browser.get(demo_site)
    wait = WebDriverWait(browser, 15)
    wait.until(lambda d: "Connected" in d.find_element(By.ID, "status").text)
    for label in ("Billing", "Invoices", "Moving home"):
        browser.find_element(By.XPATH, f"//nav[@id='pages']/button[.='{label}']").click()
        wait.until(lambda d, label=label: len(d.find_elements(By.CSS_SELECTOR, "#clicks li")) >=
                   ("Billing", "Invoices", "Moving home").index(label) + 1)
    wait.until(lambda d: prompts(d) == ["login_prompt"])
    card = browser.find_element(By.CSS_SELECTOR, "#prompts .prompt")
    assert "Log in" in card.text and "3 self-service pages read this session" in card.text
    latency = re.search(r"event to action (\d+\.\d) ms · click to screen (\d+) ms", card.text)
    assert latency, card.text
    assert 0 < float(latency.group(1)) < 1000 and 0 < int(latency.group(2)) < 2000
    save_screenshot(browser, "demo-login-prompt")

    card.find_element(By.LINK_TEXT, "Log in").click()
    wait.until(lambda d: d.find_element(By.ID, "login").get_attribute("disabled") is not None)
    browser.find_element(By.XPATH, "//nav[@id='pages']/button[.='Contract']").click()
    wait.until(lambda d: prompts(d)[:1] == ["direct_link"])
    assert "Your contract" in browser.find_element(By.CSS_SELECTOR, "#prompts .prompt").text
