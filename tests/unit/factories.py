"""Plain-data builders shared by the unit tests: validated events, small rule sets, a clock."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from orchestrator.core.events import ActionFeedbackEvent, ClickstreamEvent, ContactCentreEvent
from orchestrator.core.rules import RuleSet, load_rule_directory, load_rule_set

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"

# 2023-11-14T22:13:20Z: an ordinary moment well inside the plausible range.
T0 = 1_700_000_000_000
SECOND = 1000
MINUTE = 60 * SECOND

SERVICE_PAGES = {
    "billing": {"url": "/account/billing", "title": "Your bills"},
    "invoices": {"url": "/account/billing/invoices", "title": "Your invoices"},
    "moving": {"url": "/account/moving", "title": "Moving home"},
}

LOGIN_PROMPT: dict[str, Any] = {
    "id": "self-service-login-prompt",
    "description": "anonymous visitor reading self-service pages is offered to log in",
    "channel": "web",
    "action": "login_prompt",
    "when": {"all": [
        {"field": "event.type", "eq": "page_view"},
        {"field": "profile.logged_in", "eq": False},
        {"field": "lookup.service_pages[event.page.category]", "exists": True},
        {"count": {"name": "self_service_pages", "event_type": "page_view",
                   "category_in": {"lookup": "service_pages"}, "session": True}, "gte": 3},
    ]},
    "payload": {
        "login_url": "/login?return_to={event.page.url|urlencode}",
        "topic": "{event.page.category}",
        "service_page": "{lookup.service_pages[event.page.category].url}",
        "reason": "{counts.self_service_pages} self-service pages read this session",
    },
    "caps": {"cooldown_s": 1800, "per": "action"},
    "expires_after_s": 600,
}

DIRECT_LINK: dict[str, Any] = {
    "id": "self-service-direct-link",
    "description": "logged-in customer on a self-service topic gets a link to its service page",
    "channel": "web",
    "action": "direct_link",
    "when": {"all": [
        {"field": "event.type", "eq": "page_view"},
        {"field": "profile.logged_in", "eq": True},
        {"field": "lookup.service_pages[event.page.category]", "exists": True},
    ]},
    "payload": {
        "url": "{lookup.service_pages[event.page.category].url}",
        "title": "{lookup.service_pages[event.page.category].title}",
        "topic": "{event.page.category}",
    },
    "already_there": "lookup.service_pages[event.page.category].url",
    "caps": {"cooldown_s": 600},
    "expires_after_s": 300,
}

SELF_SERVICE_DOC: dict[str, Any] = {
    "version": "test-1",
    "lookups": {"service_pages": SERVICE_PAGES},
    "rules": [LOGIN_PROMPT, DIRECT_LINK],
}


def rule(**fields: Any) -> dict[str, Any]:
    """A minimal valid rule document (fires on every page view), with ``fields`` replaced."""
    base: dict[str, Any] = {
        "id": "r", "description": "a test rule", "channel": "web", "action": "nudge",
        "when": {"field": "event.type", "eq": "page_view"},
    }
    return base | fields


def rule_set(*rules: dict[str, Any], version: str | None = "test-1",
             lookups: dict[str, Any] | None = None, file: str = "rules/test.yaml") -> RuleSet:
    """A rule set of one file holding ``rules`` (as documents, dumped to YAML and loaded)."""
    doc: dict[str, Any] = {"rules": list(rules)}
    if version is not None:
        doc["version"] = version
    if lookups is not None:
        doc["lookups"] = lookups
    return load_rule_set({file: yaml.safe_dump(doc, sort_keys=False)})


def self_service_rules(**changes: Any) -> RuleSet:
    """The self-service pair of rules, with fields of either rule replaced per rule id:
    ``self_service_rules(login_prompt={"caps": {...}})``."""
    doc = copy.deepcopy(SELF_SERVICE_DOC)
    by_action = {r["action"]: r for r in doc["rules"]}
    for action, fields in changes.items():
        by_action[action].update(fields)
    return load_rule_set({"rules/test.yaml": yaml.safe_dump(doc, sort_keys=False)})


@functools.cache
def default_rules() -> RuleSet:
    """The shipped rule set, rules/*.yaml."""
    return load_rule_directory(RULES_DIR)


def click(event_id: str, event_type: str = "page_view", ts: int = T0, visitor_id: str = "v1",
          **fields: Any) -> ClickstreamEvent:
    return ClickstreamEvent.model_validate(
        {"event_id": event_id, "type": event_type, "ts": ts, "visitor_id": visitor_id, **fields})


def page_view(event_id: str, url: str, category: str | None, ts: int = T0, *,
              session_id: str | None = "s1", visitor_id: str = "v1",
              customer_id: str | None = None) -> ClickstreamEvent:
    return click(event_id, "page_view", ts, visitor_id, session_id=session_id,
                 customer_id=customer_id, page={"url": url, "category": category})


def contact(event_id: str, event_type: str = "contact_started", ts: int = T0,
            customer_id: str = "c1", **fields: Any) -> ContactCentreEvent:
    fields.setdefault("channel", "phone")
    return ContactCentreEvent.model_validate(
        {"event_id": event_id, "type": event_type, "ts": ts, "customer_id": customer_id, **fields})


def feedback(action_id: str, outcome: str, ts: int = T0) -> ActionFeedbackEvent:
    return ActionFeedbackEvent.model_validate({"action_id": action_id, "outcome": outcome, "ts": ts})
