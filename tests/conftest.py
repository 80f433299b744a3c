"""Shared test set-up: markers by folder, the real broker, unique names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.localkafka import LocalBroker

TESTS = Path(__file__).parent
MARKER_BY_FOLDER = {"unit": "unit", "agents": "agents", "integration": "integration", "e2e": "e2e"}
BROKER_PORT = 9092


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        try:
            folder = path.relative_to(TESTS).parts[0]
        except ValueError:
            folder = "unit"  # doctests of the core
        item.add_marker(MARKER_BY_FOLDER.get(folder, "unit"))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The real broker: the one running on 127.0.0.1:9092, or one this session starts."""
    broker = LocalBroker(port=BROKER_PORT)
    _, started = broker.start()
    yield f"127.0.0.1:{BROKER_PORT}"
    if started:
        broker.stop()


@pytest.fixture
def unique() -> str:
    """A short suffix that keeps one test's topics and groups apart from every other's."""
    return uuid.uuid4().hex[:10]
