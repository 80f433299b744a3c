"""The whole per-record step of a worker, without Kafka: cost per record and profile size.

A behaviour-driven population (``simulate/population.py``: people over weeks of event time,
logging in, buying, calling, cancelling) is replayed through :class:`JourneyProcessor` exactly as
a worker runs it — decode, identity resolution, the carry of anonymous history at login, the
merge, intent scoring with delayed labels, the rules, action records, profile JSON in and out —
with plain dicts for the tables and a list for the producer. Records the processor forwards to
the person-events topic are handed back to it at once (as the broker would). A label sweep tick
runs every 2,000 records. One partition, so one set of models learns from everyone. Held state is
written to the tables as a worker writes it: once 256 keys changed or 5,000 records were handled
(the defaults of ``STATE_FLUSH_KEYS`` and ``STATE_FLUSH_RECORDS``; the 1 s bound is wall time and
has no meaning in a replay), and at the end; a flush's cost counts to the record that caused it.

It measures what the decision costs a worker per record (``time.perf_counter_ns`` around each
``handle``), the size of the stored profiles of long-lived people, and the progressive quality
the models reach. Kafka's own cost per record is in ``event_to_action.py``.

    nice -n 10 .venv/bin/python benchmarks/processor_replay.py [--people 600] [--days 21]

Writes benchmarks/results/processor_replay.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine_info import describe_machine  # noqa: E402

from orchestrator.core.events import DecodeLimits  # noqa: E402
from orchestrator.core.scoring import DEFAULT_INTENTS  # noqa: E402
from orchestrator.runtime.metrics import EngineMetrics  # noqa: E402
from orchestrator.runtime.processing import JourneyProcessor  # noqa: E402
from orchestrator.runtime.scoring import PartitionedModels, ScoringPolicy  # noqa: E402
from orchestrator.runtime.settings import load_rules, load_settings  # noqa: E402
from orchestrator.simulate.population import Population  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TICK_EVERY = 2000
FLUSH_KEYS = 256
FLUSH_RECORDS = 5000


class Collecting:
    """Stands where the producer would: keeps what was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   on_delivered: Any = None, on_failed: Any = None) -> None:
        self.sent.append((topic, key, value))


def quantiles(values: list[int | float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return {"count": len(ordered), "mean": round(sum(ordered) / len(ordered), 1), "p50": at(0.5),
            "p95": at(0.95), "p99": at(0.99), "max": ordered[-1]}


async def replay(people: int, days: int) -> dict[str, Any]:
    settings = load_settings()
    emitter = Collecting()
    profiles: dict[str, bytes] = {}
    intent_models = PartitionedModels(DEFAULT_INTENTS, {}, 1,
                                      ScoringPolicy(sweep_tick_s=1, sweep_period_s=1))
    processor = JourneyProcessor(
        profiles=profiles, identity={}, emitter=emitter, rule_set=load_rules(settings.rules_dir),
        sources=settings.input_topics, dead_letter_topic="dead-letter",
        action_topic=settings.action_topic,
        # The population lies in the past and future of today's clock alike: no skew check.
        limits=DecodeLimits(max_future_ms=10**13), metrics=EngineMetrics(),
        intent_models=intent_models)
    topic_of = {source: topic for topic, source in settings.input_topics.items()}
    hop = processor.person_events_topic
    records = [(topic_of[source], key.encode(), orjson.dumps(value), value["ts"])
               for source, key, value in Population(people=people, days=days).records()]
    costs_ns: list[int] = []
    forwarded = 0
    delivered = 0
    since_flush = 0
    started = time.perf_counter()
    for offset, (topic, key, value, ts) in enumerate(records):
        t0 = time.perf_counter_ns()
        await processor.handle(topic, 0, offset, ts, key, value)
        while delivered < len(emitter.sent):  # the broker's hop, at once
            sent_topic, sent_key, sent_value = emitter.sent[delivered]
            delivered += 1
            if sent_topic == hop:
                forwarded += 1
                await processor.handle(hop, 0, offset, ts, sent_key, sent_value)
        since_flush += 1
        if since_flush >= FLUSH_RECORDS or processor.held_keys(0) >= FLUSH_KEYS:
            processor.flush(0)
            since_flush = 0
        costs_ns.append(time.perf_counter_ns() - t0)
        if offset % TICK_EVERY == TICK_EVERY - 1:
            await processor.handle(hop, 0, offset, ts, None, b'{"kind":"tick"}')
    processor.flush(0)
    wall = time.perf_counter() - started
    sizes = [len(v) for v in profiles.values()]
    pending = [len(orjson.dumps(orjson.loads(v)["pending"])) for v in profiles.values()]
    actions = sum(1 for topic, _, _ in emitter.sent if topic.startswith(settings.topic_actions_prefix))
    return {
        "records": len(records), "forwarded_records": forwarded, "actions": actions,
        "wall_s": round(wall, 2),
        "cost_per_record_us": {k: round(v / 1000, 1) if k != "count" else v
                               for k, v in quantiles(costs_ns).items()},
        "profiles": len(profiles),
        "profile_bytes": quantiles(sizes),
        "pending_snapshot_bytes": quantiles(pending),
        "models": [quality for _, quality in intent_models.quality()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="directory for the JSON (and PNG) written")
    parser.add_argument("--people", type=int, default=600)
    parser.add_argument("--days", type=int, default=21)
    args = parser.parse_args()
    machine = describe_machine(nice=os.nice(0))
    print(f"machine: {machine}")
    result = asyncio.run(replay(args.people, args.days))
    output = {"benchmark": "processor_replay", "machine": machine,
              "command": f"python benchmarks/processor_replay.py --people {args.people} --days {args.days}",
              **result}
    cost, size = result["cost_per_record_us"], result["profile_bytes"]
    print(f"{result['records']} records ({result['forwarded_records']} forwarded once more) in "
          f"{result['wall_s']} s; per record mean {cost['mean']} µs, p50 {cost['p50']}, "
          f"p99 {cost['p99']}, max {cost['max']}")
    print(f"{result['profiles']} profiles: mean {size['mean']} B, p50 {size['p50']}, p99 {size['p99']}, "
          f"max {size['max']} (pending snapshots mean {result['pending_snapshot_bytes']['mean']} B)")
    for quality in result["models"]:
        auc, loss = quality["roc_auc"], quality["log_loss"]
        print(f"  {quality['intent']:<18} labels {quality['n_labels']:>6}  progressive ROC AUC "
              f"{'-' if auc is None else f'{auc:.3f}'}  log loss {'-' if loss is None else f'{loss:.3f}'}")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "processor_replay.json").write_text(json.dumps(output, indent=2) + "\n")
    print(f"wrote {args.results / 'processor_replay.json'}")


if __name__ == "__main__":
    main()
