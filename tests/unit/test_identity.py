"""Identity resolution: which person a record belongs to, and when a visitor's history moves.

An anonymous visitor is a person of their own until a record carries a customer id; from then
on the visitor's records go to the customer, and a shared device follows whoever logged in last
without ever merging two customers.
"""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.events import ClickstreamEvent
from orchestrator.core.identity import (
    CUSTOMERS_PER_VISITOR,
    SINCE_STEP_MS,
    Resolution,
    VisitorLink,
    resolve_click,
    resolve_keyed,
)

from .factories import MINUTE, T0, click


def fold(visitor_id: str, events: list[ClickstreamEvent],
         link: VisitorLink | None = None) -> tuple[list[Resolution], VisitorLink | None]:
    """Resolve ``events`` in arrival order, storing the link whenever it changed (as the runtime does)."""
    resolutions = []
    for event in events:
        resolution = resolve_click(visitor_id, link, event)
        resolutions.append(resolution)
        if resolution.link_changed:
            link = resolution.link
    return resolutions, link


def test_an_anonymous_visitor_is_a_person_of_their_own_and_gets_no_link() -> None:
    resolutions, link = fold("v1", [click("e1", ts=T0), click("e2", "search", T0 + MINUTE)])
    assert [r.person_id for r in resolutions] == ["v1", "v1"]
    assert all(r.link is None and not r.link_changed and not r.carry_anonymous for r in resolutions)
    assert link is None


def test_the_first_record_with_a_customer_id_links_the_visitor_and_carries_the_anonymous_profile() -> None:
    resolution = resolve_click("v1", None, click("e1", "login", T0, customer_id="c1"))
    assert resolution.person_id == "c1"
    assert resolution.link_changed is True
    assert resolution.carry_anonymous is True
    assert resolution.link == VisitorLink(customer_id="c1", since_ts=T0, customers=["c1"])
    assert resolution.link.shared is False


def test_the_anonymous_profile_is_carried_exactly_once() -> None:
    events = [click("e1", ts=T0), click("e2", "login", T0 + 1, customer_id="c1"),
              click("e3", ts=T0 + 2, customer_id="c1"), click("e4", "login", T0 + 3, customer_id="c1")]
    resolutions, link = fold("v1", events)
    assert [r.carry_anonymous for r in resolutions] == [False, True, False, False]
    assert [r.link_changed for r in resolutions] == [False, True, False, False]
    assert link is not None and link.customer_id == "c1"


def test_later_records_without_a_customer_id_go_to_the_customer_logged_in_or_after_logout() -> None:
    events = [click("e1", "login", T0, customer_id="c1"),
              click("e2", ts=T0 + MINUTE),                # logged in, the producer left the id out
              click("e3", "logout", T0 + 2 * MINUTE),
              click("e4", ts=T0 + 3 * MINUTE)]            # after logout: still the same person
    resolutions, _ = fold("v1", events)
    assert [r.person_id for r in resolutions] == ["c1", "c1", "c1", "c1"]
    assert [r.carry_anonymous for r in resolutions[1:]] == [False, False, False]
    assert [r.link_changed for r in resolutions[1:]] == [False, False, False]


def test_a_second_device_of_the_same_customer_links_to_the_same_customer() -> None:
    _, phone = fold("v1", [click("e1", "login", T0, visitor_id="v1", customer_id="c1")])
    laptop = resolve_click("v2", None, click("e2", "login", T0 + MINUTE, visitor_id="v2", customer_id="c1"))
    assert phone is not None and laptop.link is not None
    assert laptop.person_id == "c1"
    assert laptop.link.customer_id == phone.customer_id == "c1"
    # Each device's own anonymous history is carried into the customer once.
    assert laptop.carry_anonymous is True


def test_a_shared_device_logging_in_as_a_second_customer_repoints_without_merging() -> None:
    _, link = fold("v1", [click("e1", "login", T0, customer_id="c1")])
    second = resolve_click("v1", link, click("e2", "login", T0 + MINUTE, customer_id="c2"))
    assert second.person_id == "c2"
    assert second.carry_anonymous is False
    assert second.link_changed is True
    assert second.link == VisitorLink(customer_id="c2", since_ts=T0 + MINUTE, customers=["c1", "c2"])
    assert second.link.shared is True
    # The device's anonymous records now go to whoever logged in last.
    assert resolve_click("v1", second.link, click("e3", ts=T0 + 2 * MINUTE)).person_id == "c2"


def test_the_shared_device_follows_the_newest_login_by_event_time_back_and_forth() -> None:
    events = [click("e1", "login", T0, customer_id="c1"),
              click("e2", "login", T0 + MINUTE, customer_id="c2"),
              click("e3", "login", T0 + 2 * MINUTE, customer_id="c1"),
              click("e4", ts=T0 + 3 * MINUTE)]
    resolutions, link = fold("v1", events)
    assert [r.person_id for r in resolutions] == ["c1", "c2", "c1", "c1"]
    assert [r.carry_anonymous for r in resolutions] == [True, False, False, False]
    assert link == VisitorLink(customer_id="c1", since_ts=T0 + 2 * MINUTE, customers=["c2", "c1"])


