"""The intent models learn on the real broker from a population whose outcomes depend on what
people do, and a restarted worker continues from the models' checkpoint."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from orchestrator.simulate.population import Population
from tests.e2e.conftest import WorkerProcess, settings_from_env

INTENTS = ("login_propensity", "purchase_intent", "contact_need", "churn_risk")


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def model_values(text: str, name: str) -> dict[str, float]:
    return {intent: float(value) for intent, value in re.findall(
        rf'^orchestrator_{name}\{{intent="([^"]+)",partition="0"\}} (\S+)$', text, re.MULTILINE)}


def handled(text: str) -> float:
    return sum(float(v) for v in re.findall(r'^orchestrator_events_total\{[^}]*\} (\S+)$', text,
                                            re.MULTILINE))


async def wait_until(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


async def test_models_learn_well_above_chance_and_continue_after_a_restart(
        worker: WorkerProcess, tmp_path: Path) -> None:
    # One partition: one model per intent learns from every label (with more partitions each
    # partition's models learn from their share of the people).
    env = {**worker.env, "ORCHESTRATOR_PARTITIONS": "1", "ORCHESTRATOR_MODEL_CHECKPOINT_S": "1",
           "ORCHESTRATOR_LABEL_SWEEP_TICK_S": "0.5", "ORCHESTRATOR_LABEL_SWEEP_PERIOD_S": "2"}
    settings = settings_from_env(env)
    learner = WorkerProcess(settings, env, tmp_path)
    topics = {source: topic for topic, source in settings.input_topics.items()}
    # 35 days: a label is learned when its horizon ends, so of a 14-day churn horizon only the
    # moments of the first days - 14 get theirs (21 days left one week: 46 positives, too few).
    records = list(Population(people=600, days=35).records())
    try:
        learner.start(tmp_path / "first")
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=20)
        await producer.start()
        try:
            for source, key, value in records:  # at full speed, in event-time order
                await producer.send(topics[source], orjson.dumps(value), key=key.encode())
            await producer.flush()
        finally:
            await producer.stop()
        port = settings.web_port
        await wait_until(lambda: handled(metrics(port)) >= len(records), 300, "all events handled")

        def settled() -> dict[str, float] | None:
            before = model_values(metrics(port), "model_labels")
            time.sleep(3)  # the sweep has nothing more to settle, and a checkpoint followed
            after = model_values(metrics(port), "model_labels")
            return after if after == before and set(after) == set(INTENTS) else None

        labels = await wait_until(settled, 120, "labels to settle")
        auc = model_values(metrics(port), "model_roc_auc")
        print("labels", labels, "progressive ROC AUC", auc)
        for intent in INTENTS:
            assert labels[intent] >= 1000 if intent != "churn_risk" else labels[intent] >= 300, labels
            assert auc[intent] > 0.65, (intent, auc)
        trusted = model_values(metrics(port), "model_trusted")
        # Trust also needs recent quality (core/scoring/model.py); on this small population the
        # rarer intents' recent windows at the end of the replay can withdraw it, so only the
        # two common intents are required to be served.
        assert trusted["login_propensity"] == trusted["purchase_intent"] == 1.0, trusted
        # People who went quiet were settled by the sweep over the partition's stored profiles.
        swept = re.findall(r'^orchestrator_model_labels_settled_total\{[^}]*how="horizon_sweep"[^}]*\} '
                           r'(\S+)$', metrics(port), re.MULTILINE)
        assert sum(float(n) for n in swept) > 100, swept

        # Restart on an empty data directory: the models come back from the changelog.
        learner.stop()
        learner.start(tmp_path / "second")
        restored = await wait_until(lambda: model_values(metrics(port), "model_labels") or None, 60,
                                    "models restored")
        assert restored == labels
    finally:
        learner.stop()
