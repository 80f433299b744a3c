"""The monitoring files in deploy/: Prometheus config, alert rules and their tests, Grafana dashboard.

promtool (from Debian's `prometheus` package; `make tools` installs it) checks the config and the
rules and runs the rules' unit tests (deploy/prometheus/alerts_test.yml). Every PromQL expression
in the alerts and the dashboard may only use the metrics the workers export, so a misspelt name
fails here instead of giving an alert that never fires or an empty panel.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_YML = PROMETHEUS_DIR / "prometheus.yml"
ALERTS_YML = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST_YML = PROMETHEUS_DIR / "alerts_test.yml"
DASHBOARD_JSON = ROOT / "deploy" / "grafana" / "orchestrator-dashboard.json"

# What the workers export (orchestrator/runtime/metrics.py, the model gauges in
# orchestrator/runtime/scoring.py).
COUNTERS = {
    "orchestrator_events_total", "orchestrator_rejected_records_total",
    "orchestrator_replayed_events_total", "orchestrator_actions_total",
    "orchestrator_decisions_suppressed_total", "orchestrator_erasures_total",
    "orchestrator_erased_records_dropped_total",
    "orchestrator_identity_changes_total", "orchestrator_rekeyed_events_total",
    "orchestrator_context_records_total", "orchestrator_context_requests_total",
    "orchestrator_model_labels_settled_total", "orchestrator_rule_set_updates_total",
}
HISTOGRAMS = {"orchestrator_event_to_action_seconds", "orchestrator_event_to_context_seconds",
              "orchestrator_input_wait_seconds",
              "orchestrator_stage_seconds"}
GAUGES = {
    "orchestrator_table_keys", "orchestrator_consumer_lag", "orchestrator_assigned_partitions",
    "orchestrator_ready", "orchestrator_build_info", "orchestrator_rule_set_info",
    "orchestrator_model_labels", "orchestrator_model_roc_auc", "orchestrator_model_log_loss",
    "orchestrator_model_positive_rate", "orchestrator_model_trusted",
}
# prometheus_client's process collector, and Prometheus's own per-target series.
PROCESS = {
    "process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
    "process_start_time_seconds", "process_open_fds", "process_max_fds",
}
KNOWN_METRICS = (COUNTERS | GAUGES | PROCESS | {"up"}
                 | {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")})

PROMQL_FUNCTIONS = {
    # aggregation operators
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile",
    # functions
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_quantile", "holt_winters", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "ln", "log2", "log10", "minute", "month", "predict_linear",
    "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp",
    "vector", "year", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
    "count_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time",
    "last_over_time", "present_over_time",
}
PROMQL_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                   "group_right", "offset", "bool", "inf", "nan"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?")


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, function names) used in a PromQL expression."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    metrics: set[str] = set()
    functions: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if name.lower() in PROMQL_KEYWORDS:
            continue
        (functions if call else metrics).add(name)
    return metrics, functions


def unknown_names(expr: str) -> set[str]:
    metrics, functions = promql_names(expr)
    return (metrics - KNOWN_METRICS) | (functions - PROMQL_FUNCTIONS)


# ----------------------------------------------------------------------------- promtool


def promtool() -> str:
    """promtool's path; a failure (never a skip) of the calling test when it is missing."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not on PATH: run `make tools` (installs Debian's prometheus package, "
                    "which ships /usr/bin/promtool)", pytrace=False)
    return path


def run_promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def check_promtool(*args: str, cwd: Path = ROOT) -> None:
    result = run_promtool(*args, cwd=cwd)
    if result.returncode != 0:
        pytest.fail(f"promtool {' '.join(args)} exited {result.returncode}\n"
                    f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}", pytrace=False)


def test_prometheus_config_is_valid() -> None:
    check_promtool("check", "config", str(PROMETHEUS_YML.relative_to(ROOT)))


def test_alert_rules_are_valid() -> None:
    check_promtool("check", "rules", str(ALERTS_YML.relative_to(ROOT)))


