"""Event-to-action latency of one worker against the floor, on the local broker.

For each rate, persona traffic is produced to the input topics at that rate for a fixed time;
a measurer reads the action topic and computes, for every action, the time from the trigger
record's Kafka timestamp to the moment the action record is read. In the same run, the same
traffic goes through a bare aiokafka consume -> produce passthrough (the floor).

    python benchmarks/event_to_action.py [--rates 200,500,1000] [--duration 20]

Writes benchmarks/results/event_to_action.json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.demo import start_worker_process, stop_process, wait_until_ready  # noqa: E402
from orchestrator.localkafka import LocalBroker  # noqa: E402
from orchestrator.runtime.settings import load_settings  # noqa: E402
from orchestrator.simulate.traffic import TrafficPlan  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BOOTSTRAP = "127.0.0.1:9092"
WARM_UP_S = 10.0  # at the first rate, before any measured run; its figures are discarded


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "kernel": platform.release(),
            "kafka": "3.9.1 (single node, KRaft, same machine)"}


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"count": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99),
            "p999": at(0.999), "max": round(ordered[-1], 2)}


async def produce(topics: dict[str, str], rate: float, duration: float, seed: int) -> int:
    """Send persona traffic at ``rate`` records/s; thinking time is compressed so that many
    journeys reach their decision inside the run."""
    plan = TrafficPlan(seed, think_scale=0.02)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=0, acks=1)
    await producer.start()
    sent, started = 0, time.monotonic()
    try:
        while time.monotonic() - started < duration:
            delay = started + sent / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            _, step = plan.next_step(time.monotonic())
            value = orjson.dumps(dict(step.value, ts=time.time_ns() // 1_000_000))
            await producer.send(topics[step.source.value], value=value, key=step.key.encode())
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def measure(topic: str, ready: asyncio.Event, done: asyncio.Event,
                  from_header: bool) -> list[float]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, group_id=None,
                                auto_offset_reset="latest", fetch_max_wait_ms=20)
    await consumer.start()
    await consumer.seek_to_end()
    ready.set()
    latencies: list[float] = []
    idle_since: float | None = None
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=50)
            now = time.time_ns() / 1e6
            got = False
            for records in batch.values():
                for record in records:
                    got = True
                    if from_header:
                        trigger = float(dict(record.headers)["trigger_ts"])
                    else:
                        trigger = orjson.loads(record.value)["trigger_ts"]
                    latencies.append(now - trigger)
            if done.is_set():
                idle_since = idle_since if not got and idle_since else time.monotonic()
                if not got and time.monotonic() - idle_since > 2:
                    break
    finally:
        await consumer.stop()
    return latencies


async def run_load(inputs: dict[str, str], output: str, rate: float, duration: float,
                   from_header: bool) -> dict[str, Any]:
    ready, done = asyncio.Event(), asyncio.Event()
    measuring = asyncio.create_task(measure(output, ready, done, from_header))
    await ready.wait()
    sent = await produce(inputs, rate, duration, seed=int(rate))
    done.set()
    latencies = await measuring
    return {"rate": rate, "sent": sent, "latency_ms": percentiles(latencies)}


async def create_topics(names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


def bench_floor(rates: list[float], duration: float, run_id: str) -> list[dict[str, Any]]:
    source, sink = f"floor-in-{run_id}", f"floor-out-{run_id}"
    asyncio.run(create_topics([source, sink], 4))
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "passthrough.py"),
                             BOOTSTRAP, source, sink, f"floor-{run_id}"])
    try:
        time.sleep(5)  # join the group
        inputs = {"clickstream": source, "contact-centre": source}
        asyncio.run(run_load(inputs, sink, rates[0], WARM_UP_S, True))  # discarded
        return [asyncio.run(run_load(inputs, sink, r, duration, True)) for r in rates]
    finally:
        stop_process(proc)


def bench_engine(rates: list[float], duration: float, run_id: str) -> list[dict[str, Any]]:
    env = {
        "ORCHESTRATOR_APP_ID": f"bench-{run_id}",
        "ORCHESTRATOR_TOPIC_CLICKSTREAM": f"clickstream-{run_id}",
        "ORCHESTRATOR_TOPIC_CONTACT_CENTRE": f"contact-centre-{run_id}",
        "ORCHESTRATOR_TOPIC_ACTION_FEEDBACK": f"action-feedback-{run_id}",
        "ORCHESTRATOR_TOPIC_DEAD_LETTER": f"dead-letter-{run_id}",
        "ORCHESTRATOR_TOPIC_CUSTOMER_CONTEXT": f"customer-context-{run_id}",
        "ORCHESTRATOR_TOPIC_ACTIONS_PREFIX": f"actions-{run_id}.",
        "ORCHESTRATOR_WEB_PORT": "6099",
        "ORCHESTRATOR_DATA_DIR": str(ROOT / "var" / f"bench-{run_id}"),
        "ORCHESTRATOR_LOG_LEVEL": "warning",
    }
    os.environ.update(env)
    settings = load_settings()
    log_dir = ROOT / "var" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    proc, _ = start_worker_process(settings, log_dir, env)
    try:
        wait_until_ready(settings.web_port, proc, 120)
        inputs = {"clickstream": settings.topic_clickstream,
                  "contact-centre": settings.topic_contact_centre}
        asyncio.run(run_load(inputs, settings.action_topic("web"), rates[0], WARM_UP_S, False))
        return [asyncio.run(run_load(inputs, settings.action_topic("web"), r, duration, False))
                for r in rates]
    finally:
        stop_process(proc)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, style in (("engine", "-"), ("floor", "--")):
        rows = result[name]
        rates = [r["rate"] for r in rows]
        for pct, colour in (("p50", "tab:blue"), ("p99", "tab:red"), ("p999", "tab:purple")):
            ax.plot(rates, [r["latency_ms"].get(pct, float("nan")) for r in rows], style,
                    marker="o", color=colour, label=f"{name} {pct}")
    ax.set_xlabel("input rate (records/s)")
    ax.set_ylabel("event-to-action latency (ms)")
    ax.set_yscale("log")
    ax.set_title(f"One worker vs bare consume->produce ({result['machine']['cores']} cores, "
                 "broker on the same machine)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="200,500,1000")
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    LocalBroker().start()
    run_id = uuid.uuid4().hex[:8]
    floor = bench_floor(rates, args.duration, run_id)
    engine = bench_engine(rates, args.duration, run_id)
    result = {"benchmark": "event_to_action", "machine": machine(),
              "duration_s_per_rate": args.duration, "warm_up_s": WARM_UP_S,
              "command": "python benchmarks/event_to_action.py " + " ".join(sys.argv[1:]),
              "floor": floor, "engine": engine,
              "ratio_p50": [round(e["latency_ms"]["p50"] / f["latency_ms"]["p50"], 2)
                            for e, f in zip(engine, floor, strict=True)],
              "ratio_p99": [round(e["latency_ms"]["p99"] / f["latency_ms"]["p99"], 2)
                            for e, f in zip(engine, floor, strict=True)]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "event_to_action.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, RESULTS / "event_to_action.png")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
