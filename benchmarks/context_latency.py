"""Event-to-context latency: from a web event to the person's customer-context record being readable.

One worker (RocksDB store, default rules and scoring) runs once per context flush interval
(``ORCHESTRATOR_CONTEXT_FLUSH_MS``, default 200 ms, and 50 ms), on topics of its own. The
load is page views from a fixed population, half of it in each of two groups measured apart:

- **anonymous** visitors never send a customer id: each event is processed on the partition it
  arrives on and the context record is keyed by the visitor id;
- **logged-in** visitors first send one ``login`` record with their customer id (the benchmark
  waits until every one of them is linked, i.e. until the customer's context record shows the
  login), then page views that carry the customer id: every event is re-keyed through the
  internal ``<app_id>-person-events`` topic to the customer's partition (one extra Kafka hop)
  and the context record is keyed by the customer id.

Every event gets a ``ts`` (the send wall-clock time in ms, strictly increasing per person) and
the same Kafka timestamp (sent as the record's CreateTime). A measurer reads the customer-context
topic from its end; the latency of an event is the moment the measurer reads the first record of
that person whose ``as_of_ts`` is at or after the event's ``ts``, minus the input record's Kafka
timestamp, in an HDR histogram (µs). (The timestamp in aiokafka's send result is checked against
it but not used: for the 2nd and later records of a produce batch it repeats the first one's.)
Tombstones are skipped. Per rate, the worker's own ``orchestrator_event_to_context_seconds``
histogram is read from ``/metrics`` before and after, as a cross-check (it times the oldest
coalesced change of each published record, up to the broker's acknowledgement, not to a reader).

The floor is the bare aiokafka consume -> produce passthrough of ``event_to_action.py``
(``passthrough.py``) at the same rates, measured in the same run.

    nice -n 5 .venv/bin/python benchmarks/context_latency.py [--rates 200,500,1000] [--duration 20]

Writes benchmarks/results/context_latency.json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import sys
import time
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from event_to_action import (
    BOOTSTRAP,
    ProcessSampler,
    bench_floor,
    events_handled,
    machine,
    summary,
    topic_env,
)
from hdrh.histogram import HdrHistogram

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.demo import start_worker_process, stop_process, wait_until_ready  # noqa: E402
from orchestrator.localkafka import LocalBroker  # noqa: E402
from orchestrator.runtime.settings import Settings, load_settings  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
WEB_PORT = 6097
WARM_UP_S = 10.0  # at the first rate, after the logins, before any measured run; discarded
DRAIN_QUIET_S = 3.0  # after the load stops: stop waiting when nothing matched for this long
DRAIN_LIMIT_S = 60.0  # ... or after this long in all
LOGIN_RATE = 500.0
LOGIN_LIMIT_S = 60.0
PAGES = (("/", "home"), ("/offers", "offers"), ("/products/fibre", "products"),
         ("/help/faq", "help"), ("/billing/invoice", "billing"), ("/contract/terms", "contract"))
GROUPS = ("anonymous", "logged_in")


@dataclass
class Person:
    group: str
    visitor_id: str
    customer_id: str | None
    session_id: str
    last_ts: int = 0
    sent: int = 0

    @property
    def person_id(self) -> str:  # the key of the person's context record
        return self.customer_id or self.visitor_id


@dataclass
class Pending:
    ts: int
    phase: str
    group: str
    kafka_ts: int | None = None


@dataclass
class Tally:
    """What the measurer found in one phase (a rate, the warm-up or the logins)."""

    hists: dict[str, HdrHistogram] = field(
        default_factory=lambda: {g: HdrHistogram(1, 600_000_000, 3) for g in GROUPS})
    sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GROUPS, 0))
    before_ack: int = 0  # matched before the producer saw the ack (Kafka ts taken from the send)
    # Where the time goes, both groups together: Kafka ts -> the flush that published the event
    # (the record's updated_ts), and that flush -> the measurer reading the record.
    to_flush: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 600_000_000, 3))
    flush_to_read: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 600_000_000, 3))


class Measurer:
    """Reads the customer-context topic and matches records to the events still waiting."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.waiting: dict[str, deque[Pending]] = {}
        self.tallies: dict[str, Tally] = {}
        self.outstanding = 0
        self.last_match = time.monotonic()
        self.records = self.tombstones = self.ts_mismatch = self.ts_mismatch_max_ms = 0
        self.flushes: set[int] = set()  # updated_ts of every record read: one value per flush
        self.ready = asyncio.Event()
        self.stop = asyncio.Event()

    def expect(self, person_id: str, entry: Pending) -> None:
        self.waiting.setdefault(person_id, deque()).append(entry)
        self.tallies.setdefault(entry.phase, Tally()).sent[entry.group] += 1
        self.outstanding += 1

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=BOOTSTRAP, group_id=None,
                                    auto_offset_reset="latest", fetch_max_wait_ms=20,
                                    max_poll_records=5000)
        await consumer.start()
        try:
            await consumer.seek_to_end()
            self.ready.set()
            while not self.stop.is_set():
                batch = await consumer.getmany(timeout_ms=50)
                now_us = time.time_ns() / 1000
                for records in batch.values():
                    for record in records:
                        self._read(record, now_us)
        finally:
            await consumer.stop()

    def _read(self, record: Any, now_us: float) -> None:
        self.records += 1
        if record.value is None:
            self.tombstones += 1
            return
        queue = self.waiting.get(record.key.decode())
        if not queue:
            return
        context = orjson.loads(record.value)
        as_of, updated = context["as_of_ts"], context["updated_ts"]
        self.flushes.add(updated)
        while queue and queue[0].ts <= as_of:
            entry = queue.popleft()
            tally = self.tallies[entry.phase]
            # The record's Kafka timestamp is ``ts`` (sent with timestamp_ms=ts, CreateTime topic).
            # aiokafka's send result is not used for it: for the 2nd and later records of a
            # batch it reports the first record's timestamp (see ``kafka_ts_differs_from_ts``).
            kafka_ts = entry.ts
            if entry.kafka_ts is None:
                tally.before_ack += 1
            tally.hists[entry.group].record_value(max(1, int(now_us - kafka_ts * 1000)))
            tally.to_flush.record_value(max(1, (updated - kafka_ts) * 1000))
            tally.flush_to_read.record_value(max(1, int(now_us - updated * 1000)))
            self.outstanding -= 1
            self.last_match = time.monotonic()

    def forget(self) -> None:
        """Drop what never matched, so that the next phase starts clean."""
        for queue in self.waiting.values():
            queue.clear()
        self.outstanding = 0

    async def drain(self) -> float:
        """Wait until every event is matched, or nothing matched for a while; return seconds."""
        began = time.monotonic()
        while self.outstanding and time.monotonic() - began < DRAIN_LIMIT_S \
                and time.monotonic() - max(self.last_match, began) < DRAIN_QUIET_S:
            await asyncio.sleep(0.05)
        return time.monotonic() - began


