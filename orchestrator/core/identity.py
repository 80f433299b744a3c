"""Identity resolution: which person an input record belongs to.

A person is a customer (person id = customer id) once any of their visitor ids has been seen
logged in; before that, an anonymous visitor is a person of their own (person id = visitor id).
Visitor ids and customer ids are assumed to come from disjoint namespaces (cookie / device ids
and customer numbers), as they do in practice.

The state is one :class:`VisitorLink` per visitor id, kept on the visitor's partition of the
clickstream (the record key), so resolving a click needs no look-up on another worker:

- the first record of a visitor that carries a customer id links the visitor to the customer
  and asks for the visitor's anonymous profile to be carried into the customer's
  (:attr:`Resolution.carry_anonymous`);
- later records of that visitor go to the customer, logged in or not: logging out does not
  split the person;
- a shared device that logs in as a second customer is re-pointed to whoever logged in last
  (by event time) **without** merging the two customers: each customer's own events stay theirs,
  and only the device's anonymous history from before the first login was ever carried over.

Contact-centre records are keyed by customer id and need no resolution; action feedback is
keyed by a visitor or customer id and follows the link when the key is a linked visitor.

:func:`route` decides all of it for one record and returns a :class:`Route` that the shell
carries out; :func:`carry_into` merges a carried anonymous profile once per visitor;
:func:`visitors_to_unlink` says whose links an erasure removes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.events import ClickstreamEvent, Event, Source
from orchestrator.core.profile import Profile, merge_profiles

#: Customers remembered per visitor (a shared family tablet, a library PC).
CUSTOMERS_PER_VISITOR = 8
#: How far the current customer's "last seen logged in" moves before the link is rewritten:
#: a late login of another customer within this step of the newest one can still re-point.
SINCE_STEP_MS = 60_000


@dataclass(slots=True)
class VisitorLink:
    """What is known about one visitor id."""

    #: The customer the visitor's records go to (the one who logged in last, by event time).
    customer_id: str
    #: Event time of the login that made ``customer_id`` current.
    since_ts: int
    #: Every customer seen on this visitor, oldest first (more than one: a shared device).
    customers: list[str] = field(default_factory=list)

    @property
    def shared(self) -> bool:
        return len(self.customers) > 1

    def to_dict(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id, "since_ts": self.since_ts, "customers": list(self.customers)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VisitorLink:
        return cls(customer_id=data["customer_id"], since_ts=data["since_ts"],
                   customers=list(data.get("customers") or [data["customer_id"]]))


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a clickstream record goes and what changes with it."""

    person_id: str
    #: The visitor's link after this record (None: still anonymous).
    link: VisitorLink | None
    #: True when the link is new or different and must be stored.
    link_changed: bool
    #: True for the record that first links the visitor: its anonymous profile (person id =
    #: visitor id) moves to the customer's profile together with this record.
    carry_anonymous: bool


def resolve_click(visitor_id: str, link: VisitorLink | None, event: ClickstreamEvent) -> Resolution:
    """Resolve a clickstream record of ``visitor_id`` given the visitor's current link."""
    customer_id = event.customer_id
    if customer_id is None:
        if link is None:
            return Resolution(visitor_id, None, False, False)
        return Resolution(link.customer_id, link, False, False)
    if link is None:
        new = VisitorLink(customer_id=customer_id, since_ts=event.ts, customers=[customer_id])
        return Resolution(customer_id, new, True, True)
    if customer_id == link.customer_id:
        if event.ts - link.since_ts >= SINCE_STEP_MS:
            # The current customer is still there: a late record of another customer older than
            # this one must not re-point the device. Moved in steps, not per click, to spare writes.
            moved = VisitorLink(customer_id=customer_id, since_ts=event.ts, customers=list(link.customers))
            return Resolution(customer_id, moved, True, False)
        return Resolution(customer_id, link, False, False)
    # Another customer on the same device: the record is theirs; the device follows the newest
    # login. The two customers are never merged.
    others = [c for c in link.customers if c != customer_id]
    if event.ts >= link.since_ts:
        customers = [*others, customer_id][-CUSTOMERS_PER_VISITOR:]
        updated = VisitorLink(customer_id=customer_id, since_ts=event.ts, customers=customers)
    else:  # a late record of an earlier login: remember the customer, keep the current one
        customers = [customer_id, *others][-CUSTOMERS_PER_VISITOR:]
        updated = VisitorLink(customer_id=link.customer_id, since_ts=link.since_ts, customers=customers)
    return Resolution(customer_id, updated, updated != link, False)


