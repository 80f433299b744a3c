"""The agent console in headless Chromium against a real worker on the real broker: what a
contact-centre agent sees after typing the caller's id, and the caller's next page arriving
without a reload."""

from __future__ import annotations

import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.browser import browser, save_screenshot
from tests.e2e.conftest import Traffic, WorkerProcess

__all__ = ["browser"]  # the fixture


def pages_shown(driver: WebDriver) -> list[str]:
    """The urls in "Pages just read", top to bottom (read in one go: the list is redrawn live)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#recent-pages li .url'), e => e.innerText)")


async def test_an_agent_types_an_id_sees_stage_and_pages_and_the_next_page_arrives_live(
        worker: WorkerProcess, traffic: Traffic, browser: WebDriver, tmp_path: Path, unique: str) -> None:
    worker.start(tmp_path / "data")
    visitor = f"v-console-{unique}"
    await traffic.page_view(f"{unique}-1", visitor, "/billing", "billing")
    await traffic.page_view(f"{unique}-2", visitor, "/billing/invoices", "invoices")
    await traffic.wait_for(worker.settings.topic_customer_context,
                           lambda r: r.get("person_id") == visitor and len(r["recent_pages"]) == 2)

    browser.get(f"http://127.0.0.1:{worker.settings.web_port}/console")
    field = browser.switch_to.active_element
    assert field.get_attribute("id") == "lookup-id", "the id field has the focus when the page opens"
    field.send_keys(visitor, Keys.ENTER)

    wait = WebDriverWait(browser, 10)
    wait.until(lambda d: d.find_element(By.ID, "stage").text != "")
    assert browser.find_element(By.ID, "person-id").text == visitor
    assert browser.find_element(By.ID, "logged-in").text == "no"
    assert browser.find_element(By.ID, "stage").text == "awareness"
    assert pages_shown(browser) == ["/billing/invoices", "/billing"]
    assert "Live" in browser.find_element(By.ID, "status").text

    await traffic.page_view(f"{unique}-3", visitor, "/account/moving", "moving")
    sent = time.monotonic()
    WebDriverWait(browser, 10, poll_frequency=0.02).until(
        lambda d: pages_shown(d)[:1] == ["/account/moving"])
    shown_after = time.monotonic() - sent
    assert shown_after < 1.0, f"the new page took {shown_after:.2f} s to appear"
    # the third self-service page of the session: the login prompt, with the rule that sent it
    WebDriverWait(browser, 10).until(
        lambda d: "self-service-login-prompt" in d.find_element(By.ID, "recent-actions").text)
    actions = browser.find_element(By.ID, "recent-actions").text
    assert "login_prompt" in actions and "3 self-service pages read this session" in actions
    save_screenshot(browser, "console")


async def test_an_unknown_id_says_so_and_shows_the_person_once_they_arrive(
        worker: WorkerProcess, traffic: Traffic, browser: WebDriver, tmp_path: Path, unique: str) -> None:
    worker.start(tmp_path / "data")
    visitor = f"v-later-{unique}"
    browser.get(f"http://127.0.0.1:{worker.settings.web_port}/console")
    browser.switch_to.active_element.send_keys(visitor, Keys.ENTER)
    WebDriverWait(browser, 10).until(
        lambda d: "No person is known by this id" in d.find_element(By.ID, "status").text)
    assert not browser.find_element(By.ID, "context").is_displayed()

    await traffic.page_view(f"{unique}-1", visitor, "/offers", "offers")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "context").is_displayed())
    assert pages_shown(browser) == ["/offers"]
