"""Field paths: what a rule may read, checked when the rule set loads, read per event.

A path names a value of the event, the profile, a lookup table, a named count or a score:

``event.page.category`` · ``profile.logged_in`` · ``lookup.service_pages[event.page.category].url``
· ``lookup.service_pages.billing.title`` · ``counts.self_service_pages`` · ``scores.churn_risk``

:func:`compile_path` parses a path once, checks every part of it (an unknown field, lookup or
attribute is a :class:`PathError` naming it) and returns a getter: a closure that takes the
:class:`RuleInputs` of one decision and returns the value, or :data:`MISSING` when the event or
profile has no such value (a contact-centre event has no page; a logged-out visitor has no
customer id). Nothing here evaluates rule text: paths are parsed into fixed steps.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from orchestrator.core.events import Event, event_source, event_type
from orchestrator.core.profile import Profile, queries
from orchestrator.core.scoring.model import servable_score
from orchestrator.core.stage import journey_stage, open_case


class _Missing:
    """The value of a path that is absent for this event or profile (not the same as None)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

ValueType = Literal["text", "number", "bool", "mapping", "any"]
Getter = Callable[["RuleInputs"], Any]


@dataclass(slots=True)
class RuleInputs:
    """One decision's inputs, as the compiled rules read them."""

    event: Event
    profile: Profile
    scores: Mapping[str, float | None]
    lookups: Mapping[str, Mapping[str, Any]]
    #: Labels each intent's model has learned from (for score conditions with ``min_labels``).
    score_labels: Mapping[str, int] = field(default_factory=dict)
    #: Values computed once per decision and shared by rules (counts, ...).
    cache: dict[Any, Any] = field(default_factory=dict)
    #: The event's type as rules see it (computed once per decision; None: not yet).
    type: str | None = None


class PathError(ValueError):
    """A path that does not name anything a rule can read."""


@dataclass(frozen=True, slots=True)
class CompiledPath:
    text: str
    value_type: ValueType
    get: Getter


IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"
_IDENT = re.compile(IDENT)


# ------------------------------------------------------------------ event and profile fields

def _attrs(root: str, *names: str) -> Getter:
    def get(ctx: RuleInputs) -> Any:
        value: Any = getattr(ctx, root)
        for name in names:
            value = getattr(value, name, None)
            if value is None:
                return MISSING
        return value

    return get


def _event_type(ctx: RuleInputs) -> Any:
    kind = ctx.type
    if kind is None:
        kind = ctx.type = event_type(ctx.event)
    return kind


def _event_source(ctx: RuleInputs) -> Any:
    return event_source(ctx.event).value


def url_path(url: str) -> str | None:
    """The path of ``url``; None when it cannot be split (``urlsplit`` raises ValueError for a
    bracketed host that is no IPv6 address, e.g. ``http://[::1``)."""
    try:
        return urlsplit(url).path
    except ValueError:
        return None


def _page_path(ctx: RuleInputs) -> Any:
    page = getattr(ctx.event, "page", None)
    path = None if page is None else url_path(page.url)
    return MISSING if path is None else path


def _consent(root: str, category: str) -> Getter:
    if root == "profile":
        return lambda ctx: queries.consents_to(ctx.profile, category)

    def get(ctx: RuleInputs) -> Any:
        consent = getattr(ctx.event, "consent", None)
        if consent is None:
            return MISSING
        value = getattr(consent, category)
        return MISSING if value is None else value

    return get


EVENT_FIELDS: dict[str, tuple[ValueType, Getter]] = {
    "type": ("text", _event_type),
    "source": ("text", _event_source),
    "event_id": ("text", _attrs("event", "event_id")),
    "ts": ("number", _attrs("event", "ts")),
    "visitor_id": ("text", _attrs("event", "visitor_id")),
    "customer_id": ("text", _attrs("event", "customer_id")),
    "session_id": ("text", _attrs("event", "session_id")),
    "page.url": ("text", _attrs("event", "page", "url")),
    "page.path": ("text", _page_path),
    "page.category": ("text", _attrs("event", "page", "category")),
    "page.title": ("text", _attrs("event", "page", "title")),
    "channel": ("text", _attrs("event", "channel")),
    "reason": ("text", _attrs("event", "reason")),
    "sentiment": ("number", _attrs("event", "sentiment")),
    "agent_id": ("text", _attrs("event", "agent_id")),
    "outcome": ("text", _attrs("event", "outcome")),
    "action_id": ("text", _attrs("event", "action_id")),
    "consent.service": ("bool", _consent("event", "service")),
    "consent.marketing": ("bool", _consent("event", "marketing")),
}

