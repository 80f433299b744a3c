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


def test_worker_with_a_bad_policy_file_names_the_file_and_field(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("topics:\n  billing:\n    service_page: billing\n    title: Bills\n")
    result = run_cli("worker", env={"ORCHESTRATOR_POLICY_FILE": str(policy)})
    assert result.returncode == 2
    assert str(policy) in result.stderr
    assert "topics.billing.service_page" in result.stderr


def test_kafka_status_exits_1_when_nothing_answers_on_the_port() -> None:
    result = run_cli("kafka", "status", "--port", "1")
    assert result.returncode == 1
    assert "127.0.0.1:1" in result.stdout


def test_simulate_rejects_an_unknown_persona() -> None:
    result = run_cli("simulate", "--persona", "astronaut")
    assert result.returncode == 2
    assert "choose one of anonymous-billing" in result.stderr
