"""The command line, as a user runs it: bad configuration fails at start, clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True,
                          text=True, env={**clean, **(env or {})}, timeout=60, check=False)


def test_worker_with_a_bad_setting_exits_2_naming_the_variable_and_value() -> None:
    result = run_cli("worker", env={"ORCHESTRATOR_WEB_PORT": "eighty"})
    assert result.returncode == 2
    assert "ORCHESTRATOR_WEB_PORT='eighty'" in result.stderr
    assert "valid integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_with_a_misspelt_setting_suggests_the_right_name() -> None:
    result = run_cli("worker", env={"ORCHESTRATOR_WEBPORT": "7000"})
    assert result.returncode == 2
    assert "unknown setting ORCHESTRATOR_WEBPORT (did you mean ORCHESTRATOR_WEB_PORT?)" \
        in result.stderr


BAD_RULE = """
version: "bad-1"
rules:
  - id: broken-prompt
    channel: web
    action: login_prompt
    when: {field: event.type, eq: page_view}
    payload: {login_url: /login}
    consent: service
    caps: {cooldown_s: -5}
"""


def test_worker_with_a_bad_rule_directory_names_file_rule_and_field(tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(BAD_RULE)
    result = run_cli("worker", env={"ORCHESTRATOR_RULES_DIR": str(tmp_path),
                                    "ORCHESTRATOR_TOPIC_RULES": f"rules-empty-{tmp_path.name}"})
    assert result.returncode == 2, result.stderr
    assert "web.yaml" in result.stderr
    assert "broken-prompt" in result.stderr
    assert "cooldown_s" in result.stderr


def test_rules_validate_accepts_the_default_rules_and_lists_them() -> None:
    result = run_cli("rules", "validate", "rules")
    assert result.returncode == 0, result.stderr
    assert "self-service-login-prompt" in result.stdout
    assert "self-service-direct-link" in result.stdout


def test_rules_validate_refuses_a_bad_rule_file_naming_the_problem(tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(BAD_RULE)
    result = run_cli("rules", "validate", str(tmp_path))
    assert result.returncode == 2
    assert "broken-prompt" in result.stderr and "cooldown_s" in result.stderr


def test_kafka_status_exits_1_when_nothing_answers_on_the_port() -> None:
    result = run_cli("kafka", "status", "--port", "1")
    assert result.returncode == 1
    assert "127.0.0.1:1" in result.stdout


def test_simulate_rejects_an_unknown_persona() -> None:
    result = run_cli("simulate", "--persona", "astronaut")
    assert result.returncode == 2
    assert "choose one of anonymous-billing" in result.stderr


def test_worker_with_a_bad_intents_file_exits_2_naming_the_file_entry_and_field(tmp_path: Path) -> None:
    intents = tmp_path / "intents.yaml"
    intents.write_text("- name: churn_risk\n  outcome_event_types: [cancellation_requested]\n"
                       "  horizon_s: -5\n")
    # An unreachable broker: the intents file must be refused before anything connects.
    result = run_cli("worker", env={"ORCHESTRATOR_INTENTS_FILE": str(intents),
                                    "ORCHESTRATOR_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.returncode == 2, result.stderr
    assert f"{intents}: intent #0 'churn_risk': horizon_s" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_serving_other_machines_without_tokens_or_advertised_host_exits_2(tmp_path: Path) -> None:
    # An unreachable broker: the HTTP security settings must be refused before anything connects.
    unreachable = {"ORCHESTRATOR_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = run_cli("worker", env={**unreachable, "ORCHESTRATOR_WEB_HOST": "0.0.0.0"})
    assert result.returncode == 2, result.stderr
    assert "set ORCHESTRATOR_WEB_TOKENS_FILE" in result.stderr
    tokens = tmp_path / "tokens"
    tokens.write_text("operator " + "t" * 40 + "\n")
    result = run_cli("worker", env={**unreachable, "ORCHESTRATOR_WEB_HOST": "0.0.0.0",
                                    "ORCHESTRATOR_WEB_TOKENS_FILE": str(tokens),
                                    "ORCHESTRATOR_WEB_WORKER_SECRET": "w" * 32})
    assert result.returncode == 2, result.stderr
    assert "set ORCHESTRATOR_WEB_ADVERTISED_HOST" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_with_a_bad_tokens_file_exits_2_naming_the_file_and_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# clients\nreader " + "t" * 40 + "\n")
    result = run_cli("worker", env={"ORCHESTRATOR_WEB_TOKENS_FILE": str(tokens),
                                    "ORCHESTRATOR_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.returncode == 2, result.stderr
    assert f"{tokens}: line 2: unknown role 'reader'" in result.stderr
    assert "t" * 40 not in result.stderr
