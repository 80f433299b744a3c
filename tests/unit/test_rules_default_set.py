"""The shipped rule set (rules/*.yaml): today's self-service behaviour exactly, and the rest."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

import pytest

from orchestrator.core.events import Event
from orchestrator.core.journey import Trigger, process_event
from orchestrator.core.profile import Profile, apply_event, record_sent
from orchestrator.core.rules import Decision, RuleSet, Suppressed, decide

from .factories import MINUTE, SECOND, T0, click, contact, default_rules, page_view

RULES = default_rules()
SELF_SERVICE = {"self-service-login-prompt", "self-service-direct-link"}


class Visit:
    """One person browsing: apply each event, arbitrate, remember what was sent."""

    def __init__(self, rules: RuleSet = RULES, person_id: str = "v1",
                 scores: Mapping[str, float | None] | None = None) -> None:
        self.profile = Profile(person_id=person_id)
        self.rules = rules
        self.scores = scores or {}
        self.sent: list[Decision] = []
        self.suppressed: list[Suppressed] = []
        self._n = 0

    def see(self, event: Event) -> list[Decision]:
        assert apply_event(self.profile, event) is True
        outcome = decide(self.rules, event, self.profile, self.scores, now_ms=event.ts)
        for decision in outcome.chosen:
            record_sent(self.profile, {"action_id": f"a-{event.ts}", "action": decision.action,
                                       "channel": decision.channel}, decision.cap_key, event.ts)
        self.sent += outcome.chosen
        self.suppressed += outcome.suppressed
        return outcome.chosen

    def page(self, url: str, category: str | None, ts: int, **fields: object) -> Decision | None:
        self._n += 1
        chosen = self.see(page_view(f"e{self._n}", url, category, ts, **fields))
        assert len(chosen) <= 1
        return chosen[0] if chosen else None

    def log_in(self, ts: int) -> None:
        self._n += 1
        self.see(click(f"e{self._n}", "login", ts, session_id="s1", customer_id="c1"))

    def actions(self) -> list[str]:
        return [d.action for d in self.sent]


def test_shipped_rule_set_loads_with_one_version_for_all_files() -> None:
    assert RULES.version == "2026-11-24.2"
    assert {r.file for r in RULES.rules} == {"rules/web.yaml", "rules/contact_centre.yaml"}
    assert {(r.id, r.channel, r.action) for r in RULES.rules} >= {
        ("self-service-login-prompt", "web", "login_prompt"),
        ("self-service-direct-link", "web", "direct_link"),
        ("churn-retention-options", "web", "retention_offer"),
        ("churn-alert-contact-centre", "contact-centre", "churn_alert"),
        ("contact-channel-steer", "web", "contact_suggestion"),
        ("next-content-guide", "web", "next_content"),
    }


# ---------------------------------------------------------------- anonymous: login prompt

def test_anonymous_visitor_gets_one_login_prompt_after_three_self_service_pages() -> None:
    visit = Visit()
    assert visit.page("/billing/faq", "billing", T0) is None
    assert visit.page("/billing/pay", "billing", T0 + 10 * SECOND) is None
    prompt = visit.page("/billing/due-date", "invoices", T0 + 20 * SECOND)
    assert prompt == Decision(
        action="login_prompt", channel="web", rule="self-service-login-prompt",
        payload={"login_url": "/login?return_to=%2Fbilling%2Fdue-date", "topic": "invoices",
                 "service_page": "/account/billing/invoices",
                 "reason": "3 self-service pages read this session"},
        cap_key="login_prompt", expires_after_ms=600_000, consent_category="service", score=1.0)
    visit.page("/billing/more", "billing", T0 + 30 * SECOND)
    visit.page("/moving", "moving", T0 + 40 * SECOND)
    assert visit.actions() == ["login_prompt"]


@pytest.mark.parametrize(("category", "service_page"), [
    ("billing", "/account/billing"), ("invoices", "/account/billing/invoices"),
    ("account", "/account"), ("contract", "/account/contract"), ("moving", "/account/moving"),
    ("self-service", "/account/help")])
def test_every_self_service_category_counts_and_leads_to_its_service_page(
        category: str, service_page: str) -> None:
    visit = Visit()
    for i in range(3):
        prompt = visit.page(f"/x/{i}", category, T0 + i * SECOND)
    assert prompt is not None
    assert prompt.payload["service_page"] == service_page
    assert prompt.payload["topic"] == category


def test_anonymous_visitor_with_two_self_service_pages_gets_nothing() -> None:
    visit = Visit()
    visit.page("/billing/faq", "billing", T0)
    visit.page("/moving", "moving", T0 + SECOND)
    visit.page("/", "home", T0 + 2 * SECOND)
    assert visit.sent == []


def test_pages_outside_the_self_service_topics_do_not_count_towards_the_prompt() -> None:
    visit = Visit()
    for i, url in enumerate(["/pricing/a", "/pricing/b", "/help/c"]):
        visit.page(url, "faq", T0 + i * SECOND)
    assert visit.page("/billing/faq", "billing", T0 + 5 * SECOND) is None
    assert visit.page("/", None, T0 + 6 * SECOND) is None
    assert visit.actions() == []


def test_page_outside_the_topics_gets_nothing_even_after_enough_topic_pages() -> None:
    visit = Visit()
    for i in range(3):
        visit.page(f"/billing/{i}", "billing", T0 + i * SECOND)
    assert visit.page("/about", "about", T0 + 3 * SECOND) is None
    assert visit.page("/", None, T0 + 4 * SECOND) is None
    assert visit.actions() == ["login_prompt"]


def test_only_page_views_decide() -> None:
    visit = Visit()
    for i in range(3):
        visit.page(f"/billing/{i}", "billing", T0 + i * SECOND)
    chosen = visit.see(click("x1", "click", T0 + 31 * MINUTE, session_id="s1",
                             page={"url": "/billing/2", "category": "billing"}))
    assert chosen == []


def test_second_login_prompt_is_suppressed_inside_the_cooldown_on_event_time() -> None:
    visit = Visit()
    for i in range(3):
        visit.page(f"/billing/{i}", "billing", T0 + i * SECOND)
    prompted_at = T0 + 2 * SECOND
    assert visit.page("/billing/x", "billing", prompted_at + 1800 * SECOND - 1) is None
    assert visit.actions() == ["login_prompt"]
    assert visit.suppressed == [Suppressed("login_prompt", "cooldown", "self-service-login-prompt",
                                           "web")]


def test_login_prompt_is_allowed_again_once_the_cooldown_has_passed() -> None:
    visit = Visit()
    for i in range(3):
        visit.page(f"/billing/{i}", "billing", T0 + i * SECOND)
    prompted_at = T0 + 2 * SECOND
    again = visit.page("/billing/y", "billing", prompted_at + 1800 * SECOND)
    assert again is not None
    assert again.action == "login_prompt"
    assert again.payload["reason"] == "4 self-service pages read this session"
    assert visit.profile.last_sent["login_prompt"] == prompted_at + 1800 * SECOND


def test_topic_pages_of_an_earlier_session_do_not_count() -> None:
    visit = Visit()
    visit.page("/billing/0", "billing", T0, session_id="s1")
    visit.page("/billing/1", "billing", T0 + SECOND, session_id="s1")
    assert visit.page("/billing/2", "billing", T0 + 2 * SECOND, session_id="s2") is None


def test_login_url_carries_the_percent_encoded_page_to_return_to() -> None:
    visit = Visit()
    visit.page("/billing/0", "billing", T0)
    visit.page("/billing/1", "billing", T0 + SECOND)
    here = "/billing/faq?tab=due date&lang=en#top"
    prompt = visit.page(here, "billing", T0 + 2 * SECOND)
    assert prompt is not None
    login_url = prompt.payload["login_url"]
    assert login_url == "/login?return_to=%2Fbilling%2Ffaq%3Ftab%3Ddue%20date%26lang%3Den%23top"
    parts = urlsplit(login_url)
    assert parts.path == "/login"
    assert parse_qs(parts.query) == {"return_to": [here]}


def test_visitor_without_service_consent_gets_no_login_prompt() -> None:
    visit = Visit()
    visit.see(click("c0", "consent_updated", T0, session_id="s1",
                    consent={"service": False, "marketing": True}))
    for i in range(4):
        visit.page(f"/billing/{i}", "billing", T0 + (i + 1) * SECOND)
    assert visit.actions() == []
    assert {s.cause for s in visit.suppressed} == {"consent"}


# ---------------------------------------------------------------- logged in: direct link

def test_logged_in_customer_on_a_self_service_page_gets_a_direct_link_to_its_service_page() -> None:
    visit = Visit()
    visit.log_in(T0)
    link = visit.page("/help/moving-house", "moving", T0 + SECOND, customer_id="c1")
    assert link == Decision(
        action="direct_link", channel="web", rule="self-service-direct-link",
        payload={"url": "/account/moving", "title": "Moving home", "topic": "moving"},
        cap_key="direct_link:moving", expires_after_ms=600_000, consent_category="service",
        score=1.0)


def test_logged_in_customer_gets_no_login_prompt() -> None:
    visit = Visit()
    visit.log_in(T0)
    for i in range(5):
        visit.page(f"/billing/{i}", "billing", T0 + (i + 1) * SECOND, customer_id="c1")
    assert visit.actions() == ["direct_link"]


@pytest.mark.parametrize("url", ["/account/billing", "/account/billing/", "/account/billing?tab=2",
                                 "https://www.example.com/account/billing"])
def test_no_direct_link_when_already_on_the_service_page(url: str) -> None:
    visit = Visit()
    visit.log_in(T0)
    assert visit.page(url, "billing", T0 + SECOND, customer_id="c1") is None
    assert visit.suppressed == [Suppressed("direct_link", "already_there", "self-service-direct-link",
                                           "web")]


def test_direct_link_has_a_cooldown_per_topic() -> None:
    visit = Visit()
    visit.log_in(T0)
    assert visit.page("/billing/a", "billing", T0 + SECOND, customer_id="c1") is not None
    assert visit.page("/billing/b", "billing", T0 + 2 * SECOND, customer_id="c1") is None
    assert [s.cause for s in visit.suppressed] == ["cooldown"]
    other_topic = visit.page("/help/moving", "moving", T0 + 3 * SECOND, customer_id="c1")
    assert other_topic is not None
    assert other_topic.payload["topic"] == "moving"
    assert visit.page("/billing/c", "billing", T0 + SECOND + 10 * MINUTE - 1, customer_id="c1") is None
    later = visit.page("/billing/c", "billing", T0 + SECOND + 10 * MINUTE, customer_id="c1")
    assert later is not None
    assert visit.actions() == ["direct_link", "direct_link", "direct_link"]


def test_logged_in_customer_without_service_consent_gets_no_direct_link() -> None:
    visit = Visit()
    visit.log_in(T0)
    visit.see(click("c0", "consent_updated", T0 + SECOND, session_id="s1", customer_id="c1",
                    consent={"service": False, "marketing": False}))
    assert visit.page("/billing/a", "billing", T0 + 2 * SECOND, customer_id="c1") is None
    assert visit.suppressed == [Suppressed("direct_link", "consent", "self-service-direct-link", "web")]


def test_logged_in_customer_on_a_page_outside_the_topics_gets_nothing() -> None:
    visit = Visit()
    visit.log_in(T0)
    assert visit.page("/about", "about", T0 + SECOND, customer_id="c1") is None
    assert visit.page("/", None, T0 + 2 * SECOND, customer_id="c1") is None
    assert visit.suppressed == []


def test_after_logout_the_visitor_is_anonymous_again() -> None:
    visit = Visit()
    visit.log_in(T0)
    visit.see(click("out", "logout", T0 + SECOND, session_id="s1"))
    for i in range(3):
        visit.page(f"/billing/{i}", "billing", T0 + (i + 2) * SECOND)
    assert visit.actions() == ["login_prompt"]


# ---------------------------------------------------------------- what the e2e tests send

def run(events: list[Event], person_id: str) -> list[dict]:
    profile, actions = None, []
    for event in events:
        outcome = process_event(event, person_id, profile, Trigger(event.ts, event.ts), RULES)
        profile = outcome.profile
        actions += outcome.actions
        assert outcome.held_out == []
    return actions


BILLING = [("/billing/faq", "billing"), ("/billing/invoices", "invoices"),
           ("/account/settings", "account")]


def test_e2e_first_actions_traffic_yields_exactly_one_prompt_then_one_link() -> None:
    pages = [*BILLING, ("/billing/due-date", "billing")]
    events: list[Event] = [page_view(f"anon-{n}", url, cat, T0 + n * SECOND, session_id="s-v-100",
                                     visitor_id="v-100") for n, (url, cat) in enumerate(pages)]
    events.append(click("login-1", "login", T0 + 10 * SECOND, visitor_id="v-100",
                        customer_id="c-100", session_id="s-v-100"))
    events.append(page_view("known-1", "/billing/invoices/latest", "invoices", T0 + 11 * SECOND,
                            session_id="s-v-100", visitor_id="v-100", customer_id="c-100"))
    actions = run(events, "v-100")
    assert [(a["action"], a["trigger_event_id"]) for a in actions] == [
        ("login_prompt", "anon-2"), ("direct_link", "known-1")]
    assert actions[0]["payload"]["login_url"] == "/login?return_to=%2Faccount%2Fsettings"
    assert actions[1]["payload"]["url"] == "/account/billing/invoices"
    assert {a["rule"] for a in actions} == SELF_SERVICE


def test_e2e_restart_and_crash_traffic_prompts_once_and_links_on_the_marker() -> None:
    events: list[Event] = []
    for tag, start in (("a", 0), ("b", 10), ("c", 20)):
        for n, (url, cat) in enumerate(BILLING):
            events.append(page_view(f"v-{tag}{n}", url, cat, T0 + (start + n) * SECOND,
                                    session_id="s-v", visitor_id="v"))
    events.append(page_view("marker", "/account/settings", "account", T0 + 40 * SECOND,
                            session_id="s-v", visitor_id="v", customer_id="c-v"))
    actions = run(events, "v")
    assert [(a["action"], a["trigger_event_id"]) for a in actions] == [
        ("login_prompt", "v-a2"), ("direct_link", "marker")]


def test_e2e_dead_letter_traffic_gets_a_direct_link_for_the_first_logged_in_page() -> None:
    event = page_view("good-1", "/account/settings", "account", T0, session_id="s-v-200",
                      visitor_id="v-200", customer_id="c-200")
    assert [a["action"] for a in run([event], "v-200")] == ["direct_link"]


# ---------------------------------------------------------------- the other default rules

def test_cancellation_page_reader_is_shown_retention_options_on_the_web() -> None:
    visit = Visit()
    visit.log_in(T0)
    offer = visit.page("/contract/cancel", "cancellation", T0 + SECOND, customer_id="c1")
    assert offer is not None
    assert (offer.action, offer.rule, offer.score) == ("retention_offer", "churn-retention-options", 5.0)
    assert offer.payload == {"url": "/account/contract/options",
                             "title": "Before you go - your options", "topic": "cancellation"}
    assert visit.page("/contract/cancel", "cancellation", T0 + 2 * SECOND, customer_id="c1") is None
    assert visit.suppressed[-1].cause == "cooldown"


def test_high_churn_risk_shows_retention_options_on_any_page_and_outbids_the_direct_link() -> None:
    visit = Visit(scores={"churn_risk": 0.9})
    visit.log_in(T0)
    offer = visit.page("/billing/a", "billing", T0 + SECOND, customer_id="c1")
    assert offer is not None
    assert offer.action == "retention_offer"
    assert Suppressed("direct_link", "lost", "self-service-direct-link", "web") in visit.suppressed


def test_untrusted_churn_score_is_as_good_as_none() -> None:
    visit = Visit(scores={"churn_risk": None, "contact_need": None})
    visit.log_in(T0)
    link = visit.page("/billing/a", "billing", T0 + SECOND, customer_id="c1")
    assert link is not None
    assert link.action == "direct_link"


def test_cancellation_request_alerts_the_contact_centre() -> None:
    visit = Visit(person_id="c1")
    [alert] = visit.see(contact("k1", "cancellation_requested", T0, reason="price"))
    assert (alert.channel, alert.action) == ("contact-centre", "churn_alert")
    assert alert.payload == {"customer_id": "c1", "reason": "price",
                             "suggestion": "offer the retention options before processing the "
                                           "cancellation"}


def test_unhappy_caller_is_offered_a_callback_but_not_after_asking_for_one() -> None:
    visit = Visit(person_id="c1")
    [offer] = visit.see(contact("k1", "contact_started", T0, reason="billing", sentiment=-0.7))
    assert offer.action == "offer_callback"
    assert offer.payload["script"] == "offer a callback from a billing specialist"
    assert visit.see(contact("k2", "contact_started", T0 + SECOND, reason="billing",
                             sentiment=0.2)) == []
    other = Visit(person_id="c2")
    other.see(contact("k3", "callback_requested", T0, customer_id="c2"))
    assert other.see(contact("k4", "contact_started", T0 + SECOND, customer_id="c2",
                             reason="billing", sentiment=-0.9)) == []
    assert other.suppressed == [Suppressed("offer_callback", "stopped", "offer-callback-unhappy-caller",
                                           "contact-centre")]


def test_contact_steer_needs_the_contact_need_score_and_weighs_by_it() -> None:
    assert Visit().page("/faq", "faq", T0) is None
    visit = Visit(scores={"contact_need": 0.8})
    steer = visit.page("/help/moving", "moving", T0)
    assert steer is not None
    assert steer.action == "contact_suggestion"
    assert steer.score == pytest.approx(2 * 0.8)
    assert steer.payload == {"url": "/contact/callback?topic=moving", "route": "callback",
                             "topic": "moving"}
    default_route = Visit(scores={"contact_need": 0.75}).page("/faq", "faq", T0)
    assert default_route is not None
    assert default_route.payload == {"url": "/contact", "route": "chat", "topic": "faq"}
    assert Visit(scores={"contact_need": 0.6}).page("/faq", "faq", T0) is None


def test_contact_steer_stops_once_a_callback_was_requested() -> None:
    visit = Visit(person_id="c1", scores={"contact_need": 0.9})
    visit.see(contact("k1", "callback_requested", T0))
    assert visit.page("/faq", "faq", T0 + SECOND) is None
    assert visit.suppressed == [Suppressed("contact_suggestion", "stopped", "contact-channel-steer",
                                           "web")]


def test_three_pages_on_one_product_topic_suggest_its_guide() -> None:
    visit = Visit()
    assert visit.page("/products/broadband", "products", T0) is None
    assert visit.page("/pricing", "pricing", T0 + SECOND) is None
    assert visit.page("/products/mobile", "products", T0 + 2 * SECOND) is None
    guide = visit.page("/compare", "products", T0 + 3 * SECOND)
    assert guide is not None
    assert (guide.action, guide.payload["url"]) == ("next_content", "/guides/choosing-a-plan")
    assert visit.page("/products/tv", "products", T0 + 4 * SECOND) is None
    assert visit.suppressed[-1].cause == "cooldown"


def test_an_open_billing_case_replaces_contact_us_with_the_case_status_on_the_web() -> None:
    visit = Visit(person_id="c1", scores={"contact_need": 0.9})
    visit.log_in(T0)
    visit.see(contact("k1", "case_opened", T0 + SECOND, reason="billing"))
    shown = visit.page("/billing/faq", "billing", T0 + 2 * SECOND, customer_id="c1")
    assert shown is not None
    assert shown.action == "open_case_status"
    assert shown.payload == {"url": "/account/cases?topic=billing", "title": "Your open billing case",
                             "topic": "billing"}
    assert "contact_suggestion" not in visit.actions()


def test_once_the_case_is_resolved_the_contact_suggestion_comes_back() -> None:
    visit = Visit(person_id="c1", scores={"contact_need": 0.9})
    visit.log_in(T0)
    visit.see(contact("k1", "case_opened", T0 + SECOND, reason="billing"))
    visit.see(contact("k2", "case_resolved", T0 + 2 * SECOND, reason="billing"))
    shown = visit.page("/help/moving", "moving", T0 + 3 * SECOND, customer_id="c1")
    assert shown is not None and shown.action == "contact_suggestion"
