"""Worker CPU per record: how much work one record costs each system when it can batch freely.

For each system (the bare floor, the Quix Streams peer, one engine worker) on topics of its own:
start it and let it settle, measure its idle CPU for a few seconds, send ``--records`` records of
a load shape (benchmarks/loads.py) as fast as one producer can, and wait until the system has
handled them all. Reported per system and repeat:

- ``cpu_us_per_record``: the system's CPU time (user + system, its processes and their children)
  over the drain, minus its idle CPU over the same time, per record;
- ``records_per_s``: records / (first send to last record handled) — the ceiling of one process
  with the broker and the producer on the same machine;
- both as a ratio to the floor measured in the same run.

The latency benchmark (event_to_action.py) is the figure users meet; this one says where the
ceiling is and how far each change moves it, with less noise than a latency sweep on a shared
machine (CPU time, not wall time, is compared).

    python benchmarks/drain.py [--systems floor,quix,engine-1] [--load new-visitors]
        [--records 20000] [--repeats 3] [--engine-env KEY=VALUE ...] [--profile]

``--profile`` samples the engine worker with py-spy (the thread holding the GIL) during each
drain and prints where its time goes (inclusive share per function); the folded stacks are kept
in var/bench-logs/.

Writes benchmarks/results/drain-<load>.json; prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from event_to_action import (  # noqa: E402
    BOOTSTRAP,
    PARTITIONS,
    QUIX_LOADS,
    RESULTS,
    System,
    delete_topics_of,
    machine,
    parse_env,
    start_engine,
    start_floor,
    start_quix,
)
from loadgen import CachedPartitioner  # noqa: E402

from benchmarks.loads import make_load  # noqa: E402

IDLE_S = 3.0
DRAIN_LIMIT_S = 300.0
NOMINAL_RATE = 2000.0  # sets the load's pool of concurrent visitors (500)


def cpu_seconds(pids: list[int]) -> float:
    """CPU time so far of the processes and their children (a worker may fork helpers)."""
    total = 0.0
    for pid in pids:
        with_children = [psutil.Process(pid)]
        with_children += with_children[0].children(recursive=True)
        for proc in with_children:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
    return total


class OutputCounter:
    """For a system that reports no count (the floor): records written to its output topics."""

    def __init__(self, topics: list[str]) -> None:
        self.partitions = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        self.consumer: AIOKafkaConsumer | None = None

    async def __call__(self) -> float:
        if self.consumer is None:  # started in the running loop
            self.consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
            await self.consumer.start()
        ends = await self.consumer.end_offsets(self.partitions)
        return float(sum(ends.values()))

    async def close(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()


async def handled_now(system: System, floor_count: OutputCounter | None) -> float:
    if floor_count is not None:
        return await floor_count()
    assert system.counter is not None
    return await asyncio.to_thread(system.counter)


async def send_all(system: System, load: str, records: int, seed: int, tag: str) -> float:
    """Send ``records`` records as fast as one producer can; return when the first was sent."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks=1, linger_ms=5,
                                max_batch_size=262_144, partitioner=CachedPartitioner())
    await producer.start()
    rows = make_load(load, random.Random(seed), NOMINAL_RATE, id_tag=tag)
    started = time.monotonic()
    try:
        for _ in range(records):
            source, key, value, _trigger = next(rows)
            ts = time.time_ns() // 1_000_000
            value["ts"] = ts
            await producer.send(system.inputs[source], orjson.dumps(value), key=key.encode(),
                                timestamp_ms=ts)
        await producer.flush()
    finally:
        await producer.stop()
    return started


async def drain_once(system: System, load: str, records: int, seed: int, tag: str,
                     profile: bool = False) -> dict[str, Any]:
    floor_count = OutputCounter(system.outputs) if system.counter is None else None
    try:
        base = await handled_now(system, floor_count)
        cpu0, t0 = cpu_seconds(system.pids()), time.monotonic()
        await asyncio.sleep(IDLE_S)
        idle_per_s = (cpu_seconds(system.pids()) - cpu0) / (time.monotonic() - t0)
        cpu_start = cpu_seconds(system.pids())
        profiler = start_profiler(system, tag) if profile else None
        sender = asyncio.create_task(send_all(system, load, records, seed, tag))
        deadline = time.monotonic() + DRAIN_LIMIT_S
        while True:
            handled = await handled_now(system, floor_count) - base
            if handled >= records or time.monotonic() > deadline or not system.alive():
                break
            await asyncio.sleep(0.25)  # /metrics is not free: do not poll it hard
        finished = time.monotonic()
        started = await sender
        cpu = cpu_seconds(system.pids()) - cpu_start
        hot = stop_profiler(*profiler) if profiler else None
    finally:
        if floor_count is not None:
            await floor_count.close()
    took = finished - started
    busy = max(0.0, cpu - idle_per_s * took)
    return {"records": records, "handled": int(handled), "complete": handled >= records,
            "took_s": round(took, 3), "records_per_s": round(handled / took, 1),
            "cpu_s": round(cpu, 3), "idle_cpu_percent": round(100 * idle_per_s, 1),
            "cpu_us_per_record": round(1e6 * busy / max(handled, 1), 1),
            **({"profile_inclusive_percent": hot} if hot else {})}


