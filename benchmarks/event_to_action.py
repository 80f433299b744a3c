"""Event-to-action latency and throughput of one worker, against the floor, up to saturation.

For each offered rate, persona traffic is produced to the input topics at that rate for a fixed
time; a measurer reads the action topic and records, for every action, the time from the
trigger record's Kafka timestamp to the moment the action is read (HDR histogram, µs). The same
sweep runs first through a bare aiokafka consume -> produce passthrough (the floor). The sweep
stops at saturation: when the process under test handles less than 90 % of the offered rate,
or its p99 passes 1 s.

    python benchmarks/event_to_action.py [--rates 250,500,1000,1500,2000,3000,4000,5000] [--duration 20]

Writes benchmarks/results/event_to_action.json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from hdrh.histogram import HdrHistogram

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine_info import describe_machine  # noqa: E402

from orchestrator.demo import start_worker_process, stop_process, wait_until_ready  # noqa: E402
from orchestrator.localkafka import LocalBroker  # noqa: E402
from orchestrator.runtime.settings import load_settings  # noqa: E402
from orchestrator.simulate.traffic import TrafficPlan  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BOOTSTRAP = "127.0.0.1:9092"
WARM_UP_S = 10.0  # at the first rate, before any measured run; its figures are discarded
DRAIN_LIMIT_S = 60.0  # after the load stops, how long a backlog may take to come out


def machine() -> dict[str, Any]:
    return describe_machine(kafka="3.9.1 (single node, KRaft, same machine)")


def summary(hist: HdrHistogram) -> dict[str, float]:
    if hist.get_total_count() == 0:
        return {"count": 0}
    ms = 1000.0
    return {"count": hist.get_total_count(),
            **{f"p{str(p).replace('.', '')}": round(hist.get_value_at_percentile(p) / ms, 2)
               for p in (50, 95, 99, 99.9)},
            "max": round(hist.get_max_value() / ms, 2)}


class ProcessSampler:
    """Samples CPU (% of one core) and RSS of a process every half second, in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.cpu: list[float] = []
        self.rss: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcessSampler:
        self.process.cpu_percent(None)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.cpu.append(self.process.cpu_percent(None))
                self.rss.append(self.process.memory_info().rss)
            except psutil.Error:
                return

    def figures(self) -> dict[str, float]:
        if not self.cpu:
            return {}
        return {"cpu_percent_mean": round(sum(self.cpu) / len(self.cpu), 1),
                "cpu_percent_max": round(max(self.cpu), 1),
                "rss_mib_max": round(max(self.rss) / 2**20, 1)}


async def produce(topics: dict[str, str], rate: float, duration: float, seed: int) -> tuple[int, float]:
    """Send persona traffic at ``rate`` records/s (thinking time compressed so that many
    journeys reach a decision); return records sent and the seconds it took."""
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
    return sent, time.monotonic() - started


