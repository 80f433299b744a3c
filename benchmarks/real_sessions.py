"""Purchase intent on real e-commerce sessions, replayed with ``orchestrator replay``.

The data: the "Online Shoppers Purchasing Intention" data set (UCI Machine Learning Repository,
Sakar et al. 2018, CC BY 4.0): 12,330 real sessions of one shop over a year, each a row of page
counts and time on page for three kinds of page (administrative, informational, product
related), the month, a weekend flag and whether the session ended in a purchase (``Revenue``).
It is not shipped here; pass the CSV's path (the UCI file, or a copy with the month as a number
and the flags as 0/1).

What is done with it, as a user evaluating the engine on their own log would:

1. **Records of the contract.** Each session becomes one anonymous visitor's page views
   (``clickstream``, ``page_view``): administrative pages as category ``account``, informational
   as ``help``, product pages as ``products``, in a seeded random order (the data does not keep
   the order), each followed by its kind's mean time on page; a ``purchase`` 30 s after the last
   page of a buying session. Sessions start at a seeded random moment of their month (a weekend
   day when the row says so), one year, so the log is in event-time order over ten months. Rows
   without a page are left out (no decision point). ``BounceRates``, ``ExitRates`` and
   ``PageValues`` are not used: a live engine does not know them (page value is computed from
   the shop's own revenue).
2. **The engine.** ``orchestrator replay`` (the CLI, in a subprocess) runs the records through
   the same core a worker runs, with the shipped rules and intents, and writes the scores served
   at every record.
3. **As served.** On the later 30 % of sessions (by start time): the ROC AUC of
   ``purchase_intent`` as served at each session's **last page** (the decision point that counts:
   everything the session shows is known) and at **every page** (label: the session ends in a
   purchase), and how many were served at all (an untrusted model serves nothing).
4. **Batch references**, fitted on the earlier 70 % of sessions with the same information at the
   last page (page counts and time on page per kind, log-scaled; month; weekend): a logistic
   regression (scikit-learn, standardised) and a gradient-boosted model (the median of three
   seeded fits, as ``intent_scoring.py``). ``as served ÷ GBM`` is the figure the intent targets
   name (≥ 0.95).

    .venv/bin/python benchmarks/real_sessions.py PATH/online_shoppers_intention.csv

Writes benchmarks/results/real_sessions.json (``--results`` to change the directory).
"""

from __future__ import annotations

import argparse
import calendar
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from intent_scoring import _median_gbm, auc  # noqa: E402
from machine_info import describe_machine  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
YEAR = 2025
#: The kinds of page of the data set, their columns and the category the records give them.
KINDS = (("Administrative", "account"), ("Informational", "help"), ("ProductRelated", "products"))
PURCHASE_AFTER_S = 30
INTENT = "purchase_intent"
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}


@dataclass
class Session:
    """One row of the data set and where its records went."""

    index: int
    start_ts: int
    bought: bool
    counts: tuple[int, ...]
    seconds: tuple[float, ...]
    month: int
    weekend: bool
    #: 1-based lines of the session's page views in the record file (the replay's ``line``)
    page_lines: list[int] = field(default_factory=list)


def _number(text: str) -> float:
    return float(text) if text.strip() else 0.0


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes")


def _month(text: str) -> int:
    text = text.strip().lower()
    return int(text) if text.isdigit() else MONTHS[text[:3]]  # "Feb", "June", ...


def read_sessions(path: Path, seed: int) -> list[Session]:
    """The data set's sessions with a seeded start time in their month (weekend as the row
    says), in start-time order; rows without a page are left out."""
    rng = random.Random(seed)
    sessions = []
    with path.open(newline="") as stream:
        for n, row in enumerate(csv.DictReader(stream)):
            row = {key.strip().lower().replace(" ", ""): value for key, value in row.items()}
            counts = tuple(int(_number(row[column.lower()])) for column, _ in KINDS)
            seconds = tuple(max(0.0, _number(row[f"{column.lower()}_duration"])) for column, _ in KINDS)
            if not sum(counts):
                continue
            month = _month(row["month"])
            weekend = _flag(row["weekend"])
            days = [d for d in range(1, calendar.monthrange(YEAR, month)[1] + 1)
                    if (calendar.weekday(YEAR, month, d) >= 5) == weekend]
            day = rng.choice(days)
            start = datetime(YEAR, month, day, tzinfo=UTC).timestamp() + rng.uniform(0, 86_400)
            sessions.append(Session(n, int(start * 1000), _flag(row["revenue"]), counts, seconds,
                                    month, weekend))
    sessions.sort(key=lambda s: (s.start_ts, s.index))
    return sessions


