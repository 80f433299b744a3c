"""Memory and store size per person: the ``profiles`` table on RocksDB, without a broker.

For each size N, N persona journeys (the simulator's mix) go through the pure core exactly as a
worker would run them: each step is stamped with a ``ts``, encoded with orjson, decoded with
``decode_record`` and applied with ``process_event``; after every event the profile is
encoded as the worker stores it (``runtime.stores.encode_profile``) and put under its key
(person id, UTF-8), as the worker's table does.
The store is the one a worker opens: Faust's ``RocksDBOptions(use_rocksdict=True).open(path)``,
one DB per partition (4, the default), a person's key sent to the partition Kafka's default
partitioner (murmur2) would pick. Writes go in ``WriteBatch`` es of a few thousand puts.

Measured per N: profiles (keys) and journeys, key and value sizes (mean, p50, p99, max), the
on-disk size before and after a flush and a full manual compaction, the compacted changelog
equivalent (key + value bytes per profile, before Kafka's compression and record overhead),
the RSS growth of the writing process (each N runs in a fresh process) and the time taken.

    python benchmarks/store_size.py [--sizes 10000,100000,1000000]

Writes benchmarks/results/store_size.json and .png. Store directories are made under
var/bench-store/ and removed afterwards.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rocksdict  # noqa: E402
from aiokafka.partitioner import murmur2  # noqa: E402
from faust.stores.rocksdb import RocksDBOptions  # noqa: E402
from machine_info import describe_machine  # noqa: E402

from orchestrator.core.events import Accepted, Source, decode_record  # noqa: E402
from orchestrator.core.journey import Trigger, process_event  # noqa: E402
from orchestrator.core.profile import Profile  # noqa: E402
from orchestrator.core.rules import RuleSet  # noqa: E402
from orchestrator.runtime.settings import load_rules, load_settings  # noqa: E402
from orchestrator.runtime.stores import decode_profile, encode_profile  # noqa: E402
from orchestrator.simulate.personas import new_journey  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
STORE_ROOT = ROOT / "var" / "bench-store"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
TARGET_BYTES_PER_PERSON = 2048
PARTITIONS = 4  # Settings.partitions default: one RocksDB per table partition
BATCH_JOURNEYS = 1_000  # journeys per WriteBatch round
START_TS = 1_780_000_000_000  # 2026-05-28; journeys start JOURNEY_SPACING_MS apart from here
JOURNEY_SPACING_MS = 10
PROCESSING_DELAY_MS = 5  # now_ms - kafka_ts given to the core
FIELD_SAMPLE = 5_000  # stored profiles decoded for the per-field breakdown


def machine() -> dict[str, Any]:
    return describe_machine(rocksdict=version("rocksdict"), faust=version("faust-streaming"),
                            orjson=version("orjson"), nice=os.nice(0))


def partition_of(key: bytes) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka and Java) picks."""
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def dir_bytes(path: Path) -> dict[str, int]:
    """Bytes on disk under ``path``: SST files, write-ahead logs, and everything."""
    sizes = {"sst": 0, "wal": 0, "total": 0}
    for file in path.rglob("*"):
        if file.is_file():
            size = file.stat().st_size
            sizes["total"] += size
            if file.suffix == ".sst":
                sizes["sst"] += size
            elif file.suffix == ".log":
                sizes["wal"] += size
    return sizes