def resolve_keyed(key: str, link: VisitorLink | None) -> str:
    """The person of a record keyed by ``key`` that is a visitor or a customer id (feedback)."""
    return link.customer_id if link is not None else key


@dataclass(frozen=True, slots=True)
class Route:
    """Where one input record goes and what changes with it; the shell carries it out.

    The record is applied on this partition when :meth:`here` is true; otherwise it is
    forwarded to ``person_id``'s partition, with the visitor's anonymous profile when ``carry``.
    """

    person_id: str
    #: The visitor's new or changed link, to be stored (None: unchanged).
    link_write: VisitorLink | None = None
    #: The visitor's own link is removed (the visitor asked for erasure).
    unlink: bool = False
    #: The visitor's anonymous profile travels with this record to the person's partition.
    carry: bool = False
    #: What happened to the identity, for metrics: "linked", "shared_device", "unlinked" or None.
    change: str | None = None

    def here(self, key: str) -> bool:
        return self.person_id == key and not self.carry


def route(source: Source, key: str, event: Event, link: VisitorLink | None) -> Route:
    """Decide where a record keyed by ``key`` goes, given the key's visitor link (if any).

    >>> from orchestrator.core.events import decode_record
    >>> raw = b'{"event_id":"e1","type":"login","ts":1700000000000,"visitor_id":"v1","customer_id":"c1"}'
    >>> event = decode_record(Source.CLICKSTREAM, b"v1", raw, now_ms=1700000000000).event
    >>> first = route(Source.CLICKSTREAM, "v1", event, None)
    >>> first.person_id, first.carry, first.change, first.here("v1")
    ('c1', True, 'linked', False)
    >>> route(Source.CLICKSTREAM, "v1", event, first.link_write).carry
    False
    """
    if source is Source.CLICKSTREAM and isinstance(event, ClickstreamEvent):
        if event.type == "erasure_requested":
            # The visitor's own link goes here; the person (and their other visitors) where they live.
            if link is None:
                return Route(key)
            return Route(link.customer_id, unlink=True, change="unlinked")
        resolution = resolve_click(key, link, event)
        change = None
        write = resolution.link if resolution.link_changed else None
        if write is not None:
            if resolution.carry_anonymous:
                change = "linked"
            elif link is not None and write.customer_id != link.customer_id:
                change = "shared_device"
        return Route(resolution.person_id, link_write=write, carry=resolution.carry_anonymous,
                     change=change)
    if source is Source.ACTION_FEEDBACK:
        return Route(resolve_keyed(key, link))
    return Route(key)


def carry_into(profile: Profile | None, person_id: str, visitor_id: str,
               anonymous: Profile | None) -> tuple[Profile, bool]:
    """Merge ``visitor_id``'s anonymous profile into the person's, once per visitor.

    Returns the person's profile and whether it changed: False for a carry already merged (a
    redelivered record), so that the replay costs nothing. The merge is a join, so the result
    does not depend on whether the anonymous history or the customer's came first.

    >>> person, changed = carry_into(None, "c1", "v1", Profile(person_id="v1", events_seen=3))
    >>> person.person_id, person.events_seen, person.merged_from, changed
    ('c1', 3, ['v1'], True)
    >>> carry_into(person, "c1", "v1", Profile(person_id="v1", events_seen=3))[1]
    False
    """
    profile = profile if profile is not None else Profile(person_id=person_id)
    if visitor_id in profile.merged_from:
        return profile, False
    if anonymous is not None:
        anonymous.person_id = person_id
        merge_profiles(profile, anonymous)
    profile.merged_from.append(visitor_id)
    return profile, True


def visitors_to_unlink(person_id: str, profile: Profile | None) -> list[str]:
    """The visitor ids whose links an erasure of ``person_id`` removes, each where it lives."""
    if profile is None:
        return []
    return sorted((set(profile.visitors) | set(profile.merged_from)) - {person_id})
