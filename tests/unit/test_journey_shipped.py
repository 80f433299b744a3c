"""The shipped journeys (rules/journeys/) do what they say, on scripted people."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from orchestrator.core.journeys import JourneyRunner, JourneySet, load_journey_directory
from orchestrator.core.rules.arbitration import in_holdout

from .factories import MINUTE, RULES_DIR, T0, click, contact, default_rules, page_view

HOUR = 60 * MINUTE
DAY = 24 * HOUR


@functools.cache
def shipped() -> JourneySet:
    return load_journey_directory(RULES_DIR / "journeys", default_rules().lookups)


def runner(scores: dict[str, float] | None = None, *, rules: bool = False) -> JourneyRunner:
    scores_of: Callable[..., Any] | None = (lambda profile, event: scores) if scores else None
    return JourneyRunner(shipped(), rule_set=default_rules() if rules else None, scores_of=scores_of)


def sent(r: JourneyRunner) -> list[tuple[str, str, int]]:
    """(channel, action, minutes after T0) of every action sent."""
    return [(a["channel"], a["action"], (a["trigger_event_ts"] - T0) // MINUTE) for a in r.actions]


def exits(r: JourneyRunner, journey: str) -> list[str | None]:
    return [f.reason for f in r.facts if f.kind == "exited" and f.journey == journey]


def billing_visit(r: JourneyRunner, start: int, session: str, pages: int = 3) -> None:
    for n in range(pages):
        r.feed("v1", page_view(f"{session}-{n}", f"/billing/{n}", "billing", start + n * MINUTE,
                               session_id=session))


# ------------------------------------------------------------------ anonymous -> identified

def test_a_visitor_who_does_not_log_in_gets_a_softer_reminder_on_the_next_visit() -> None:
    r = runner()
    billing_visit(r, T0, "s1")
    r.advance(T0 + HOUR)  # the session ends without a login
    assert sent(r) == [("web", "login_prompt", 2)]
    r.feed("v1", page_view("s2-0", "/", "home", T0 + DAY, session_id="s2"))
    r.feed("v1", page_view("s2-1", "/offers", "offers", T0 + DAY + MINUTE, session_id="s2"))
    assert sent(r) == [("web", "login_prompt", 2), ("web", "login_reminder", 24 * 60)]
    reminder = r.actions[-1]
    assert reminder["payload"]["login_url"] == "/login?return_to=%2F"
    assert exits(r, "anonymous-to-identified") == ["completed"]


def test_a_visitor_who_logs_in_within_the_session_converts_and_gets_no_reminder() -> None:
    r = runner()
    billing_visit(r, T0, "s1")
    r.feed("v1", click("l1", "login", T0 + 10 * MINUTE, customer_id="c1", session_id="s1"))
    r.advance(T0 + 3 * DAY)
    r.feed("v1", page_view("s2-0", "/", "home", T0 + DAY, session_id="s2"))
    assert sent(r) == [("web", "login_prompt", 2)]
    assert exits(r, "anonymous-to-identified") == ["converted"]


def test_with_the_rules_deciding_too_the_visitor_gets_one_login_prompt() -> None:
    r = runner(rules=True)
    billing_visit(r, T0, "s1", pages=4)
    prompts = [a for a in r.actions if a["action"] == "login_prompt"]
    assert len(prompts) == 1  # the journey's and the rule's prompt share one cap


# ------------------------------------------------------------------ best contact channel

def help_pages(r: JourneyRunner, category: str = "billing") -> None:
    for n in range(2):
        r.feed("c1", page_view(f"h{n}", f"/help/{n}", category, T0 + n * MINUTE, customer_id="c1"))


def test_a_likely_caller_is_steered_to_chat_and_a_chat_converts() -> None:
    r = runner({"contact_need": 0.8})
    help_pages(r)
    assert sent(r) == [("web", "contact_suggestion", 0)]
    assert r.actions[0]["payload"] == {"url": "/contact/chat?topic=billing", "route": "chat",
                                       "topic": "billing"}
    r.feed("c1", contact("cc1", "contact_started", T0 + 5 * MINUTE, channel="chat", reason="billing"))
    r.advance(T0 + DAY)
    assert exits(r, "best-contact-channel") == ["converted"]
    assert len(r.actions) == 1


def test_a_moving_customer_is_steered_to_a_callback_and_a_phone_call_ends_the_journey() -> None:
    r = runner({"contact_need": 0.9})
    help_pages(r, "moving")
    assert r.actions[0]["payload"]["route"] == "callback"
    r.feed("c1", contact("cc1", "contact_started", T0 + 5 * MINUTE, channel="phone", reason="moving"))
    assert exits(r, "best-contact-channel") == ["exit_condition"]


def test_no_contact_in_15_minutes_and_still_in_need_offers_a_callback() -> None:
    r = runner({"contact_need": 0.8})
    help_pages(r)
    r.advance(T0 + HOUR)
    assert sent(r) == [("web", "contact_suggestion", 0), ("web", "callback_offer", 15)]


def test_without_a_score_two_help_pages_enter_but_no_callback_is_offered_later() -> None:
    r = runner()
    for n in range(2):
        r.feed("c1", page_view(f"h{n}", "/help/faq", "help", T0 + n * MINUTE, customer_id="c1"))
    r.advance(T0 + HOUR)
    assert sent(r) == [("web", "contact_suggestion", 1)]
    assert exits(r, "best-contact-channel") == ["completed"]


# ------------------------------------------------------------------ churn reaction

def cancellation_reader(r: JourneyRunner) -> None:
    r.feed("c1", click("l1", "login", T0, customer_id="c1"))
    r.feed("c1", page_view("p1", "/cancellation", "cancellation", T0 + MINUTE, customer_id="c1"))


def test_a_cancellation_reader_who_does_not_return_gets_a_callback_task_after_2_days() -> None:
    r = runner()
    cancellation_reader(r)
    r.advance(T0 + 3 * DAY)
    assert sent(r) == [("web", "retention_offer", 1),
                       ("contact-centre", "callback_task", 1 + 2 * 24 * 60)]
    assert r.actions[1]["payload"]["customer_id"] == "c1"


def test_a_cancellation_reader_who_comes_back_gets_no_callback_task() -> None:
    r = runner()
    cancellation_reader(r)
    r.feed("c1", page_view("p2", "/", "home", T0 + DAY, customer_id="c1"))
    r.advance(T0 + 3 * DAY)
    assert sent(r) == [("web", "retention_offer", 1)]


def test_high_churn_risk_enters_without_cancellation_pages() -> None:
    r = runner({"churn_risk": 0.9})
    r.feed("c1", click("l1", "login", T0, customer_id="c1"))
    r.feed("c1", page_view("p1", "/account", "account", T0 + MINUTE, customer_id="c1"))
    assert sent(r) == [("web", "retention_offer", 1)]


def test_an_anonymous_reader_of_cancellation_pages_does_not_enter() -> None:
    r = runner()
    r.feed("v1", page_view("p1", "/cancellation", "cancellation", T0))
    assert r.actions == [] and exits(r, "churn-reaction") == []


# ------------------------------------------------------------------ abandoned cart

def treated(person_prefix: str) -> str:
    """A person id outside the cart journey's 10 % holdout."""
    return next(f"{person_prefix}{n}" for n in range(100)
                if not in_holdout(f"{person_prefix}{n}", "abandoned-cart", 10))


