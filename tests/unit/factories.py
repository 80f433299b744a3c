"""Plain-data builders shared by the unit tests: validated events, a small policy, a clock."""

from __future__ import annotations

from typing import Any

from orchestrator.core.events import ActionFeedbackEvent, ClickstreamEvent, ContactCentreEvent
from orchestrator.core.self_service import SelfServicePolicy, parse_policy

# 2023-11-14T22:13:20Z: an ordinary moment well inside the plausible range.
T0 = 1_700_000_000_000
SECOND = 1000
MINUTE = 60 * SECOND

POLICY_DOC: dict[str, Any] = {
    "version": "test-1",
    "topics": {
        "billing": {"service_page": "/account/billing", "title": "Your bills"},
        "invoices": {"service_page": "/account/billing/invoices", "title": "Your invoices"},
        "moving": {"service_page": "/account/moving", "title": "Moving home"},
    },
    "login_prompt": {"min_topic_pages_in_session": 3, "cooldown_s": 1800, "expires_after_s": 600,
                     "login_url": "/login"},
    "direct_link": {"cooldown_s": 600, "expires_after_s": 300},
}


def policy(**overrides: Any) -> SelfServicePolicy:
    """The test policy, with top-level sections replaced by ``overrides``."""
    return parse_policy({**POLICY_DOC, **overrides}, "test-policy")


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
