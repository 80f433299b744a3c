"""Online intent scoring on a simulated population: quality next to a batch model, and cost.

The population (``simulate/population.py``, seeded) is people over weeks of event time whose
outcomes depend on what they did. Every record is decoded with ``decode_record`` as a worker
would and folded into a simple in-memory person state (``population.ReplayState``; persons are
stitched across visitor and customer ids with the simulator's identity, as an identity service
would). Then, per event, **timed** with ``time.perf_counter_ns``: ``extract_features`` and
``IntentScorer.step`` (settle on the event and expire at its time, learn, score every intent
that applies, snapshot). Every simulated hour a sweep settles the expired snapshots of people
who went quiet (an index by ``earliest_deadline``), timed separately.

Quality, per intent: the ROC AUC and log loss of the online model over all labels, both as
*served* (the model's probability when the snapshot was taken, which is what a rule saw) and
*progressive* (predicted when the label is learned, what ``IntentModel.quality`` reports; it is
optimistic here because the snapshots one outcome settles are learned one after the other),
and on a held-out later time slice (the last ``1 - --split`` of its labels by time) both for the
online model (its progressive predictions there: it had not seen those labels) and for a batch
model: L2 logistic regression fitted to convergence (L-BFGS, scipy) on the labels of the earlier
slice, an upper bound for a linear model on the same features and labels. Only snapshots whose
horizon ended inside the run are evaluated, and each intent is split at the ``--split``
quantile of its own snapshot times.

``--compare`` also runs alternative River models over a smaller population (held-out AUC and
µs per event), which is how the default model was chosen.

    nice -n 10 .venv/bin/python benchmarks/intent_scoring.py [--people 3000] [--days 42] [--compare]

Writes benchmarks/results/intent_scoring.json and intent_scoring.png.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from scipy.optimize import minimize
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine_info import describe_machine  # noqa: E402
from river import linear_model, optim, preprocessing, tree  # noqa: E402

from orchestrator.core.events import Accepted, decode_record, event_type  # noqa: E402
from orchestrator.core.scoring import (  # noqa: E402
    DEFAULT_INTENTS,
    N_FEATURES,
    IntentScorer,
    as_dict,
    earliest_deadline,
    extract_features,
    settle_expired,
)
from orchestrator.core.scoring.features import PACK_SCALE  # noqa: E402
from orchestrator.simulate.population import HOUR, Population, ReplayState, fold  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict[str, Any]:
    return describe_machine(river=version("river"), nice=os.nice(0),
                            load_average_at_start=[round(x, 2) for x in os.getloadavg()])


# ------------------------------------------------------------------ the stream

def stream(population: Population) -> list[tuple[str, Any, dict[str, Any], str, int]]:
    """(person, source, value, event type, ts) per record, decoded under the contract."""
    out = []
    for source, key, value in population.records():
        decoded = decode_record(source, key.encode(), orjson.dumps(value), now_ms=value["ts"])
        assert isinstance(decoded, Accepted), decoded
        out.append((population.person_of(key), source, value, event_type(decoded.event),
                    decoded.event.ts))
    return out


# ------------------------------------------------------------------ one run

def run(events: list, factory: Callable[[], Any] | None) -> dict[str, Any]:
    """Everything through the pure core; labels with their progressive predictions, timings."""
    scorer = IntentScorer(DEFAULT_INTENTS, classifier_factory=factory)
    specs = scorer.specs
    states: dict[str, ReplayState] = {}
    # Per intent: (snapshot ts, label, progressive prediction at learning, packed features,
    # served prediction: the model's probability when the snapshot was taken).
    labels: dict[str, list[tuple[int, bool, float, list[int], float]]] = {s.name: [] for s in specs}
    served: dict[tuple[str, str, int], float] = {}
    models = scorer.models
    feature_ns: list[int] = []
    step_ns: list[int] = []
    learned_in_step: list[int] = []
    sweep_ns = 0
    swept = 0
    deadlines: list[tuple[int, str]] = []
    pushed: dict[str, int] = {}
    pending_sizes: list[int] = []
    next_sweep = events[0][4] + HOUR if events else 0

    def record(who: str, settled: list, predictions: list) -> None:
        for label, p in zip(settled, predictions, strict=True):
            at_snapshot = served.pop((who, label.intent, label.snapshot_ts))
            labels[label.intent].append((label.snapshot_ts, label.label, p, label.features, at_snapshot))

    gc.collect()
    gc.disable()
    try:
        for n, (person, source, value, kind, ts) in enumerate(events):
            if ts >= next_sweep:  # people who went quiet: settle what expired by now
                t0 = time.perf_counter_ns()
                while deadlines and deadlines[0][0] < ts:
                    _, who = heapq.heappop(deadlines)
                    state = states[who]
                    pushed.pop(who, None)
                    settled = settle_expired(state.pending, specs, ts)
                    if settled:
                        record(who, settled, scorer.learn(settled))
                        swept += len(settled)
                    deadline = earliest_deadline(state.pending, specs)
                    if deadline is not None:
                        heapq.heappush(deadlines, (deadline, who))
                        pushed[who] = deadline
                sweep_ns += time.perf_counter_ns() - t0
                next_sweep = ts + HOUR
            state = states.get(person)
            if state is None:
                state = states[person] = ReplayState()
            late = ts < state.last_seen_ts
            fold(state, source, value)
            t0 = time.perf_counter_ns()
            vector = extract_features(state, None, ts)
            t1 = time.perf_counter_ns()
            result = scorer.step(state.pending, kind, ts, vector, late=late)
            t2 = time.perf_counter_ns()
            feature_ns.append(t1 - t0)
            step_ns.append(t2 - t1)
            learned_in_step.append(len(result.settled))
            if result.settled:
                record(person, result.settled, result.predictions)
            x = None
            for name in result.scores:  # not timed: what was served for each new snapshot
                snaps = state.pending.get(name)
                if snaps and snaps[-1][0] == ts and (person, name, ts) not in served:
                    x = x if x is not None else as_dict(vector)
                    served[(person, name, ts)] = models[name].predict(x)
            deadline = earliest_deadline(state.pending, specs)
            if deadline is not None and pushed.get(person) != deadline:
                heapq.heappush(deadlines, (deadline, person))  # stale entries are harmless
                pushed[person] = deadline
            if n % 50 == 0:
                pending_sizes.append(len(orjson.dumps(state.pending)))
    finally:
        gc.enable()
    final_sizes = [len(orjson.dumps(s.pending)) for s in states.values()]
    return {"scorer": scorer, "labels": labels, "feature_ns": feature_ns, "step_ns": step_ns,
            "learned_in_step": learned_in_step, "sweep_ns": sweep_ns, "swept": swept,
            "pending_sizes": pending_sizes, "final_sizes": final_sizes, "people": len(states)}


# ------------------------------------------------------------------ quality

def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    pos = int(y.sum())
    neg = len(y) - pos
    if not pos or not neg:
        return None
    ranks = rankdata(p)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(np.where(y, np.log(p), np.log(1 - p))))


def fit_batch(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> np.ndarray:
    """L2 logistic regression (weights then intercept) to convergence with L-BFGS."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    ys = np.where(y, 1.0, -1.0)
    penalty = np.ones(xb.shape[1])
    penalty[-1] = 0.0  # the intercept is not regularised

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = ys * (xb @ w)
        value = np.logaddexp(0, -z).sum() + 0.5 * l2 * (penalty * w * w).sum()
        grad = xb.T @ (-ys / (1 + np.exp(z))) + l2 * penalty * w
        return value, grad

    return minimize(loss, np.zeros(xb.shape[1]), jac=True, method="L-BFGS-B",
                    options={"maxiter": 500}).x


