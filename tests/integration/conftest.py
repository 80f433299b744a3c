"""Integration fixtures: a broker of a test's own, for tests that stop, wipe or restart it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.localkafka import LocalBroker
from tests.e2e.conftest import free_port


@pytest.fixture
def own_broker(tmp_path: Path, kafka_bootstrap: str) -> Iterator[LocalBroker]:
    """A second broker on free ports with its own home under the test's tmp dir (the shared
    broker is only started, never touched)."""
    broker = LocalBroker(home=tmp_path / "kafka", port=free_port(2), heap="512m")
    broker.start(timeout=120)
    yield broker
    broker.stop()
