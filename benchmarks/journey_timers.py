"""Journey timers at scale: how late 10,000 timers fire, and what they cost ordinary events.

One worker (RocksDB store, default rules and scoring), two runs on topics of their own in one
invocation:

- ``journeys-off``: ``ORCHESTRATOR_JOURNEYS=false``; ordinary traffic only;
- ``journeys-on``: a rules directory of the default rules and one journey, ``bench-timer``: a
  page of category ``bench-journey`` enters, ``wait_s: --wait``, then a ``bench_reminder`` (web).
  ``--people`` people enter at ``--entry-rate`` (each a timer; all of them pending at once when
  ``--wait`` is longer than the entry phase), then the ordinary traffic runs while the timers
  fall due at the rate the people entered.

Ordinary traffic, the same in both runs (after ``--warm-up`` s of it, not measured): page views
of ``/billing/faq`` by a new logged-in customer each (``customer_id`` set: the rule
``self-service-direct-link`` answers each with one action, after one hop through the
person-events topic), at ``--rate`` for ``--duration`` s.

A measurer reads the worker's action topic from its end. An ordinary action's latency is the
moment it is read minus its ``trigger_ts`` (the Kafka timestamp of the page view, set by the
sender); a timer's lateness is the moment its ``bench_reminder`` is read minus its ``trigger_ts``
(the timer's due time, in event time = the entry's ``ts`` + wait), both in HDR histograms (µs).
Timers that never fire within the run are counted as missing. The worker's own
``orchestrator_journey_timer_lateness_seconds`` (due -> fired) is read from ``/metrics`` too.

The off/on pair is repeated ``--repeats`` times (default 3), one pair after the other, each on
topics and a worker of its own; the ratio of the ordinary events' p99 is taken within each pair
(the machine is shared: a pair is minutes apart from the next), and the JSON gives every pair,
the median and the range of the ratios and of the timers' p99 lateness, and timers missing.

    .venv/bin/python benchmarks/journey_timers.py [--people 10000] [--entry-rate 1000]
        [--wait 30] [--rate 200] [--duration 40] [--warm-up 5] [--repeats 3]
        [--engine-env KEY=VALUE ...]

Writes benchmarks/results/journey_timers.json (``--output`` to change it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from hdrh.histogram import HdrHistogram

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from event_to_action import (  # noqa: E402
    BOOTSTRAP,
    ProcessSampler,
    delete_topics_of,
    http_get,
    machine,
    parse_env,
    start_engine,
    summary,
)

RESULTS = ROOT / "benchmarks" / "results"
JOURNEY = """
version: "bench-1"
journeys:
  - id: bench-timer
    description: one timer per person, then one action
    entry:
      event: [page_view]
      when: {{field: event.page.category, eq: bench-journey}}
    max_entries: 1
    steps:
      - id: wait
        wait_s: {wait}
      - id: remind
        send: {{channel: web, action: bench_reminder}}
"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rules_dir(wait_s: int) -> Path:
    """The default rules and the benchmark's journey, in a directory of the run's own."""
    target = Path(tempfile.mkdtemp(prefix="journey-timers-")) / "rules"
    shutil.copytree(ROOT / "rules", target,
                    ignore=shutil.ignore_patterns("*.md", "*.json", "journeys"))
    (target / "journeys").mkdir()
    (target / "journeys" / "bench.yaml").write_text(JOURNEY.format(wait=wait_s))
    return target


