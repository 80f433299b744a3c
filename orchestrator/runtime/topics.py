"""Create the topics the engine reads and writes, and check the ones that exist."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from orchestrator.runtime.kafka_security import KafkaAccessError, client_options, explain_refusal
from orchestrator.runtime.settings import Settings

_TOPIC_ALREADY_EXISTS = 36


async def _describe_settled(admin: AIOKafkaAdminClient, topics: list[str],
                            timeout: float = 10.0) -> list[dict]:
    """Describe topics that exist, waiting while one has no partition metadata yet (for a
    moment after creation a broker still answers "unknown topic" or no partitions)."""
    if not topics:
        return []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(topics)
        unsettled = [t for t in described if t.get("error_code", 0) != 0 or not t["partitions"]]
        if not unsettled or asyncio.get_running_loop().time() > deadline:
            return described
        await asyncio.sleep(0.1)


class TopicError(RuntimeError):
    """Topics exist in a shape the engine cannot work with."""


def _check_partitions(described: list[dict], partitions: int) -> None:
    wrong = [f"{t['topic']} has {len(t['partitions'])}" for t in described
             if t.get("error_code", 0) == 0 and t["partitions"]
             and len(t["partitions"]) != partitions]
    if wrong:
        raise TopicError(f"input and person-events topics must have {partitions} partitions "
                         f"(ORCHESTRATOR_PARTITIONS), but {', '.join(wrong)}")


@contextlib.asynccontextmanager
async def _admin(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=15000)
    try:
        await admin.start()
    except KafkaConnectionError:
        # The first client of every command: a refused login stops it here, saying why.
        await admin.close()
        raise KafkaAccessError(
            f"cannot join the Kafka cluster at {settings.bootstrap_servers} "
            f"({settings.kafka_security_protocol}): {await explain_refusal(settings)}") from None
    try:
        yield admin
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> tuple[list[str], list[str]]:
    """Create ``topics``; return (created, already there). Any other error is a TopicError."""
    if not topics:
        return [], []
    response = await admin.create_topics(topics)
    failed = [
        f"{name}: error {code} {message or ''}".strip()
        for name, code, *rest in response.topic_errors
        for message in [rest[0] if rest else None]
        # 36 TOPIC_ALREADY_EXISTS: another worker created it first, which is fine.
        if code not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failed:
        raise TopicError("could not create topics: " + "; ".join(failed))
    created = [name for name, code, *_ in response.topic_errors if code == 0]
    raced = [name for name, code, *_ in response.topic_errors if code == _TOPIC_ALREADY_EXISTS]
    return created, raced


async def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; return the names created.

    Input topics and the person-events topic must all have ``settings.partitions`` partitions:
    the person and identity tables are partitioned like them, so a mismatch would put one
    person's events on two profiles.
    """
    copartitioned = [*settings.input_topics, settings.person_events_topic]
    async with _admin(settings) as admin:
        present = set(await admin.list_topics())
        existing = await _describe_settled(admin, [t for t in copartitioned if t in present])
        _check_partitions(existing, settings.partitions)
        wanted = [
            NewTopic(name, settings.partitions, settings.replication_factor)
            for name in settings.input_topics
        ] + [
            NewTopic(name, settings.partitions, settings.replication_factor,
                     topic_configs=_output_config(settings, name))
            for name in settings.output_topics
        ] + [
            # One partition: a rule set is one record and every worker reads all of it.
            NewTopic(settings.topic_rules, 1, settings.replication_factor,
                     topic_configs={"cleanup.policy": "compact"}),
        ]
        created, raced = await _create(admin, [t for t in wanted if t.name not in present])
        # Created a moment ago by someone else (not yet in the metadata we listed): check them.
        raced_inputs = [name for name in raced if name in copartitioned]
        _check_partitions(await _describe_settled(admin, raced_inputs), settings.partitions)
        return created


async def ensure_action_topics(settings: Settings, channels: set[str]) -> list[str]:
    """Create the ``actions.<channel>`` topics a rule set needs that do not exist yet.

    A rule set may name a channel the worker was not started with; its actions must not be
    sent to a topic that does not exist (the broker does not create topics on demand).
    """
    wanted = {settings.action_topic(c) for c in channels}
    async with _admin(settings) as admin:
        missing = sorted(wanted - set(await admin.list_topics()))
        created, _ = await _create(admin, [
            NewTopic(name, settings.partitions, settings.replication_factor,
                     topic_configs=_decision_config(settings)) for name in missing])
        return created


def _decision_config(settings: Settings) -> dict[str, str]:
    # Decision records keep the person's ids after an erasure: they age out with this retention.
    return {"retention.ms": str(settings.decision_retention_s * 1000)}


def _output_config(settings: Settings, name: str) -> dict[str, str]:
    if name == settings.topic_customer_context:
        return {"cleanup.policy": "compact"}
    if name == settings.topic_held_out or name.startswith(settings.topic_actions_prefix):
        return _decision_config(settings)
    return {}
