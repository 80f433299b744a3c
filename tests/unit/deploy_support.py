"""What the deployment tests (tests/unit/test_deploy_*.py) share: paths, the settings' environment
names, manifests as YAML documents, and the topics the engine's code needs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.runtime import topics as topics_module
from orchestrator.runtime.app import build_app
from orchestrator.runtime.settings import ENV_PREFIX, Settings, load_rules

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMAS = ROOT / "tests" / "schemas"

def settings_env_names() -> set[str]:
    """The environment variables Settings reads (``ORCHESTRATOR_<FIELD>``)."""
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def unknown_env_names(names: Any) -> list[str]:
    """The ``ORCHESTRATOR_*`` names among ``names`` that are not settings."""
    known = settings_env_names()
    return sorted(n for n in names if n.startswith(ENV_PREFIX) and n not in known)


def settings_from_env(env: dict[str, str]) -> Settings:
    """The Settings a process with ``env`` would get; pydantic's ValidationError for a bad value."""
    fields = {name.removeprefix(ENV_PREFIX).lower(): value for name, value in env.items()
              if name.startswith(ENV_PREFIX)}
    return Settings.model_validate(fields)


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of ``path``."""
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the engine (or Faust, for its internal topics) creates it."""

    name: str
    partitions: int
    config: dict[str, str]


class _RecordingAdmin:
    """Answers ensure_topics as a broker with no topics would, and keeps what it is asked to create."""

    def __init__(self) -> None:
        self.created: list[Any] = []

    async def list_topics(self) -> list[str]:
        return []

    async def describe_topics(self, topics: list[str]) -> list[dict]:
        return []

    async def create_topics(self, new_topics: list[Any]) -> Any:
        self.created.extend(new_topics)

        class Response:
            topic_errors = [(t.name, 0, None) for t in new_topics]

        return Response()


def engine_topics(settings: Settings, rule_channels: set[str] = frozenset()) -> dict[str, TopicSpec]:
    """Every topic a worker with ``settings`` creates or needs, as the code creates it.

    The engine's own topics come from running ``ensure_topics`` (and ``ensure_action_topics`` for
    the channels of the rule set) against an admin client that records the requests; Faust's come
    from the app ``build_app`` wires: a changelog topic per table and the leader-assignor topic.
    """
    admin = _RecordingAdmin()

    @contextlib.asynccontextmanager
    async def recording_admin(_: Settings) -> AsyncIterator[_RecordingAdmin]:
        yield admin

    original = topics_module._admin
    topics_module._admin = recording_admin
    try:
        asyncio.run(topics_module.ensure_topics(settings))
        asyncio.run(topics_module.ensure_action_topics(settings, set(rule_channels)))
    finally:
        topics_module._admin = original
    found = {t.name: TopicSpec(t.name, t.num_partitions, dict(t.topic_configs or {}))
             for t in admin.created}

    app = build_app(settings.model_copy(update={"store": "memory"}), load_rules(ROOT / "rules")).app
    for table in app.tables.values():
        changelog = table.changelog_topic
        config = {"cleanup.policy": "compact"} if changelog.compacting else {}
        found[changelog.get_topic_name()] = TopicSpec(changelog.get_topic_name(),
                                                      changelog.partitions, config)
    leader = f"{settings.app_id}-__assignor-__leader"  # faust.assignor.LeaderAssignor, 1 partition
    found[leader] = TopicSpec(leader, 1, {})
    return found
