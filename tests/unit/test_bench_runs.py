"""The benchmarks that need no broker run on the current code, at a small size.

Each writes its JSON to a directory of the test's own (``--results``), never over the
committed figures in ``benchmarks/results``. What is checked is that a run measures what it
says it measures, not how fast: timings belong to the benchmarks themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.core.rules.limits import MAX_RULES

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, results: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--results", str(results), *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads((results / script.replace(".py", ".json")).read_text())


def test_processor_replay_costs_every_record_and_stores_every_profile(tmp_path: Path) -> None:
    result = run_benchmark("processor_replay.py", tmp_path, "--people", "12", "--days", "3")
    assert result["records"] > 0
    assert result["cost_per_record_us"]["count"] == result["records"]
    assert result["profiles"] > 0  # held state was written to the table, as a worker does
    assert result["profile_bytes"]["count"] == result["profiles"]
    assert result["profile_bytes"]["mean"] > 0


def test_rules_eval_loads_the_largest_rule_set_allowed_from_several_files(tmp_path: Path) -> None:
    result = run_benchmark("rules_eval.py", tmp_path, "--journeys", "20", "--passes", "1")
    rules_by_set = {run["rule_set"]: run["rules"] for run in result["runs"]}
    assert rules_by_set["100"] == 100 and rules_by_set[str(MAX_RULES)] == MAX_RULES
    assert {run["scores"] for run in result["runs"]} == {False, True}
    assert all(run["p99_us"] > 0 for run in result["runs"])
    assert (tmp_path / "rules_eval.png").stat().st_size > 0


def test_store_size_stores_profiles_in_the_workers_format(tmp_path: Path) -> None:
    result = run_benchmark("store_size.py", tmp_path, "--sizes", "300")
    (size,) = result["runs"]
    assert size["profiles"] >= size["journeys"] == 300
    assert size["value_bytes"]["mean"] > 0
    web = result["long_lived_person"][0]["web_profile"]
    assert web["value_bytes"] > 0 and "recent_pages" in web["fields"]