def test_alert_rules_pass_their_unit_tests() -> None:
    check_promtool("test", "rules", str(ALERTS_TEST_YML.relative_to(ROOT)))


def kubernetes_example() -> list[dict[str, Any]]:
    """The commented Kubernetes scrape job in prometheus.yml, uncommented."""
    text = PROMETHEUS_YML.read_text()
    match = re.search(r"# kubernetes-example-begin\n(.*?)\n\s*# kubernetes-example-end", text, re.S)
    assert match, "prometheus.yml lost its kubernetes-example-begin/-end markers"
    lines = [re.sub(r"^(\s*)# ?", r"\1", line) for line in match.group(1).splitlines()]
    return yaml.safe_load("\n".join(lines))


def test_commented_kubernetes_example_is_a_valid_scrape_job(tmp_path: Path) -> None:
    jobs = kubernetes_example()
    assert [job["job_name"] for job in jobs] == ["orchestrator"]
    [sd] = jobs[0]["kubernetes_sd_configs"]
    assert sd["role"] == "pod"

    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    shutil.copy(ALERTS_YML, tmp_path / ALERTS_YML.name)
    full = tmp_path / "kubernetes.yml"
    full.write_text(yaml.safe_dump({**config, "scrape_configs": jobs}, sort_keys=False))
    result = run_promtool("check", "config", str(full), cwd=tmp_path)
    if "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
        # Debian builds Prometheus without Kubernetes discovery: check everything else (the
        # relabelling, intervals) with a static target in its place.
        static = [{**{k: v for k, v in job.items() if k != "kubernetes_sd_configs"},
                   "static_configs": [{"targets": ["127.0.0.1:6066"]}]} for job in jobs]
        replaced = tmp_path / "kubernetes-as-static.yml"
        replaced.write_text(yaml.safe_dump({**config, "scrape_configs": static}, sort_keys=False))
        check_promtool("check", "config", str(replaced), cwd=tmp_path)
    else:
        check_promtool("check", "config", str(full), cwd=tmp_path)


# ----------------------------------------------------------------------------- alert rules


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS_YML.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_a_severity_summary_and_description() -> None:
    rules = alert_rules()
    assert len(rules) >= 12
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        for annotation in ("summary", "description"):
            assert len(rule["annotations"].get(annotation, "").strip()) > 20, (rule["alert"], annotation)


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    cases: dict[str, dict[str, int]] = {}
    for group in yaml.safe_load(ALERTS_TEST_YML.read_text())["tests"]:
        for case in group.get("alert_rule_test", []):
            counts = cases.setdefault(case["alertname"], {"firing": 0, "silent": 0})
            counts["firing" if case.get("exp_alerts") else "silent"] += 1
    for rule in alert_rules():
        counts = cases.get(rule["alert"], {"firing": 0, "silent": 0})
        assert counts["firing"] and counts["silent"], f"{rule['alert']}: {counts} in alerts_test.yml"


# ----------------------------------------------------------------------------- dashboard


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_JSON.read_text())


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def data_panels() -> list[dict[str, Any]]:
    """Every panel but the rows (which only group panels and have no query)."""
    return [p for p in all_panels(dashboard()["panels"]) if p["type"] != "row"]


def dashboard_exprs() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in data_panels() for target in panel["targets"]]


def test_dashboard_has_the_datasource_and_instance_variables() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["datasource"]["uid"] == "${datasource}"
    assert "up{job=\"orchestrator\"}" in variables["instance"]["definition"]


