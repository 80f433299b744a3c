"""The worked example of the brief, as the first decision.

An anonymous visitor who reads several self-service pages (account, billing, …) in one session
behaves like an existing customer who has not logged in: offer a timely "Log in" prompt that
returns them to the page they were on. A logged-in customer on such a page gets a direct link
to the service page for that topic. Which topics count and where they lead is data, loaded from
``rules/self_service.yaml`` and validated by :func:`parse_policy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.core.events import ClickstreamEvent
from orchestrator.core.profile import Profile


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicPage(_Strict):
    service_page: str = Field(min_length=1, pattern=r"^(/|https?://)")
    title: str = Field(min_length=1)


class LoginPromptPolicy(_Strict):
    min_topic_pages_in_session: int = Field(3, ge=1)
    cooldown_s: int = Field(1800, ge=0)
    expires_after_s: int = Field(600, ge=1)
    login_url: str = Field("/login", min_length=1)


class DirectLinkPolicy(_Strict):
    cooldown_s: int = Field(600, ge=0)
    expires_after_s: int = Field(600, ge=1)


class SelfServicePolicy(_Strict):
    version: str = "1"
    topics: dict[str, TopicPage] = Field(min_length=1)
    login_prompt: LoginPromptPolicy = LoginPromptPolicy()
    direct_link: DirectLinkPolicy = DirectLinkPolicy()


def parse_policy(data: Any, source: str) -> SelfServicePolicy:
    """Validate a policy document (already parsed from YAML); errors name ``source`` and field."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the document must be a mapping, not {type(data).__name__}")
    try:
        return SelfServicePolicy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}"
            for e in exc.errors(include_url=False))
        raise PolicyError(f"{source}: {problems}") from None


@dataclass(frozen=True, slots=True)
class Decision:
    """An action the core wants sent, before it becomes an action record."""

    action: str
    channel: str
    rule: str
    payload: dict[str, Any]
    cap_key: str
    expires_after_ms: int
    consent_category: str = "service"


@dataclass(frozen=True, slots=True)
class Suppressed:
    """An action that would fit, held back; ``cause`` is a metric label."""

    action: str
    cause: str  # "cooldown" | "consent" | "already_there"


def decide_self_service(event: ClickstreamEvent, profile: Profile,
                        policy: SelfServicePolicy) -> Decision | Suppressed | None:
    """Return the self-service action for this page view, why it was held back, or None.

    Call after the event was applied to ``profile``. Cooldowns run on event time, so a replay
    of history decides exactly as live traffic did.
    """
    page = event.page
    if event.type != "page_view" or page is None or page.category is None:
        return None
    topic = policy.topics.get(page.category)
    if topic is None:
        return None
    if profile.logged_in:
        if not profile.consent.get("service", False):
            return Suppressed("direct_link", "consent")
        if urlsplit(page.url).path.rstrip("/") == urlsplit(topic.service_page).path.rstrip("/"):
            return Suppressed("direct_link", "already_there")
        cap_key = f"direct_link:{page.category}"
        if _cooling_down(profile, cap_key, event.ts, policy.direct_link.cooldown_s):
            return Suppressed("direct_link", "cooldown")
        return Decision(
            action="direct_link", channel="web", rule="self-service-direct-link",
            payload={"url": topic.service_page, "title": topic.title, "topic": page.category},
            cap_key=cap_key, expires_after_ms=policy.direct_link.expires_after_s * 1000)
    pages_read = sum(n for cat, n in profile.session_topic_views.items() if cat in policy.topics)
    if pages_read < policy.login_prompt.min_topic_pages_in_session:
        return None
    if not profile.consent.get("service", False):
        return Suppressed("login_prompt", "consent")
    cap_key = "login_prompt"
    if _cooling_down(profile, cap_key, event.ts, policy.login_prompt.cooldown_s):
        return Suppressed("login_prompt", "cooldown")
    login = policy.login_prompt.login_url
    separator = "&" if "?" in login else "?"
    return Decision(
        action="login_prompt", channel="web", rule="self-service-login-prompt",
        payload={
            "login_url": f"{login}{separator}return_to={quote(page.url, safe='')}",
            "topic": page.category,
            "service_page": topic.service_page,
            "reason": f"{pages_read} self-service pages read this session",
        },
        cap_key=cap_key, expires_after_ms=policy.login_prompt.expires_after_s * 1000)


def _cooling_down(profile: Profile, cap_key: str, ts: int, cooldown_s: int) -> bool:
    last = profile.last_sent.get(cap_key)
    return last is not None and ts - last < cooldown_s * 1000
