"""Payload templates: placeholders, filters, escapes, missing values and mistakes."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.events import Event
from orchestrator.core.profile import Profile, apply_event
from orchestrator.core.rules.conditions import Env
from orchestrator.core.rules.paths import MISSING, RuleInputs
from orchestrator.core.rules.templates import compile_payload, compile_template

from .factories import T0, click, contact, page_view

LOOKUPS: dict[str, dict[str, Any]] = {"service_pages": {"billing": {"url": "/account/billing",
                                                                    "title": "Bills & Payments"}}}
VIEW = page_view("e1", "/billing/faq?tab=due date&x=1", "billing", T0, customer_id="c1")


def context(event: Event = VIEW, scores: dict | None = None) -> RuleInputs:
    profile = Profile(person_id="v1")
    apply_event(profile, event)
    return RuleInputs(event, profile, scores or {}, LOOKUPS)


def render(text: str, event: Event = VIEW, counts: dict | None = None, scores: dict | None = None) -> Any:
    env = Env(lookups=LOOKUPS, counts=dict(counts or {}))
    compiled = compile_template(text, "payload.x", env)
    assert env.problems == []
    return compiled(context(event, scores))


@pytest.mark.parametrize(("template", "expected"), [
    ("plain text", "plain text"),
    ("", ""),
    ("{event.page.category}", "billing"),
    ("topic: {event.page.category}!", "topic: billing!"),
    ("/login?return_to={event.page.url|urlencode}",
     "/login?return_to=%2Fbilling%2Ffaq%3Ftab%3Ddue%20date%26x%3D1"),
    ("{lookup.service_pages[event.page.category].title|upper}", "BILLS & PAYMENTS"),
    ("{lookup.service_pages[event.page.category].title|lower|urlencode}", "bills%20%26%20payments"),
    ("{event.reason|default:general}", "general"),
    ("{event.reason|default:}", ""),
    ("{event.reason|default:a:b}", "a:b"),
    ("{event.page.category|default:general}", "billing"),
    ("{{literal}} {event.page.category}", "{literal} billing"),
    ("{profile.logged_in} {profile.sessions}", "true 1"),
    ("{ event.page.category }", "billing"),
    ("{lookup.service_pages.billing.url}", "/account/billing"),
])
def test_template_renders(template: str, expected: str) -> None:
    assert render(template) == expected


def test_counts_and_scores_render_as_numbers_in_text() -> None:
    assert render("{counts.pages} pages", counts={"pages": lambda ctx: 3}) == "3 pages"
    assert render("risk {scores.churn_risk}", scores={"churn_risk": 0.85}) == "risk 0.85"


@pytest.mark.parametrize("template", [
    "{event.reason}", "x {event.page.title} y", "{event.reason|upper}", "{scores.churn_risk}",
    "{lookup.service_pages[event.reason].url}",
])
def test_a_missing_value_without_default_fails_the_whole_template(template: str) -> None:
    assert render(template) is MISSING


def test_a_structured_property_is_not_rendered_into_text() -> None:
    event = click("e1", "search", T0, properties={"filters": {"a": 1}, "q": "tv"})
    assert render("{event.properties.q}", event) == "tv"
    assert render("{event.properties.filters}", event) is MISSING


def test_payload_renders_nested_text_and_copies_other_values() -> None:
    env = Env(lookups=LOOKUPS)
    payload = compile_payload({"url": "{lookup.service_pages[event.page.category].url}",
                               "n": 3, "ok": True, "none": None,
                               "tags": ["{event.page.category}", "fixed"],
                               "more": {"topic": "{event.page.category|upper}"}}, "payload", env)
    assert env.problems == []
    first = payload(context())
    assert first == {"url": "/account/billing", "n": 3, "ok": True, "none": None,
                     "tags": ["billing", "fixed"], "more": {"topic": "BILLING"}}
    second = payload(context())
    assert second == first and second is not first and second["tags"] is not first["tags"]


@pytest.mark.parametrize("payload", [
    {"a": "{event.reason}"}, {"a": "ok", "b": ["{event.reason}"]}, {"a": {"b": "{event.reason}"}},
])
def test_payload_with_any_missing_value_is_missing(payload: dict) -> None:
    env = Env(lookups=LOOKUPS)
    assert compile_payload(payload, "payload", env)(context()) is MISSING


def test_contact_event_renders_its_fields() -> None:
    event = contact("k1", "contact_started", T0, reason="billing")
    assert render("{event.reason} via {event.channel}", event) == "billing via phone"


@pytest.mark.parametrize(("template", "message"), [
    ("{event.page.url|urlencod}", "unknown filter 'urlencod' (filters: default, lower, upper, urlencode)"),
    ("{event.page.url|lower:x}", "the filter lower takes no argument"),
    ("{event.page.url|default}", "default needs a value: default:<text>"),
    ("/login?return_to={event.page.url", "'{' at position 18 is not closed"),
    ("a } b", "'}' at position 3 closes nothing"),
    ("{}", "empty placeholder"),
    ("{event.page.catgory}", "did you mean event.page.category?"),
    ("{lookup.service_pages[event.page.category]}", "is a lookup entry (a mapping); name one of its fields"),
    ("{counts.pages}", "no count named 'pages' in this rule"),
    ("{lookup.service_pages[event.page.category].link}", "without 'link': billing"),
])
def test_template_mistakes_are_reported(template: str, message: str) -> None:
    env = Env(lookups=LOOKUPS)
    compile_template(template, "payload.login_url", env)
    assert len(env.problems) == 1
    where, text = env.problems[0]
    assert where == "payload.login_url"
    assert message in text


def test_payload_mistakes_name_the_key_path() -> None:
    env = Env(lookups=LOOKUPS)
    compile_payload({"a": {"b": ["ok", "{event.nope}"]}}, "payload", env)
    assert [where for where, _ in env.problems] == ["payload.a.b[1]"]


@given(st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=40))
def test_text_without_braces_renders_as_itself(text: str) -> None:
    assert render(text) == text


@given(st.text(max_size=60))
def test_urlencoded_page_url_decodes_back(url_tail: str) -> None:
    event = page_view("e1", "/" + url_tail, "billing", T0)
    assert unquote(render("{event.page.url|urlencode}", event)) == "/" + url_tail