class Load:
    """Sends page views (and the logins) of the population."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, measurer: Measurer,
                 people: list[Person], seed: int) -> None:
        self.producer = producer
        self.topic = topic
        self.measurer = measurer
        self.people = people
        self.random = random.Random(seed)
        self.send_errors = 0

    async def send(self, person: Person, event_type: str, phase: str) -> None:
        ts = max(time.time_ns() // 1_000_000, person.last_ts + 1)  # strictly increasing per person
        person.last_ts = ts
        person.sent += 1
        url, category = self.random.choice(PAGES)
        value: dict[str, Any] = {"event_id": f"{person.visitor_id}-{person.sent}", "type": event_type,
                                 "ts": ts, "visitor_id": person.visitor_id,
                                 "session_id": person.session_id,
                                 "page": {"url": url, "category": category}}
        if person.customer_id is not None:
            value["customer_id"] = person.customer_id
        entry = Pending(ts, phase, person.group)
        self.measurer.expect(person.person_id, entry)
        future = await self.producer.send(self.topic, value=orjson.dumps(value),
                                          key=person.visitor_id.encode(), timestamp_ms=ts)
        future.add_done_callback(lambda f, e=entry: self._acked(f, e))

    def _acked(self, future: asyncio.Future, entry: Pending) -> None:
        if future.cancelled() or future.exception() is not None:
            self.send_errors += 1
            return
        entry.kafka_ts = future.result().timestamp
        if entry.kafka_ts != entry.ts:
            self.measurer.ts_mismatch += 1
            self.measurer.ts_mismatch_max_ms = max(self.measurer.ts_mismatch_max_ms,
                                                   abs(entry.kafka_ts - entry.ts))

    async def paced(self, people: list[Person], event_type: str, phase: str, rate: float,
                    duration: float | None = None) -> tuple[int, float]:
        """Send at ``rate``/s, round robin over ``people`` (in a shuffled order), for ``duration``
        seconds or, without one, one event per person. Return events sent and seconds taken."""
        order = list(people)
        self.random.shuffle(order)
        sent, started = 0, time.monotonic()
        while (time.monotonic() - started < duration) if duration else sent < len(order):
            delay = started + sent / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.send(order[sent % len(order)], event_type, phase)
            sent += 1
        await self.producer.flush()
        return sent, time.monotonic() - started


_BUCKET = re.compile(r'^orchestrator_event_to_context_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.MULTILINE)
_SUM = re.compile(r"^orchestrator_event_to_context_seconds_sum (\S+)$", re.MULTILINE)


def worker_histogram(web_port: int) -> tuple[dict[float, float], float]:
    """The worker's own event-to-context histogram: cumulative bucket counts by bound, and sum."""
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    buckets = {float(le): float(count) for le, count in _BUCKET.findall(text)}
    found = _SUM.search(text)
    return buckets, float(found.group(1)) if found else 0.0