class Measurer:
    """Reads the action topic; sorts each action into ordinary latency or timer lateness."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.ordinary = HdrHistogram(1, 3_600_000_000, 3)
        self.lateness = HdrHistogram(1, 3_600_000_000, 3)
        self.timers_seen: set[str] = set()
        self.consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=BOOTSTRAP, group_id=None,
                                         auto_offset_reset="latest", fetch_max_wait_ms=10)
        await self.consumer.start()
        await self.consumer.seek_to_end()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self.consumer is not None
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            seen = now_ms()
            for records in batch.values():
                for record in records:
                    action = orjson.loads(record.value)
                    delay_us = max(1, (seen - action["trigger_ts"]) * 1000)
                    if action["action"] == "bench_reminder":
                        if action["person_id"] not in self.timers_seen:
                            self.timers_seen.add(action["person_id"])
                            self.lateness.record_value(delay_us)
                    else:
                        self.ordinary.record_value(delay_us)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.consumer is not None:
            await self.consumer.stop()


async def paced(producer: AIOKafkaProducer, topic: str, count: int, rate: float,
                record: Any) -> float:
    """Send ``count`` records of ``record(n, ts)`` at ``rate`` per second; the seconds it took."""
    started = time.perf_counter()
    for n in range(count):
        due = started + n / rate
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        ts = now_ms()
        key, value = record(n, ts)
        await producer.send(topic, value=orjson.dumps(value), key=key.encode(), timestamp_ms=ts)
    await producer.flush()
    return time.perf_counter() - started


def ordinary(tag: str) -> Any:
    def record(n: int, ts: int) -> tuple[str, dict[str, Any]]:
        visitor = f"v-{tag}-{n}"
        return visitor, {"event_id": f"o-{tag}-{n}", "type": "page_view", "ts": ts,
                         "visitor_id": visitor, "customer_id": f"c-{tag}-{n}",
                         "session_id": f"s-{visitor}",
                         "page": {"url": "/billing/faq", "category": "billing"}}
    return record


def entry(tag: str) -> Any:
    def record(n: int, ts: int) -> tuple[str, dict[str, Any]]:
        visitor = f"j-{tag}-{n}"
        return visitor, {"event_id": f"j-{tag}-{n}", "type": "page_view", "ts": ts,
                         "visitor_id": visitor, "session_id": f"s-{visitor}",
                         "page": {"url": "/bench", "category": "bench-journey"}}
    return record


def worker_lateness(port: int) -> dict[str, float]:
    """The worker's own due -> fired histogram (count, sum, share within 1 s)."""
    status, text = http_get(f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("orchestrator_journey_timer_lateness_seconds"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    count = values.get("orchestrator_journey_timer_lateness_seconds_count", 0.0)
    within = values.get('orchestrator_journey_timer_lateness_seconds_bucket{le="1.0"}', 0.0)
    return {"count": count, "mean_s": values.get("orchestrator_journey_timer_lateness_seconds_sum", 0)
            / count if count else 0.0, "within_1s": within / count if count else 0.0}


async def run(name: str, args: argparse.Namespace, run_id: str, journeys: bool) -> dict[str, Any]:
    tag = f"{run_id}-{name}"
    env = {**args.engine_env, "ORCHESTRATOR_JOURNEYS": "true" if journeys else "false"}
    if journeys:
        env["ORCHESTRATOR_RULES_DIR"] = str(rules_dir(args.wait))
    system = await start_engine(tag, 1, env)
    if journeys:
        system.cleanup.append(Path(env["ORCHESTRATOR_RULES_DIR"]).parent)
    clickstream = system.inputs["clickstream"]
    web = next(t for t in system.outputs if t.endswith(".web"))
    measurer = Measurer(web)
    await measurer.start()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=5, acks=1)
    await producer.start()
    result: dict[str, Any] = {"name": name, "journeys": journeys}
    try:
        # Warm-up (not measured): the first seconds of a fresh worker are no steady state.
        await paced(producer, clickstream, int(args.rate * args.warm_up), args.rate,
                    ordinary(f"{tag}-warm"))
        await asyncio.sleep(1.0)
        measurer.ordinary.reset()
        if journeys:
            result["entry_s"] = round(await paced(producer, clickstream, args.people,
                                                  args.entry_rate, entry(tag)), 2)
        # Timers fall due from ``wait`` after the first entry on: the ordinary traffic covers that.
        with ProcessSampler(system.pids()[0]) as sampler:
            result["ordinary_s"] = round(await paced(producer, clickstream,
                                                     int(args.rate * args.duration), args.rate,
                                                     ordinary(tag)), 2)
        result["worker_during_ordinary"] = sampler.figures()
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline and (
                measurer.ordinary.get_total_count() < int(args.rate * args.duration)
                or (journeys and len(measurer.timers_seen) < args.people)):
            await asyncio.sleep(0.2)
        result["ordinary_latency_ms"] = summary(measurer.ordinary)
        result["ordinary_expected"] = int(args.rate * args.duration)
        if journeys:
            result["timer_lateness_ms"] = summary(measurer.lateness)
            result["timers_missing"] = args.people - len(measurer.timers_seen)
            result["worker_timer_lateness"] = worker_lateness(system.settings["web_ports"][0])
    finally:
        await producer.stop()
        await measurer.stop()
        system.stop()
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000, help="people in a journey, a timer each")
    parser.add_argument("--entry-rate", type=float, default=1000.0, help="entries per second")
    parser.add_argument("--wait", type=int, default=30, help="the journey's wait_s")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="ordinary events per second (each a new logged-in customer, with its hop)")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of ordinary traffic")
    parser.add_argument("--warm-up", type=float, default=5.0,
                        help="seconds of ordinary traffic before measuring")
    parser.add_argument("--drain", type=float, default=30.0,
                        help="seconds to wait for the last actions after the traffic")
    parser.add_argument("--engine-env", action="append", default=[], metavar="KEY=VALUE",
                        help="a worker setting for both runs (repeatable), recorded in the JSON")
    parser.add_argument("--repeats", type=int, default=3,
                        help="off/on pairs, one after the other; the ratio is taken within each "
                             "pair, and the JSON gives each pair, the median and the range")
    parser.add_argument("--output", type=Path, default=RESULTS / "journey_timers.json")
    args = parser.parse_args(argv)
    args.engine_env = parse_env(args.engine_env)
    return args