PROFILE_FIELDS: dict[str, tuple[ValueType, Getter]] = {
    "person_id": ("text", _attrs("profile", "person_id")),
    "visitor_id": ("text", _attrs("profile", "visitor_id")),
    "customer_id": ("text", _attrs("profile", "customer_id")),
    "logged_in": ("bool", _attrs("profile", "logged_in")),
    "sessions": ("number", _attrs("profile", "sessions")),
    "events_seen": ("number", _attrs("profile", "events_seen")),
    "first_seen_ts": ("number", _attrs("profile", "first_seen_ts")),
    "last_seen_ts": ("number", _attrs("profile", "last_seen_ts")),
    "session_started_ts": ("number", _attrs("profile", "session_started_ts")),
    "consent.service": ("bool", _consent("profile", "service")),
    "consent.marketing": ("bool", _consent("profile", "marketing")),
    "stage": ("text", lambda ctx: journey_stage(ctx.profile)),
    # The reason of the newest open contact-centre case; absent when none is open.
    "open_case": ("text", lambda ctx: open_case(ctx.profile) or MISSING),
}


def _property(key: str) -> Getter:
    def get(ctx: RuleInputs) -> Any:
        properties = getattr(ctx.event, "properties", None)
        if not properties:
            return MISSING
        value = properties.get(key)
        return MISSING if value is None else value

    return get


def _score(intent: str) -> Getter:
    def get(ctx: RuleInputs) -> Any:
        # NaN, infinities and numbers outside [0, 1] are no score: a condition on them (and
        # its ``not``) is as for a missing score.
        value = servable_score(ctx.scores.get(intent))
        return MISSING if value is None else value

    return get


# ------------------------------------------------------------------ parsing

@dataclass(frozen=True, slots=True)
class _Name:
    text: str


@dataclass(frozen=True, slots=True)
class _Index:
    text: str  # the inner path


def _split(text: str) -> list[_Name | _Index]:
    """``a.b[c.d].e`` -> [a, b, [c.d], e]; raises PathError on anything else."""
    parts: list[_Name | _Index] = []
    i, n = 0, len(text)
    expect_name = True
    while i < n:
        if expect_name:
            match = _IDENT.match(text, i)
            if not match:
                raise PathError(f"'{text}': expected a name at position {i + 1}")
            parts.append(_Name(match.group()))
            i = match.end()
            expect_name = False
        elif text[i] == ".":
            i += 1
            expect_name = True
        elif text[i] == "[":
            depth, j = 1, i + 1
            while j < n and depth:
                depth += {"[": 1, "]": -1}.get(text[j], 0)
                j += 1
            if depth:
                raise PathError(f"'{text}': '[' at position {i + 1} is not closed")
            parts.append(_Index(text[i + 1: j - 1].strip()))
            i = j
        else:
            raise PathError(f"'{text}': unexpected '{text[i]}' at position {i + 1}")
    if expect_name:
        raise PathError(f"'{text}': ends where a name is expected" if text else "empty path")
    return parts


ROOTS = ("event", "profile", "lookup", "counts", "scores")


def compile_path(text: str, *, lookups: Mapping[str, Mapping[str, Any]],
                 counts: Mapping[str, Getter] | None = None) -> CompiledPath:
    """Parse and check ``text``; ``counts`` are the named counts the rule defines."""
    if not isinstance(text, str):
        raise PathError(f"a path is text, got {text!r}")
    text = text.strip()
    parts = _split(text)
    root = parts[0]
    if not isinstance(root, _Name) or root.text not in ROOTS:
        raise PathError(f"'{text}': a path starts with one of {', '.join(ROOTS)}")
    rest = parts[1:]
    if root.text in ("event", "profile"):
        return _compile_field(text, root.text, rest)
    if root.text == "lookup":
        return _compile_lookup(text, rest, lookups)
    names = _names_only(text, rest)
    if len(names) != 1:
        raise PathError(f"'{text}': expected {root.text}.<name>")
    name = names[0]
    if root.text == "scores":
        return CompiledPath(text, "number", _score(name))
    known = counts or {}
    if name not in known:
        raise PathError(f"'{text}': no count named '{name}' in this rule"
                        + (f" (named counts: {', '.join(sorted(known))})" if known
                           else "; name one with count: {name: ..., ...} in a condition"))
    return CompiledPath(text, "number", known[name])


