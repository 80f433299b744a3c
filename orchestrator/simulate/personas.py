"""Personas: seeded, pure generators of one person's journey.

Each persona yields :class:`Step` s (which input, which key, the record without its ``ts``, and
how long the person thinks before it). The traffic runner stamps ``ts`` when it sends, so the
same seed gives the same journeys live or in a test.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.events import Source


@dataclass(frozen=True, slots=True)
class Step:
    source: Source
    key: str
    value: dict[str, Any]
    think_s: float


@dataclass
class Person:
    """Ids of one simulated person; ``customer_id`` is None for a prospect."""

    rng: random.Random
    visitor_id: str
    customer_id: str | None
    session_id: str
    _counter: int = field(default=0)

    def event_id(self) -> str:
        self._counter += 1
        return f"{self.visitor_id}-{self._counter}-{self.rng.getrandbits(32):08x}"

    def page(self, url: str, category: str | None, *, logged_in: bool = False,
             think: tuple[float, float] = (1.0, 4.0)) -> Step:
        value: dict[str, Any] = {
            "event_id": self.event_id(), "type": "page_view", "visitor_id": self.visitor_id,
            "session_id": self.session_id, "page": {"url": url, "category": category},
        }
        if logged_in and self.customer_id:
            value["customer_id"] = self.customer_id
        return Step(Source.CLICKSTREAM, self.visitor_id, value, self.rng.uniform(*think))

    def web(self, event_type: str, *, logged_in: bool = False, **extra: Any) -> Step:
        value: dict[str, Any] = {"event_id": self.event_id(), "type": event_type,
                                 "visitor_id": self.visitor_id, "session_id": self.session_id,
                                 **extra}
        if logged_in and self.customer_id:
            value["customer_id"] = self.customer_id
        return Step(Source.CLICKSTREAM, self.visitor_id, value, self.rng.uniform(0.5, 2.0))

    def contact(self, event_type: str, **extra: Any) -> Step:
        assert self.customer_id is not None
        value = {"event_id": self.event_id(), "type": event_type,
                 "customer_id": self.customer_id, **extra}
        return Step(Source.CONTACT_CENTRE, self.customer_id, value, self.rng.uniform(2.0, 8.0))


BILLING_PAGES = [("/billing/invoices", "invoices"), ("/billing/payment-methods", "billing"),
                 ("/billing/faq", "billing"), ("/help/due-date", "billing"),
                 ("/account/settings", "account")]
PRODUCT_PAGES = [("/products/broadband", "products"), ("/products/mobile", "products"),
                 ("/pricing", "pricing"), ("/compare", "products"), ("/offers", "offers")]


def anonymous_billing(p: Person) -> Iterator[Step]:
    """An existing customer looking for billing help without logging in; may log in after."""
    yield p.page("/", "home")
    for url, category in p.rng.sample(BILLING_PAGES, k=p.rng.randint(3, 5)):
        yield p.page(url, category)
    if p.rng.random() < 0.6:
        yield p.web("login", logged_in=True)
        yield p.page("/billing/invoices/latest", "invoices", logged_in=True)


def prospect(p: Person) -> Iterator[Step]:
    """A new prospect comparing products; sometimes signs up."""
    yield p.page("/", "home")
    for url, category in p.rng.sample(PRODUCT_PAGES, k=p.rng.randint(2, 5)):
        yield p.page(url, category)
    if p.rng.random() < 0.3:
        yield p.web("add_to_cart", properties={"sku": f"plan-{p.rng.randint(1, 4)}"})
        if p.rng.random() < 0.5:
            yield p.web("signup")


def logged_in_customer(p: Person) -> Iterator[Step]:
    """A customer who logs in first and then looks for self-service pages."""
    yield p.web("login", logged_in=True)
    for url, category in [("/account/overview", "account"), ("/help/moving", "moving"),
                          ("/contract/terms", "contract")][: p.rng.randint(1, 3)]:
        yield p.page(url, category, logged_in=True)
    yield p.web("logout", logged_in=True)


def heading_for_cancellation(p: Person) -> Iterator[Step]:
    """A logged-in customer reading about ending the contract, then calling to cancel."""
    yield p.web("login", logged_in=True)
    yield p.page("/contract/terms", "contract", logged_in=True)
    yield p.page("/contract/cancel", "cancellation", logged_in=True)
    yield p.page("/offers", "offers", logged_in=True)
    yield p.contact("contact_started", channel="phone", reason="cancellation",
                    sentiment=round(p.rng.uniform(-0.9, -0.2), 2))
    yield p.contact("cancellation_requested", channel="phone", reason="price")
    yield p.contact("contact_ended", channel="phone", reason="cancellation")


def contact_centre_caller(p: Person) -> Iterator[Step]:
    """A customer who calls about a bill: contact, case, resolution."""
    yield p.contact("contact_started", channel=p.rng.choice(["phone", "chat"]), reason="billing",
                    sentiment=round(p.rng.uniform(-0.6, 0.4), 2), agent_id="agent-7")
    yield p.contact("case_opened", channel="phone", reason="billing")
    yield p.contact("contact_ended", channel="phone", reason="billing")
    if p.rng.random() < 0.5:
        yield p.page("/billing/invoices", "invoices")


def caller_then_web(p: Person) -> Iterator[Step]:
    """A customer whose billing case is open at the contact centre, then on the website: the
    site shows the case instead of asking them to contact us."""
    yield p.contact("contact_started", channel="phone", reason="billing",
                    sentiment=round(p.rng.uniform(-0.5, 0.2), 2), agent_id="agent-3")
    yield p.contact("case_opened", channel="phone", reason="billing")
    yield p.contact("contact_ended", channel="phone", reason="billing")
    yield p.page("/", "home")
    yield p.web("login", logged_in=True)
    yield p.page("/billing/faq", "billing", logged_in=True)
    if p.rng.random() < 0.5:
        yield p.contact("case_resolved", channel="phone", reason="billing")


PERSONAS: dict[str, tuple[Callable[[Person], Iterator[Step]], float]] = {
    "anonymous-billing": (anonymous_billing, 0.30),
    "prospect": (prospect, 0.25),
    "logged-in-customer": (logged_in_customer, 0.20),
    "heading-for-cancellation": (heading_for_cancellation, 0.10),
    "contact-centre-caller": (contact_centre_caller, 0.10),
    "caller-then-web": (caller_then_web, 0.05),
}


def new_journey(rng: random.Random, persona: str | None = None) -> tuple[str, Iterator[Step]]:
    """Pick a persona (weighted, unless named) and start one person's journey."""
    if persona is None:
        names = list(PERSONAS)
        persona = rng.choices(names, weights=[PERSONAS[n][1] for n in names])[0]
    visitor = f"v-{rng.getrandbits(48):012x}"
    customer = None if persona == "prospect" else f"c-{rng.randint(100000, 999999)}"
    person = Person(rng=rng, visitor_id=visitor, customer_id=customer,
                    session_id=f"s-{rng.getrandbits(32):08x}")
    return persona, PERSONAS[persona][0](person)