def start_profiler(system: System, tag: str) -> tuple[subprocess.Popen[bytes], Path] | None:
    if not system.name.startswith("engine"):
        return None
    out = ROOT / "var" / "bench-logs" / f"profile-{tag}-{time.time_ns()}.txt"
    proc = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record",
                             "--pid", str(system.pids()[0]), "--rate", "250", "--gil", "--format", "raw",
                             "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, out


def stop_profiler(proc: subprocess.Popen[bytes], out: Path, top: int = 40) -> dict[str, float]:
    """Stop py-spy and return the ``top`` functions by inclusive share of samples."""
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    inclusive: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = {re.sub(r" \(([^)]*/)?([^/)]+)\)$", r" (\2)", f.rsplit(":", 1)[0])
                  for f in stack.split(";")}
        for frame in frames:
            inclusive[frame] += samples
    return {frame: round(100 * n / total, 1) for frame, n in inclusive.most_common(top)}


def median_spread(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [r[key] for r in rows]
    return {"median": round(statistics.median(values), 1), "min": min(values),
            "max": max(values)}


async def bench_system(name: str, load: str, args: argparse.Namespace, run_id: str
                       ) -> dict[str, Any]:
    tag = f"{run_id}-{name}"
    if name == "floor":
        system = await start_floor(tag, 0.0)
    elif name == "quix":
        system = await start_quix(tag, 0.0)
    else:
        system = await start_engine(tag, int(name.split("-")[1]), args.engine_env)
    try:
        repeats = []
        for n in range(args.repeats):
            row = await drain_once(system, load, args.records, args.seed + n, f"{n}", args.profile)
            print(f"  {name} #{n + 1}: {row['records_per_s']:,.0f} records/s, "
                  f"{row['cpu_us_per_record']:,.0f} µs CPU per record"
                  + ("" if row["complete"] else "  (INCOMPLETE)"), flush=True)
            for frame, share in row.get("profile_inclusive_percent", {}).items():
                print(f"      {share:5.1f} %  {frame}")
            repeats.append(row)
    finally:
        system.stop()
    return {"system": name, "settings": system.settings, "repeats": repeats,
            "records_per_s": median_spread(repeats, "records_per_s"),
            "cpu_us_per_record": median_spread(repeats, "cpu_us_per_record")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="floor,quix,engine-1")
    parser.add_argument("--load", default="new-visitors")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engine-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="sample the engine with py-spy")
    args = parser.parse_args(argv)
    args.engine_env = parse_env(args.engine_env)
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    run_id = f"drain-{uuid.uuid4().hex[:6]}"
    rows = []
    try:
        for name in args.systems.split(","):
            if name == "quix" and args.load not in QUIX_LOADS:
                continue
            print(f"{name} ({args.load}, {args.records:,} records, {args.repeats} repeats)", flush=True)
            rows.append(await bench_system(name, args.load, args, run_id))
    finally:
        await delete_topics_of(run_id)
    floor = next((r for r in rows if r["system"] == "floor"), None)
    if floor is not None:
        for row in rows:
            row["cpu_per_record_vs_floor"] = round(
                row["cpu_us_per_record"]["median"] / floor["cpu_us_per_record"]["median"], 2)
            row["throughput_vs_floor"] = round(
                row["records_per_s"]["median"] / floor["records_per_s"]["median"], 2)
    return {"benchmark": "drain", "load": args.load, "records": args.records,
            "repeats": args.repeats, "engine_env": args.engine_env, "machine": machine(),
            "systems": rows}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    out = args.out or RESULTS / f"drain-{args.load}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'system':<10} {'records/s (min-max)':>26} {'µs CPU/record (min-max)':>28} "
          f"{'vs floor':>9}")
    for row in result["systems"]:
        rps, cpu = row["records_per_s"], row["cpu_us_per_record"]
        print(f"{row['system']:<10} {rps['median']:>10,.0f} ({rps['min']:,.0f}-{rps['max']:,.0f})"
              f"{cpu['median']:>14,.0f} ({cpu['min']:,.0f}-{cpu['max']:,.0f})"
              f"{row.get('cpu_per_record_vs_floor', float('nan')):>9}")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
