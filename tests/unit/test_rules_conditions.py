"""Conditions: every operator true and false, missing fields, counts, since, scores, and errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.events import Event
from orchestrator.core.profile import EVENT_TIMES_PER_TYPE, RECENT_PAGES, Profile, apply_event, record_sent
from orchestrator.core.rules.conditions import Env, categories_of, compile_condition, event_types_of
from orchestrator.core.rules.paths import RuleInputs

from .factories import MINUTE, SECOND, T0, click, contact, page_view

LOOKUPS: dict[str, dict[str, Any]] = {
    "service_pages": {"billing": {"url": "/account/billing"}, "invoices": {"url": "/account/inv"}},
}


def compiled(when: Any) -> Any:
    env = Env(lookups=LOOKUPS)
    condition = compile_condition(when, "when", env)
    assert env.problems == []
    return condition


def holds(when: Any, event: Event, profile: Profile | None = None,
          scores: dict[str, float | None] | None = None, history: list[Event] = ()) -> bool:  # type: ignore[assignment]
    """Apply ``history`` and ``event`` to a profile, then evaluate ``when`` for ``event``."""
    profile = profile or Profile(person_id="v1")
    for earlier in [*history, event]:
        apply_event(profile, earlier)
    return compiled(when)(RuleInputs(event, profile, scores or {}, LOOKUPS))


def problems(when: Any) -> list[tuple[str, str]]:
    env = Env(lookups=LOOKUPS)
    compile_condition(when, "when", env)
    return env.problems


VIEW = page_view("e1", "/billing/faq", "billing", T0)
LOGGED_IN_VIEW = page_view("e1", "/billing/faq", "billing", T0, customer_id="c1")
CONTACT = contact("k1", "contact_started", T0, reason="billing", sentiment=-0.5)


# ---------------------------------------------------------------- field comparisons

@pytest.mark.parametrize(("when", "event", "expected"), [
    ({"field": "event.type", "eq": "page_view"}, VIEW, True),
    ({"field": "event.type", "eq": "click"}, VIEW, False),
    ({"field": "event.page.category", "eq": "billing"}, CONTACT, False),  # missing
    ({"field": "profile.logged_in", "eq": True}, LOGGED_IN_VIEW, True),
    ({"field": "profile.logged_in", "eq": True}, VIEW, False),
    ({"field": "profile.logged_in", "eq": False}, VIEW, True),
    ({"field": "event.sentiment", "eq": -0.5}, CONTACT, True),
    ({"field": "event.type", "ne": "click"}, VIEW, True),
    ({"field": "event.type", "ne": "page_view"}, VIEW, False),
    ({"field": "event.reason", "ne": "cancellation"}, VIEW, False),  # missing: not "unequal"
    ({"field": "event.reason", "ne": "cancellation"}, CONTACT, True),
    ({"field": "event.sentiment", "gt": -0.6}, CONTACT, True),
    ({"field": "event.sentiment", "gt": -0.5}, CONTACT, False),
    ({"field": "event.sentiment", "gte": -0.5}, CONTACT, True),
    ({"field": "event.sentiment", "gte": -0.4}, CONTACT, False),
    ({"field": "event.sentiment", "lt": -0.4}, CONTACT, True),
    ({"field": "event.sentiment", "lt": -0.5}, CONTACT, False),
    ({"field": "event.sentiment", "lte": -0.5}, CONTACT, True),
    ({"field": "event.sentiment", "lte": -0.6}, CONTACT, False),
    ({"field": "event.sentiment", "lte": 1}, VIEW, False),  # missing
    ({"field": "profile.sessions", "gte": 1, "lt": 2}, VIEW, True),  # operators combine (and)
    ({"field": "profile.sessions", "gte": 1, "lt": 1}, VIEW, False),
    ({"field": "event.page.category", "in": ["billing", "moving"]}, VIEW, True),
    ({"field": "event.page.category", "in": ["moving"]}, VIEW, False),
    ({"field": "event.page.category", "in": ["billing"]}, CONTACT, False),  # missing
    ({"field": "event.page.category", "not_in": ["moving"]}, VIEW, True),
    ({"field": "event.page.category", "not_in": ["billing"]}, VIEW, False),
    ({"field": "event.page.category", "not_in": ["billing"]}, CONTACT, False),  # missing
    ({"field": "event.sentiment", "in": [-0.5, 0]}, CONTACT, True),
    ({"field": "event.sentiment", "not_in": [-0.5, 0]}, CONTACT, False),
    ({"field": "event.page.category", "exists": True}, VIEW, True),
    ({"field": "event.page.category", "exists": True}, CONTACT, False),
    ({"field": "event.page.category", "exists": False}, CONTACT, True),
    ({"field": "event.page.category", "exists": False}, VIEW, False),
    ({"field": "lookup.service_pages[event.page.category]", "exists": True}, VIEW, True),
    ({"field": "lookup.service_pages[event.page.category]", "exists": True},
     page_view("e1", "/p", "products", T0), False),
    ({"field": "event.page.url", "startswith": "/billing/"}, VIEW, True),
    ({"field": "event.page.url", "startswith": "/account"}, VIEW, False),
    ({"field": "event.page.url", "startswith": "/"}, CONTACT, False),  # missing
    ({"field": "lookup.service_pages[event.page.category].url", "eq": "/account/billing"}, VIEW, True),
])
def test_field_operator(when: dict, event: Event, expected: bool) -> None:
    assert holds(when, event) is expected


def test_true_is_not_one_and_one_is_one_point_oh() -> None:
    event = click("e1", "search", T0, properties={"n": 1, "flag": True})
    assert holds({"field": "event.properties.n", "eq": 1.0}, event) is True
    assert holds({"field": "event.properties.n", "eq": True}, event) is False
    assert holds({"field": "event.properties.flag", "eq": 1}, event) is False
    assert holds({"field": "event.properties.flag", "in": [1, 2]}, event) is False
    assert holds({"field": "event.properties.flag", "ne": 1}, event) is True


def test_properties_of_any_type_compare_by_value() -> None:
    event = click("e1", "search", T0, properties={"q": "invoice", "n": 4})
    assert holds({"field": "event.properties.q", "startswith": "inv"}, event)
    assert holds({"field": "event.properties.n", "gt": 3}, event)
    assert not holds({"field": "event.properties.q", "gt": 3}, event)  # text is not a number


# ---------------------------------------------------------------- combinators

def test_all_any_not() -> None:
    yes = {"field": "event.type", "eq": "page_view"}
    no = {"field": "event.type", "eq": "click"}
    assert holds({"all": [yes, yes]}, VIEW) and not holds({"all": [yes, no]}, VIEW)
    assert holds({"any": [no, yes]}, VIEW) and not holds({"any": [no, no]}, VIEW)
    assert holds({"not": no}, VIEW) and not holds({"not": yes}, VIEW)
    assert holds({"all": [yes]}, VIEW) and holds({"any": [yes]}, VIEW)
    assert holds({"not": {"any": [no, {"all": [no, yes]}]}}, VIEW)


@given(st.lists(st.booleans(), min_size=1, max_size=6))
def test_combinators_agree_with_python(values: list[bool]) -> None:
    nodes = [{"field": "event.type", "eq": "page_view" if v else "click"} for v in values]
    assert holds({"all": nodes}, VIEW) is all(values)
    assert holds({"any": nodes}, VIEW) is any(values)
    assert holds({"not": {"all": nodes}}, VIEW) is (not all(values))


# ---------------------------------------------------------------- counts

def pages(*categories: str | None, start: int = T0, step: int = SECOND, session: str = "s1",
          customer_id: str | None = None) -> list[Event]:
    return [page_view(f"p{i}-{start}", f"/{c}/{i}", c, start + i * step, session_id=session,
                      customer_id=customer_id)
            for i, c in enumerate(categories)]


def count(spec: dict, **compare: Any) -> dict:
    return {"count": spec, **compare}


SESSION_SERVICE = {"event_type": "page_view", "category_in": {"lookup": "service_pages"},
                   "session": True}


def test_session_count_of_categories_from_a_lookup() -> None:
    *history, last = pages("billing", "products", "invoices", "billing")
    assert holds(count(SESSION_SERVICE, gte=3), last, history=history)
    assert not holds(count(SESSION_SERVICE, gte=4), last, history=history)
    assert holds(count(SESSION_SERVICE, eq=3), last, history=history)
    assert holds(count(SESSION_SERVICE, lt=4, gt=2), last, history=history)
    assert holds(count(SESSION_SERVICE, lte=3), last, history=history)


def test_session_count_starts_again_in_a_new_session() -> None:
    history = pages("billing", "billing", session="s1")
    [last] = pages("billing", start=T0 + MINUTE, session="s2")
    assert holds(count(SESSION_SERVICE, eq=1), last, history=history)


def test_session_count_with_a_list_an_exclusion_and_all_categories() -> None:
    *history, last = pages("billing", "products", "pricing", "products", None)
    spec = {"event_type": "page_view", "session": True}
    assert holds(count({**spec, "category_in": ["products", "pricing"]}, eq=3), last, history=history)
    assert holds(count({**spec, "category_not_in": ["products"]}, eq=2), last, history=history)
    assert holds(count(spec, eq=4), last, history=history)  # pages without a category do not count


def test_same_category_counts_the_event_s_own_topic() -> None:
    *history, last = pages("products", "pricing", "products", "products")
    same = {"event_type": "page_view", "same_category": True, "session": True}
    assert holds(count(same, eq=3), last, history=history)
    assert holds(count({**same, "within_s": 2, "session": False}, eq=2), last, history=history)
    assert holds(count(same, eq=0), CONTACT)  # no page: nothing counts


def test_page_views_in_a_time_window_count_from_recent_pages() -> None:
    *history, last = pages("billing", "billing", "billing", "moving", step=MINUTE)
    window = {"event_type": "page_view", "within_s": 150}
    assert holds(count(window, eq=3), last, history=history)  # this one and two before
    assert holds(count({**window, "category_in": ["billing"]}, eq=2), last, history=history)
    assert holds(count({**window, "within_s": 3600}, eq=4), last, history=history)


def test_other_event_types_are_counted_from_their_time_log() -> None:
    events = [contact(f"k{i}", "contact_started", T0 + i * MINUTE) for i in range(4)]
    *history, last = events
    window = {"event_type": "contact_started", "within_s": 150}
    assert holds(count(window, eq=3), last, Profile(person_id="c1"), history=history)
    assert holds(count({**window, "within_s": 3600}, gte=4), last, Profile(person_id="c1"),
                 history=history)
    assert holds(count({"event_type": "callback_requested", "within_s": 60}, eq=0), last,
                 Profile(person_id="c1"), history=history)


def test_session_count_of_another_type_counts_since_the_session_started() -> None:
    history = [click("s0", "search", T0, session_id="s1"), page_view("n", "/", "home", T0 + MINUTE,
                                                                     session_id="s2")]
    last = click("s1", "search", T0 + 2 * MINUTE, session_id="s2")
    assert holds(count({"event_type": "search", "session": True}, eq=1), last, history=history)


def test_a_count_is_computed_once_per_decision_and_shared() -> None:
    *history, last = pages("billing", "billing", "billing")
    profile = Profile(person_id="v1")
    for event in [*history, last]:
        apply_event(profile, event)
    context = RuleInputs(last, profile, {}, LOOKUPS)
    first = compiled(count(SESSION_SERVICE, gte=3))
    second = compiled(count(SESSION_SERVICE, eq=3))
    assert first(context) and second(context)
    assert list(context.cache.values()) == [3]


def test_named_count_is_registered_for_templates() -> None:
    env = Env(lookups=LOOKUPS)
    compile_condition(count({**SESSION_SERVICE, "name": "service_pages"}, gte=3), "when", env)
    assert list(env.counts) == ["service_pages"]


# ---------------------------------------------------------------- since

def test_since_an_event_type() -> None:
    history = [click("l", "login", T0, session_id="s1")]
    later = page_view("p", "/", "home", T0 + 10 * MINUTE)
    assert holds({"since": "login", "gte_s": 600}, later, history=history)
    assert not holds({"since": "login", "gt_s": 600}, later, history=history)
    assert holds({"since": "login", "lt_s": 601}, later, history=history)
    assert holds({"since": "login", "lte_s": 600}, later, history=history)
    assert not holds({"since": "login", "lt_s": 600}, later, history=history)


def test_since_something_that_never_happened_is_infinitely_long() -> None:
    assert holds({"since": "callback_requested", "gte_s": 10**9}, VIEW)
    assert not holds({"since": "callback_requested", "lt_s": 10**9}, VIEW)
    assert holds({"since": "last_action:login_prompt", "gte_s": 60}, VIEW)


def test_since_the_last_page_view_includes_the_current_one() -> None:
    assert holds({"since": "page_view", "lt_s": 1}, VIEW)


def test_since_the_last_action_decided() -> None:
    profile = Profile(person_id="v1")
    record_sent(profile, {"action_id": "a", "action": "login_prompt", "channel": "web"},
                "login_prompt", T0)
    later = page_view("p", "/", "home", T0 + 5 * MINUTE)
    assert holds({"since": "last_action:login_prompt", "lt_s": 301}, later, profile)
    assert not holds({"since": "last_action:login_prompt", "lt_s": 300}, later, Profile(person_id="v1",
                     recent_actions=list(profile.recent_actions)))
    assert holds({"since": "last_action:direct_link", "gte_s": 3600}, later,
                 Profile(person_id="v1", recent_actions=list(profile.recent_actions)))


# ---------------------------------------------------------------- scores

@pytest.mark.parametrize(("scores", "expected"), [
    ({"churn_risk": 0.8}, True), ({"churn_risk": 0.95}, True), ({"churn_risk": 0.79}, False),
    ({"churn_risk": None}, False), ({}, False), ({"contact_need": 0.99}, False),
])
def test_score_condition(scores: dict, expected: bool) -> None:
    assert holds({"score": "churn_risk", "gte": 0.8}, VIEW, scores=scores) is expected


@pytest.mark.parametrize("broken", [float("nan"), float("inf"), -0.1, 1.5])
def test_a_score_that_is_no_probability_is_missing_even_under_not(broken: float) -> None:
    scores = {"churn_risk": broken}
    assert holds({"score": "churn_risk", "gte": 0.8}, VIEW, scores=scores) is False
    assert holds({"not": {"score": "churn_risk", "lt": 0.8}}, VIEW, scores=scores) is \
        holds({"not": {"score": "churn_risk", "lt": 0.8}}, VIEW, scores={})


def test_score_comparisons() -> None:
    scores = {"s": 0.5}
    assert holds({"score": "s", "gt": 0.4, "lt": 0.6}, VIEW, scores=scores)
    assert holds({"score": "s", "lte": 0.5}, VIEW, scores=scores)
    assert not holds({"score": "s", "gt": 0.5}, VIEW, scores=scores)
    assert holds({"not": {"score": "s", "gt": 0.9}}, VIEW, scores={})  # missing: the score test is false


@pytest.mark.parametrize(("labels", "expected"), [({"churn_risk": 5000}, True), ({"churn_risk": 4999}, False),
                                                  ({}, False), ({"contact_need": 10**6}, False)])
def test_a_score_condition_can_require_a_model_that_has_learned_from_enough_labels(
        labels: dict[str, int], expected: bool) -> None:
    condition = compiled({"score": "churn_risk", "gte": 0.8, "min_labels": 5000})
    profile = Profile(person_id="c1")
    apply_event(profile, VIEW)
    assert condition(RuleInputs(VIEW, profile, {"churn_risk": 0.9}, LOOKUPS, score_labels=labels)) is expected


# ---------------------------------------------------------------- errors, at their place

@pytest.mark.parametrize(("when", "where", "message"), [
    ("page_view", "when", "a condition is a mapping"),
    ({}, "when", "a condition needs one of all, any, not, field, count, since, score; got nothing"),
    ({"feld": "event.type"}, "when", "got feld"),
    ({"field": "event.type", "all": []}, "when", "'all' and 'field' in one condition"),
    ({"all": []}, "when.all", "must not be empty"),
    ({"all": {"field": "event.type"}}, "when.all", "expected a list"),
    ({"all": [{"field": "event.type", "eq": "page_view"}, {"field": "event.ts", "gte": "three"}]},
     "when.all[1].gte", "expected a number, got 'three'"),
    ({"field": "event.type"}, "when", "a field condition needs an operator"),
    ({"field": "event.type", "eq": "page_vew"}, "when.eq", "unknown type 'page_vew'"),
    ({"field": "event.source", "in": ["web"]}, "when.in", "unknown source 'web'"),
    ({"field": "event.typ", "eq": "x"}, "when.field", "did you mean event.type?"),
    ({"field": "event.type", "equals": "x"}, "when.equals", "unknown key"),
    ({"field": "event.type", "gte": 3}, "when.gte", "event.type is text, not a number"),
    ({"field": "profile.logged_in", "eq": "yes"}, "when.eq", "is true or false, so 'yes' never"),
    ({"field": "event.ts", "eq": "now"}, "when.eq", "event.ts is a number, so 'now' never matches"),
    ({"field": "event.ts", "startswith": "1"}, "when.startswith", "event.ts is a number, not text"),
    ({"field": "event.type", "in": []}, "when.in", "must not be empty"),
    ({"field": "event.type", "eq": [1, 2]}, "when.eq", "expected text or a whole number or a number"),
    ({"field": "lookup.service_pages[event.page.category]", "eq": "x"}, "when.eq",
     "is a lookup entry (a mapping)"),
    ({"not": [{"field": "event.type", "eq": "click"}]}, "when.not", "a condition is a mapping"),
    ({"count": {"event_type": "page_view"}, "gte": 3}, "when.count", "within_s: <seconds> or session"),
    ({"count": {"event_type": "page_view", "session": True, "within_s": 60}, "gte": 3},
     "when.count", "(one of them)"),
    ({"count": {"event_type": "page_view", "session": True}}, "when", "needs a comparison"),
    ({"count": {"event_type": "page_vue", "session": True}, "gte": 1}, "when.count.event_type",
     "expected 'add_to_cart'"),
    ({"count": {"event_type": "search", "session": True, "category_in": ["a"]}, "gte": 1},
     "when.count.category_in", "categories are only known for page_view, not search"),
    ({"count": {"event_type": "page_view", "session": True, "category_in": {"lookup": "nope"}},
      "gte": 1}, "when.count.category_in.lookup", "unknown lookup 'nope'"),
    ({"count": {"event_type": "page_view", "within_s": 60}, "gte": RECENT_PAGES + 1}, "when",
     f"the profile keeps the last {RECENT_PAGES} page_view events"),
    ({"count": {"event_type": "search", "within_s": 60}, "gt": EVENT_TIMES_PER_TYPE}, "when",
     "can never be true"),
    ({"count": {"event_type": "page_view", "within_s": 0}, "gte": 1}, "when.count.within_s",
     "must be at least 1, got 0"),
    ({"count": {"event_type": "page_view", "session": True}, "gte": -1}, "when.gte",
     "must be at least 0, got -1"),
    ({"since": "logn", "gte_s": 1}, "when.since", "expected an event type"),
    ({"since": "last_action:", "gte_s": 1}, "when.since", "name the action"),
    ({"since": "login"}, "when", "a since condition needs a comparison"),
    ({"since": "login", "gte": 1}, "when.gte", "unknown key (did you mean 'gte_s'?)"),
    ({"score": "churn_risk", "gte": 70}, "when.gte", "must be at most 1, got 70"),
    ({"score": "churn risk", "gte": 0.7}, "when.score", "is not allowed here"),
    ({"score": "churn_risk"}, "when", "a score condition needs a comparison"),
])
def test_mistakes_are_reported_at_their_place(when: Any, where: str, message: str) -> None:
    found = problems(when)
    assert any(at == where and message in text for at, text in found), found


def test_every_problem_of_a_tree_is_reported() -> None:
    found = problems({"all": [{"field": "event.tpye", "eq": "page_view"},
                              {"any": [{"field": "event.ts", "gte": "x"}, {"since": "never", "lt_s": 1}]}]})
    assert [at for at, _ in found] == ["when.all[0].field", "when.all[1].any[0].gte",
                                       "when.all[1].any[1].since"]


def test_a_count_name_is_defined_once_per_rule() -> None:
    spec = {"count": {"name": "n", "event_type": "page_view", "session": True}, "gte": 1}
    assert ("when.all[1].count.name", "a count named 'n' is already defined in this rule") in \
        problems({"all": [spec, spec]})


# ---------------------------------------------------------------- event types, for indexing

@pytest.mark.parametrize(("when", "expected"), [
    ({"field": "event.type", "eq": "page_view"}, {"page_view"}),
    ({"field": "event.type", "in": ["login", "logout"]}, {"login", "logout"}),
    ({"all": [{"field": "profile.logged_in", "eq": True}, {"field": "event.type", "eq": "login"}]},
     {"login"}),
    ({"all": [{"field": "event.type", "in": ["login", "search"]},
              {"field": "event.type", "in": ["search", "click"]}]}, {"search"}),
    ({"any": [{"field": "event.type", "eq": "login"}, {"field": "event.type", "eq": "search"}]},
     {"login", "search"}),
    ({"any": [{"field": "event.type", "eq": "login"}, {"score": "x", "gte": 0.5}]}, None),
    ({"not": {"field": "event.type", "eq": "login"}}, None),
    ({"field": "event.type", "ne": "login"}, None),
    ({"score": "x", "gte": 0.5}, None),
])
def test_event_types_a_condition_can_fire_on(when: dict, expected: set[str] | None) -> None:
    found = event_types_of(when)
    assert (None if found is None else set(found)) == expected


@pytest.mark.parametrize(("when", "expected"), [
    ({"field": "event.page.category", "eq": "billing"}, {"billing"}),
    ({"field": "event.page.category", "in": ["billing", "moving"]}, {"billing", "moving"}),
    ({"field": "lookup.service_pages[event.page.category]", "exists": True}, {"billing", "invoices"}),
    ({"field": "lookup.service_pages[ event.page.category ].url", "exists": True}, {"billing", "invoices"}),
    ({"field": "lookup.service_pages[event.page.category]", "exists": False}, None),
    ({"all": [{"field": "event.type", "eq": "page_view"},
              {"field": "event.page.category", "in": ["billing", "moving"]},
              {"field": "lookup.service_pages[event.page.category]", "exists": True}]}, {"billing"}),
    ({"any": [{"field": "event.page.category", "eq": "a"}, {"field": "event.page.category", "eq": "b"}]},
     {"a", "b"}),
    ({"any": [{"field": "event.page.category", "eq": "a"}, {"score": "x", "gte": 0.5}]}, None),
    ({"field": "event.page.category", "ne": "billing"}, None),
    ({"field": "event.page.category", "not_in": ["billing"]}, None),
    ({"not": {"field": "event.page.category", "eq": "billing"}}, None),
])
def test_page_categories_a_condition_can_fire_on(when: dict, expected: set[str] | None) -> None:
    found = categories_of(when, LOOKUPS)
    assert (None if found is None else set(found)) == expected
