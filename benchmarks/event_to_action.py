"""Event-to-action latency and throughput: the engine beside a Quix Streams peer and the floor.

In one run on one broker, for each load shape (benchmarks/loads.py) and each system:

- ``floor``: passthrough.py, a bare aiokafka consume -> produce copying every input record;
- ``quix``: peers/quix_peer.py, the engine's first decision (the login prompt) in Quix Streams
  with its RocksDB state store (``new-visitors`` only: it implements that decision alone);
- ``engine-1`` / ``engine-2``: one, or two, ``orchestrator worker`` processes in one group;

records are sent at each offered rate for a fixed time by a generator in its own process
(loadgen.py), and a measurer reads the output topics. A trigger's latency is *the moment the
measurer reads the output record naming it* (``trigger_event_id`` of an action; ``event_id`` of
a copied record) minus *the moment the generator handed the trigger to its producer* (also its
``ts`` and Kafka timestamp), in an HDR histogram (µs). Each rate is run ``--repeats`` times;
the sweep stops at saturation. Each (system, load) runs on topics of its own.

    python benchmarks/event_to_action.py [--systems floor,quix,engine-1,engine-2]
        [--loads new-visitors,personas,logged-in] [--rates 250,1000,2000,4000,8000]
        [--repeats 3] [--duration 15] [--warm-up 5] [--engine-env KEY=VALUE ...]

Writes benchmarks/results/event_to_action.json and .png; prints a table at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from hdrh.histogram import HdrHistogram

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine_info import describe_machine  # noqa: E402

from benchmarks.interleave import joined_sweep, rotated  # noqa: E402
from benchmarks.loads import ANSWER_EXPECTED, LOADS, POOL_MAX, POOL_MIN  # noqa: E402
from benchmarks.worker_metrics import input_wait_buckets, input_wait_summary  # noqa: E402
from orchestrator.demo import start_worker_process, stop_process, wait_until_ready  # noqa: E402
from orchestrator.localkafka import LocalBroker  # noqa: E402
from orchestrator.runtime.settings import Settings, load_settings  # noqa: E402
from orchestrator.runtime.topics import ensure_topics  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
VAR = ROOT / "var" / "bench"
BOOTSTRAP = "127.0.0.1:9092"
SYSTEMS = ("floor", "quix", "engine-1", "engine-2")
QUIX_LOADS = ("new-visitors",)  # the peer implements the login prompt only
PARTITIONS = 4
PORTS = range(6200, 6300)
DRAIN_LIMIT_S = 60.0  # after the load stops, how long a backlog may take to come out
GRACE_S = 1.0  # after the system has consumed everything, for its last outputs
MEASURER_FETCH_MAX_WAIT_MS = 10
SATURATED_HANDLED = 0.9  # handled below this share of the sent rate: saturated
SATURATED_P99_MS = 1000.0
GENERATOR_KEPT_UP = 0.95  # a run whose generator sent less than this share of the rate is flagged
LATENCY_TARGETS_MS = (50, 100)


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


# ---------------------------------------------------------------- sampling


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


class GroupSampler:
    """CPU (% of one core) and RSS of groups of processes (each with its children), and of the
    whole machine, every half second, in a thread."""

    def __init__(self, groups: dict[str, Sequence[int]], without_children: Sequence[str] = ()) -> None:
        self.groups = {name: [psutil.Process(pid) for pid in pids] for name, pids in groups.items()}
        self.without_children = set(without_children)
        self.cpu: dict[str, list[float]] = {name: [] for name in self.groups}
        self.rss: dict[str, list[int]] = {name: [] for name in self.groups}
        self.per_process: dict[str, list[list[float]]] = {name: [] for name in self.groups}
        self.machine: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._seen: dict[int, psutil.Process] = {}

    def _members(self, name: str) -> list[list[psutil.Process]]:
        members = []
        for proc in self.groups[name]:
            try:
                family = [proc] if name in self.without_children else \
                    [proc, *proc.children(recursive=True)]
            except psutil.Error:
                family = [proc]
            members.append([self._seen.setdefault(p.pid, p) for p in family])
        return members

    def _cpu(self, proc: psutil.Process) -> tuple[float, int]:
        try:
            return proc.cpu_percent(None), proc.memory_info().rss
        except psutil.Error:
            return 0.0, 0

    def __enter__(self) -> GroupSampler:
        psutil.cpu_percent(None)
        for name in self.groups:
            for family in self._members(name):
                for proc in family:
                    self._cpu(proc)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        cores = psutil.cpu_count() or 1
        while not self._stop.wait(0.5):
            self.machine.append(psutil.cpu_percent(None) * cores)
            for name in self.groups:
                per = []
                rss = 0
                for family in self._members(name):
                    figures = [self._cpu(p) for p in family]
                    per.append(sum(c for c, _ in figures))
                    rss += sum(r for _, r in figures)
                self.cpu[name].append(sum(per))
                self.rss[name].append(rss)
                self.per_process[name].append(per)

    def figures(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, cpu in self.cpu.items():
            if not cpu:
                continue
            result[name] = {"cpu_percent_mean": round(sum(cpu) / len(cpu), 1),
                            "cpu_percent_max": round(max(cpu), 1),
                            "rss_mib_max": round(max(self.rss[name]) / 2**20, 1)}
            if len(self.groups[name]) > 1:
                columns = list(zip(*self.per_process[name], strict=False))
                result[name]["cpu_percent_mean_per_process"] = [
                    round(sum(c) / len(c), 1) for c in columns]
        if self.machine:
            result["machine"] = {"cpu_percent_mean": round(sum(self.machine) / len(self.machine), 1),
                                 "of": 100 * (psutil.cpu_count() or 1)}
        return result


# ---------------------------------------------------------------- Kafka helpers


async def create_topics(names: list[str], partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def delete_topics_of(run_id: str) -> int:
    """Delete every topic whose name contains ``run_id`` (this sweep's, and only those)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if run_id in t]
        if names:
            await admin.delete_topics(names)
        return len(names)
    finally:
        await admin.close()


async def group_members(group: str) -> tuple[str, list[int]]:
    """The group's state and, per member, how many partitions it is assigned."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        response = (await admin.describe_consumer_groups([group]))[0]
        _error, _name, state, _ptype, _protocol, members, *_ = response.groups[0]
        assigned = []
        for member in members:
            raw = member[-1]
            try:
                assigned.append(len(ConsumerProtocolMemberAssignment.decode(raw).partitions()))
            except Exception:  # not the plain consumer protocol: count it as assigned
                assigned.append(-1 if raw else 0)
        return state, assigned
    finally:
        await admin.close()


async def wait_group_settled(group: str, members: int, timeout: float = 90.0,
                             ready: Callable[[], bool] | None = None) -> float:
    """Wait until ``group`` is Stable with ``members`` members that all hold partitions (and
    ``ready()``, if given, holds), twice in a row one second apart; return the seconds taken."""
    started = time.monotonic()
    good = 0
    last = ("", [])
    while time.monotonic() - started < timeout:
        with contextlib.suppress(Exception):
            last = await group_members(group)
        state, assigned = last
        ok = (state == "Stable" and len(assigned) == members and all(a != 0 for a in assigned)
              and (ready is None or await asyncio.to_thread(ready)))
        good = good + 1 if ok else 0
        if good >= 2:
            return round(time.monotonic() - started, 1)
        await asyncio.sleep(1.0 if ok else 0.5)
    raise RuntimeError(f"group {group} did not settle with {members} members within {timeout:.0f} s "
                       f"(last seen: {last})")


_used_ports: set[int] = set()


def free_port() -> int:
    for port in PORTS:
        if port in _used_ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _used_ports.add(port)
        return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def events_handled(web_port: int) -> Callable[[], float]:
    """Records the worker has handled so far (accepted + rejected), from its /metrics."""
    pattern = re.compile(r"^orchestrator_(?:events|rejected_records)_total\{[^}]*\} (\S+)$",
                         re.MULTILINE)

    def read() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as resp:
            return sum(float(v) for v in pattern.findall(resp.read().decode()))

    return read


# ---------------------------------------------------------------- systems under test


@dataclass
class System:
    """What the harness needs of a system under test."""

    name: str
    inputs: dict[str, str]  # source -> topic
    outputs: list[str]
    answer_field: str  # the field of an output record naming the trigger
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    counter: Callable[[], float] | None = None  # records handled so far; None: outputs read
    # engines: the workers' input-wait histograms, summed (upper bound -> cumulative count)
    input_wait: Callable[[], dict[float, float]] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    cleanup: list[Path] = field(default_factory=list)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)


def log_file(name: str) -> Any:
    logs = ROOT / "var" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    return open(logs / f"{name}.log", "ab")


async def start_floor(tag: str, linger_ms: float) -> System:
    source, sink, group = f"floor-in-{tag}", f"floor-out-{tag}", f"floor-{tag}"
    await create_topics([source, sink])
    with log_file(f"floor-{tag}") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "passthrough.py"),
                                 BOOTSTRAP, source, sink, group, str(linger_ms)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    system = System("floor", {"clickstream": source, "contact-centre": source}, [sink], "event_id",
                    [proc], settings={"linger_ms": linger_ms, "group": group})
    try:
        system.settings["settle_s"] = await wait_group_settled(group, 1, ready=system.alive)
    except BaseException:
        system.stop()
        raise
    return system


async def start_quix(tag: str, linger_ms: float) -> System:
    source, sink, group = f"quix-in-{tag}", f"quix-out-{tag}", f"quix-{tag}"
    await create_topics([source, sink])
    port = free_port()
    state_dir = VAR / f"quix-{tag}"
    with log_file(f"quix-{tag}") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "peers" / "quix_peer.py"),
             "--bootstrap", BOOTSTRAP, "--input", source, "--output", sink, "--group", group,
             "--state-dir", str(state_dir), "--port", str(port), "--linger-ms", str(linger_ms)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    pattern = re.compile(r"^quix_peer_records_total (\S+)$", re.MULTILINE)

    def processed() -> float:
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
        if status != 200:
            raise RuntimeError(f"quix peer /metrics answered {status}")
        return float(pattern.search(text).group(1))  # type: ignore[union-attr]

    def ready() -> bool:
        return system.alive() and http_get(f"http://127.0.0.1:{port}/metrics")[0] == 200

    system = System("quix", {"clickstream": source}, [sink], "trigger_event_id", [proc],
                    counter=processed, cleanup=[state_dir],
                    settings={"linger_ms": linger_ms, "group": group, "web_port": port,
                              "quixstreams": _version("quixstreams")})
    try:
        system.settings["settle_s"] = await wait_group_settled(group, 1, ready=ready)
    except BaseException:
        system.stop()
        raise
    return system


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def settings_from_env(env: dict[str, str]) -> Settings:
    """The settings a worker given ``env`` will see (this process's environment untouched)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def topic_env(tag: str) -> dict[str, str]:
    """The environment that gives a worker topics of its own, named after ``tag``."""
    return {
        "ORCHESTRATOR_TOPIC_CLICKSTREAM": f"clickstream-{tag}",
        "ORCHESTRATOR_TOPIC_CONTACT_CENTRE": f"contact-centre-{tag}",
        "ORCHESTRATOR_TOPIC_ACTION_FEEDBACK": f"action-feedback-{tag}",
        "ORCHESTRATOR_TOPIC_DEAD_LETTER": f"dead-letter-{tag}",
        "ORCHESTRATOR_TOPIC_CUSTOMER_CONTEXT": f"customer-context-{tag}",
        "ORCHESTRATOR_TOPIC_HELD_OUT": f"held-out-{tag}",
        "ORCHESTRATOR_TOPIC_ACTIONS_PREFIX": f"actions-{tag}.",
        "ORCHESTRATOR_TOPIC_RULES": f"rules-{tag}",
    }


async def start_engine(tag: str, workers: int, extra_env: dict[str, str]) -> System:
    app_id = f"bench-{tag}"
    env = {
        "ORCHESTRATOR_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ORCHESTRATOR_APP_ID": app_id,
        **topic_env(tag),
        "ORCHESTRATOR_PARTITIONS": str(PARTITIONS),
        "ORCHESTRATOR_LOG_LEVEL": "warning",
        **extra_env,
    }
    base = settings_from_env(env)
    await ensure_topics(base)  # before any worker: two workers would race to create them
    data_root = VAR / app_id
    system = System(f"engine-{workers}",
                    {"clickstream": base.topic_clickstream,
                     "contact-centre": base.topic_contact_centre},
                    [base.action_topic(c) for c in base.channels], "trigger_event_id",
                    cleanup=[data_root],
                    settings={"app_id": app_id, "workers": workers, "engine_env": extra_env})
    ports: list[int] = []
    log_dir = ROOT / "var" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        for n in range(workers):
            port = free_port()
            worker_env = {**env, "ORCHESTRATOR_WEB_PORT": str(port),
                          "ORCHESTRATOR_DATA_DIR": str(data_root / f"w{n}")}
            settings = base.model_copy(update={"web_port": port})
            proc, _ = start_worker_process(settings, log_dir, worker_env)
            system.procs.append(proc)
            ports.append(port)
            await asyncio.to_thread(wait_until_ready, port, proc, 120)
        counters = [events_handled(p) for p in ports]
        system.counter = lambda: sum(c() for c in counters)

        def input_wait() -> dict[float, float]:
            summed: dict[float, float] = {}
            for p in ports:
                for le, n in input_wait_buckets(p).items():
                    summed[le] = summed.get(le, 0.0) + n
            return summed

        system.input_wait = input_wait

        def ready() -> bool:
            return system.alive() and all(
                http_get(f"http://127.0.0.1:{p}/ready")[0] == 200 for p in ports)

        system.settings["web_ports"] = ports
        system.settings["settle_s"] = await wait_group_settled(app_id, workers, ready=ready)
    except BaseException:
        system.stop()
        raise
    return system


# ---------------------------------------------------------------- generator and measurer


class Generator:
    """loadgen.py in a process of its own."""

    def __init__(self, proc: asyncio.subprocess.Process, out: Path) -> None:
        self.proc = proc
        self.out = out

    @classmethod
    async def start(cls, cfg: dict[str, Any]) -> Generator:
        out = Path(cfg["out"])
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), json.dumps(cfg),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        generator = cls(proc, out)
        line = await asyncio.wait_for(proc.stdout.readline(), 60)  # type: ignore[union-attr]
        if line.strip() != b"ready":
            await generator.kill()
            raise RuntimeError(f"load generator did not start (said {line!r})")
        return generator

    def go(self) -> None:
        self.proc.stdin.write(b"go\n")  # type: ignore[union-attr]

    async def report(self) -> dict[str, Any]:
        line = await self.proc.stdout.readline()  # type: ignore[union-attr]
        await self.proc.wait()
        if line.strip() != b"done" or self.proc.returncode != 0:
            raise RuntimeError(f"load generator failed (exit {self.proc.returncode})")
        report = orjson.loads(self.out.read_bytes())
        self.out.unlink()
        return report

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@dataclass
class Tally:
    """What the measurer saw during one run."""

    first_read_us: dict[str, int] = field(default_factory=dict)
    outputs: int = 0
    duplicates: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    unreadable: int = 0


class Measurer:
    """Reads the output topics from their end and notes, per trigger id named, when it was first
    read (µs, wall clock)."""

    def __init__(self, topics: list[str], answer_field: str) -> None:
        self.consumer = AIOKafkaConsumer(*topics, bootstrap_servers=BOOTSTRAP, group_id=None,
                                         auto_offset_reset="latest",
                                         fetch_max_wait_ms=MEASURER_FETCH_MAX_WAIT_MS,
                                         max_poll_records=10_000)
        self.answer_field = answer_field
        self.tally = Tally()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.seek_to_end()
        self._task = asyncio.create_task(self._run())

    def begin(self) -> Tally:
        self.tally = Tally()
        return self.tally

    async def _run(self) -> None:
        field_name = self.answer_field
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            now_us = time.time_ns() // 1000
            tally = self.tally
            for records in batch.values():
                for record in records:
                    tally.outputs += 1
                    try:
                        value = orjson.loads(record.value)
                        trigger = value[field_name]
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        tally.unreadable += 1
                        continue
                    if "action" in value:
                        tally.actions[value["action"]] += 1
                    if trigger in tally.first_read_us:
                        tally.duplicates += 1
                    else:
                        tally.first_read_us[trigger] = now_us

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


# ---------------------------------------------------------------- one run


@dataclass
class RunSpec:
    load: str
    rate: float
    duration: float
    seed: int
    id_tag: str
    generator_linger_ms: float


async def run_once(system: System, measurer: Measurer, spec: RunSpec) -> dict[str, Any]:
    out = VAR / f"gen-{uuid.uuid4().hex[:8]}.json"
    VAR.mkdir(parents=True, exist_ok=True)
    generator = await Generator.start({
        "bootstrap": BOOTSTRAP, "topics": system.inputs, "load": spec.load, "rate": spec.rate,
        "duration": spec.duration, "seed": spec.seed, "id_tag": spec.id_tag,
        "linger_ms": spec.generator_linger_ms, "out": str(out)})
    tally = measurer.begin()

    async def handled_so_far() -> float:
        if system.counter is None:
            return float(tally.outputs)
        return await asyncio.to_thread(system.counter)

    try:
        before = await handled_so_far()
        waits_before = await asyncio.to_thread(system.input_wait) if system.input_wait else {}
        sampler = GroupSampler({"system": system.pids(), "generator": [generator.proc.pid],
                                "harness": [os.getpid()]}, without_children=["harness"])
        with sampler:
            generator.go()
            report = await generator.report()
        after_load = await handled_so_far()
    except BaseException:
        await generator.kill()
        raise
    load_end = time.monotonic()
    triggers: dict[str, int] = report.pop("triggers")
    sent = report["sent"]
    expect_answers = ANSWER_EXPECTED[spec.load] or system.name == "floor"
    drained = False
    consumed_at: float | None = None
    unanswered = list(triggers)
    while time.monotonic() - load_end < DRAIN_LIMIT_S:
        if not system.alive():
            break
        consumed = await handled_so_far() - before >= sent
        unanswered = [t for t in unanswered if t not in tally.first_read_us]  # shrinks fast
        if expect_answers and not unanswered:
            drained = True
            break
        if consumed:
            consumed_at = consumed_at or time.monotonic()
            if time.monotonic() - consumed_at >= GRACE_S:
                drained = True
                break
        await asyncio.sleep(0.1)
    drain_s = time.monotonic() - load_end
    handled_total = await handled_so_far() - before if system.alive() else None
    input_wait = (input_wait_summary(waits_before, await asyncio.to_thread(system.input_wait))
                  if system.input_wait and system.alive() else None)

    hist = HdrHistogram(1, 3_600_000_000, 3)  # 1 µs .. 1 h
    answered = 0
    for trigger, sent_us in triggers.items():
        read_us = tally.first_read_us.get(trigger)
        if read_us is not None:
            answered += 1
            hist.record_value(max(1, read_us - sent_us))
    other = sum(1 for t in tally.first_read_us if t not in triggers)
    took = report["took_s"]
    handled_rate = round((after_load - before) / took, 1)
    row: dict[str, Any] = {
        "offered_rate": spec.rate, "seed": spec.seed, "sent": sent,
        "sent_rate": report["sent_rate"], "handled_rate": handled_rate,
        "handled_share": round(handled_rate / report["sent_rate"], 3) if report["sent_rate"] else None,
        "handled_after_drain": handled_total,
        "triggers": len(triggers), "answered": answered,
        "missing": len(triggers) - answered if expect_answers else None,
        "answers_to_other_records": other, "duplicate_answers": tally.duplicates,
        "outputs": tally.outputs, "actions": dict(tally.actions),
        "latency_ms": summary(hist), "input_wait_ms": input_wait,
        "drain_s": round(drain_s, 2), "drained": drained,
        "generator": {k: report[k] for k in ("took_s", "flushed_s", "max_behind_schedule_ms",
                                             "send_failures", "cpu_s", "cpu_percent", "by_topic")},
        "process": sampler.figures(),
    }
    reasons = []
    if row["handled_share"] is not None and row["handled_share"] < SATURATED_HANDLED:
        reasons.append(f"handled {row['handled_share']:.0%} of the sent rate")
    if row["latency_ms"].get("p99", 0) > SATURATED_P99_MS:
        reasons.append("p99 > 1 s")
    if row["missing"]:
        reasons.append(f"{row['missing']} answers missing")
    if not drained:
        reasons.append("backlog not drained" if system.alive() else "process died")
    row["saturated"] = bool(reasons)
    row["saturation_reasons"] = reasons
    # Not the system's fault: the run offered less than asked (the generator shares the cores).
    row["generator_kept_up"] = report["sent_rate"] >= GENERATOR_KEPT_UP * spec.rate
    return row


# ---------------------------------------------------------------- sweeps


def spread(rows: list[dict[str, Any]], get: Callable[[dict[str, Any]], float | None]
           ) -> dict[str, float] | None:
    values = [v for v in (get(r) for r in rows) if v is not None]
    if not values:
        return None
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2)}


