"""Action records, as the channel topics' contract has them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from orchestrator.core.events import ClickstreamEvent, ContactCentreEvent, Event
from orchestrator.core.profile import Profile
from orchestrator.core.rules import Decision

_ACTION_NAMESPACE = uuid.UUID("6f1c2a53-3c1e-4d0e-9a53-0f6a3c2b8e11")


def action_id_for(trigger_event_id: str, channel: str, action: str) -> str:
    """The same trigger always yields the same action id, so a replay is recognisable downstream.

    >>> action_id_for("e1", "web", "login_prompt") == action_id_for("e1", "web", "login_prompt")
    True
    """
    return str(uuid.uuid5(_ACTION_NAMESPACE, f"{trigger_event_id}\x1f{channel}\x1f{action}"))


def build_action_record(
    decision: Decision, event: Event, profile: Profile, *,
    trigger_kafka_ts: int, decided_ts: int, rule_set_version: str,
    scores: Mapping[str, float | None] | None = None,
    model_versions: Mapping[str, str] | None = None, action_id: str | None = None,
) -> dict[str, Any]:
    """Return the action record for ``decision``, triggered by ``event``.

    ``trigger_ts`` is the triggering record's Kafka timestamp (what event-to-action latency is
    measured from); ``trigger_event_ts`` is the event's own ``ts``. ``scores`` are the intent
    scores the decision saw (None: not yet trustworthy) and ``models`` the version of the model
    behind each (omitted when nothing was scored). A held-out decision's record (the
    control group: never sent) is marked ``"holdout": true``. ``action_id``: the record's id when
    it is not the trigger's (a journey step's: :func:`action_id_for` of its step id).
    """
    trigger_event_id = event.event_id if isinstance(event, ClickstreamEvent | ContactCentreEvent) \
        else f"feedback:{event.action_id}"
    visitor_id = event.visitor_id if isinstance(event, ClickstreamEvent) else profile.visitor_id
    record: dict[str, Any] = {
        "action_id": action_id or action_id_for(trigger_event_id, decision.channel, decision.action),
        "channel": decision.channel,
        "action": decision.action,
        "person_id": profile.person_id,
        "visitor_id": visitor_id,
        "customer_id": profile.customer_id,
        "payload": decision.payload,
        "rule": decision.rule,
        "rule_set_version": rule_set_version,
        "scores": dict(scores) if scores else {},
        "trigger_event_id": trigger_event_id,
        "trigger_ts": trigger_kafka_ts,
        "trigger_event_ts": event.ts,
        "decided_ts": decided_ts,
        "expires_ts": decided_ts + decision.expires_after_ms,
    }
    if model_versions:
        record["models"] = dict(model_versions)
    if decision.holdout:
        record["holdout"] = True
    return record
