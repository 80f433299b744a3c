"""The journey stage of a person, derived from their profile.

A stage is a reading of behaviour and outcomes, recomputed from the profile whenever it is
needed (never stored), so it cannot drift from the state it summarises and a merge or a
reordering cannot leave a stale stage behind. All times are event time, relative to the
person's newest event.

========================  ==================================================================
stage                     when (checked in this order)
========================  ==================================================================
``conversion``            a purchase or signup in the last 7 days, or an add-to-cart or a
                          submitted form in the current session
``advocacy``              a customer who has bought before, has not asked to cancel in the
                          last 30 days, and whose last contact was positive (sentiment ≥ 0.5)
                          or who converted on one of our actions
``retention``             a known customer (a customer id) otherwise
``consideration``         an anonymous visitor who searched, started a form or added to cart
                          in the last 7 days, read 3 or more pricing / product / offer pages
                          in the recent pages, or came back for a second session
``awareness``             anyone else
========================  ==================================================================
"""

from __future__ import annotations

from typing import Final

from orchestrator.core.profile import Profile, queries

STAGES: Final = ("awareness", "consideration", "conversion", "retention", "advocacy")
DAY_MS: Final = 24 * 3600 * 1000
CONSIDERATION_PAGES: Final = frozenset({"pricing", "products", "offers", "broadband", "mobile", "tv"})


def journey_stage(profile: Profile) -> str:
    """The person's stage, one of :data:`STAGES`."""
    now = profile.last_seen_ts

    def within(kind: str, window_ms: int) -> bool:
        return any(t > now - window_ms for t in queries.times_of(profile, kind))

    session_start = profile.session_started_ts
    if within("purchase", 7 * DAY_MS) or within("signup", 7 * DAY_MS) \
            or any(t >= session_start for kind in ("add_to_cart", "form_submit")
                   for t in queries.times_of(profile, kind)):
        return "conversion"
    if profile.customer_id is not None:
        bought = queries.has_done(profile, "purchase") or queries.has_done(profile, "signup")
        if bought and not within("cancellation_requested", 30 * DAY_MS):
            contacts = profile.recent_contacts
            positive = (bool(contacts) and contacts[-1]["sentiment"] is not None
                        and contacts[-1]["sentiment"] >= 0.5)
            if positive or queries.converted_on_an_action(profile):
                return "advocacy"
        return "retention"
    if any(within(kind, 7 * DAY_MS) for kind in ("search", "form_start", "add_to_cart")) \
            or profile.sessions >= 2 \
            or sum(1 for p in profile.recent_pages if p["category"] in CONSIDERATION_PAGES) >= 3:
        return "consideration"
    return "awareness"


def open_case(profile: Profile) -> str | None:
    """The reason of the newest contact-centre case still open (None: no open case).

    A case is open from ``case_opened`` until a ``case_resolved`` with the same reason; the
    contract has no case id, so the reason names the case.
    """
    contacts = profile.recent_contacts
    if not contacts:  # a web visitor who never called: most people, and rules ask per event
        return None
    resolved: set[str | None] = set()
    for contact in reversed(contacts):
        if contact["type"] == "case_resolved":
            resolved.add(contact["reason"])
        elif contact["type"] == "case_opened" and contact["reason"] not in resolved:
            return contact["reason"] or "unspecified"
    return None
