"""The journey owner's page in headless Chromium against a real worker on the real broker: a
login prompt with a 50 % holdout, visitors who read three self-service pages, feedback on the
prompts, and some of them logging in -- the page shows the counts, the uplift with its interval,
the funnel and the route graph, and says that no journeys run."""

from __future__ import annotations

import shutil
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import yaml
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from orchestrator.core.analytics import newcombe_interval
from orchestrator.core.rules import in_holdout
from orchestrator.runtime.settings import PROJECT_ROOT
from tests.e2e.browser import browser, save_screenshot
from tests.e2e.conftest import Traffic, WorkerProcess, now_ms

__all__ = ["browser"]  # the fixture

RULE = "self-service-login-prompt"
VISITORS = 24


def rules_with_holdout(directory: Path) -> Path:
    """The shipped rules, with the login prompt's control group at 50 %."""
    shutil.copytree(PROJECT_ROOT / "rules", directory)
    web = directory / "web.yaml"
    doc = yaml.safe_load(web.read_text())
    [prompt] = [r for r in doc["rules"] if r["id"] == RULE]
    prompt["holdout_percent"] = 50
    web.write_text(yaml.safe_dump(doc, sort_keys=False))
    return directory


def fixed_1(share: float) -> str:
    """A share as a percentage with one decimal, as the page writes it: JavaScript's
    ``(100 * share).toFixed(1)`` rounds the exact value and a tie up (31.25 -> 31.3), where
    Python's format rounds a tie to even (31.2)."""
    return str(Decimal(100 * share).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def cell(driver: WebDriver, column: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f'tr[data-rule="{RULE}"] td[data-col="{column}"]').text


async def test_the_owner_sees_counts_uplift_funnel_and_routes_of_a_rule_with_a_holdout(
        worker: WorkerProcess, traffic: Traffic, browser: WebDriver, tmp_path: Path,
        unique: str) -> None:
    worker.env["ORCHESTRATOR_RULES_DIR"] = str(rules_with_holdout(tmp_path / "rules"))
    worker.start(tmp_path / "data")
    settings = worker.settings
    visitors = [f"v-owner-{unique}-{n}" for n in range(VISITORS)]
    held = {v for v in visitors if in_holdout(v, RULE, 50)}
    assert 0 < len(held) < VISITORS
    for visitor in visitors:
        for n, category in enumerate(["billing", "invoices", "moving"]):
            await traffic.page_view(f"{visitor}-{n}", visitor, f"/{category}", category)

    prompts = {}
    for visitor in sorted(set(visitors) - held):
        prompts[visitor] = await traffic.wait_for(
            settings.action_topic("web"), lambda r, v=visitor: r.get("person_id") == v)
    for visitor in sorted(held):
        await traffic.wait_for(settings.topic_held_out, lambda r, v=visitor: r.get("person_id") == v)
    treated = sorted(prompts)
    clicked = treated[: len(treated) // 2]
    for visitor in treated:  # the website reports each prompt shown; half are clicked
        outcomes = ["shown", "clicked"] if visitor in clicked else ["shown"]
        for outcome in outcomes:
            await traffic.send(settings.topic_action_feedback, visitor,
                               action_id=prompts[visitor]["action_id"], outcome=outcome)
    # Two in three of the prompted log in, one in three of the control group.
    logged_in = treated[: 2 * len(treated) // 3] + sorted(held)[: len(held) // 3]
    for visitor in logged_in:
        await traffic.send(settings.topic_clickstream, visitor, event_id=f"{visitor}-login",
                           type="login", visitor_id=visitor, customer_id=f"c-{visitor}",
                           session_id=f"s-{visitor}", ts=now_ms() + 1)
    goal_treated = len([v for v in logged_in if v not in held])
    goal_held = len(logged_in) - goal_treated

    browser.get(f"http://127.0.0.1:{settings.web_port}/owner")
    # The page refreshes every 5 s; routes are summarised at most every 10 s.
    WebDriverWait(browser, 40, poll_frequency=0.5).until(
        lambda d: "Live" in d.find_element(By.ID, "status").text
        and cell(d, "clicked") == str(len(clicked)) and "pts" in cell(d, "uplift")
        and d.find_elements(By.CSS_SELECTOR, '#route-graph g.edge[data-target="login"]'
                                             f'[data-count="{len(logged_in)}"]'))
    # the numbers a person reads in the rule's row
    assert cell(browser, "sent") == str(len(treated))
    assert cell(browser, "held_out") == str(len(held))
    assert cell(browser, "shown") == str(len(treated))
    assert cell(browser, "rates") == (f"{fixed_1(goal_treated / len(treated))} % / "
                                      f"{fixed_1(goal_held / len(held))} %")
    low, high = newcombe_interval(goal_treated, len(treated), goal_held, len(held))
    uplift = goal_treated / len(treated) - goal_held / len(held)

    def points(v: float) -> str:
        sign = "+" if v >= 0 else "\N{MINUS SIGN}"  # as the page writes it
        return f"{sign}{fixed_1(abs(v))}"

    assert cell(browser, "uplift") == f"{points(uplift)} pts ({points(low)} to {points(high)})"
    assert browser.find_elements(By.CSS_SELECTOR, f'tr[data-rule="{RULE}"] svg.interval circle')

    # the funnel of the rule: sent, shown, clicked, converted, as wide as their counts
    counts = browser.execute_script(
        "return Array.from(document.querySelectorAll('#funnel g.step'), "
        "g => [g.dataset.step, Number(g.dataset.count), g.querySelector('rect').getBBox().width])")
    assert [(step, n) for step, n, _ in counts] == [
        ("sent", len(treated)), ("shown", len(treated)), ("clicked", len(clicked)), ("converted", 0)]
    assert counts[2][2] < counts[0][2]

    # the route graph to the login: the pages read, then the login as the goal
    nodes = dict(browser.execute_script(
        "return Array.from(document.querySelectorAll('#route-graph g.node'), "
        "g => [g.dataset.activity, g.classList.contains('goal')])"))
    assert nodes == {"page:billing": False, "page:invoices": False, "page:moving": False,
                     "login": True}
    edge = browser.find_element(By.CSS_SELECTOR,
                                '#route-graph g.edge[data-source="page:moving"][data-target="login"]')
    assert edge.get_attribute("data-count") == str(len(logged_in))
    assert "page:billing → page:invoices → page:moving → login" in \
        browser.find_element(By.ID, "route-variants").text
    # the shipped journeys: every visitor read three self-service pages and entered the
    # identification journey; the ones who logged in reached its goal
    def identification(d: WebDriver) -> str:
        found = d.find_elements(By.CSS_SELECTOR, 'article[data-journey="anonymous-to-identified"]')
        return found[0].text if found else ""

    WebDriverWait(browser, 15, poll_frequency=0.5).until(
        lambda d: f"converted {len(logged_in)}" in identification(d))
    assert f"entered {VISITORS}" in identification(browser)
    shipped = {p.stem for p in (PROJECT_ROOT / "rules" / "journeys").glob("*.yaml")}
    assert len(browser.find_elements(By.CSS_SELECTOR, "#journeys article.journey")) >= len(shipped)

    # keyboard: the goal is chosen with the keyboard and the graph follows
    browser.execute_script("document.getElementById('route-goal').focus()")
    ActionChains(browser).send_keys(Keys.ARROW_DOWN).perform()  # login -> purchase
    WebDriverWait(browser, 5).until(
        lambda d: "reached purchase" in d.find_element(By.ID, "route-summary").text)
    assert not browser.find_elements(By.CSS_SELECTOR, "#route-graph g.node")
    ActionChains(browser).send_keys(Keys.ARROW_UP).perform()  # back to login
    WebDriverWait(browser, 5).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#route-graph g.node.goal"))
    browser.set_window_size(1280, 1560)  # the whole page in the picture
    browser.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    path = save_screenshot(browser, "owner")
    shutil.copyfile(path, PROJECT_ROOT / "docs" / "images" / "owner.png")