def aggregate(rate: float, repeats: list[dict[str, Any]]) -> dict[str, Any]:
    lat = {p: spread(repeats, lambda r, p=p: r["latency_ms"].get(p)) for p in ("p50", "p99", "p999")}
    waits = {p: spread(repeats, lambda r, p=p: (r.get("input_wait_ms") or {}).get(p))
             for p in ("p50", "p99")}
    flags = [r["saturated"] for r in repeats]
    return {
        "offered_rate": rate,
        "repeats": len(repeats),
        "latency_ms": lat,
        "input_wait_ms": waits if waits["p99"] is not None else None,
        "handled_rate": spread(repeats, lambda r: r["handled_rate"]),
        "sent_rate": spread(repeats, lambda r: r["sent_rate"]),
        "triggers": sum(r["triggers"] for r in repeats),
        "answered": sum(r["answered"] for r in repeats),
        "missing": (sum(r["missing"] for r in repeats)
                    if all(r["missing"] is not None for r in repeats) else None),
        "system_cpu_percent": spread(repeats, lambda r: r["process"].get("system", {})
                                     .get("cpu_percent_mean")),
        "system_rss_mib_max": spread(repeats, lambda r: r["process"].get("system", {})
                                     .get("rss_mib_max")),
        "generator_cpu_percent": spread(repeats, lambda r: r["generator"]["cpu_percent"]),
        "harness_cpu_percent": spread(repeats, lambda r: r["process"].get("harness", {})
                                      .get("cpu_percent_mean")),
        "machine_cpu_percent": spread(repeats, lambda r: r["process"].get("machine", {})
                                      .get("cpu_percent_mean")),
        "generator_kept_up": all(r["generator_kept_up"] for r in repeats),
        # Saturated when most repeats were (or the last could not drain its backlog).
        "saturated": sum(flags) * 2 > len(flags) or not repeats[-1]["drained"],
        "runs": repeats,
    }