def quality(labels: dict[str, list], end_ts: int, split: float) -> dict[str, dict[str, Any]]:
    """Per intent: progressive metrics over every label, and online vs batch on the later slice.

    Only snapshots whose whole horizon lies inside the run are evaluated (later ones could only
    have settled positive: keeping them would favour positives), and the slices are split per
    intent at the ``split`` quantile of their snapshot times (a 14-day horizon leaves fewer days
    to evaluate than a 30-minute one).
    """
    horizons = {spec.name: spec.horizon_ms for spec in DEFAULT_INTENTS}
    out = {}
    for name, rows in labels.items():
        if not rows:
            continue
        y_all = np.array([r[1] for r in rows], dtype=bool)
        p_all = np.array([r[2] for r in rows], dtype=float)
        s_all = np.array([r[4] for r in rows], dtype=float)
        entry: dict[str, Any] = {
            "n_labels": len(rows), "positive_rate": round(float(y_all.mean()), 4),
            "online_progressive_auc_all": _r(auc(y_all, p_all)),
            "online_progressive_log_loss_all": _r(log_loss(y_all, p_all)),
            "online_served_auc_all": _r(auc(y_all, s_all)),
            "online_served_log_loss_all": _r(log_loss(y_all, s_all)),
        }
        done = [r for r in rows if r[0] + horizons[name] < end_ts]
        ts = np.array([r[0] for r in done], dtype=np.int64)
        y = np.array([r[1] for r in done], dtype=bool)
        p = np.array([r[2] for r in done], dtype=float)
        served = np.array([r[4] for r in done], dtype=float)
        x = np.array([r[3] for r in done], dtype=float).reshape(len(done), -1) / PACK_SCALE
        split_ts = int(np.quantile(ts, split)) if len(done) else 0
        test = ts >= split_ts
        train = ~test
        entry |= {"evaluated_labels": len(done), "split_ts": split_ts,
                  "test_labels": int(test.sum()), "train_labels": int(train.sum()),
                  "test_positive_rate": round(float(y[test].mean()), 4) if test.any() else None}
        if test.any() and train.any() and 0 < y[train].sum() < train.sum():
            w = fit_batch(x[train], y[train])
            pb = 1 / (1 + np.exp(-(x[test] @ w[:-1] + w[-1])))
            pt = 1 / (1 + np.exp(-(x[train] @ w[:-1] + w[-1])))
            entry |= {"online_test_auc": _r(auc(y[test], served[test])),
                      "online_test_log_loss": _r(log_loss(y[test], served[test])),
                      "online_progressive_test_auc": _r(auc(y[test], p[test])),
                      "online_progressive_test_log_loss": _r(log_loss(y[test], p[test])),
                      "batch_test_auc": _r(auc(y[test], pb)),
                      "batch_test_log_loss": _r(log_loss(y[test], pb)),
                      "batch_train_auc": _r(auc(y[train], pt))}
        # Windowed AUC of the online model along the labels (in learning order), for the picture.
        block = max(200, len(rows) // 25)
        entry["curve"] = [[int(end), _r(auc(y_all[end - block:end], s_all[end - block:end])),
                           _r(auc(y_all[end - block:end], p_all[end - block:end]))]
                          for end in range(block, len(rows) + 1, block)]
        out[name] = entry
    return out


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def summary_us(values_ns: list[int]) -> dict[str, float]:
    ordered = sorted(values_ns)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 1)

    return {"mean_us": round(statistics.fmean(ordered) / 1000, 1), "p50_us": at(0.50),
            "p95_us": at(0.95), "p99_us": at(0.99), "max_us": round(ordered[-1] / 1000, 1)}


