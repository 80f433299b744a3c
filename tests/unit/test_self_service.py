"""The self-service decision: a login prompt for anonymous readers, a direct link for customers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from orchestrator.core.events import ClickstreamEvent
from orchestrator.core.profile import Profile, apply_event, record_sent
from orchestrator.core.self_service import (
    Decision,
    PolicyError,
    SelfServicePolicy,
    Suppressed,
    decide_self_service,
    parse_policy,
)

from .factories import MINUTE, POLICY_DOC, SECOND, T0, click, page_view, policy

POLICY = policy()


class Visit:
    """One person browsing: apply each event, ask for a decision, remember what was sent."""

    def __init__(self, rules: SelfServicePolicy = POLICY) -> None:
        self.profile = Profile(person_id="v1")
        self.rules = rules
        self.decisions: list[Decision | None] = []
        self.suppressed: list[Suppressed] = []
        self._n = 0

    def see(self, event: ClickstreamEvent) -> Decision | None:
        """Return the decision sent for ``event``; a held-back one is kept in ``suppressed``."""
        assert apply_event(self.profile, event) is True
        decision = decide_self_service(event, self.profile, self.rules)
        if isinstance(decision, Suppressed):
            self.suppressed.append(decision)
            decision = None
        if decision is not None:
            record_sent(self.profile, {"action_id": f"a-{event.event_id}", "action": decision.action,
                                       "channel": decision.channel}, decision.cap_key, event.ts)
        self.decisions.append(decision)
        return decision

    def page(self, url: str, category: str | None, ts: int, **fields: object) -> Decision | None:
        self._n += 1
        return self.see(page_view(f"e{self._n}", url, category, ts, **fields))

    def log_in(self, ts: int) -> None:
        self._n += 1
        self.see(click(f"e{self._n}", "login", ts, session_id="s1", customer_id="c1"))

    def actions(self) -> list[str]:
        return [d.action for d in self.decisions if d is not None]


# ---------------------------------------------------------------- anonymous: login prompt

def test_anonymous_visitor_gets_one_login_prompt_after_three_self_service_pages() -> None:
    visit = Visit()
    assert visit.page("/billing/faq", "billing", T0) is None
    assert visit.page("/billing/pay", "billing", T0 + 10 * SECOND) is None
    prompt = visit.page("/billing/due-date", "invoices", T0 + 20 * SECOND)
    assert prompt is not None
    assert prompt.action == "login_prompt"
    assert (prompt.channel, prompt.rule) == ("web", "self-service-login-prompt")
    assert prompt.cap_key == "login_prompt"
    assert prompt.expires_after_ms == 600_000
    assert prompt.consent_category == "service"
    assert prompt.payload["topic"] == "invoices"
    assert prompt.payload["service_page"] == "/account/billing/invoices"
    assert prompt.payload["reason"] == "3 self-service pages read this session"
    visit.page("/billing/more", "billing", T0 + 30 * SECOND)
    visit.page("/moving", "moving", T0 + 40 * SECOND)
    assert visit.actions() == ["login_prompt"]


def test_anonymous_visitor_with_two_self_service_pages_gets_nothing() -> None:
    visit = Visit()
    visit.page("/billing/faq", "billing", T0)
    visit.page("/moving", "moving", T0 + SECOND)
    visit.page("/", "home", T0 + 2 * SECOND)
    assert visit.decisions == [None, None, None]


def test_pages_outside_the_self_service_topics_do_not_count_towards_the_prompt() -> None:
    visit = Visit()
    for i, url in enumerate(["/products/a", "/products/b", "/products/c"]):
        visit.page(url, "products", T0 + i * SECOND)
    assert visit.page("/billing/faq", "billing", T0 + 5 * SECOND) is None
    assert visit.page("/", None, T0 + 6 * SECOND) is None
    assert visit.actions() == []


def test_page_outside_the_topics_gets_nothing_even_after_enough_topic_pages() -> None:
    visit = Visit(policy(login_prompt={"cooldown_s": 0}))
    for i in range(3):
        visit.page(f"/billing/{i}", "billing", T0 + i * SECOND)
    assert visit.page("/products", "products", T0 + 3 * SECOND) is None
    assert visit.page("/", None, T0 + 4 * SECOND) is None
    assert visit.page("/billing/again", "billing", T0 + 5 * SECOND) is not None
    assert visit.actions() == ["login_prompt", "login_prompt"]


def test_only_page_views_decide() -> None:
    visit = Visit()
    visit.page("/billing/0", "billing", T0)
    visit.page("/billing/1", "billing", T0 + SECOND)
    visit.page("/billing/2", "billing", T0 + 2 * SECOND)
    event = click("x1", "click", T0 + 3 * SECOND, session_id="s1",
                  page={"url": "/billing/2", "category": "billing"})
    apply_event(visit.profile, event)
    assert decide_self_service(event, visit.profile, POLICY) is None


def test_second_login_prompt_is_suppressed_inside_the_cooldown_on_event_time() -> None:
    visit = Visit()
    for i in range(3):
        visit.page(f"/billing/{i}", "billing", T0 + i * SECOND)
    prompted_at = T0 + 2 * SECOND
    assert visit.page("/billing/x", "billing", prompted_at + 1800 * SECOND - 1) is None
    assert visit.actions() == ["login_prompt"]
    assert visit.suppressed == [Suppressed("login_prompt", "cooldown")]


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


def test_threshold_of_pages_comes_from_the_policy() -> None:
    lenient = policy(login_prompt={"min_topic_pages_in_session": 1})
    visit = Visit(lenient)
    prompt = visit.page("/billing/faq", "billing", T0)
    assert prompt is not None
    assert prompt.action == "login_prompt"


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


def test_login_url_with_its_own_query_gets_return_to_appended() -> None:
    visit = Visit(policy(login_prompt={"login_url": "https://id.example.com/login?lang=nl"}))
    for i in range(3):
        prompt = visit.page(f"/billing/{i}", "billing", T0 + i * SECOND)
    assert prompt is not None
    assert prompt.payload["login_url"] == "https://id.example.com/login?lang=nl&return_to=%2Fbilling%2F2"


def test_visitor_without_service_consent_gets_no_login_prompt() -> None:
    visit = Visit()
    visit.see(click("c0", "consent_updated", T0, session_id="s1",
                    consent={"service": False, "marketing": True}))
    for i in range(4):
        visit.page(f"/billing/{i}", "billing", T0 + (i + 1) * SECOND)
    assert visit.actions() == []


# ---------------------------------------------------------------- logged in: direct link

def test_logged_in_customer_on_a_self_service_page_gets_a_direct_link_to_its_service_page() -> None:
    visit = Visit()
    visit.log_in(T0)
    link = visit.page("/help/moving-house", "moving", T0 + SECOND, customer_id="c1")
    assert link is not None
    assert (link.action, link.channel, link.rule) == ("direct_link", "web", "self-service-direct-link")
    assert link.payload == {"url": "/account/moving", "title": "Moving home", "topic": "moving"}
    assert link.cap_key == "direct_link:moving"
    assert link.expires_after_ms == 300_000


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
    assert visit.suppressed == [Suppressed("direct_link", "already_there")]


def test_direct_link_has_a_cooldown_per_topic() -> None:
    visit = Visit()
    visit.log_in(T0)
    assert visit.page("/billing/a", "billing", T0 + SECOND, customer_id="c1") is not None
    assert visit.page("/billing/b", "billing", T0 + 2 * SECOND, customer_id="c1") is None
    assert visit.suppressed == [Suppressed("direct_link", "cooldown")]
    other_topic = visit.page("/help/moving", "moving", T0 + 3 * SECOND, customer_id="c1")
    assert other_topic is not None
    assert other_topic.payload["topic"] == "moving"
    later = visit.page("/billing/c", "billing", T0 + SECOND + 10 * MINUTE, customer_id="c1")
    assert later is not None
    assert visit.actions() == ["direct_link", "direct_link", "direct_link"]


def test_logged_in_customer_without_service_consent_gets_no_direct_link() -> None:
    visit = Visit()
    visit.log_in(T0)
    visit.see(click("c0", "consent_updated", T0 + SECOND, session_id="s1", customer_id="c1",
                    consent={"service": False, "marketing": False}))
    assert visit.page("/billing/a", "billing", T0 + 2 * SECOND, customer_id="c1") is None
    assert visit.suppressed == [Suppressed("direct_link", "consent")]


def test_logged_in_customer_on_a_page_outside_the_topics_gets_nothing() -> None:
    visit = Visit()
    visit.log_in(T0)
    assert visit.page("/products/mobile", "products", T0 + SECOND, customer_id="c1") is None
    assert visit.page("/", None, T0 + 2 * SECOND, customer_id="c1") is None
    assert visit.suppressed == []


def test_after_logout_the_visitor_is_anonymous_again() -> None:
    visit = Visit()
    visit.log_in(T0)
    visit.see(click("out", "logout", T0 + SECOND, session_id="s1"))
    for i in range(3):
        visit.page(f"/billing/{i}", "billing", T0 + (i + 2) * SECOND)
    assert visit.actions() == ["login_prompt"]


# ---------------------------------------------------------------- parse_policy

def test_policy_document_is_parsed_with_defaults_for_missing_sections() -> None:
    parsed = parse_policy({"topics": {"billing": {"service_page": "/b", "title": "Bills"}}}, "doc")
    assert parsed.version == "1"
    assert parsed.topics["billing"].service_page == "/b"
    assert parsed.login_prompt.min_topic_pages_in_session == 3
    assert parsed.login_prompt.cooldown_s == 1800
    assert parsed.login_prompt.login_url == "/login"
    assert parsed.direct_link.cooldown_s == 600


def test_full_test_policy_is_parsed_as_written() -> None:
    assert POLICY.version == "test-1"
    assert sorted(POLICY.topics) == ["billing", "invoices", "moving"]
    assert POLICY.direct_link.expires_after_s == 300


def test_policy_error_names_the_source_and_the_field_path() -> None:
    doc = {**POLICY_DOC, "topics": {"billing": {"service_page": "account/billing", "title": "Bills"}}}
    with pytest.raises(PolicyError) as caught:
        parse_policy(doc, "rules/self_service.yaml")
    message = str(caught.value)
    assert message.startswith("rules/self_service.yaml: ")
    assert "topics.billing.service_page" in message


@pytest.mark.parametrize(("change", "field"), [
    ({"topics": {}}, "topics"),
    ({"topics": {"billing": {"service_page": "/b"}}}, "topics.billing.title"),
    ({"login_prompt": {"min_topic_pages_in_session": 0}}, "login_prompt.min_topic_pages_in_session"),
    ({"login_prompt": {"cooldown_s": -1}}, "login_prompt.cooldown_s"),
    ({"login_prompt": {"cooldown": 60}}, "login_prompt.cooldown"),
    ({"direct_link": {"expires_after_s": 0}}, "direct_link.expires_after_s"),
    ({"surprise": True}, "surprise"),
])
def test_policy_error_names_each_bad_field(change: dict, field: str) -> None:
    with pytest.raises(PolicyError, match=rf"^policy\.yaml: .*\b{field}: "):
        parse_policy({**POLICY_DOC, **change}, "policy.yaml")


def test_missing_topics_is_named() -> None:
    with pytest.raises(PolicyError, match=r"^p\.yaml: topics: Field required"):
        parse_policy({"version": "1"}, "p.yaml")


@pytest.mark.parametrize("document", [None, [], "topics", 3])
def test_policy_document_that_is_not_a_mapping_is_rejected_naming_the_source(document: object) -> None:
    with pytest.raises(PolicyError, match=r"^p\.yaml: the document must be a mapping"):
        parse_policy(document, "p.yaml")


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)
