"""Topic creation against the real broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from orchestrator.runtime.settings import load_settings
from orchestrator.runtime.topics import TopicError, ensure_action_topics, ensure_topics


def _settings(bootstrap: str, unique: str, partitions: int = 3):
    return load_settings(
        bootstrap_servers=bootstrap, partitions=partitions,
        topic_clickstream=f"cs-{unique}", topic_contact_centre=f"cc-{unique}",
        topic_action_feedback=f"fb-{unique}", topic_dead_letter=f"dl-{unique}",
        topic_customer_context=f"ctx-{unique}", topic_actions_prefix=f"act-{unique}.",
        topic_held_out=f"held-{unique}", topic_person_events=f"pe-{unique}",
        topic_rules=f"rules-{unique}")


async def test_missing_topics_are_created_with_the_table_partition_count(
        kafka_bootstrap: str, unique: str) -> None:
    settings = _settings(kafka_bootstrap, unique)
    created = await ensure_topics(settings)
    assert sorted(created) == sorted([*settings.input_topics, *settings.output_topics,
                                      settings.topic_rules])
    assert await ensure_topics(settings) == []

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([settings.topic_clickstream,
                                                 settings.person_events_topic,
                                                 settings.action_topic("web")])
        assert [len(t["partitions"]) for t in described] == [3, 3, 3]
        [configs] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic_customer_context)])
        entries = {entry[0]: entry[1] for entry in configs.resources[0][4]}
        assert entries["cleanup.policy"] == "compact"
        [rules] = await admin.describe_topics([settings.topic_rules])
        assert len(rules["partitions"]) == 1
    finally:
        await admin.close()


async def test_input_topics_with_another_partition_count_are_refused(
        kafka_bootstrap: str, unique: str) -> None:
    await ensure_topics(_settings(kafka_bootstrap, unique, partitions=3))
    with pytest.raises(TopicError, match=r"must have 5 partitions .* has 3"):
        await ensure_topics(_settings(kafka_bootstrap, unique, partitions=5))


async def _config_of(admin: AIOKafkaAdminClient, topic: str, key: str) -> str:
    """A topic's config value, waiting (up to 10 s) for a topic created a moment ago to show."""
    for _ in range(100):
        [configs] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = {entry[0]: entry[1] for entry in configs.resources[0][4]}
        if key in entries:
            return entries[key]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{topic}: no {key} after 10 s")


async def test_decision_topics_are_created_with_the_configured_retention(
        kafka_bootstrap: str, unique: str) -> None:
    settings = _settings(kafka_bootstrap, unique).model_copy(update={"decision_retention_s": 2 * 86_400})
    await ensure_topics(settings)
    await ensure_action_topics(settings, {"email"})
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        names = [settings.action_topic("web"), settings.action_topic("email"), settings.topic_held_out,
                 settings.topic_dead_letter]
        retention = {name: await _config_of(admin, name, "retention.ms") for name in names}
        assert [retention[name] for name in names[:3]] == ["172800000"] * 3
        assert retention[names[3]] != "172800000"  # the dead letter keeps the broker's default
    finally:
        await admin.close()