def checkpoint_cost(scorer: IntentScorer, repeat: int = 20) -> dict[str, Any]:
    best_dump = best_load = float("inf")
    blobs: dict[str, bytes] = {}
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        blobs = scorer.checkpoint()
        t1 = time.perf_counter_ns()
        IntentScorer(scorer.specs).restore(blobs)
        t2 = time.perf_counter_ns()
        best_dump, best_load = min(best_dump, t1 - t0), min(best_load, t2 - t1)
    return {"bytes_per_intent": {k: len(v) for k, v in blobs.items()},
            "bytes_total": sum(len(v) for v in blobs.values()),
            "checkpoint_all_us": round(best_dump / 1000, 1), "restore_all_us": round(best_load / 1000, 1)}


# ------------------------------------------------------------------ model alternatives

def _logreg(lr: float, l2: float) -> Callable[[], Any]:
    return lambda: linear_model.LogisticRegression(optimizer=optim.SGD(lr), l2=l2)


def alternatives() -> dict[str, Callable[[], Any] | None]:
    return {
        "default": None,
        "logreg sgd 0.01 (River's default)": lambda: linear_model.LogisticRegression(),
        "logreg adam 0.01 l2 1e-4": lambda: linear_model.LogisticRegression(optimizer=optim.Adam(0.01),
                                                                            l2=1e-4),
        **{f"logreg sgd {lr} l2 {l2}": _logreg(lr, l2)
           for lr, l2 in ((0.05, 1e-4), (0.1, 1e-4), (0.2, 1e-4), (0.5, 1e-4), (0.2, 1e-3))},
        "logreg adam 0.01": lambda: linear_model.LogisticRegression(optimizer=optim.Adam(0.01)),
        "scaler | logreg sgd 0.05": lambda: (preprocessing.StandardScaler()
                                             | linear_model.LogisticRegression(optimizer=optim.SGD(0.05),
                                                                               l2=1e-4)),
        "hoeffding tree": lambda: tree.HoeffdingTreeClassifier(grace_period=100),
    }


