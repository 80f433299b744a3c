"""Cost of rule evaluation and arbitration per event: the default rule set, 100 and 500 rules.

The event stream is the simulator's: persona journeys (``simulate/personas.new_journey``,
seeded), each step stamped with a ``ts`` and decoded with ``decode_record`` as a worker would.
Every event is applied to its person's profile (``apply_event``), then **only** ``decide`` is
timed (``time.perf_counter_ns``): condition evaluation of the rules that can fire on the
event's type, payload rendering, suppression checks and per-channel arbitration. The chosen and
held-out decisions are then recorded in the profile (not timed), as the journey step does, so
that cooldowns and caps act as they would live.

Rule sets:

- ``default``: ``rules/*.yaml`` as shipped (7 rules);
- ``100`` and ``500`` (the most a rule set may hold, ``core/rules/limits.py``): the default
  rules plus generated variants of them (login prompts and
  direct links for other category sets and thresholds, next-content and retention rules, contact
  steering, contact-centre alerts and callback offers, "since" rules), over the real categories
  of the simulated traffic and a pool of others, so that a realistic share of rules matches.

Each set runs twice: with no scores (a person no trusted model has scored yet: rules that need a
score never fire) and with scores for ``churn_risk`` and ``contact_need`` (seeded random probabilities), so
that score-driven rules take part in arbitration.

    nice -n 10 .venv/bin/python benchmarks/rules_eval.py [--journeys 3000] [--seed 20261124]

Writes benchmarks/results/rules_eval.json and rules_eval.png.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine_info import describe_machine  # noqa: E402

from orchestrator.core.events import Accepted, Event, decode_record, event_type  # noqa: E402
from orchestrator.core.profile import Profile, apply_event, record_sent  # noqa: E402
from orchestrator.core.rules import RuleSet, decide, load_rule_directory, load_rule_set  # noqa: E402
from orchestrator.core.rules.limits import MAX_RULES  # noqa: E402
from orchestrator.simulate.personas import new_journey  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
START_TS = 1_780_000_000_000
JOURNEY_SPACING_MS = 50
REAL_CATEGORIES = ["billing", "invoices", "account", "contract", "moving", "self-service",
                   "products", "pricing", "offers", "home", "cancellation"]
OTHER_CATEGORIES = [f"topic-{i}" for i in range(60)] + [
    "broadband", "mobile", "tv", "energy", "insurance", "roaming", "devices", "outage",
    "installation", "returns", "payments", "direct-debit", "refunds", "loyalty", "business"]
CHANNELS = ["web", "web", "web", "app", "email", "contact-centre"]


def machine() -> dict[str, Any]:
    return describe_machine(pydantic=version("pydantic"), nice=os.nice(0),
                            load_average_at_start=[round(x, 2) for x in os.getloadavg()])


# ------------------------------------------------------------------ events

def event_stream(journeys: int, seed: int) -> list[tuple[str, Event]]:
    """(person id, event) for ``journeys`` persona journeys, interleaved by time."""
    rng = random.Random(seed)
    stamped: list[tuple[int, int, str, bytes, Any]] = []
    for j in range(journeys):
        _, steps = new_journey(rng)
        ts = START_TS + j * JOURNEY_SPACING_MS
        for n, step in enumerate(steps):
            stamped.append((ts, j * 100 + n, step.key, orjson.dumps(dict(step.value, ts=ts)), step))
            ts += int(step.think_s * 1000)
    stamped.sort(key=lambda s: (s[0], s[1]))
    events = []
    for ts, _, key, raw, step in stamped:
        decoded = decode_record(step.source, key.encode(), raw, now_ms=ts + 5)
        assert isinstance(decoded, Accepted), decoded
        events.append((key, decoded.event))
    return events


# ------------------------------------------------------------------ rule sets

def _cats(rng: random.Random, k: int) -> list[str]:
    pool = REAL_CATEGORIES if rng.random() < 0.35 else OTHER_CATEGORIES
    return rng.sample(pool, k=min(k, len(pool)))


def variant(i: int, rng: random.Random) -> dict[str, Any]:
    """One generated rule, modelled on one of the default rules."""
    kind = rng.choice(["login", "link", "content", "retention", "steer", "cc_alert", "callback",
                       "since"])
    channel = rng.choice(CHANNELS) if kind not in ("cc_alert", "callback") else "contact-centre"
    base: dict[str, Any] = {
        "id": f"gen-{kind}-{i:04d}", "description": f"generated {kind} variant {i}",
        "channel": channel, "value": round(rng.uniform(0.2, 5), 2),
        "priority": rng.randint(-2, 5), "weight": rng.choice([0.5, 1, 1, 1, 1.5]),
        "consent": "marketing" if rng.random() < 0.15 else "service",
        "holdout_percent": rng.choice([0, 0, 0, 5, 10]),
        "expires_after_s": rng.choice([300, 600, 1800]),
    }
    page_view = {"field": "event.type", "eq": "page_view"}
    if kind == "login":
        cats = _cats(rng, rng.randint(2, 6))
        return base | {
            "action": "login_prompt",
            "when": {"all": [page_view, {"field": "profile.logged_in", "eq": False},
                             {"field": "event.page.category", "in": cats},
                             {"count": {"name": "pages", "event_type": "page_view",
                                        "category_in": cats, "session": True},
                              "gte": rng.randint(2, 6)}]},
            "payload": {"login_url": "/login?return_to={event.page.url|urlencode}",
                        "topic": "{event.page.category}",
                        "reason": "{counts.pages} pages read this session"},
            "caps": {"cooldown_s": rng.choice([600, 1800, 3600]), "per": "action"}}
    if kind == "link":
        cats = _cats(rng, rng.randint(1, 4))
        return base | {
            "action": "direct_link",
            "when": {"all": [page_view, {"field": "profile.logged_in", "eq": True},
                             {"field": "event.page.category", "in": cats}]},
            "payload": {"url": "/account/{event.page.category}", "topic": "{event.page.category}"},
            "already_there": "event.page.url",
            "caps": {"cooldown_s": rng.choice([300, 600, 1200])}}
    if kind == "content":
        cats = _cats(rng, rng.randint(1, 5))
        return base | {
            "action": "next_content",
            "when": {"all": [page_view, {"field": "event.page.category", "in": cats},
                             {"count": {"event_type": "page_view", "same_category": True,
                                        "session": True}, "gte": rng.randint(2, 5)}]},
            "payload": {"url": "/guides/{event.page.category|lower}",
                        "topic": "{event.page.category}"},
            "caps": {"cooldown_s": 86400, "max_per_week": rng.randint(1, 5)}}
    if kind == "retention":
        return base | {
            "action": "retention_offer",
            "when": {"all": [page_view, {"any": [
                {"field": "event.page.category", "eq": rng.choice(["cancellation", *_cats(rng, 1)])},
                {"score": "churn_risk", "gte": round(rng.uniform(0.6, 0.95), 2)}]}]},
            "payload": {"url": "/account/contract/options",
                        "topic": "{event.page.category|default:churn}"},
            "caps": {"cooldown_s": 86400, "max_per_week": 2, "per": "rule"}}
    if kind == "steer":
        return base | {
            "action": "contact_suggestion", "propensity": "contact_need",
            "when": {"all": [page_view,
                             {"score": "contact_need", "gte": round(rng.uniform(0.5, 0.9), 2)},
                             {"field": "event.page.category", "in": _cats(rng, rng.randint(2, 6))}]},
            "payload": {"url": "/contact?topic={event.page.category|urlencode}"},
            "caps": {"cooldown_s": 3600, "stop_after": ["callback_requested"], "per": "action"}}
    if kind == "cc_alert":
        return base | {
            "action": "churn_alert",
            "when": {"any": [{"field": "event.type", "eq": rng.choice(
                ["cancellation_requested", "case_opened", "contact_ended"])},
                {"all": [{"score": "churn_risk", "gte": round(rng.uniform(0.7, 0.95), 2)},
                         {"field": "profile.customer_id", "exists": True}]}]},
            "payload": {"customer_id": "{profile.customer_id}",
                        "reason": "{event.reason|default:churn risk}"},
            "caps": {"cooldown_s": 86400, "per": "rule"}}
    if kind == "callback":
        return base | {
            "action": "offer_callback",
            "when": {"all": [{"field": "event.type", "in": ["contact_started", "case_opened"]},
                             {"field": "event.sentiment", "lte": round(rng.uniform(-0.8, 0), 2)},
                             {"field": "event.reason", "in": rng.sample(
                                 ["billing", "cancellation", "moving", "outage", "price"], k=2)}]},
            "payload": {"customer_id": "{profile.customer_id}", "topic": "{event.reason}"},
            "caps": {"cooldown_s": 604800, "stop_after": ["callback_requested"], "per": "rule"}}
    return base | {  # since: welcome back after a login, once
        "action": "welcome_back",
        "when": {"all": [page_view, {"since": "login", "lt_s": rng.choice([30, 60, 300])},
                         {"field": "event.page.category", "in": _cats(rng, rng.randint(1, 4))}]},
        "payload": {"topic": "{event.page.category}"},
        "caps": {"cooldown_s": 86400, "per": "rule"}}


RULES_PER_FILE = 200


def rule_sets(seed: int) -> dict[str, RuleSet]:
    default = load_rule_directory(ROOT / "rules")
    sets = {"default": default}
    rng = random.Random(seed)
    for total in (100, MAX_RULES):
        extra = [variant(i, rng) for i in range(total - len(default.rules))]
        documents = dict(default.documents)
        # Several files, as a large rule base would be kept: a rule file may hold 256 KiB.
        for k in range(0, len(extra), RULES_PER_FILE):
            documents[f"rules/generated-{k // RULES_PER_FILE:02d}.yaml"] = yaml.safe_dump(
                {"version": default.version, "rules": extra[k:k + RULES_PER_FILE]}, sort_keys=False)
        sets[str(total)] = load_rule_set(documents)
        assert len(sets[str(total)].rules) == total
    return sets


# ------------------------------------------------------------------ measuring

def run(rule_set: RuleSet, events: list[tuple[str, Event]], with_scores: bool, seed: int,
        passes: int) -> dict[str, Any]:
    rng = random.Random(seed)
    best: dict[str, Any] | None = None
    for attempt in range(passes):
        profiles: dict[str, Profile] = {}
        scores_by_person: dict[str, dict[str, float]] = {}
        times: list[int] = []
        candidates = chosen = held = suppressed = 0
        gc.collect()
        gc.disable()
        try:
            for person_id, event in events:
                profile = profiles.get(person_id)
                if profile is None:
                    profile = profiles[person_id] = Profile(person_id=person_id)
                if not apply_event(profile, event):
                    continue
                scores: dict[str, float] = {}
                if with_scores:
                    scores = scores_by_person.setdefault(person_id, {
                        "churn_risk": round(rng.betavariate(1.5, 6), 3),
                        "contact_need": round(rng.betavariate(2, 4), 3)})
                t0 = time.perf_counter_ns()
                outcome = decide(rule_set, event, profile, scores, event.ts)
                times.append(time.perf_counter_ns() - t0)
                page = getattr(event, "page", None)
                candidates += len(rule_set.rules_for(event_type(event),
                                                     page.category if page is not None else None))
                for decision in [*outcome.chosen, *outcome.held_out]:
                    record_sent(profile, {"action_id": "a", "action": decision.action,
                                          "channel": decision.channel}, decision.cap_key,
                                event.ts, holdout=decision.holdout)
                chosen += len(outcome.chosen)
                held += len(outcome.held_out)
                suppressed += len(outcome.suppressed)
        finally:
            gc.enable()
        result = {"events": len(times), "pass": attempt + 1, **summary_us(times),
                  "rules_considered_per_event": round(candidates / len(times), 1),
                  "actions_chosen": chosen, "held_out": held, "suppressed": suppressed}
        if best is None or result["mean_us"] < best["mean_us"]:
            best = result
    assert best is not None
    return best


def summary_us(values_ns: list[int]) -> dict[str, float]:
    ordered = sorted(values_ns)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1000, 1)

    return {"mean_us": round(statistics.fmean(ordered) / 1000, 1), "p50_us": at(0.50),
            "p95_us": at(0.95), "p99_us": at(0.99), "max_us": round(ordered[-1] / 1000, 1)}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["runs"]
    sets = list(dict.fromkeys(r["rule_set"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.38
    for ax, scores in zip(axes, (False, True), strict=True):
        chosen = [next(r for r in rows if r["rule_set"] == s and r["scores"] == scores) for s in sets]
        xs = range(len(sets))
        bars = ax.bar([x - width / 2 for x in xs], [r["mean_us"] for r in chosen], width, label="mean")
        ax.bar([x + width / 2 for x in xs], [r["p99_us"] for r in chosen], width, label="p99")
        for bar, r in zip(bars, chosen, strict=True):
            ax.annotate(f"{r['mean_us']:.0f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs), [f"{s}\n({r['rules']} rules)" if s == "default" else f"{s} rules"
                                 for s, r in zip(sets, chosen, strict=True)])
        ax.set_yscale("log")
        ax.set_ylabel("decide() per event (µs, log scale)")
        ax.set_title("with intent scores" if scores else "no scores (today)")
        ax.legend()
    fig.suptitle(f"Rule evaluation + arbitration per event — {result['events']:,} persona events, "
                 f"{result['machine']['cores']} cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="directory for the JSON (and PNG) written")
    parser.add_argument("--journeys", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--passes", type=int, default=3, help="best-of passes per configuration")
    args = parser.parse_args()

    info = machine()
    t0 = time.perf_counter()
    events = event_stream(args.journeys, args.seed)
    sets = rule_sets(args.seed)
    print(f"{len(events):,} events from {args.journeys:,} journeys; rule sets "
          + ", ".join(f"{k} ({len(v.rules)} rules)" for k, v in sets.items()))
    runs = []
    for name, rule_set in sets.items():
        for with_scores in (False, True):
            result = run(rule_set, events, with_scores, args.seed, args.passes)
            runs.append({"rule_set": name, "rules": len(rule_set.rules), "scores": with_scores,
                         **result})
            print(f"{name:>8} rules={len(rule_set.rules):>5} scores={'yes' if with_scores else 'no ':<3} "
                  f"mean {result['mean_us']:7.1f} µs  p50 {result['p50_us']:7.1f}  "
                  f"p95 {result['p95_us']:7.1f}  p99 {result['p99_us']:7.1f}  "
                  f"max {result['max_us']:8.1f}  "
                  f"considered/event {result['rules_considered_per_event']:6.1f}  "
                  f"actions {result['actions_chosen']:>5}  held out {result['held_out']:>4}")
    output = {"benchmark": "rules_eval", "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": info, "journeys": args.journeys, "seed": args.seed, "events": len(events),
              "passes": args.passes, "runs": runs,
              "wall_s": round(time.perf_counter() - t0, 1)}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "rules_eval.json").write_text(json.dumps(output, indent=2) + "\n")
    plot(output, args.results / "rules_eval.png")
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
          f"Python {info['python']}, nice {info['nice']}, load {info['load_average_at_start']}")
    print(f"wrote {args.results / 'rules_eval.json'} and rules_eval.png ({output['wall_s']} s)")


if __name__ == "__main__":
    main()