def summary(values: list[int]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> int:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return {"mean": round(statistics.fmean(ordered), 1), "p50": at(0.50), "p99": at(0.99),
            "max": ordered[-1]}


def rocksdb_memory(dbs: list[rocksdict.Rdict]) -> dict[str, int]:
    """RocksDB's own view of its memory, summed over the partition DBs."""
    names = {"memtables": "rocksdb.cur-size-all-mem-tables",
             "table_readers": "rocksdb.estimate-table-readers-mem",
             "block_cache": "rocksdb.block-cache-usage",
             "block_cache_capacity": "rocksdb.block-cache-capacity"}  # one cache per DB
    return {label: sum(db.property_int_value(prop) or 0 for db in dbs)
            for label, prop in names.items()}


def compression_of(db_dir: Path) -> str:
    options = sorted(db_dir.glob("OPTIONS-*"))
    for line in options[-1].read_text().splitlines() if options else []:
        if line.strip().startswith("compression="):
            return line.split("=", 1)[1]
    return "unknown"


def field_sizes(profile: dict[str, Any]) -> dict[str, int]:
    """Bytes each field takes in the orjson encoding ("name":value, plus its comma)."""
    return {name: len(orjson.dumps({name: value})) - 1 for name, value in profile.items()}


def name_bytes(value: Any) -> int:
    """Bytes spent on object member names ("name": with quotes and colon), at every depth."""
    if isinstance(value, dict):
        return sum(len(orjson.dumps(k)) + 1 + name_bytes(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(name_bytes(v) for v in value)
    return 0


def saturated_profiles(policy: RuleSet, uuid_ids: bool) -> dict[str, Any]:
    """A long-lived person, driven through the core until every bounded list is full.

    The web profile: 40 daily sessions (login, 3 self-service pages, logout); every direct link
    gets "shown" and "clicked" feedback. The contact-centre profile (keyed by the customer id):
    30 contacts of 3 events. Event ids as the simulator makes them, or UUIDs (``uuid_ids``).
    """
    rng = random.Random(7)
    visitor, customer = "v-5a1e0c0ffee1", "c-500001"
    counter = itertools.count(1)
    profiles: dict[str, Profile | None] = {}
    events = 0

    def event_id(owner: str) -> str:
        if uuid_ids:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return f"{owner}-{next(counter)}-{rng.getrandbits(32):08x}"

    def feed(source: Source, key: str, value: dict[str, Any], ts: int) -> list[dict[str, Any]]:
        nonlocal events
        decoded = decode_record(source, key.encode(), orjson.dumps(dict(value, ts=ts)),
                                ts + PROCESSING_DELAY_MS)
        assert isinstance(decoded, Accepted), decoded
        outcome = process_event(decoded.event, key, profiles.get(key),
                                Trigger(ts, ts + PROCESSING_DELAY_MS), policy)
        profiles[key] = outcome.profile
        events += 1
        return outcome.actions

    pages = [("/billing/invoices", "invoices"), ("/billing/faq", "billing"),
             ("/account/settings", "account"), ("/contract/terms", "contract"),
             ("/help/moving", "moving")]
    for day in range(40):
        ts = START_TS + day * 86_400_000
        web = {"visitor_id": visitor, "customer_id": customer, "session_id": f"s-{rng.getrandbits(32):08x}"}
        feed(Source.CLICKSTREAM, visitor, {"event_id": event_id(visitor), "type": "login", **web}, ts)
        for url, category in rng.sample(pages, 3):
            ts += 20_000
            actions = feed(Source.CLICKSTREAM, visitor, {
                "event_id": event_id(visitor), "type": "page_view", **web,
                "page": {"url": url, "category": category}}, ts)
            for action in actions:
                for outcome in ("shown", "clicked"):
                    ts += 1_000
                    feed(Source.ACTION_FEEDBACK, visitor,
                         {"action_id": action["action_id"], "outcome": outcome}, ts)
        feed(Source.CLICKSTREAM, visitor, {"event_id": event_id(visitor), "type": "logout", **web},
             ts + 20_000)
    for day in range(30):
        ts = START_TS + day * 86_400_000 + 3_600_000
        for event_type in ("contact_started", "case_opened", "contact_ended"):
            ts += 60_000
            feed(Source.CONTACT_CENTRE, customer, {
                "event_id": event_id(customer), "type": event_type, "customer_id": customer,
                "channel": "phone", "reason": "billing", "sentiment": round(rng.uniform(-1, 1), 2),
                "agent_id": "agent-7"}, ts)
    out: dict[str, Any] = {"event_ids": "uuid4" if uuid_ids else "simulator", "events": events}
    for kind, key in (("web_profile", visitor), ("contact_centre_profile", customer)):
        profile = profiles[key]
        assert profile is not None
        raw = encode_profile(profile)
        value = orjson.loads(raw)
        out[kind] = {
            "value_bytes": len(raw),
            "disk_bytes_approx": disk_bytes_per_copy(key[:6], raw),
            "name_bytes": name_bytes(value),
            "list_lengths": {k: len(v) for k, v in value.items() if isinstance(v, list)},
            "fields": dict(sorted(field_sizes(value).items(), key=lambda item: -item[1]))}
    return out


def disk_bytes_per_copy(key_prefix: str, value: bytes, copies: int = 2_000) -> float:
    """On-disk bytes per profile for ``copies`` of ``value`` under distinct keys, compacted.

    Snappy compresses each 4 KiB block on its own, so copies larger than a block barely help
    one another: this approximates what one such profile costs on disk.
    """
    path = STORE_ROOT / f"copies-{uuid.uuid4().hex[:8]}.db"
    try:
        db = RocksDBOptions(use_rocksdict=True).open(path)
        batch = rocksdict.WriteBatch(raw_mode=True)
        for i in range(copies):
            batch.put(f"{key_prefix}{i:08d}".encode(), value)
        db.write(batch)
        db.flush()
        db.compact_range(None, None)
        size = dir_bytes(path)["sst"]
        db.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return round(size / copies, 1)


def run_size(n: int, seed: int) -> dict[str, Any]:
    """Build and store ``n`` journeys in fresh partition DBs; measure; remove the DBs."""
    process = psutil.Process()
    policy = load_rules(load_settings().rules_dir)
    store_dir = STORE_ROOT / f"n{n}-{uuid.uuid4().hex[:8]}"
    store_dir.mkdir(parents=True)
    rss_start = process.memory_info().rss
    options = RocksDBOptions(use_rocksdict=True)  # what the Store builds for driver=rocksdict
    paths = [store_dir / f"profiles-{p}.db" for p in range(PARTITIONS)]
    dbs = [options.open(path) for path in paths]
    rss_opened = process.memory_info().rss
    rss_peak = rss_opened
    rng = random.Random(seed)
    batches = [rocksdict.WriteBatch(raw_mode=True) for _ in dbs]
    pending: dict[bytes, bytes] = {}  # written to a batch, not yet to its DB
    puts = events = actions = reloaded = rejected = 0
    changelog_bytes_all = 0  # one changelog record per event, before Kafka compacts the topic
    personas: dict[str, int] = {}
    started = time.perf_counter()
    try:
        for i in range(n):
            persona, steps = new_journey(rng)
            personas[persona] = personas.get(persona, 0) + 1
            clock = START_TS + i * JOURNEY_SPACING_MS
            live: dict[bytes, Profile] = {}  # profiles this journey touched, as the core left them
            for step in steps:
                clock += int(step.think_s * 1000)
                key = step.key.encode()
                now = clock + PROCESSING_DELAY_MS
                decoded = decode_record(step.source, key, orjson.dumps(dict(step.value, ts=clock)), now)
                if not isinstance(decoded, Accepted):
                    rejected += 1
                    continue
                events += 1
                partition = partition_of(key)
                profile = live.get(key)
                if profile is None:  # first touch in this journey: load it as the worker would
                    stored = pending.get(key)
                    if stored is None:
                        stored = dbs[partition].get(key)
                    if stored is not None:
                        reloaded += 1
                        profile = decode_profile(stored)
                outcome = process_event(decoded.event, decoded.key, profile, Trigger(clock, now), policy)
                if outcome.replay:
                    continue
                actions += len(outcome.actions)
                if outcome.profile is None:  # erasure (the personas send none)
                    batches[partition].delete(key)
                    pending.pop(key, None)
                    live.pop(key, None)
                    continue
                value = encode_profile(outcome.profile)
                batches[partition].put(key, value)
                pending[key] = value
                live[key] = outcome.profile
                puts += 1
                changelog_bytes_all += len(key) + len(value)
            if (i + 1) % BATCH_JOURNEYS == 0 or i + 1 == n:
                for db, batch in zip(dbs, batches, strict=True):
                    db.write(batch)
                batches = [rocksdict.WriteBatch(raw_mode=True) for _ in dbs]
                pending.clear()
                rss_peak = max(rss_peak, process.memory_info().rss)
            if (i + 1) % 100_000 == 0:
                elapsed = time.perf_counter() - started
                print(f"  n={n:,}: {i + 1:,} journeys in {elapsed:.0f} s", flush=True)
        write_s = time.perf_counter() - started
        rss_written = process.memory_info().rss
        rss_peak = max(rss_peak, rss_written)
        memory_written = rocksdb_memory(dbs)
        disk_written = dir_bytes(store_dir)

        t0 = time.perf_counter()
        for db in dbs:
            db.flush()
        flush_s = time.perf_counter() - t0
        disk_flushed = dir_bytes(store_dir)
        t0 = time.perf_counter()
        compact = rocksdict.CompactOptions()
        compact.set_bottommost_level_compaction(rocksdict.BottommostLevelCompaction.force())
        for db in dbs:
            db.compact_range(None, None, compact)
        compact_s = time.perf_counter() - t0
        disk_compacted = dir_bytes(store_dir)
        sst_files = sum(len(db.live_files()) for db in dbs)
        rss_compacted = process.memory_info().rss

        # Read back what is stored: the final state of every key (without filling the cache).
        scan = rocksdict.ReadOptions()
        scan.fill_cache(False)
        key_sizes: list[int] = []
        value_sizes: list[int] = []
        by_kind: dict[str, list[int]] = {}
        sample: list[tuple[bytes, bytes]] = []  # a uniform reservoir sample of stored profiles
        sampler = random.Random(seed)
        per_partition: list[int] = []
        for db in dbs:
            per_partition.append(0)
            for key, value in db.items(read_opt=scan):
                per_partition[-1] += 1
                key_sizes.append(len(key))
                value_sizes.append(len(value))
                by_kind.setdefault(key[:2].decode(), []).append(len(value))
                if len(sample) < FIELD_SAMPLE:
                    sample.append((key, value))
                elif (slot := sampler.randrange(len(key_sizes))) < FIELD_SAMPLE:
                    sample[slot] = (key, value)
        compression = compression_of(paths[0])
        for db in dbs:
            db.close()
        rss_closed = process.memory_info().rss
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)

    profiles = len(value_sizes)
    stored_bytes = sum(key_sizes) + sum(value_sizes)
    fields: dict[str, list[int]] = {}
    names_total = 0
    for _, value in sample:
        decoded_value = orjson.loads(value)
        names_total += name_bytes(decoded_value)
        for name, size in field_sizes(decoded_value).items():
            fields.setdefault(name, []).append(size)
    sample_mean = statistics.fmean(len(v) for _, v in sample)
    field_means = sorted(((name, statistics.fmean(sizes)) for name, sizes in fields.items()),
                         key=lambda item: -item[1])
    median_value = statistics.median_low(len(v) for _, v in sample)
    typical_key, typical_value = next((k, v) for k, v in sample if len(v) == median_value)
    # A memory:// store keeps key and value bytes objects in a dict; estimated on the sample.
    memory_store = statistics.fmean(sys.getsizeof(k) + sys.getsizeof(v) for k, v in sample) + \
        sys.getsizeof(dict(sample)) / len(sample)
    mib = 2**20
    return {
        "journeys": n,
        "personas": personas,
        "events": events,
        "events_rejected": rejected,
        "actions": actions,
        "puts": puts,
        "profiles": profiles,
        "profiles_by_key_kind": {
            kind: {"profiles": len(sizes), "value_mean": round(statistics.fmean(sizes), 1)}
            for kind, sizes in sorted(by_kind.items())},
        "profiles_per_partition": per_partition,
        "profiles_reloaded_by_a_later_journey": reloaded,
        "key_bytes": summary(key_sizes),
        "value_bytes": summary(value_sizes),
        "stored_key_plus_value_bytes": stored_bytes,
        "changelog_bytes_per_profile": round(stored_bytes / profiles, 1),
        "changelog_bytes_uncompacted_per_journey": round(changelog_bytes_all / n, 1),
        "compression": compression,
        "disk_after_writes": disk_written,
        "disk_after_flush": disk_flushed,
        "disk_after_compaction": disk_compacted,
        "sst_files_after_compaction": sst_files,
        "disk_bytes_per_profile": {
            "after_flush": round(disk_flushed["total"] / profiles, 1),
            "after_compaction": round(disk_compacted["total"] / profiles, 1),
            "after_compaction_sst_only": round(disk_compacted["sst"] / profiles, 1)},
        "disk_bytes_per_journey": {
            "after_flush": round(disk_flushed["total"] / n, 1),
            "after_compaction": round(disk_compacted["total"] / n, 1)},
        "compression_ratio_sst": round(stored_bytes / disk_compacted["sst"], 2),
        "rss_mib": {"start": round(rss_start / mib, 1), "dbs_opened": round(rss_opened / mib, 1),
                    "peak_while_writing": round(rss_peak / mib, 1),
                    "after_writes": round(rss_written / mib, 1),
                    "after_compaction": round(rss_compacted / mib, 1),
                    "after_read_back_and_close": round(rss_closed / mib, 1)},
        "rss_growth_mib": round((rss_peak - rss_start) / mib, 1),
        "rss_growth_bytes_per_profile": round((rss_peak - rss_start) / profiles, 1),
        "rocksdb_memory_after_writes_mib": {k: round(v / mib, 1) for k, v in memory_written.items()},
        "memory_store_estimate_bytes_per_profile": round(memory_store, 1),
        "seconds": {"build_and_write": round(write_s, 1), "flush": round(flush_s, 2),
                    "compaction": round(compact_s, 2)},
        "journeys_per_s": round(n / write_s),
        "events_per_s": round(events / write_s),
        "profile_puts_per_s": round(puts / write_s),
        "us_per_journey": round(write_s / n * 1e6, 1),
        "field_bytes_mean": {
            "sample_profiles": len(sample), "sample_value_mean": round(sample_mean, 1),
            "member_name_bytes_mean": round(names_total / len(sample), 1),
            "fields": {name: round(size, 1) for name, size in field_means}},
        "typical_profile": {"key": typical_key.decode(), "value_bytes": len(typical_value),
                            "value": orjson.loads(typical_value)},
    }


def run_isolated(n: int, seed: int) -> dict[str, Any]:
    """Run one size in a fresh process, so that its RSS starts from the same baseline."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(run_size, n, seed).result()


def report(run: dict[str, Any]) -> None:
    v, k = run["value_bytes"], run["key_bytes"]
    print(f"N={run['journeys']:,} journeys -> {run['profiles']:,} profiles "
          f"({run['events']:,} events, {run['actions']:,} actions, "
          f"{run['profiles_reloaded_by_a_later_journey']:,} reloads of an earlier journey's profile)")
    print(f"  value bytes mean {v['mean']:.0f}  p50 {v['p50']}  p99 {v['p99']}  max {v['max']};  "
          f"key bytes mean {k['mean']:.1f}")
    d, j = run["disk_bytes_per_profile"], run["disk_bytes_per_journey"]
    print(f"  on disk per profile: {d['after_flush']:.0f} B after flush, {d['after_compaction']:.0f} B "
          f"after compaction ({d['after_compaction_sst_only']:.0f} B SST only, "
          f"{run['compression']}, {run['compression_ratio_sst']}x);  "
          f"per journey {j['after_compaction']:.0f} B")
    print(f"  changelog (compacted) {run['changelog_bytes_per_profile']:.0f} B/profile; "
          f"uncompacted {run['changelog_bytes_uncompacted_per_journey']:.0f} B/journey")
    print(f"  RSS growth {run['rss_growth_mib']:.1f} MiB (peak {run['rss_mib']['peak_while_writing']} MiB); "
          f"RocksDB after writes {run['rocksdb_memory_after_writes_mib']}")
    print(f"  {run['seconds']['build_and_write']:.1f} s: {run['journeys_per_s']:,} journeys/s, "
          f"{run['profile_puts_per_s']:,} profile puts/s ({run['us_per_journey']} us/journey); "
          f"flush {run['seconds']['flush']} s, compaction {run['seconds']['compaction']} s")


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    xs = [r["journeys"] for r in runs]
    fig, (ax, ax_mem) = plt.subplots(1, 2, figsize=(12, 6), gridspec_kw={"width_ratios": [3, 2]})
    series = [
        ("on disk per person (journey), compacted", [r["disk_bytes_per_journey"]["after_compaction"]
                                                      for r in runs], "o-"),
        ("on disk per profile, compacted", [r["disk_bytes_per_profile"]["after_compaction"]
                                            for r in runs], "s-"),
        ("value bytes per profile, mean", [r["value_bytes"]["mean"] for r in runs], "^--"),
        ("value bytes per profile, p99", [r["value_bytes"]["p99"] for r in runs], "v--"),
        ("changelog key+value per profile", [r["changelog_bytes_per_profile"] for r in runs], "d:"),
    ]
    for label, ys, style in series:
        ax.plot(xs, ys, style, label=label)
    ax.axhline(TARGET_BYTES_PER_PERSON, color="red", linestyle="-.", label="target: 2 KB per person")
    long_lived = result["long_lived_person"][0]["web_profile"]["disk_bytes_approx"]
    ax.axhline(long_lived, color="grey", linestyle=":",
               label="long-lived web profile (all bounds full), on disk")
    ax.set_xscale("log")
    ax.set_ylim(0, max(TARGET_BYTES_PER_PERSON, long_lived) * 1.15)
    ax.set_xlabel("journeys (people)")
    ax.set_ylabel("bytes")
    ax.set_title("profiles table on RocksDB (rocksdict, 4 partitions)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.grid(alpha=0.3)
    ax_mem.plot(xs, [r["rss_growth_mib"] for r in runs], "o-", label="RSS growth (peak - start)")
    rocks = [r["rocksdb_memory_after_writes_mib"] for r in runs]
    ax_mem.plot(xs, [m["memtables"] + m["table_readers"] + m["block_cache"] for m in rocks], "s--",
                label="RocksDB memtables + readers + cache")
    ax_mem.set_xscale("log")
    ax_mem.set_xlabel("journeys (people)")
    ax_mem.set_ylabel("MiB")
    ax_mem.set_title("memory of the writing process")
    ax_mem.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    ax_mem.grid(alpha=0.3)
    fig.suptitle(f"{result['machine']['cpu']}, {result['machine']['cores']} cores, "
                 f"rocksdict {result['machine']['rocksdict']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="directory for the JSON (and PNG) written")
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                        help="comma-separated journey counts (default %(default)s)")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    result: dict[str, Any] = {
        "benchmark": "store_size",
        "command": "python benchmarks/store_size.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "store": {"table": "profiles", "partitions": PARTITIONS, "driver": "rocksdict",
                  "options": "faust.stores.rocksdb.RocksDBOptions(use_rocksdict=True) defaults",
                  "key": "person id, UTF-8",
                  "value": "runtime.stores.encode_profile (the stored layout, orjson)",
                  "partitioner": "murmur2 (Kafka default)"},
        "target_bytes_per_person": TARGET_BYTES_PER_PERSON,
        "seed": args.seed,
        "runs": [],
    }
    policy = load_rules(load_settings().rules_dir)
    result["long_lived_person"] = [saturated_profiles(policy, uuid_ids) for uuid_ids in (False, True)]
    for bound in result["long_lived_person"]:
        web, contact = bound["web_profile"], bound["contact_centre_profile"]
        print(f"long-lived person, {bound['event_ids']} event ids, every bounded list full: web profile "
              f"{web['value_bytes']} B value / ~{web['disk_bytes_approx']:.0f} B on disk; contact-centre "
              f"profile {contact['value_bytes']} B / ~{contact['disk_bytes_approx']:.0f} B")
    for n in sizes:
        print(f"building {n:,} journeys ...", flush=True)
        run = run_isolated(n, args.seed)
        report(run)
        result["runs"].append(run)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "store_size.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.results / "store_size.png")
    largest = result["runs"][-1]
    per_person = largest["disk_bytes_per_journey"]["after_compaction"]
    verdict = "meets" if per_person < TARGET_BYTES_PER_PERSON else "misses"
    print(f"at {largest['journeys']:,} journeys: {per_person:.0f} B on disk per person -> "
          f"{verdict} the {TARGET_BYTES_PER_PERSON} B target")
    fields = largest["field_bytes_mean"]
    print(f"largest fields (mean bytes): {dict(list(fields['fields'].items())[:6])}; member names "
          f"(\"name\":) are {fields['member_name_bytes_mean']:.0f} of {fields['sample_value_mean']:.0f} B")
    print(f"wrote {args.results / 'store_size.json'} and {args.results / 'store_size.png'}")


if __name__ == "__main__":
    main()