class LoadEnd:
    """Set by the producer when the load stops; the measurer then drains what is left."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.at = 0.0

    def set(self) -> None:
        self.at = time.monotonic()
        self.event.set()


async def measure(topic: str, ready: asyncio.Event, done: LoadEnd,
                  trigger_ts: Callable[[Any], float]) -> HdrHistogram:
    hist = HdrHistogram(1, 600_000_000, 3)  # 1 µs .. 10 min
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, group_id=None,
                                auto_offset_reset="latest", fetch_max_wait_ms=20,
                                max_poll_records=5000)
    await consumer.start()
    await consumer.seek_to_end()
    ready.set()
    last_record = time.monotonic()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=50)
            now_us = time.time_ns() / 1000
            for records in batch.values():
                for record in records:
                    hist.record_value(max(1, int(now_us - trigger_ts(record) * 1000)))
                    last_record = time.monotonic()
            if done.event.is_set() and (time.monotonic() - last_record > 2
                                        or time.monotonic() - done.at > DRAIN_LIMIT_S):
                break
    finally:
        await consumer.stop()
    return hist


def from_header(record: Any) -> float:
    return float(dict(record.headers)["trigger_ts"])


def from_action(record: Any) -> float:
    return float(orjson.loads(record.value)["trigger_ts"])


async def run_load(inputs: dict[str, str], output: str, rate: float, duration: float,
                   trigger_ts: Callable[[Any], float],
                   handled: Callable[[], float] | None) -> dict[str, Any]:
    ready, done = asyncio.Event(), LoadEnd()
    measuring = asyncio.create_task(measure(output, ready, done, trigger_ts))
    await ready.wait()
    before = handled() if handled else 0.0
    sent, took = await produce(inputs, rate, duration, seed=int(rate * 1000) + int(duration))
    done.set()
    after_load = handled() if handled else 0.0
    hist = await measuring
    row: dict[str, Any] = {"offered_rate": rate, "sent": sent,
                           "sent_rate": round(sent / took, 1),
                           "latency_ms": summary(hist)}
    if handled:
        row["handled_rate_during_load"] = round((after_load - before) / took, 1)
    else:
        row["handled_rate_during_load"] = None
    return row


def events_handled(web_port: int) -> Callable[[], float]:
    """Records the worker has handled so far (accepted + rejected), from its /metrics."""
    pattern = re.compile(r"^orchestrator_(?:events|rejected_records)_total\{[^}]*\} (\S+)$",
                         re.MULTILINE)

    def read() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as resp:
            return sum(float(v) for v in pattern.findall(resp.read().decode()))

    return read


def saturated(row: dict[str, Any]) -> bool:
    handled = row["handled_rate_during_load"]
    p99 = row["latency_ms"].get("p99", 0)
    return (handled is not None and handled < 0.9 * row["sent_rate"]) or p99 > 1000


async def create_topics(names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


def sweep(rates: list[float], duration: float, pid: int, run_one: Callable[[float, float], dict],
          ) -> list[dict[str, Any]]:
    run_one(rates[0], WARM_UP_S)  # discarded
    rows = []
    for rate in rates:
        with ProcessSampler(pid) as sampler:
            row = run_one(rate, duration)
        row["process"] = sampler.figures()
        rows.append(row)
        print(json.dumps(row), flush=True)
        if saturated(row):
            break
    return rows


def bench_floor(rates: list[float], duration: float, run_id: str) -> list[dict[str, Any]]:
    source, sink = f"floor-in-{run_id}", f"floor-out-{run_id}"
    asyncio.run(create_topics([source, sink], 4))
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "passthrough.py"),
                             BOOTSTRAP, source, sink, f"floor-{run_id}"])
    inputs = {"clickstream": source, "contact-centre": source}
    try:
        time.sleep(5)  # join the group
        rows = sweep(rates, duration, proc.pid, lambda r, d: asyncio.run(
            run_load(inputs, sink, r, d, from_header, None)))
    finally:
        stop_process(proc)
    for row in rows:  # every record is copied: what came out is what was handled
        row["handled_rate_during_load"] = None
    return rows


def bench_engine(rates: list[float], duration: float, run_id: str) -> list[dict[str, Any]]:
    env = {
        "ORCHESTRATOR_APP_ID": f"bench-{run_id}",
        "ORCHESTRATOR_TOPIC_CLICKSTREAM": f"clickstream-{run_id}",
        "ORCHESTRATOR_TOPIC_CONTACT_CENTRE": f"contact-centre-{run_id}",
        "ORCHESTRATOR_TOPIC_ACTION_FEEDBACK": f"action-feedback-{run_id}",
        "ORCHESTRATOR_TOPIC_DEAD_LETTER": f"dead-letter-{run_id}",
        "ORCHESTRATOR_TOPIC_CUSTOMER_CONTEXT": f"customer-context-{run_id}",
        "ORCHESTRATOR_TOPIC_HELD_OUT": f"held-out-{run_id}",
        "ORCHESTRATOR_TOPIC_ACTIONS_PREFIX": f"actions-{run_id}.",
        "ORCHESTRATOR_TOPIC_RULES": f"rules-{run_id}",
        "ORCHESTRATOR_WEB_PORT": "6099",
        "ORCHESTRATOR_DATA_DIR": str(ROOT / "var" / f"bench-{run_id}"),
        "ORCHESTRATOR_LOG_LEVEL": "warning",
    }
    os.environ.update(env)
    settings = load_settings()
    log_dir = ROOT / "var" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    proc, _ = start_worker_process(settings, log_dir, env)
    inputs = {"clickstream": settings.topic_clickstream,
              "contact-centre": settings.topic_contact_centre}
    handled = events_handled(settings.web_port)
    try:
        wait_until_ready(settings.web_port, proc, 120)
        return sweep(rates, duration, proc.pid, lambda r, d: asyncio.run(
            run_load(inputs, settings.action_topic("web"), r, d, from_action, handled)))
    finally:
        stop_process(proc)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, style in (("engine", "-"), ("floor", "--")):
        rows = result[name]
        rates = [r["offered_rate"] for r in rows]
        for pct, colour in (("p50", "tab:blue"), ("p99", "tab:red"), ("p999", "tab:purple")):
            lat.plot(rates, [r["latency_ms"].get(pct, float("nan")) for r in rows], style,
                     marker="o", color=colour, label=f"{name} {pct}")
        if name == "engine":
            thr.plot(rates, [r["handled_rate_during_load"] for r in rows], "-o",
                     label="engine: records handled/s")
        thr.plot(rates, [r["process"].get("cpu_percent_mean", float("nan")) for r in rows],
                 style, marker="s", color="tab:gray", label=f"{name}: CPU % of one core")
    lat.axhline(50, color="black", linewidth=0.8, linestyle=":", label="50 ms")
    lat.set_xlabel("offered rate (records/s)")
    lat.set_ylabel("event-to-action latency (ms)")
    lat.set_yscale("log")
    lat.grid(True, which="both", alpha=0.3)
    lat.legend(fontsize=7, ncol=2)
    lat.set_title("latency percentiles: one worker vs bare consume->produce")
    rates = [r["offered_rate"] for r in result["engine"]]
    thr.plot(rates, rates, ":", color="black", label="offered")
    thr.set_xlabel("offered rate (records/s)")
    thr.set_title(f"throughput and CPU ({result['machine']['cores']} cores, broker on the machine)")
    thr.grid(True, alpha=0.3)
    thr.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="250,500,1000,1500,2000,3000,4000,5000")
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    LocalBroker().start()
    run_id = uuid.uuid4().hex[:8]
    floor = bench_floor(rates, args.duration, run_id)
    engine = bench_engine(rates, args.duration, run_id)
    by_rate = {row["offered_rate"]: row for row in floor}
    ratios = [{"offered_rate": e["offered_rate"],
               "p50": round(e["latency_ms"]["p50"] / by_rate[e["offered_rate"]]["latency_ms"]["p50"], 2),
               "p99": round(e["latency_ms"]["p99"] / by_rate[e["offered_rate"]]["latency_ms"]["p99"], 2)}
              for e in engine if e["offered_rate"] in by_rate and e["latency_ms"].get("count")]
    result = {"benchmark": "event_to_action", "machine": machine(),
              "duration_s_per_rate": args.duration, "warm_up_s": WARM_UP_S,
              "command": "python benchmarks/event_to_action.py " + " ".join(sys.argv[1:]),
              "floor": floor, "engine": engine, "engine_over_floor": ratios}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "event_to_action.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, RESULTS / "event_to_action.png")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