async def sweep(system_name: str, load: str, args: argparse.Namespace, run_id: str,
                sweep_index: int, rates: list[tuple[int, float]] | None = None) -> dict[str, Any]:
    """Start ``system_name``, warm it up at the first of ``rates`` (``(index in --rates, rate)``;
    default: all of ``--rates``), run each rate's repeats until one saturates, stop it."""
    rates = list(enumerate(args.rates)) if rates is None else rates
    tag = f"{run_id}-{sweep_index}"
    started = time.monotonic()
    if system_name == "floor":
        system = await start_floor(tag, args.linger_ms)
    elif system_name == "quix":
        system = await start_quix(tag, args.linger_ms)
    else:
        system = await start_engine(tag, int(system_name.split("-")[1]), args.engine_env)
    print(f"[{load} / {system_name}] ready in {time.monotonic() - started:.1f} s "
          f"({system.settings.get('settle_s')} s for the group to settle)", flush=True)
    measurer = Measurer(system.outputs, system.answer_field)
    rows: list[dict[str, Any]] = []
    warm_up: dict[str, Any] | None = None
    try:
        await measurer.start()
        load_index = LOADS.index(load)
        if args.warm_up > 0:
            warm_up = await run_once(system, measurer, RunSpec(
                load, rates[0][1], args.warm_up, seed=1_000_000 * (load_index + 1) + 999,
                id_tag="w", generator_linger_ms=args.generator_linger_ms))
            print(f"[{load} / {system_name}] warm-up {args.warm_up:g} s at {rates[0][1]:g}/s: "
                  f"p99 {warm_up['latency_ms'].get('p99')} ms (discarded)", flush=True)
        for rate_index, rate in rates:
            repeats = []
            for repeat in range(args.repeats):
                # The same seeds for every system: each sees the same records at a rate.
                seed = 1_000_000 * (load_index + 1) + 1000 * rate_index + repeat
                row = await run_once(system, measurer, RunSpec(
                    load, rate, args.duration, seed, id_tag=f"{rate_index:02d}{repeat:02d}",
                    generator_linger_ms=args.generator_linger_ms))
                repeats.append(row)
                lat = row["latency_ms"]
                print(f"[{load} / {system_name}] {rate:g}/s #{repeat + 1}: handled "
                      f"{row['handled_rate']:g}/s, answered {row['answered']}/{row['triggers']}, "
                      f"p50 {lat.get('p50')} p99 {lat.get('p99')} p99.9 {lat.get('p999')} ms, "
                      f"CPU {row['process'].get('system', {}).get('cpu_percent_mean')} %, "
                      f"generator {row['generator']['cpu_percent']} %"
                      + (f", input wait p50 {row['input_wait_ms']['p50']} p99 "
                         f"{row['input_wait_ms']['p99']} ms" if row["input_wait_ms"] else "")
                      + (f" — saturated: {', '.join(row['saturation_reasons'])}"
                         if row["saturated"] else "")
                      + ("" if row["generator_kept_up"] else
                         f" — the generator fell behind: sent {row['sent_rate']:g}/s"), flush=True)
                if not row["drained"]:
                    break  # a backlog left behind would spoil the next run
            rows.append(aggregate(rate, repeats))
            if rows[-1]["saturated"]:
                break
    finally:
        await measurer.stop()
        system.stop()
    return {"system": system_name, "load": load, "tag": tag, "inputs": system.inputs,
            "outputs": system.outputs, "settings": system.settings, "warm_up": warm_up,
            "rows": rows,
            "saturated_at": next((r["offered_rate"] for r in rows if r["saturated"]), None),
            "highest_unsaturated_rate": max((r["offered_rate"] for r in rows if not r["saturated"]),
                                            default=None)}