def spread(values: list[float | None]) -> dict[str, Any]:
    """Median and range of the repeats' figures (None where a repeat had none), and each one."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return {"median": None, "min": None, "max": None, "each": values}
    return {"median": round(statistics.median(known), 3), "min": known[0], "max": known[-1],
            "each": values}


def pair_figures(off: dict[str, Any], on: dict[str, Any]) -> dict[str, Any]:
    """One off/on pair: both runs and the ratio of the ordinary events' p99 (on / off)."""
    p99_off = off["ordinary_latency_ms"].get("p99")
    p99_on = on["ordinary_latency_ms"].get("p99")
    ratio = round(p99_on / p99_off, 3) if p99_off and p99_on else None
    return {"off": off, "on": on, "ordinary_p99_ratio_on_off": ratio}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    run_id = f"jt{uuid.uuid4().hex[:8]}"
    pairs: list[dict[str, Any]] = []
    try:
        for n in range(args.repeats):
            off = await run("journeys-off", args, f"{run_id}r{n}", journeys=False)
            on = await run("journeys-on", args, f"{run_id}r{n}", journeys=True)
            pairs.append(pair_figures(off, on))
            print_pair(n, pairs[-1])
    finally:
        await delete_topics_of(run_id)
    return {"benchmark": "journey_timers", "machine": machine(),
            "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "pairs": pairs,
            "ordinary_p99_ratio_on_off": spread([p["ordinary_p99_ratio_on_off"] for p in pairs]),
            "timer_lateness_p99_ms": spread([p["on"].get("timer_lateness_ms", {}).get("p99")
                                             for p in pairs]),
            "timers_missing": [p["on"].get("timers_missing") for p in pairs]}


def print_pair(n: int, pair: dict[str, Any]) -> None:
    for row in (pair["off"], pair["on"]):
        print(f"#{n + 1}", row["name"], "ordinary", row["ordinary_latency_ms"],
              "timers", row.get("timer_lateness_ms"), "missing", row.get("timers_missing"),
              "worker", row.get("worker_during_ordinary"), flush=True)
    print(f"#{n + 1} ordinary p99 on/off:", pair["ordinary_p99_ratio_on_off"], flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    ratio = result["ordinary_p99_ratio_on_off"]
    lateness = result["timer_lateness_p99_ms"]
    print(f"ordinary p99 on/off: median {ratio['median']} ({ratio['min']}-{ratio['max']}); "
          f"timers p99 late: median {lateness['median']} ms ({lateness['min']}-{lateness['max']}); "
          f"missing {result['timers_missing']} -> {args.output}")


if __name__ == "__main__":
    main()