def write_records(sessions: list[Session], path: Path, seed: int) -> int:
    """The sessions as clickstream records of the contract, one JSON line each, in event-time
    order; notes each session's page lines. Returns the number of records."""
    rng = random.Random(seed + 1)
    records: list[tuple[int, int, int, dict[str, Any]]] = []  # (ts, session, order, value)
    for s in sessions:
        visitor, session_id = f"v-{s.index:05d}", f"s-{s.index:05d}"
        pages = [(category, seconds / count) for (_, category), count, seconds
                 in zip(KINDS, s.counts, s.seconds, strict=True) for _ in range(count)]
        rng.shuffle(pages)
        ts = s.start_ts
        for k, (category, dwell_s) in enumerate(pages):
            records.append((ts, s.index, k, {
                "event_id": f"{session_id}-{k}", "type": "page_view", "visitor_id": visitor,
                "session_id": session_id, "ts": ts,
                "page": {"url": f"/{category}/{rng.randrange(12)}", "category": category}}))
            ts += int(dwell_s * 1000)
        if s.bought:
            ts += PURCHASE_AFTER_S * 1000
            records.append((ts, s.index, len(pages), {
                "event_id": f"{session_id}-buy", "type": "purchase", "visitor_id": visitor,
                "session_id": session_id, "ts": ts, "properties": {"amount": 1}}))
    records.sort(key=lambda r: (r[0], r[1], r[2]))
    by_index = {s.index: s for s in sessions}
    with path.open("wb") as out:
        for line, (_, index, _, value) in enumerate(records, start=1):
            if value["type"] == "page_view":
                by_index[index].page_lines.append(line)
            out.write(orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE))
    return len(records)