def test_a_late_login_of_the_first_customer_stays_theirs_but_does_not_repoint_the_device() -> None:
    _, link = fold("v1", [click("e1", "login", T0, customer_id="c1"),
                          click("e2", "login", T0 + 10 * MINUTE, customer_id="c2")])
    late = resolve_click("v1", link, click("e3", ts=T0 + 5 * MINUTE, customer_id="c1"))
    assert late.person_id == "c1"
    assert late.carry_anonymous is False
    assert late.link is not None
    assert (late.link.customer_id, late.link.since_ts) == ("c2", T0 + 10 * MINUTE)
    assert set(late.link.customers) == {"c1", "c2"}
    assert resolve_click("v1", late.link, click("e4", ts=T0 + 11 * MINUTE)).person_id == "c2"


def test_a_record_of_the_current_customer_within_a_step_changes_nothing() -> None:
    _, link = fold("v1", [click("e1", "login", T0, customer_id="c1")])
    again = resolve_click("v1", link, click("e2", ts=T0 + SINCE_STEP_MS - 1, customer_id="c1"))
    assert again == Resolution("c1", link, False, False)


def test_the_current_customer_seen_a_step_later_moves_the_link_forward() -> None:
    _, link = fold("v1", [click("e1", "login", T0, customer_id="c1")])
    later = resolve_click("v1", link, click("e2", ts=T0 + SINCE_STEP_MS, customer_id="c1"))
    assert later.link_changed is True
    assert later.link == VisitorLink("c1", T0 + SINCE_STEP_MS, ["c1"])


def test_a_late_login_older_than_the_current_customers_latest_record_does_not_repoint() -> None:
    _, link = fold("v1", [click("e1", "login", T0, customer_id="c1"),
                          click("e2", ts=T0 + 30 * MINUTE, customer_id="c1"),
                          click("e3", "login", T0 + 10 * MINUTE, customer_id="c2")])
    assert link is not None and link.customer_id == "c1"
    assert resolve_click("v1", link, click("e4", ts=T0 + 31 * MINUTE)).person_id == "c1"


def test_the_customers_of_one_visitor_are_bounded_to_the_most_recent_ones() -> None:
    n = CUSTOMERS_PER_VISITOR + 3
    events = [click(f"e{i}", "login", T0 + i * MINUTE, customer_id=f"c{i}") for i in range(n)]
    resolutions, link = fold("v1", events)
    assert link is not None
    assert link.customer_id == f"c{n - 1}"
    assert link.customers == [f"c{i}" for i in range(n - CUSTOMERS_PER_VISITOR, n)]
    assert [r.person_id for r in resolutions] == [f"c{i}" for i in range(n)]
    assert sum(r.carry_anonymous for r in resolutions) == 1


def test_a_visitor_link_round_trips_through_json() -> None:
    link = VisitorLink(customer_id="c2", since_ts=T0 + MINUTE, customers=["c1", "c2"])
    data = orjson.loads(orjson.dumps(link.to_dict()))
    assert data == {"customer_id": "c2", "since_ts": T0 + MINUTE, "customers": ["c1", "c2"]}
    restored = VisitorLink.from_dict(data)
    assert restored == link
    assert restored.customers is not link.customers


def test_a_stored_link_without_a_customer_list_knows_its_one_customer() -> None:
    assert VisitorLink.from_dict({"customer_id": "c1", "since_ts": T0}).customers == ["c1"]


def test_feedback_keyed_by_a_linked_visitor_goes_to_the_customer_and_any_other_key_to_itself() -> None:
    link = VisitorLink(customer_id="c1", since_ts=T0, customers=["c1"])
    assert resolve_keyed("v1", link) == "c1"
    assert resolve_keyed("v9", None) == "v9"   # an anonymous visitor
    assert resolve_keyed("c1", None) == "c1"   # keyed by the customer id itself


# ---------------------------------------------------------------- property

CLICK_TYPES = ("page_view", "search", "login", "logout", "add_to_cart")


@st.composite
def shared_device_history(draw: st.DrawFn) -> list[ClickstreamEvent]:
    """Clickstream records of one visitor id in any arrival order, with any event times, each
    anonymous or carrying customer c1 or c2."""
    size = draw(st.integers(min_value=0, max_value=30))
    return [
        click(f"e{n}", draw(st.sampled_from(CLICK_TYPES)),
              draw(st.integers(min_value=T0, max_value=T0 + 60 * MINUTE)), "v1",
              customer_id=draw(st.sampled_from([None, "c1", "c2"])))
        for n in range(size)
    ]


@settings(max_examples=300, deadline=None)
@given(events=shared_device_history())
def test_no_false_merge_on_a_shared_device(events: list[ClickstreamEvent]) -> None:
    resolutions, _ = fold("v1", events)
    known = [(e, r) for e, r in zip(events, resolutions, strict=True) if e.customer_id is not None]

    # Every record that names a customer goes to that customer: c1's never to c2 and vice versa.
    for event, resolution in known:
        assert resolution.person_id == event.customer_id
    # Records without a customer id go to the visitor until the first login, then to a customer
    # who has logged in on this device before them (in arrival order).
    seen: set[str] = set()
    for event, resolution in zip(events, resolutions, strict=True):
        if event.customer_id is not None:
            seen.add(event.customer_id)
        elif not seen:
            assert resolution.person_id == "v1"
        else:
            assert resolution.person_id in seen

    # The anonymous profile is carried at most once, with the first record naming a customer,
    # and only ever into that first customer.
    carried = [n for n, r in enumerate(resolutions) if r.carry_anonymous]
    if not known:
        assert carried == []
    else:
        first = next(n for n, e in enumerate(events) if e.customer_id is not None)
        assert carried == [first]
        assert all(resolutions[n].person_id == events[first].customer_id for n in carried)