def histogram_delta(before: tuple[dict[float, float], float],
                    after: tuple[dict[float, float], float]) -> dict[str, Any]:
    """Count, mean and interpolated quantiles (as Prometheus' histogram_quantile) of the window."""
    bounds = sorted(after[0])
    cumulative = [after[0][b] - before[0].get(b, 0.0) for b in bounds]
    count = cumulative[-1] if cumulative else 0.0
    if count <= 0:
        return {"count": 0}
    figures: dict[str, Any] = {"count": int(count),
                               "mean_ms": round((after[1] - before[1]) / count * 1000, 2)}
    for q in (0.5, 0.95, 0.99):
        rank = q * count
        i = next(i for i, c in enumerate(cumulative) if c >= rank)
        if bounds[i] == float("inf"):
            figures[f"p{round(q * 100)}_ms"] = f">{bounds[i - 1] * 1000:g}"
            continue
        lower, below = (bounds[i - 1], cumulative[i - 1]) if i else (0.0, 0.0)
        inside = cumulative[i] - below
        value = lower + (bounds[i] - lower) * ((rank - below) / inside if inside else 1.0)
        figures[f"p{round(q * 100)}_ms"] = round(value * 1000, 1)
    figures["buckets_ms"] = {f"{b * 1000:g}" if b != float("inf") else "+Inf": int(c)
                             for b, c in zip(bounds, cumulative, strict=True)}
    return figures