def test_an_abandoned_cart_gets_a_banner_on_the_next_page_without_marketing_consent() -> None:
    r = runner()
    person = treated("v")
    r.feed(person, click("a1", "add_to_cart", T0, visitor_id=person))
    r.advance(T0 + 2 * HOUR)
    r.feed(person, page_view("p1", "/", "home", T0 + 3 * HOUR, visitor_id=person))
    assert sent(r) == [("web", "cart_reminder", 180)]


def test_an_abandoned_cart_gets_an_email_with_marketing_consent() -> None:
    r = runner()
    person = treated("v")
    r.feed(person, click("k1", "consent_updated", T0 - MINUTE, visitor_id=person,
                         consent={"service": True, "marketing": True}))
    r.feed(person, click("a1", "add_to_cart", T0, visitor_id=person))
    r.advance(T0 + 2 * HOUR)
    assert sent(r) == [("email", "cart_reminder", 60)]


def test_a_purchase_within_the_hour_converts_and_nothing_is_sent() -> None:
    r = runner()
    person = treated("v")
    r.feed(person, click("a1", "add_to_cart", T0, visitor_id=person))
    r.feed(person, click("b1", "purchase", T0 + 20 * MINUTE, visitor_id=person))
    r.advance(T0 + DAY)
    assert r.actions == [] and exits(r, "abandoned-cart") == ["converted"]


def test_the_holdout_group_gets_nothing() -> None:
    r = runner()
    person = next(f"v{n}" for n in range(1000) if in_holdout(f"v{n}", "abandoned-cart", 10))
    r.feed(person, click("a1", "add_to_cart", T0, visitor_id=person))
    r.advance(T0 + DAY)
    assert r.actions == [] and exits(r, "abandoned-cart") == ["holdout"]
