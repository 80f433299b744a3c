"""Field paths: what each names, MISSING when absent, and a clear error for anything else."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.core.events import Event
from orchestrator.core.profile import Profile, apply_event
from orchestrator.core.rules.paths import MISSING, PathError, RuleInputs, compile_path

from .factories import T0, click, contact, feedback, page_view

LOOKUPS: dict[str, dict[str, Any]] = {
    "service_pages": {"billing": {"url": "/account/billing", "title": "Bills"},
                      "moving": {"url": "/account/moving", "title": "Moving"}},
    "labels": {"billing": "Billing", "moving": "Moving"},
    "uneven": {"billing": {"url": "/b"}, "moving": {"title": "M"}},
}


def ctx(event: Event, profile: Profile | None = None, scores: dict | None = None) -> RuleInputs:
    profile = profile or Profile(person_id="v1")
    apply_event(profile, event)
    return RuleInputs(event=event, profile=profile, scores=scores or {}, lookups=LOOKUPS)


def value(path: str, context: RuleInputs, counts: dict | None = None) -> Any:
    return compile_path(path, lookups=LOOKUPS, counts=counts).get(context)


VIEW = page_view("e1", "/billing/faq?x=1", "billing", T0, customer_id="c1")


@pytest.mark.parametrize(("path", "expected"), [
    ("event.type", "page_view"),
    ("event.source", "clickstream"),
    ("event.event_id", "e1"),
    ("event.ts", T0),
    ("event.visitor_id", "v1"),
    ("event.customer_id", "c1"),
    ("event.session_id", "s1"),
    ("event.page.url", "/billing/faq?x=1"),
    ("event.page.path", "/billing/faq"),
    ("event.page.category", "billing"),
    ("profile.person_id", "v1"),
    ("profile.visitor_id", "v1"),
    ("profile.customer_id", "c1"),
    ("profile.logged_in", True),
    ("profile.sessions", 1),
    ("profile.events_seen", 1),
    ("profile.first_seen_ts", T0),
    ("profile.last_seen_ts", T0),
    ("profile.session_started_ts", T0),
    ("profile.consent.service", True),
    ("profile.consent.marketing", False),
    ("lookup.service_pages[event.page.category].url", "/account/billing"),
    ("lookup.service_pages[event.page.category]", {"url": "/account/billing", "title": "Bills"}),
    ("lookup.service_pages.moving.title", "Moving"),
    ("lookup.labels[event.page.category]", "Billing"),
    ("lookup.labels.moving", "Moving"),
])
def test_path_names_its_value_on_a_page_view(path: str, expected: Any) -> None:
    assert value(path, ctx(VIEW)) == expected


@pytest.mark.parametrize("path", [
    "event.page.title", "event.channel", "event.reason", "event.sentiment", "event.agent_id",
    "event.outcome", "event.action_id", "event.consent.service", "event.properties.sku",
    "profile.open_case",
])
def test_absent_values_are_missing_not_none(path: str) -> None:
    assert value(path, ctx(VIEW)) is MISSING


def test_lookup_of_a_key_that_is_not_in_the_table_is_missing() -> None:
    other = ctx(page_view("e1", "/products", "products", T0))
    assert value("lookup.service_pages[event.page.category]", other) is MISSING
    assert value("lookup.service_pages[event.page.category].url", other) is MISSING
    no_category = ctx(page_view("e1", "/", None, T0))
    assert value("lookup.labels[event.page.category]", no_category) is MISSING


def test_contact_centre_event_fields() -> None:
    event = contact("k1", "contact_started", T0, reason="billing", sentiment=-0.4, agent_id="a7")
    context = ctx(event, Profile(person_id="c1"))
    assert [value(p, context) for p in ("event.type", "event.source", "event.channel",
                                        "event.reason", "event.sentiment", "event.agent_id",
                                        "event.customer_id")] == \
        ["contact_started", "contact-centre", "phone", "billing", -0.4, "a7", "c1"]
    assert value("event.page.category", context) is MISSING
    assert value("event.page.path", context) is MISSING


def test_feedback_event_is_of_type_feedback_with_its_outcome() -> None:
    context = ctx(feedback("a-1", "clicked", T0))
    assert value("event.type", context) == "feedback"
    assert value("event.source", context) == "action-feedback"
    assert value("event.outcome", context) == "clicked"
    assert value("event.action_id", context) == "a-1"


def test_unknown_clickstream_type_is_other_and_properties_are_readable() -> None:
    context = ctx(click("e1", "video_play", T0, properties={"sku": "plan-2", "n": 3}))
    assert value("event.type", context) == "other"
    assert value("event.properties.sku", context) == "plan-2"
    assert value("event.properties.n", context) == 3


def test_consent_event_fields() -> None:
    context = ctx(click("e1", "consent_updated", T0, consent={"service": False, "marketing": True}))
    assert value("event.consent.service", context) is False
    assert value("event.consent.marketing", context) is True
    assert value("profile.consent.service", context) is False


def test_scores_are_numbers_or_missing() -> None:
    context = ctx(VIEW, scores={"churn_risk": 0.25, "contact_need": None, "odd": "high",
                                "flag": True})
    assert value("scores.churn_risk", context) == 0.25
    assert value("scores.contact_need", context) is MISSING
    assert value("scores.odd", context) is MISSING
    assert value("scores.flag", context) is MISSING
    assert value("scores.unknown", context) is MISSING


def test_named_counts_are_read_through_their_getter() -> None:
    assert value("counts.pages", ctx(VIEW), counts={"pages": lambda c: 7}) == 7


def test_missing_is_falsy_and_prints_as_missing() -> None:
    assert not MISSING
    assert repr(MISSING) == "MISSING"


@pytest.mark.parametrize(("path", "message"), [
    ("event.pag.url", "unknown field 'event.pag.url' (did you mean event.page.url?)"),
    ("profile.loggedin", "did you mean profile.logged_in?"),
    ("visitor.id", "a path starts with one of event, profile, lookup, counts, scores"),
    ("", "empty path"),
    ("event.", "ends where a name is expected"),
    ("event..type", "expected a name at position 7"),
    ("event.type!", "unexpected '!' at position 11"),
    ("lookup.nothing[event.type]", "unknown lookup 'nothing' (lookups: labels, service_pages, uneven)"),
    ("lookup.service_pages", "say which entry"),
    ("lookup.service_pages.shopping", "lookup 'service_pages' has no key 'shopping'"),
    ("lookup.service_pages[event.page.category].link",
     "entries of lookup 'service_pages' without 'link': billing, moving"),
    ("lookup.uneven[event.page.category].url", "entries of lookup 'uneven' without 'url': moving"),
    ("lookup.service_pages[event.page.category", "'[' at position 21 is not closed"),
    ("lookup.service_pages[lookup.service_pages[event.page.category]].url", "is a mapping"),
    ("lookup.labels[event.bogus]", "unknown field 'event.bogus'"),
    ("lookup.service_pages[event.type][event.type]", "only one [...] per lookup"),
    ("lookup.service_pages.billing.url.more", "lookup entries are one level deep"),
    ("event.page[event.type]", "[...] is only for looking a key up in a lookup"),
    ("counts.pages", "no count named 'pages' in this rule"),
    ("scores", "expected scores.<name>"),
    ("event.properties.a.b", "unknown field"),
])
def test_bad_paths_are_rejected_saying_what_is_wrong(path: str, message: str) -> None:
    with pytest.raises(PathError) as caught:
        compile_path(path, lookups=LOOKUPS)
    assert message in str(caught.value)


def test_a_path_must_be_text() -> None:
    with pytest.raises(PathError, match="a path is text, got 3"):
        compile_path(3, lookups=LOOKUPS)  # type: ignore[arg-type]


def test_value_types_are_known_for_type_checks() -> None:
    value_types = {p: compile_path(p, lookups=LOOKUPS).value_type for p in (
        "event.type", "event.ts", "profile.logged_in", "lookup.service_pages.billing",
        "lookup.labels.billing", "event.properties.x", "scores.churn_risk")}
    assert value_types == {"event.type": "text", "event.ts": "number", "profile.logged_in": "bool",
                     "lookup.service_pages.billing": "mapping", "lookup.labels.billing": "any",
                     "event.properties.x": "any", "scores.churn_risk": "number"}


@pytest.mark.parametrize("url", ["http://[::1", "http://[aåç:Ж]/billing", "//[x]/billing"])
def test_a_url_that_cannot_be_split_has_no_path(url: str) -> None:
    # urlsplit raises for a bracketed host that is no IPv6 address; the page still counts.
    assert value("event.page.path", ctx(page_view("e1", url, "billing", T0))) is MISSING