def compare(events: list, split: float) -> list[dict[str, Any]]:
    rows = []
    for name, factory in alternatives().items():
        t0 = time.perf_counter()
        result = run(events, factory)
        q = quality(result["labels"], events[-1][4], split)
        per_event = [f + s for f, s in zip(result["feature_ns"], result["step_ns"], strict=True)]
        row = {"model": name, **{f"{k}_online_test_auc": v.get("online_test_auc") for k, v in q.items()},
               "step_mean_us": summary_us(result["step_ns"])["mean_us"],
               "per_event_mean_us": summary_us(per_event)["mean_us"],
               "per_event_p99_us": summary_us(per_event)["p99_us"],
               "wall_s": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        aucs = "  ".join(f"{k[:8]} {v.get('online_test_auc')}" for k, v in q.items())
        print(f"  {name:<36} {aucs}  step {row['step_mean_us']:6.1f} µs  "
              f"event {row['per_event_mean_us']:6.1f} µs  p99 {row['per_event_p99_us']:6.1f}")
    return rows


# ------------------------------------------------------------------ picture

def plot(output: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    intents = output["intents"]
    fig, axes = plt.subplots(1, len(intents), figsize=(4 * len(intents), 3.8), sharey=True)
    for ax, (name, q) in zip(np.atleast_1d(axes), intents.items(), strict=True):
        xs = [c[0] for c in q["curve"] if c[1] is not None]
        ax.plot(xs, [c[1] for c in q["curve"] if c[1] is not None], marker=".",
                label="online, as served (window)")
        ax.plot(xs, [c[2] for c in q["curve"] if c[1] is not None], color="tab:gray", alpha=0.6,
                label="online, progressive at learning")
        if q.get("batch_test_auc") is not None:
            ax.axhline(q["batch_test_auc"], color="tab:red", linestyle="--",
                       label=f"batch, test slice ({q['batch_test_auc']:.3f})")
            ax.axhline(q["online_test_auc"], color="tab:green", linestyle=":",
                       label=f"online served, test slice ({q['online_test_auc']:.3f})")
        ax.set_title(f"{name}\n{q['n_labels']:,} labels, {100 * q['positive_rate']:.0f} % positive",
                     fontsize=9)
        ax.set_xlabel("labels seen")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    np.atleast_1d(axes)[0].set_ylabel("ROC AUC")
    np.atleast_1d(axes)[0].set_ylim(0.45, 1.0)
    cost = output["cost"]["per_event"]
    fig.suptitle(f"Online intent models vs batch upper bound — {output['events']:,} events, "
                 f"{output['people']:,} people, {output['days']} days; all intents "
                 f"{cost['mean_us']:.0f} µs/event mean, p99 {cost['p99_us']:.0f} µs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------ main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--days", type=int, default=42)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--split", type=float, default=0.7, help="share of the period used for training")
    parser.add_argument("--compare", action="store_true", help="also compare alternative models")
    parser.add_argument("--compare-people", type=int, default=1500)
    args = parser.parse_args()

    info = machine()
    wall = time.perf_counter()
    population = Population(seed=args.seed, people=args.people, days=args.days)
    events = stream(population)
    print(f"{len(events):,} events from {args.people:,} people over {args.days} days of event time")

    result = run(events, None)
    per_event = [f + s for f, s in zip(result["feature_ns"], result["step_ns"], strict=True)]
    learning = [s for s, k in zip(result["step_ns"], result["learned_in_step"], strict=True) if k]
    scorer: IntentScorer = result["scorer"]
    intents = quality(result["labels"], events[-1][4], args.split)
    for name, q in intents.items():
        print(f"{name:<17} labels {q['n_labels']:>6} pos {q['positive_rate']:.3f}  progressive AUC "
              f"{q['online_progressive_auc_all']} ll {q['online_progressive_log_loss_all']}  served AUC "
              f"{q['online_served_auc_all']} ll {q['online_served_log_loss_all']} | "
              f"test slice ({q['test_labels']}): online served AUC {q.get('online_test_auc')} "
              f"ll {q.get('online_test_log_loss')}  batch AUC {q.get('batch_test_auc')} "
              f"ll {q.get('batch_test_log_loss')}")
    sizes = sorted(result["pending_sizes"])
    final = sorted(result["final_sizes"])
    cost = {
        "per_event": summary_us(per_event), "features": summary_us(result["feature_ns"]),
        "step": summary_us(result["step_ns"]),
        "step_on_events_that_learned": summary_us(learning) if learning else None,
        "events_that_learned": len(learning),
        "sweep_total_ms": round(result["sweep_ns"] / 1e6, 1), "sweep_labels": result["swept"],
        "sweep_us_per_event_amortised": round(result["sweep_ns"] / 1000 / len(events), 2),
    }
    storage = {
        "pending_bytes_sampled": {"mean": round(statistics.fmean(sizes)),
                                  "p99": sizes[int(0.99 * len(sizes))], "max": sizes[-1]},
        "pending_bytes_at_end": {"mean": round(statistics.fmean(final)),
                                 "p99": final[int(0.99 * len(final))], "max": final[-1]},
        "features": N_FEATURES,
    }
    output: dict[str, Any] = {
        "benchmark": "intent_scoring", "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": info, "seed": args.seed, "people": args.people, "days": args.days,
        "events": len(events), "split": args.split, "intents": intents, "cost": cost,
        "checkpoint": checkpoint_cost(scorer), "storage": storage,
        "final_quality": scorer.quality(),
    }
    c = cost["per_event"]
    print(f"cost per event, all intents (features + step): mean {c['mean_us']} µs, p50 {c['p50_us']}, "
          f"p99 {c['p99_us']}, max {c['max_us']}; features {cost['features']['mean_us']} µs, "
          f"step {cost['step']['mean_us']} µs; sweeps {cost['sweep_us_per_event_amortised']} µs/event")
    print(f"checkpoint: {output['checkpoint']}")
    print(f"pending per person (JSON bytes): {storage}")
    if args.compare:
        print(f"model alternatives ({args.compare_people:,} people, held-out online AUC):")
        small = Population(seed=args.seed, people=args.compare_people, days=args.days)
        output["compare"] = compare(stream(small), args.split)
    output["wall_s"] = round(time.perf_counter() - wall, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "intent_scoring.json").write_text(json.dumps(output, indent=2) + "\n")
    plot(output, RESULTS / "intent_scoring.png")
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
          f"Python {info['python']}, river {info['river']}, nice {info['nice']}, "
          f"load {info['load_average_at_start']}")
    print(f"wrote {RESULTS / 'intent_scoring.json'} and intent_scoring.png ({output['wall_s']} s)")


if __name__ == "__main__":
    main()