def test_every_dashboard_panel_has_a_datasource_and_queries() -> None:
    panels = data_panels()
    assert len(panels) >= 45
    ids = [p["id"] for p in all_panels(dashboard()["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        title = panel["title"]
        assert panel.get("datasource") == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel.get("targets"), f"{title}: no targets"
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"{title}: target {target.get('refId')} has no expr"
            assert target.get("datasource", panel["datasource"])["uid"] == "${datasource}", title
            assert 'instance=~"$instance"' in target["expr"], f"{title}: not filtered by the worker variable"


def test_dashboard_has_every_section() -> None:
    rows = [p["title"] for p in all_panels(dashboard()["panels"]) if p["type"] == "row"]
    for title in ("Event-to-action latency", "Throughput", "Consumer lag", "Errors",
                  "Processing stages", "State", "Workers", "Model quality",
                  "Identity and customer context"):
        assert title in rows
    exprs = " ".join(expr for _, expr in dashboard_exprs())
    for needle in ("histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,",
                   "orchestrator_model_roc_auc", "orchestrator_model_log_loss",
                   "orchestrator_model_labels", "orchestrator_model_trusted",
                   "orchestrator_model_labels_settled_total", "orchestrator_event_to_context_seconds_bucket",
                   "orchestrator_context_records_total", "orchestrator_context_requests_total",
                   "orchestrator_identity_changes_total", "orchestrator_rekeyed_events_total",
                   "process_cpu_seconds_total", "process_resident_memory_bytes",
                   "orchestrator_rule_set_info", "orchestrator_ready"):
        assert needle in exprs, needle
    for panel in all_panels(dashboard()["panels"]):
        assert "placeholder" not in panel.get("description", "").lower(), panel["title"]
    # Per-intent model quality is weighted by each partition's labels, not a plain average of
    # partitions (a partition with 10 labels would count as much as one with 10 000).
    for panel in data_panels():
        expr = panel["targets"][0]["expr"]
        if re.search(r"orchestrator_model_(roc_auc|log_loss|positive_rate)\b", expr):
            assert "* orchestrator_model_labels" in expr and "avg" not in expr, panel["title"]


def test_dashboard_panels_do_not_overlap() -> None:
    """Every panel (rows included) has its own cells in Grafana's 24-column grid."""
    taken: dict[tuple[int, int], str] = {}
    for panel in all_panels(dashboard()["panels"]):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_every_dashboard_panel_has_a_unit_and_a_description() -> None:
    for panel in data_panels():
        if panel["type"] in {"timeseries", "stat"}:
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        assert len(panel.get("description", "").strip()) > 20, panel["title"]


def grafana_to_promql(expr: str) -> str:
    """Grafana's variables replaced by values Prometheus accepts."""
    expr = re.sub(r"\$__(rate_)?interval\b", "1m", expr)
    expr = expr.replace("$__range", "1h")
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = [{"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr),
              "labels": {"panel": title}} for i, (title, expr) in enumerate(dashboard_exprs())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check_promtool("check", "rules", str(path), cwd=tmp_path)


# ----------------------------------------------------------------------------- metric names


@pytest.mark.parametrize(("expr", "unknown"), [
    ('sum by (le) (rate(orchestrator_event_to_action_seconds_bucket{job="x"}[5m]))', set()),
    ("rate(orchestrator_event_total[5m])", {"orchestrator_event_total"}),
    ('orchestrator_ready{job="orchestrator"} == 0 or up unless on (instance) orchestator_ready',
     {"orchestator_ready"}),
    ("rat(orchestrator_events_total[5m]) offset 10m > 1e3", {"rat"}),
    ('absent(orchestrator_events_total{error="internal_error", x=~"a(b)"})', set()),
])
def test_the_name_check_catches_misspellings(expr: str, unknown: set[str]) -> None:
    assert unknown_names(expr) == unknown


def test_alerts_use_only_exported_metrics() -> None:
    for rule in alert_rules():
        metrics, _ = promql_names(rule["expr"])
        assert metrics, rule["alert"]
        assert not unknown_names(rule["expr"]), f"{rule['alert']}: unknown {unknown_names(rule['expr'])}"


def test_dashboard_uses_only_exported_metrics() -> None:
    for title, expr in dashboard_exprs():
        metrics, _ = promql_names(expr)
        assert metrics, title
        assert not unknown_names(expr), f"{title}: unknown {unknown_names(expr)} in {expr}"