def flush_intervals(flushes: set[int], start: int, end: int) -> dict[str, Any]:
    """Gaps between consecutive flushes seen on the topic while the load ran (ms)."""
    times = sorted(t for t in flushes if start <= t <= end)
    gaps = sorted(b - a for a, b in pairwise(times))
    if not gaps:
        return {"count": 0}
    return {"count": len(gaps), "mean": round(sum(gaps) / len(gaps), 1),
            "p50": gaps[len(gaps) // 2], "p99": gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))],
            "max": gaps[-1]}


def saturated(row: dict[str, Any]) -> bool:
    handled = row["handled_rate_during_load"]
    p99 = max(row[g].get("p99", 0) for g in GROUPS)
    unmatched = sum(row["unmatched"].values())
    return handled < 0.9 * row["sent_rate"] or p99 > 1000 or unmatched > 0


def population(run_id: str, people: int) -> list[Person]:
    half = people // 2
    return [Person("anonymous", f"v-{run_id}-a{i}", None, f"s-{run_id}-a{i}") for i in range(half)] + \
        [Person("logged_in", f"v-{run_id}-l{i}", f"c-{run_id}-{i}", f"s-{run_id}-l{i}")
         for i in range(people - half)]


class SystemSampler(ProcessSampler):
    """CPU of the whole machine (% of one core, summed over cores), sampled like a process."""

    def __init__(self) -> None:
        super().__init__(os.getpid())
        self.cores = psutil.cpu_count() or 1

    def __enter__(self) -> SystemSampler:
        psutil.cpu_percent(None)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.cpu.append(psutil.cpu_percent(None) * self.cores)
            self.rss.append(0)

    def figures(self) -> dict[str, float]:
        return {k: v for k, v in super().figures().items() if k.startswith("cpu")}


def others(broker_pid: int | None) -> dict[str, ProcessSampler]:
    """What shares the cores with the worker: the machine as a whole, the broker, this process
    (load generator and measurer)."""
    samplers: dict[str, ProcessSampler] = {"machine": SystemSampler(),
                                           "load_and_measurer": ProcessSampler(os.getpid())}
    if broker_pid:
        samplers["broker"] = ProcessSampler(broker_pid)
    return samplers


async def drive(settings: Any, rates: list[float], duration: float, people: list[Person],
                pid: int, seed: int, broker_pid: int | None) -> dict[str, Any]:
    """Logins, warm-up, then one measured load per rate; stops at saturation."""
    measurer = Measurer(settings.topic_customer_context)
    reading = asyncio.create_task(measurer.run())
    await measurer.ready.wait()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=0, acks=1)
    await producer.start()
    load = Load(producer, settings.topic_clickstream, measurer, people, seed)
    handled = events_handled(settings.web_port)
    rows: list[dict[str, Any]] = []
    try:
        logged_in = [p for p in people if p.group == "logged_in"]
        began = time.monotonic()
        await load.paced(logged_in, "login", "login", LOGIN_RATE)
        while measurer.outstanding and time.monotonic() - began < LOGIN_LIMIT_S:
            await asyncio.sleep(0.1)
        if measurer.outstanding:
            raise RuntimeError(f"{measurer.outstanding} logins not linked within {LOGIN_LIMIT_S:.0f} s")
        login = {"people": len(logged_in), "seconds_until_all_linked": round(time.monotonic() - began, 1)}
        print(json.dumps({"logins": login}), flush=True)
        await load.paced(people, "page_view", "warm-up", rates[0], WARM_UP_S)
        await measurer.drain()
        measurer.forget()
        for rate in rates:
            phase = f"rate-{rate:g}"
            hist_before = await asyncio.to_thread(worker_histogram, settings.web_port)
            handled_before = await asyncio.to_thread(handled)
            load_from = time.time_ns() // 1_000_000
            neighbours = others(broker_pid)
            with ProcessSampler(pid) as sampler, contextlib.ExitStack() as stack:
                for each in neighbours.values():
                    stack.enter_context(each)
                sent, took = await load.paced(people, "page_view", phase, rate, duration)
                handled_after = await asyncio.to_thread(handled)
                load_to = time.time_ns() // 1_000_000
                drained = await measurer.drain()
            hist_after = await asyncio.to_thread(worker_histogram, settings.web_port)
            tally = measurer.tallies[phase]
            row: dict[str, Any] = {
                "offered_rate": rate, "sent": sent, "sent_rate": round(sent / took, 1),
                "handled_rate_during_load": round((handled_after - handled_before) / took, 1),
                **{g: summary(tally.hists[g]) for g in GROUPS},
                "sent_by_group": tally.sent,
                "unmatched": {g: tally.sent[g] - tally.hists[g].get_total_count() for g in GROUPS},
                "matched_before_producer_ack": tally.before_ack,
                "drain_s": round(drained, 1),
                "kafka_ts_to_flush_ms": summary(tally.to_flush),
                "flush_to_read_ms": summary(tally.flush_to_read),
                "flush_interval_ms": flush_intervals(measurer.flushes, load_from, load_to),
                "worker_histogram": histogram_delta(hist_before, hist_after),
                "process": sampler.figures(),
                "cpu_percent_of_a_core_besides_the_worker": {
                    name: each.figures().get("cpu_percent_mean") for name, each in neighbours.items()},
            }
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "worker_histogram"}), flush=True)
            if saturated(row):
                break
            measurer.forget()
    finally:
        measurer.stop.set()
        await reading
        await producer.stop()
    return {"logins": login, "rows": rows,
            "context_records_read": measurer.records, "tombstones_read": measurer.tombstones,
            "kafka_ts_differs_from_ts": {"records": measurer.ts_mismatch,
                                         "max_ms": measurer.ts_mismatch_max_ms,
                                         "why": "aiokafka's send result gives later records of a "
                                                "batch the first record's timestamp"},
            "send_errors": load.send_errors}