def replay(records: Path, output: Path) -> tuple[float, str]:
    """``orchestrator replay records -o output``: its wall time and what it said on stderr."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "orchestrator", "replay", str(records), "-o", str(output)],
                          cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise SystemExit(f"orchestrator replay failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stderr


def served_scores(output: Path) -> dict[int, float | None]:
    """line -> the purchase score served at it (None: not served)."""
    scores: dict[int, float | None] = {}
    with output.open("rb") as stream:
        for text in stream:
            line = orjson.loads(text)
            if "rejected" in line:
                raise SystemExit(f"record rejected: {line}")
            scores[line["line"]] = (line.get("scores") or {}).get(INTENT)
    return scores


def session_features(sessions: list[Session]) -> np.ndarray:
    """What the batch models know at a session's last page: counts and seconds per kind
    (log1p), month, weekend."""
    rows = [[*np.log1p(s.counts), *np.log1p(s.seconds), s.month, float(s.weekend)] for s in sessions]
    return np.array(rows, dtype=float)


def evaluate(sessions: list[Session], scores: dict[int, float | None], split: float,
             seed: int) -> dict[str, Any]:
    cut = int(len(sessions) * split)
    train, test = sessions[:cut], sessions[cut:]
    y_train = np.array([s.bought for s in train])
    y_test = np.array([s.bought for s in test])
    last = [scores.get(s.page_lines[-1]) for s in test]
    served_last = [(p, s.bought) for p, s in zip(last, test, strict=True) if p is not None]
    every = [(scores.get(line), s.bought) for s in test for line in s.page_lines]
    served_every = [(p, y) for p, y in every if p is not None]

    def auc_of(pairs: list[tuple[float, bool]]) -> float | None:
        if not pairs:
            return None
        return auc(np.array([y for _, y in pairs]), np.array([p for p, _ in pairs]))

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = session_features(train), session_features(test)
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_train, y_train)
    logreg_auc = auc(y_test, logreg.predict_proba(x_test)[:, 1])
    gbm_p, gbm_fits = _median_gbm(x_train, y_train, x_test, y_test, seed)
    gbm_auc = auc(y_test, gbm_p)
    served_last_auc = auc_of(served_last)
    # The GBM on exactly the sessions that were served, so that the ratio compares like with like.
    served_mask = np.array([p is not None for p in last])
    gbm_on_served = auc(y_test[served_mask], gbm_p[served_mask]) if served_mask.any() else None
    by_month: dict[int, list[int]] = {}
    for s, p in zip(test, last, strict=True):
        cell = by_month.setdefault(s.month, [0, 0])
        cell[0] += p is not None
        cell[1] += 1
    return {
        "served_last_pages_by_month": {str(m): f"{served}/{n}"
                                       for m, (served, n) in sorted(by_month.items())},
        "sessions": {"train": len(train), "test": len(test),
                     "test_purchase_rate": round(float(y_test.mean()), 4),
                     "train_purchase_rate": round(float(y_train.mean()), 4),
                     "test_from": datetime.fromtimestamp(test[0].start_ts / 1000, UTC).isoformat()},
        "as_served_last_page": {"auc": _r(served_last_auc), "served": len(served_last),
                                "of": len(test)},
        "as_served_every_page": {"auc": _r(auc_of(served_every)), "served": len(served_every),
                                 "of": len(every)},
        "batch_logreg_last_page": _r(logreg_auc),
        "batch_gbm_last_page": _r(gbm_auc), "batch_gbm_fits": [_r(a) for a in gbm_fits],
        "batch_gbm_on_served_sessions": _r(gbm_on_served),
        "ratio_as_served_to_gbm": _r(served_last_auc / gbm_on_served
                                     if served_last_auc and gbm_on_served else None),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, help="online_shoppers_intention.csv")
    parser.add_argument("--seed", type=int, default=20261208)
    parser.add_argument("--split", type=float, default=0.7, help="share of sessions for training")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="directory for the JSON written")
    args = parser.parse_args()
    machine = describe_machine(nice=os.nice(0))
    sessions = read_sessions(args.csv, args.seed)
    with tempfile.TemporaryDirectory(prefix="real-sessions-") as tmp:
        records_path, output_path = Path(tmp) / "records.jsonl", Path(tmp) / "served.jsonl"
        n_records = write_records(sessions, records_path, args.seed)
        print(f"{len(sessions):,} sessions ({sum(s.bought for s in sessions):,} with a purchase) -> "
              f"{n_records:,} records; replaying ...", flush=True)
        wall, said = replay(records_path, output_path)
        scores = served_scores(output_path)
    result = evaluate(sessions, scores, args.split, args.seed)
    progressive = [line for line in said.splitlines() if line.startswith(INTENT)]
    output = {"benchmark": "real_sessions", "machine": machine,
              "command": f"python benchmarks/real_sessions.py {args.csv.name} --seed {args.seed} "
                         f"--split {args.split}",
              "data": "Online Shoppers Purchasing Intention (UCI, CC BY 4.0)",
              "records": n_records, "replay_wall_s": round(wall, 1),
              "replay_models": said.strip().splitlines(), **result}
    print(said.strip())
    print(f"replay: {wall:.1f} s for {n_records:,} records")
    served, every = result["as_served_last_page"], result["as_served_every_page"]
    print(f"{INTENT} on the later {1 - args.split:.0%} of sessions ({result['sessions']['test']:,}, "
          f"{result['sessions']['test_purchase_rate']:.1%} buy):")
    for name, cell in (("the last page", served), ("every page   ", every)):
        print(f"  as served at {name}  AUC {cell['auc']}  (served {cell['served']:,} of {cell['of']:,})")
    print(f"  batch logistic regression   AUC {result['batch_logreg_last_page']}")
    print(f"  batch gradient boosting     AUC {result['batch_gbm_last_page']} "
          f"(fits {result['batch_gbm_fits']}; "
          f"on the served sessions {result['batch_gbm_on_served_sessions']})")
    print(f"  as served / GBM             {result['ratio_as_served_to_gbm']}")
    print(f"  last pages served, by month: {result['served_last_pages_by_month']}")
    if progressive:
        print(f"  progressive (optimistic): {progressive[0]}")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "real_sessions.json").write_bytes(
        orjson.dumps(output, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
    print(f"wrote {args.results / 'real_sessions.json'}")


if __name__ == "__main__":
    main()
