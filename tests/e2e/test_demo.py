"""`orchestrator demo` runs end to end and prints actions with their latency."""

from __future__ import annotations

import re
import subprocess
import sys

from orchestrator.runtime.settings import PROJECT_ROOT
from tests.e2e.conftest import free_port


def test_demo_prints_actions_with_latency_and_stops_its_worker(kafka_bootstrap: str) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "demo", "--duration", "15", "--rate", "25",
         "--web-port", str(port), "--page-port", str(free_port())],
        capture_output=True, text=True, timeout=240, cwd=PROJECT_ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    actions = [line for line in lines if re.match(r"^\s*\d+\.\d ms  web\s+(login_prompt|direct_link)",
                                                  line)]
    assert len(actions) >= 3, result.stdout
    assert any("event-to-action p50" in line for line in lines)
    assert "worker stopped" in result.stdout
    assert "Kafka already running" in result.stdout  # and so the demo left it running
