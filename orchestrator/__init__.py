"""Real-time customer-journey orchestration on Kafka.

The package reads as the data flow: ``core`` decides (pure functions over plain data),
``runtime`` moves records between Kafka, tables and HTTP, ``simulate`` makes traffic, and
``localkafka`` runs the development broker.
"""

__version__ = "0.1.0"