def ratios(sweeps: list[dict[str, Any]]) -> dict[str, Any]:
    """Per load and rate: engine p99 over floor and over quix (medians); the two-worker
    throughput ratio."""
    by = {(s["load"], s["system"]): {r["offered_rate"]: r for r in s["rows"]} for s in sweeps}
    loads = sorted({s["load"] for s in sweeps}, key=LOADS.index)
    result: dict[str, Any] = {"p99": {}, "two_workers": {}}
    for load in loads:
        rows = []
        for engine in ("engine-1", "engine-2"):
            for base in ("floor", "quix"):
                e, b = by.get((load, engine), {}), by.get((load, base), {})
                for rate in sorted(set(e) & set(b)):
                    ep, bp = e[rate]["latency_ms"]["p99"], b[rate]["latency_ms"]["p99"]
                    if ep and bp and bp["median"]:
                        rows.append({"system": engine, "over": base, "offered_rate": rate,
                                     "ratio": round(ep["median"] / bp["median"], 2)})
        result["p99"][load] = rows
        one, two = by.get((load, "engine-1")), by.get((load, "engine-2"))
        if one and two:
            top1 = max(r["handled_rate"]["median"] for r in one.values() if r["handled_rate"])
            top2 = max(r["handled_rate"]["median"] for r in two.values() if r["handled_rate"])
            ok1 = max((r for r, row in one.items() if not row["saturated"]), default=None)
            ok2 = max((r for r, row in two.items() if not row["saturated"]), default=None)
            result["two_workers"][load] = {
                "max_handled_rate": {"engine-1": top1, "engine-2": top2},
                "ratio": round(top2 / top1, 2) if top1 else None,
                "highest_unsaturated_rate": {"engine-1": ok1, "engine-2": ok2},
                "note": "max over the rates run of the median handled rate; a ratio near 1 with "
                        "neither saturated only says both kept up with the highest rate"}
    return result


