"""A single-node Apache Kafka broker (KRaft) for development, tests and the demo."""

from orchestrator.localkafka.broker import BrokerError, LocalBroker

__all__ = ["BrokerError", "LocalBroker"]
