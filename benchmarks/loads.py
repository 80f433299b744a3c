"""Load shapes of the event-to-action benchmark: pure, seeded streams of input records.

Each shape is an endless iterator of :class:`LoadRecord` ``(source, key, value, is_trigger)``
built from a seeded ``random.Random``; the value has no ``ts`` (the generator stamps it when it
sends the record). ``is_trigger`` marks the records whose answer is measured:

- ``new-visitors`` (the headline): anonymous visitors arriving all the time. A pool of
  :func:`pool_size` concurrently active visitors, each with a session of its own, reads exactly
  :data:`PAGES_PER_VISITOR` self-service pages; the pages of different visitors are interleaved
  at random, and a visitor who has read its pages is replaced by a new one (about rate / 4 new
  visitors per second). The 3rd page of each visitor is the trigger: the engine (and the Quix
  Streams peer) answer it with a ``login_prompt``; no other page of the visitor is answered.
- ``personas``: the simulator's persona mix (:class:`orchestrator.simulate.traffic.TrafficPlan`,
  thinking time compressed by ``think_scale``). Any record may trigger an action, so every
  record is marked a trigger; the actions name the record they answer.
- ``logged-in``: customers on visitor ids of their own, each page view carrying the
  ``customer_id`` and a session id, one page of each of :data:`LOGGED_IN_CATEGORIES` in a random
  order (never the topic's service page itself). Each page is a trigger: the rule
  ``self-service-direct-link`` answers it with a ``direct_link`` (once per topic per 10 min, so
  the categories of a customer are distinct). The engine re-keys these records to the customer
  (one extra hop through ``<app id>-person-events``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

CLICKSTREAM = "clickstream"
CONTACT_CENTRE = "contact-centre"

#: The page categories rules/web.yaml counts as self-service (lookup ``service_pages``).
SELF_SERVICE_CATEGORIES = ("billing", "invoices", "account", "contract", "moving", "self-service")
#: Pages a visitor of ``new-visitors`` may read, by category (none is a service page itself).
SELF_SERVICE_PAGES: dict[str, tuple[str, ...]] = {
    "billing": ("/billing/faq", "/billing/payment-methods", "/billing/direct-debit",
                "/billing/due-date"),
    "invoices": ("/invoices/latest", "/invoices/explained", "/invoices/download"),
    "account": ("/account/settings", "/account/profile", "/account/password"),
    "contract": ("/contract/terms", "/contract/renewal", "/contract/upgrade"),
    "moving": ("/moving/checklist", "/moving/new-address", "/moving/transfer"),
    "self-service": ("/self-service/faq", "/self-service/guides", "/self-service/status"),
}
#: Categories a logged-in customer reads, one page each: every one gets its own direct link.
LOGGED_IN_CATEGORIES = ("billing", "invoices", "contract", "moving", "account")
#: The service page of each category (rules/web.yaml): a customer already on it gets no link.
SERVICE_PAGES = {"billing": "/account/billing", "invoices": "/account/billing/invoices",
                 "account": "/account", "contract": "/account/contract",
                 "moving": "/account/moving", "self-service": "/account/help"}
PAGES_PER_VISITOR = 4
TRIGGER_PAGE = 3  # the page (1-based) of a new visitor that gets the login prompt
POOL_MIN, POOL_MAX = 75, 500
LOADS = ("new-visitors", "personas", "logged-in")
#: For which loads every trigger must be answered (personas: any record may or may not be).
ANSWER_EXPECTED = {"new-visitors": True, "personas": False, "logged-in": True}


class LoadRecord(NamedTuple):
    source: str  # "clickstream" | "contact-centre"
    key: str
    value: dict[str, Any]
    is_trigger: bool


def pool_size(rate: float) -> int:
    """Concurrently active visitors (or customers) at offered ``rate`` records/s:
    ``max(75, min(500, rate / 4))`` — 75 at 250/s, 250 at 1,000/s, 500 from 2,000/s on.

    >>> pool_size(250), pool_size(1000), pool_size(8000)
    (75, 250, 500)
    """
    return max(POOL_MIN, min(POOL_MAX, round(rate / 4)))


@dataclass
class _Reader:
    """One active visitor: ids and the pages still to read."""

    visitor_id: str
    session_id: str
    pages: list[tuple[str, str]]
    customer_id: str | None = None
    read: int = 0


def _hex(rng: random.Random, bits: int = 48) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _new_visitor(rng: random.Random) -> _Reader:
    pages = []
    for _ in range(PAGES_PER_VISITOR):
        category = rng.choice(SELF_SERVICE_CATEGORIES)
        pages.append((rng.choice(SELF_SERVICE_PAGES[category]), category))
    return _Reader(f"v-{_hex(rng)}", f"s-{_hex(rng)}", pages)


def _new_customer(rng: random.Random, serial: int, id_tag: str) -> _Reader:
    categories = list(LOGGED_IN_CATEGORIES)
    rng.shuffle(categories)
    pages = [(rng.choice(SELF_SERVICE_PAGES[c]), c) for c in categories]
    return _Reader(f"v-{_hex(rng)}", f"s-{_hex(rng)}", pages,
                   customer_id=f"c-{id_tag}{serial:06d}")


def _page_view(reader: _Reader) -> dict[str, Any]:
    url, category = reader.pages[reader.read]
    reader.read += 1
    value: dict[str, Any] = {"event_id": f"{reader.visitor_id}-{reader.read}", "type": "page_view",
                             "visitor_id": reader.visitor_id, "session_id": reader.session_id,
                             "page": {"url": url, "category": category}}
    if reader.customer_id is not None:
        value["customer_id"] = reader.customer_id
    return value


def new_visitors(rng: random.Random, pool: int) -> Iterator[LoadRecord]:
    """Anonymous visitors, ``pool`` at a time, each reading 4 self-service pages; the 3rd page
    of each is the (only) trigger."""
    active = [_new_visitor(rng) for _ in range(pool)]
    while True:
        slot = rng.randrange(pool)
        reader = active[slot]
        value = _page_view(reader)
        if reader.read == len(reader.pages):
            active[slot] = _new_visitor(rng)
        yield LoadRecord(CLICKSTREAM, reader.visitor_id, value, reader.read == TRIGGER_PAGE)


def logged_in(rng: random.Random, pool: int, id_tag: str = "") -> Iterator[LoadRecord]:
    """Logged-in customers, ``pool`` at a time, each reading one page of each self-service
    category in :data:`LOGGED_IN_CATEGORIES`; every page is a trigger. Customer ids are
    ``c-<id_tag><serial>``: give each run of one engine its own tag, so that no customer comes
    back within the 10-minute cooldown of the direct link."""
    serial = 0

    def customer() -> _Reader:
        nonlocal serial
        serial += 1
        return _new_customer(rng, serial, id_tag)

    active = [customer() for _ in range(pool)]
    while True:
        slot = rng.randrange(pool)
        reader = active[slot]
        value = _page_view(reader)
        if reader.read == len(reader.pages):
            active[slot] = customer()
        yield LoadRecord(CLICKSTREAM, reader.visitor_id, value, True)


def personas(rng: random.Random, clock: Callable[[], float] = time.monotonic,
             think_scale: float = 0.02) -> Iterator[LoadRecord]:
    """The simulator's persona mix, with time taken from ``clock`` (seconds)."""
    # Imported here, not lazily inside the generator: the import takes seconds (the simulator
    # pulls in the runtime's settings and the scoring models), which must not fall into a run.
    from orchestrator.simulate.traffic import TrafficPlan

    plan = TrafficPlan(rng.getrandbits(32), think_scale=think_scale)

    def steps() -> Iterator[LoadRecord]:
        while True:
            _, step = plan.next_step(clock())
            yield LoadRecord(step.source.value, step.key, dict(step.value), True)

    return steps()


def make_load(name: str, rng: random.Random, rate: float, *, id_tag: str = "",
              clock: Callable[[], float] = time.monotonic) -> Iterator[LoadRecord]:
    """The load called ``name`` at offered ``rate`` (it sets the pool size)."""
    if name == "new-visitors":
        return new_visitors(rng, pool_size(rate))
    if name == "logged-in":
        return logged_in(rng, pool_size(rate), id_tag)
    if name == "personas":
        return personas(rng, clock)
    raise ValueError(f"unknown load {name!r}; expected one of {', '.join(LOADS)}")