# ---------------------------------------------------------------- output

STYLE = {"floor": ("tab:gray", "--", "s"), "quix": ("tab:green", "-.", "^"),
         "engine-1": ("tab:blue", "-", "o"), "engine-2": ("tab:red", "-", "D")}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    loads = [load for load in LOADS if any(s["load"] == load for s in result["sweeps"])]
    fig, axes = plt.subplots(len(loads), 2, figsize=(12, 4.2 * len(loads)), squeeze=False)
    for (lat, thr), load in zip(axes, loads, strict=True):
        top = 0.0
        for s in (s for s in result["sweeps"] if s["load"] == load):
            colour, style, marker = STYLE.get(s["system"], ("black", "-", "x"))
            rows = [r for r in s["rows"] if r["latency_ms"]["p99"]]
            rates = [r["offered_rate"] for r in rows]
            med = [r["latency_ms"]["p99"]["median"] for r in rows]
            err = [[m - r["latency_ms"]["p99"]["min"] for m, r in zip(med, rows, strict=True)],
                   [r["latency_ms"]["p99"]["max"] - m for m, r in zip(med, rows, strict=True)]]
            lat.errorbar(rates, med, yerr=err, linestyle=style, marker=marker, color=colour,
                         capsize=3, label=f"{s['system']} p99")
            hrows = [r for r in s["rows"] if r["handled_rate"]]
            hr = [r["handled_rate"]["median"] for r in hrows]
            thr.errorbar([r["offered_rate"] for r in hrows], hr,
                         yerr=[[m - r["handled_rate"]["min"] for m, r in zip(hr, hrows, strict=True)],
                               [r["handled_rate"]["max"] - m for m, r in zip(hr, hrows, strict=True)]],
                         linestyle=style, marker=marker, color=colour, capsize=3, label=s["system"])
            top = max([top, *[r["offered_rate"] for r in s["rows"]]])
        for target, ls in zip(LATENCY_TARGETS_MS, (":", "--"), strict=True):
            lat.axhline(target, color="black", linewidth=0.8, linestyle=ls, label=f"{target} ms")
        rates = sorted({r["offered_rate"] for s in result["sweeps"] if s["load"] == load
                        for r in s["rows"]})
        for ax in (lat, thr):
            ax.set_xscale("log")
            ax.set_xticks(rates, [f"{r:g}" for r in rates])
            ax.minorticks_off()
        lat.set_yscale("log")
        lat.set_xlabel("offered rate (records/s)")
        lat.set_ylabel("event-to-action p99 (ms)\nmedian of repeats, bars min-max")
        lat.set_title(f"{load}: p99 latency")
        lat.grid(True, which="both", alpha=0.3)
        lat.legend(fontsize=7)
        low = min(rates, default=1.0)
        thr.plot([low, top], [low, top], ":", color="black", label="offered")
        thr.set_yscale("log")
        thr.set_yticks(rates, [f"{r:g}" for r in rates])
        thr.yaxis.set_minor_formatter(ticker.NullFormatter())
        thr.set_xlabel("offered rate (records/s)")
        thr.set_ylabel("handled rate (records/s)")
        thr.set_title(f"{load}: handled vs offered")
        thr.grid(True, alpha=0.3)
        thr.legend(fontsize=7)
    fig.suptitle(f"event to action, {result['machine']['cores']} cores, broker on the machine "
                 f"({result['machine']['date']}, commit {result['machine']['commit']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(result: dict[str, Any]) -> str:
    def fmt(s: dict[str, float] | None, digits: int = 1) -> str:
        if not s:
            return "-"
        if s["min"] == s["max"]:
            return f"{s['median']:.{digits}f}"
        return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"

    head = (f"{'load':<13}{'system':<10}{'offered':>8}{'handled':>22}{'answered':>16}"
            f"{'p50 ms':>20}{'p99 ms':>24}{'p99.9 ms':>22}{'CPU %':>8}{'gen %':>7}  sat")
    lines = [head, "-" * len(head)]
    for s in result["sweeps"]:
        for r in s["rows"]:
            cpu = r["system_cpu_percent"]
            gen = r["generator_cpu_percent"]
            lines.append(
                f"{s['load']:<13}{s['system']:<10}{r['offered_rate']:>8g}"
                f"{fmt(r['handled_rate'], 0):>22}{str(r['answered']) + '/' + str(r['triggers']):>16}"
                f"{fmt(r['latency_ms']['p50']):>20}{fmt(r['latency_ms']['p99']):>24}"
                f"{fmt(r['latency_ms']['p999']):>22}"
                f"{(cpu['median'] if cpu else float('nan')):>8.0f}"
                f"{(gen['median'] if gen else float('nan')):>7.0f}  {'yes' if r['saturated'] else ''}"
                f"{'' if r['generator_kept_up'] else ' (generator behind)'}")
    return "\n".join(lines)


def parse_env(items: list[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--engine-env wants KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated, of {', '.join(SYSTEMS)}")
    parser.add_argument("--loads", default=",".join(LOADS), help=f"comma-separated, of {', '.join(LOADS)}")
    parser.add_argument("--rates", default="250,1000,2000,4000,8000",
                        help="offered rates (records/s), ascending; a sweep stops at saturation")
    parser.add_argument("--repeats", type=int, default=3, help="runs per rate")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per run")
    parser.add_argument("--warm-up", type=float, default=5.0,
                        help="seconds at the first rate before each sweep, discarded")
    parser.add_argument("--engine-env", action="append", default=[], metavar="KEY=VALUE",
                        help="added to every worker's environment (repeatable), e.g. "
                             "ORCHESTRATOR_PRODUCER_LINGER_MS=1")
    parser.add_argument("--engine-tree", type=Path, default=None,
                        help="workers import the engine from this source tree (e.g. a git "
                             "worktree of an older commit), for a before/after on one machine")
    parser.add_argument("--linger-ms", type=float, default=0.0,
                        help="producer linger of the floor and the quix peer (the engine's "
                             "default is 0 too; change it with --engine-env)")
    parser.add_argument("--generator-linger-ms", type=float, default=1.0)
    parser.add_argument("--interleave", action="store_true",
                        help="rate by rate: every system at a rate (each started afresh and "
                             "warmed up there), the systems' order moved by one per rate, "
                             "instead of one system's whole sweep after another's")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for JSON and PNG")
    args = parser.parse_args(argv)
    args.systems = [s for s in args.systems.split(",") if s]
    args.loads = [s for s in args.loads.split(",") if s]
    for name, allowed, given in (("system", SYSTEMS, args.systems), ("load", LOADS, args.loads)):
        unknown = [g for g in given if g not in allowed]
        if unknown:
            parser.error(f"unknown {name}(s) {', '.join(unknown)}; expected {', '.join(allowed)}")
    args.rates = [float(r) for r in args.rates.split(",")]
    if args.rates != sorted(args.rates) or args.repeats < 1 or args.duration <= 0:
        parser.error("--rates must ascend, --repeats be >= 1 and --duration > 0")
    try:
        args.engine_env = parse_env(args.engine_env)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if args.engine_tree is not None:
        if not (args.engine_tree / "orchestrator" / "__init__.py").exists():
            parser.error(f"--engine-tree {args.engine_tree} holds no orchestrator package")
        args.engine_env.update({"PYTHONPATH": str(ROOT / "benchmarks" / "tree_import"),
                                "BENCH_ENGINE_TREE": str(args.engine_tree.resolve())})
    return args


async def run_all(args: argparse.Namespace, run_id: str,
                  on_sweep: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    sweeps: list[dict[str, Any]] = []
    index = 0
    try:
        for load in args.loads:
            systems = [name for name in args.systems
                       if not (name == "quix" and load not in QUIX_LOADS)]
            if not args.interleave:
                for system_name in systems:
                    index += 1
                    sweeps.append(await sweep(system_name, load, args, run_id, index))
                    on_sweep(sweeps)
                continue
            # Each rate in turn, every system at it (started afresh, warmed up at that rate),
            # in an order that moves by one system per rate: the systems meet the machine and
            # the broker in the same minutes, none always after the others' heaviest load.
            parts: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
            for rate_index, rate in enumerate(args.rates):
                for system_name in rotated(systems, rate_index):
                    done = parts[system_name]
                    if done and done[-1]["saturated_at"] is not None:
                        continue
                    index += 1
                    done.append(await sweep(system_name, load, args, run_id, index,
                                            [(rate_index, rate)]))
                    on_sweep(sweeps + [joined_sweep(p) for p in parts.values() if p])
            sweeps.extend(joined_sweep(p) for p in parts.values() if p)
    finally:
        with contextlib.suppress(Exception):
            deleted = await delete_topics_of(run_id)
            print(f"deleted this run's {deleted} topics", flush=True)
    return sweeps


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    status, _ = LocalBroker().start()
    run_id = uuid.uuid4().hex[:8]
    command = "python benchmarks/event_to_action.py " + " ".join(sys.argv[1:] if argv is None else argv)
    header = {
        "benchmark": "event_to_action", "machine": machine(), "command": command.strip(),
        "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                     text=True, check=False).stdout.strip(),
        "run_id": run_id,
        "settings": {
            "systems": args.systems, "loads": args.loads, "rates": args.rates,
            "repeats": args.repeats, "duration_s": args.duration, "warm_up_s": args.warm_up,
            "interleave": args.interleave,
            "engine_env": args.engine_env, "floor_and_quix_linger_ms": args.linger_ms,
            "engine_tree": None if args.engine_tree is None else {
                "path": str(args.engine_tree),
                "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.engine_tree,
                                             capture_output=True, text=True,
                                             check=False).stdout.strip()},
            "generator_linger_ms": args.generator_linger_ms, "partitions": PARTITIONS,
            "pool_size": f"max({POOL_MIN}, min({POOL_MAX}, rate / 4)) visitors or customers",
            "measurer_fetch_max_wait_ms": MEASURER_FETCH_MAX_WAIT_MS,
            "drain_limit_s": DRAIN_LIMIT_S,
            "saturation": f"handled < {SATURATED_HANDLED:.0%} of the sent rate, p99 > "
                          f"{SATURATED_P99_MS:g} ms, answers missing or backlog not drained, in "
                          "most repeats of a rate",
            "latency": "read by the measurer minus handed to the producer by the generator (µs)",
            "handled_rate": "engine: /metrics orchestrator_events_total + "
                            "orchestrator_rejected_records_total over its workers; quix: records "
                            "processed (on_message_processed); floor: records copied",
        },
        "broker_pid": status.pid,
    }
    args.out.mkdir(parents=True, exist_ok=True)

    def write(sweeps: list[dict[str, Any]]) -> None:
        result = {**header, "sweeps": sweeps, "ratios": ratios(sweeps)}
        (args.out / "event_to_action.json").write_text(json.dumps(result, indent=2) + "\n")

    sweeps = asyncio.run(run_all(args, run_id, write))
    result = {**header, "sweeps": sweeps, "ratios": ratios(sweeps)}
    write(sweeps)
    plot(result, args.out / "event_to_action.png")
    print()
    print(table(result))
    for load, rows in result["ratios"]["p99"].items():
        if rows:
            print(f"{load}: p99 ratios " + ", ".join(
                f"{r['system']}/{r['over']} at {r['offered_rate']:g}/s x{r['ratio']}" for r in rows))
    for load, two in result["ratios"]["two_workers"].items():
        print(f"{load}: two workers handled up to {two['max_handled_rate']['engine-2']:g}/s, "
              f"one {two['max_handled_rate']['engine-1']:g}/s (x{two['ratio']})")
    print(f"\nwrote {args.out / 'event_to_action.json'} and {args.out / 'event_to_action.png'}")


def bench_floor(rates: list[float], duration: float, run_id: str) -> list[dict[str, Any]]:
    """The floor alone under persona traffic, one run per rate, rows as context_latency.py
    reads them (``offered_rate``, ``latency_ms``, ``process``)."""
    args = argparse.Namespace(rates=rates, repeats=1, duration=duration, warm_up=10.0,
                              linger_ms=0.0, generator_linger_ms=1.0, engine_env={})

    own = f"{run_id}f{uuid.uuid4().hex[:4]}"  # the caller's topics also carry run_id: keep them

    async def go() -> dict[str, Any]:
        try:
            return await sweep("floor", "personas", args, own, 0)
        finally:
            await delete_topics_of(own)

    rows = []
    for agg in asyncio.run(go())["rows"]:
        run = agg["runs"][0]
        rows.append({"offered_rate": run["offered_rate"], "sent": run["sent"],
                     "sent_rate": run["sent_rate"], "latency_ms": run["latency_ms"],
                     "handled_rate_during_load": run["handled_rate"],
                     "process": run["process"].get("system", {})})
    return rows


if __name__ == "__main__":
    main()