def engine_env(run_id: str, flush_ms: int) -> dict[str, str]:
    tag = f"{run_id}-f{flush_ms}"
    return {
        "ORCHESTRATOR_APP_ID": f"ctx-{tag}",
        **topic_env(tag),
        "ORCHESTRATOR_CONTEXT_FLUSH_MS": str(flush_ms),
        "ORCHESTRATOR_WEB_PORT": str(WEB_PORT),
        "ORCHESTRATOR_DATA_DIR": str(ROOT / "var" / f"ctx-{tag}"),
        "ORCHESTRATOR_LOG_LEVEL": "warning",
    }


def bench_engine(rates: list[float], duration: float, run_id: str, flush_ms: int,
                 people: int, broker_pid: int | None) -> dict[str, Any]:
    env = engine_env(run_id, flush_ms)
    os.environ.update(env)
    settings = load_settings()
    log_dir = ROOT / "var" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    proc, _ = start_worker_process(settings, log_dir, env)
    try:
        wait_until_ready(settings.web_port, proc, 120)
        result = asyncio.run(drive(settings, rates, duration, population(run_id, people), proc.pid,
                                   seed=flush_ms, broker_pid=broker_pid))
    finally:
        stop_process(proc)
        shutil.rmtree(env["ORCHESTRATOR_DATA_DIR"], ignore_errors=True)
    return {"context_flush_ms": flush_ms, **result}


