"""Run one worker process: check config, create topics, start Faust."""

from __future__ import annotations

import asyncio
import logging

import faust

from orchestrator.runtime.app import build_app
from orchestrator.runtime.settings import Settings, load_rules
from orchestrator.runtime.topics import ensure_topics


def run_worker(settings: Settings) -> None:
    """Block until the worker is stopped (SIGINT/SIGTERM shut it down cleanly)."""
    rule_set = load_rules(settings.rules_dir)
    created = asyncio.run(ensure_topics(settings))
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    engine = build_app(settings, rule_set)
    worker = faust.Worker(engine.app, loglevel=settings.log_level.upper(), quiet=True,
                          redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG whenever the level is WARNING or
    # above, so that every debug record (one per produced message in Faust and aiokafka) is
    # built just to turn the spinner. A worker is not a terminal toy: no spinner.
    worker.spinner = None
    if created:
        logging.getLogger("orchestrator").info("created topics: %s", ", ".join(created))
    worker.execute_from_commandline()