def _names_only(text: str, parts: list[_Name | _Index]) -> list[str]:
    if any(isinstance(p, _Index) for p in parts):
        raise PathError(f"'{text}': [...] is only for looking a key up in a lookup")
    return [p.text for p in parts if isinstance(p, _Name)]


def _compile_field(text: str, root: str, parts: list[_Name | _Index]) -> CompiledPath:
    dotted = ".".join(_names_only(text, parts))
    if root == "event" and dotted.startswith("properties.") and dotted.count(".") == 1:
        return CompiledPath(text, "any", _property(dotted.split(".", 1)[1]))
    table = EVENT_FIELDS if root == "event" else PROFILE_FIELDS
    if dotted not in table:
        choices = [f"{root}.{name}" for name in table]
        if root == "event":
            choices.append("event.properties.<name>")
        close = difflib.get_close_matches(f"{root}.{dotted}", choices, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(choices)}"
        raise PathError(f"unknown field '{text}' ({hint})")
    kind, getter = table[dotted]
    return CompiledPath(text, kind, getter)


def _compile_lookup(text: str, parts: list[_Name | _Index],
                    lookups: Mapping[str, Mapping[str, Any]]) -> CompiledPath:
    if not parts or not isinstance(parts[0], _Name):
        raise PathError(f"'{text}': expected lookup.<name>[<path>] or lookup.<name>.<key>")
    name = parts[0].text
    if name not in lookups:
        known = ", ".join(sorted(lookups)) or "none are defined"
        raise PathError(f"'{text}': unknown lookup '{name}' (lookups: {known})")
    table = lookups[name]
    if len(parts) < 2:
        raise PathError(f"'{text}': say which entry: lookup.{name}[<path>] or lookup.{name}.<key>")
    selector, attrs = parts[1], parts[2:]
    if any(isinstance(p, _Index) for p in attrs):
        raise PathError(f"'{text}': only one [...] per lookup")
    attr_names = [p.text for p in attrs if isinstance(p, _Name)]
    if len(attr_names) > 1:
        raise PathError(f"'{text}': lookup entries are one level deep")
    attr = attr_names[0] if attr_names else None
    if isinstance(selector, _Name):
        if selector.text not in table:
            raise PathError(f"'{text}': lookup '{name}' has no key '{selector.text}'")
        items = [(selector.text, table[selector.text])]
    else:
        items = list(table.items())
    if attr is not None:
        lacking = [key for key, entry in items if not (isinstance(entry, dict) and attr in entry)]
        if lacking:
            raise PathError(f"'{text}': entries of lookup '{name}' without '{attr}': "
                            f"{', '.join(lacking)}")
    kind: ValueType = ("mapping" if attr is None and all(isinstance(v, dict) for _, v in items)
                  else "any")

    if isinstance(selector, _Name):
        entry = table[selector.text]
        value = entry if attr is None else entry[attr]
        const = MISSING if value is None else value
        return CompiledPath(text, kind, lambda ctx: const)
    key_path = compile_path(selector.text, lookups=lookups)
    if key_path.value_type == "mapping":
        raise PathError(f"'{text}': the key '{selector.text}' is a mapping, not a value")
    get_key = key_path.get

    def get(ctx: RuleInputs) -> Any:
        key = get_key(ctx)
        if key is MISSING or not isinstance(key, str | int | float | bool):
            return MISSING
        entry = table.get(key if isinstance(key, str) else str(key))
        if entry is None:
            return MISSING
        if attr is None:
            return entry
        value = entry.get(attr)
        return MISSING if value is None else value

    return CompiledPath(text, kind, get)