async def delete_topics(run_id: str) -> list[str]:
    """Remove this run's topics (the engine's internal ones too): they are ours alone."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if run_id in t]
        if mine:
            await admin.delete_topics(mine)
        return mine
    finally:
        await admin.close()


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["engine"]
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4.8), sharey=True, squeeze=False)
    floor = result["floor"]
    for ax, run in zip(axes[0], runs, strict=True):
        for name, rows, key, colour in (("anonymous", run["rows"], "anonymous", "tab:blue"),
                                        ("logged-in (+1 hop)", run["rows"], "logged_in", "tab:red"),
                                        ("floor", floor, "latency_ms", "tab:gray")):
            rates = [r["offered_rate"] for r in rows]
            for pct, style in (("p50", "-"), ("p99", "--"), ("p999", ":")):
                ax.plot(rates, [r[key].get(pct, float("nan")) for r in rows], style, marker="o",
                        color=colour, label=f"{name} {pct}")
        for r in run["rows"]:
            if saturated(r):
                ax.annotate(f"saturated: {r['handled_rate_during_load']:g}/s handled",
                            (r["offered_rate"], r["anonymous"].get("p50", 1)), fontsize=7,
                            textcoords="offset points", xytext=(-150, -4))
        ax.axhline(run["context_flush_ms"], color="black", linewidth=0.8, linestyle="-.",
                   label=f"flush interval {run['context_flush_ms']} ms")
        ax.set_xlabel("offered rate (page views/s)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"event -> context readable, context flush every {run['context_flush_ms']} ms",
                     fontsize=10)
        ax.legend(fontsize=7, ncol=2)
    axes[0][0].set_ylabel("latency (ms)")
    fig.suptitle(f"{result['settings']['people']} people, one worker, "
                 f"{result['machine']['cores']} cores shared with the broker and the load", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(result: dict[str, Any]) -> str:
    lines = ["flush ms | offered/s | handled/s | anonymous p50/p99 (ms) | logged-in p50/p99 (ms) "
             "| floor p50/p99 (ms) | worker hist p50/p99 (ms) | worker CPU %"]
    floor = {r["offered_rate"]: r["latency_ms"] for r in result["floor"]}
    for run in result["engine"]:
        for r in run["rows"]:
            f = floor.get(r["offered_rate"], {})
            w = r["worker_histogram"]
            lines.append(
                f"{run['context_flush_ms']:>8} | {r['offered_rate']:>9g} "
                f"| {r['handled_rate_during_load']:>9} "
                f"| {r['anonymous'].get('p50')} / {r['anonymous'].get('p99')} "
                f"| {r['logged_in'].get('p50')} / {r['logged_in'].get('p99')} "
                f"| {f.get('p50')} / {f.get('p99')} | {w.get('p50_ms')} / {w.get('p99_ms')} "
                f"| {r['process'].get('cpu_percent_mean')}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="200,500,1000")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--people", type=int, default=2000, help="half anonymous, half logged in")
    parser.add_argument("--flush-ms", default=str(Settings.model_fields["context_flush_ms"].default),
                        help="one worker run per value (comma-separated); default: the worker's own")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    flushes = [int(f) for f in args.flush_ms.split(",")]
    began = time.monotonic()
    broker, _ = LocalBroker().start()  # idempotent; never stopped here
    run_id = uuid.uuid4().hex[:8]
    load_average = os.getloadavg()[0]
    try:
        floor = bench_floor(rates, args.duration, run_id)
        engine = [bench_engine(rates, args.duration, run_id, f, args.people, broker.pid)
                  for f in flushes]
    finally:
        asyncio.run(delete_topics(run_id))
    floor_by_rate = {row["offered_rate"]: row["latency_ms"] for row in floor}
    for run in engine:
        for row in run["rows"]:
            row["floor"] = floor_by_rate.get(row["offered_rate"], {})
    result = {
        "benchmark": "context_latency", "machine": machine(),
        "command": "nice -n 5 .venv/bin/python benchmarks/context_latency.py " + " ".join(sys.argv[1:]),
        "settings": {"people": args.people, "anonymous": args.people // 2,
                     "logged_in": args.people - args.people // 2, "rates": rates,
                     "duration_s_per_rate": args.duration, "warm_up_s": WARM_UP_S,
                     "context_flush_ms": flushes, "partitions": 4, "producer": "aiokafka, linger 0, acks 1",
                     "niceness": os.nice(0), "load_average_at_start": round(load_average, 2)},
        "floor": floor, "engine": engine,
        "wall_clock_s": round(time.monotonic() - began, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "context_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, RESULTS / "context_latency.png")
    print(table(result))
    print(f"wall clock {result['wall_clock_s']} s")


if __name__ == "__main__":
    main()
